//! The seam between the keystore's write path and the filesystem.
//!
//! Whether an acknowledged key survives a crash depends on the order of a few
//! system calls: create, write, fsync the file, rename, fsync the directory, unlink.
//! Each of them is one call on [`Disk`], and the write path ([`super::files`]) is
//! written against the trait, so tests can put a crash-consistency model behind it
//! ([`model`]) and crash the very functions the daemon runs. The daemon itself uses
//! [`OsDisk`]: plain `std::fs`, statically dispatched, so the seam costs nothing.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

#[cfg(test)]
pub mod model;

/// The filesystem operations whose order decides what a crash leaves behind.
pub trait Disk {
    /// A file open for writing.
    type File;

    /// Creates `path` (mode 0600) for writing; fails if anything is there already.
    fn create_new(&self, path: &Path) -> io::Result<Self::File>;

    /// Appends all of `bytes` to `file`.
    fn write_all(&self, file: &mut Self::File, bytes: &[u8]) -> io::Result<()>;

    /// Makes `file`'s data durable (fsync).
    fn sync_file(&self, file: &mut Self::File) -> io::Result<()>;

    /// Renames `from` to `to` within one directory; fails if `to` exists.
    fn rename_noclobber(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Renames `from` to `to` within one directory, atomically replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Unlinks `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Makes the entries created, renamed or removed in `dir` durable (fsync of the
    /// directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real filesystem.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsDisk;

impl Disk for OsDisk {
    type File = fs::File;

    fn create_new(&self, path: &Path) -> io::Result<fs::File> {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    }

    fn write_all(&self, file: &mut fs::File, bytes: &[u8]) -> io::Result<()> {
        file.write_all(bytes)
    }

    fn sync_file(&self, file: &mut fs::File) -> io::Result<()> {
        file.sync_all()
    }

    /// `renameat2(RENAME_NOREPLACE)`, or link + unlink where the filesystem lacks it
    /// (tempfile's implementation).
    fn rename_noclobber(&self, from: &Path, to: &Path) -> io::Result<()> {
        tempfile::TempPath::try_from_path(from)?
            .persist_noclobber(to)
            .map_err(|failed| {
                // The caller decides what happens to the source; do not delete it here.
                let _kept = failed.path.keep();
                failed.error
            })
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        fs::File::open(dir)?.sync_all()
    }
}
