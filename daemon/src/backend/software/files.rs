//! Private files on disk: owner-only directories and atomic, durable writes.

use super::error::{Result, SoftwareError};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Prefix of the temporary files an interrupted write can leave behind.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Creates `dir` (and parents) and makes it mode 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(SoftwareError::io("creating directory", dir))?;
    let mode = fs::metadata(dir)
        .map_err(SoftwareError::io("reading", dir))?
        .permissions()
        .mode()
        & 0o777;
    if mode != 0o700 {
        if mode & 0o077 != 0 {
            tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"), "tightening keystore directory permissions to 0700");
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(SoftwareError::io("setting permissions on", dir))?;
    }
    Ok(())
}

/// Writes `bytes` to `dir/name` so that the file is either absent or complete:
/// temp file (0600) -> fsync -> rename without replacing -> fsync the directory.
pub fn write_new_file_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let target = dir.join(name);
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(SoftwareError::io("creating a temporary file in", dir))?;
    temp.write_all(bytes)
        .map_err(SoftwareError::io("writing", temp.path()))?;
    temp.as_file()
        .sync_all()
        .map_err(SoftwareError::io("syncing", temp.path()))?;
    temp.persist_noclobber(&target)
        .map_err(|error| SoftwareError::io("renaming into place", &target)(error.error))?;
    sync_dir(dir)
}

/// Removes `path` durably.
pub fn remove_file_durably(path: &Path) -> Result<()> {
    fs::remove_file(path).map_err(SoftwareError::io("removing", path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(SoftwareError::io("syncing directory", dir))
}
