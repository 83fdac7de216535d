//! Directories tufkeyd keeps its secrets and its socket in, checked before use.
//!
//! Whoever can replace a directory (or one above it) can swap the key files or the
//! socket under the daemon. So a directory is opened without following a symbolic
//! link in its last component, and it, every directory above it and every directory
//! a symbolic link on the way passes through must belong to tufkeyd's user (or
//! root) and be writable by no one else (a sticky directory such as `/tmp` is fine
//! above: nobody can rename what is not theirs there). A directory that fails is
//! refused with the command that fixes it; tufkeyd never silently takes over a
//! directory another user owns or others can write. A private directory that is
//! merely readable by others (an older release, or a umask) is tightened to 0700.

use nix::fcntl::OFlag;
use nix::unistd::Uid;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a directory cannot be trusted, and the fix.
#[derive(Debug, thiserror::Error)]
pub enum UnsafeDir {
    #[error("{} is a symbolic link; tufkeyd does not follow links to its private directories: point it at the real directory (`readlink -f {}` shows it)", path.display(), path.display())]
    Symlink { path: PathBuf },

    #[error("{} is not a directory: move it away or choose another path", path.display())]
    NotADirectory { path: PathBuf },

    #[error("{} belongs to uid {owner}, not to tufkeyd's user (uid {uid}), who could then have its files swapped: give it to tufkeyd's user (`chown {uid} {}`) or choose a directory of tufkeyd's user", path.display(), path.display())]
    Owner { path: PathBuf, owner: u32, uid: u32 },

    #[error("{} is writable by {who} (mode {mode:04o}), who could replace what tufkeyd keeps there: remove their write permission (`chmod go-w {}`)", path.display(), path.display())]
    Writable {
        path: PathBuf,
        mode: u32,
        who: &'static str,
    },

    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> UnsafeDir {
    let path = path.to_path_buf();
    move |source| UnsafeDir::Io {
        action,
        path,
        source,
    }
}

/// Creates `dir` (and missing parents) 0700, or checks the existing one: it must be
/// a real directory of tufkeyd's user that no one else can write, under
/// directories no one else can write.
pub fn ensure_private_dir(dir: &Path) -> Result<(), UnsafeDir> {
    let created = create_dir(dir, 0o700)?;
    let handle = open_no_follow(dir)?;
    let metadata = handle
        .metadata()
        .map_err(io_error("reading the metadata of", dir))?;
    check_owner(dir, &metadata, false)?;
    check_not_writable_by_others(dir, &metadata)?;
    let mode = metadata.mode() & 0o7777;
    if mode != 0o700 {
        if !created {
            tracing::warn!(dir = %dir.display(), mode = format!("{mode:04o}"), "tightening a private directory to 0700");
        }
        handle
            .set_permissions(fs::Permissions::from_mode(0o700))
            .map_err(io_error("setting permissions on", dir))?;
    }
    check_ancestors(dir)
}

/// Creates `dir` with `mode` (and missing parents 0700) when it does not exist,
/// else checks it as [`ensure_private_dir`] does, except that root may own it
/// (a runtime directory such as `/run`). Its mode is left as it is: the caller
/// decides who may enter (the Unix socket's directory is shared with a group in
/// system mode).
pub fn ensure_trusted_dir(dir: &Path, mode: u32) -> Result<(), UnsafeDir> {
    create_dir(dir, mode)?;
    let handle = open_no_follow(dir)?;
    let metadata = handle
        .metadata()
        .map_err(io_error("reading the metadata of", dir))?;
    check_owner(dir, &metadata, true)?;
    check_not_writable_by_others(dir, &metadata)?;
    check_ancestors(dir)
}

/// Creates `dir` with `mode` if missing; whether it did.
fn create_dir(dir: &Path, mode: u32) -> Result<bool, UnsafeDir> {
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(io_error("creating directory", parent))?;
            }
            match fs::DirBuilder::new().mode(mode).create(dir) {
                Ok(()) => Ok(true),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                Err(error) => Err(io_error("creating directory", dir)(error)),
            }
        }
        Err(error) => Err(io_error("creating directory", dir)(error)),
    }
}

/// Opens `dir` itself, refusing a symbolic link or anything but a directory.
fn open_no_follow(dir: &Path) -> Result<File, UnsafeDir> {
    OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC).bits())
        .open(dir)
        .map_err(|error| {
            // Linux answers ENOTDIR (O_DIRECTORY) or ELOOP (O_NOFOLLOW) for a link.
            let refused = [nix::errno::Errno::ELOOP, nix::errno::Errno::ENOTDIR]
                .map(|errno| errno as i32)
                .contains(&error.raw_os_error().unwrap_or(0));
            if !refused {
                return io_error("opening directory", dir)(error);
            }
            let path = dir.to_path_buf();
            match fs::symlink_metadata(dir) {
                Ok(metadata) if metadata.file_type().is_symlink() => UnsafeDir::Symlink { path },
                _ => UnsafeDir::NotADirectory { path },
            }
        })
}

fn check_owner(dir: &Path, metadata: &fs::Metadata, root_may_own: bool) -> Result<(), UnsafeDir> {
    let uid = Uid::effective().as_raw();
    if metadata.uid() == uid || (root_may_own && metadata.uid() == 0) {
        return Ok(());
    }
    Err(UnsafeDir::Owner {
        path: dir.to_path_buf(),
        owner: metadata.uid(),
        uid,
    })
}

fn check_not_writable_by_others(dir: &Path, metadata: &fs::Metadata) -> Result<(), UnsafeDir> {
    let mode = metadata.mode() & 0o7777;
    let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (false, false) => return Ok(()),
        (true, false) => "its group",
        (false, true) => "every user",
        (true, true) => "its group and every user",
    };
    Err(UnsafeDir::Writable {
        path: dir.to_path_buf(),
        mode,
        who,
    })
}

/// Every directory above `dir`, both as written (symbolic links stay where they
/// are, so the directories holding them are checked) and as resolved, must belong
/// to tufkeyd's user or root and be writable by no one else unless sticky.
fn check_ancestors(dir: &Path) -> Result<(), UnsafeDir> {
    let absolute = std::path::absolute(dir).map_err(io_error("resolving", dir))?;
    let resolved = fs::canonicalize(dir).map_err(io_error("resolving", dir))?;
    let written = absolute.ancestors().skip(1);
    let real = resolved.ancestors().skip(1);
    for ancestor in written.chain(real) {
        let metadata = match fs::symlink_metadata(ancestor) {
            Ok(metadata) => metadata,
            Err(error) => return Err(io_error("reading the metadata of", ancestor)(error)),
        };
        if !metadata.is_dir() {
            // A symbolic link: the directory holding it is checked next, and where
            // it leads is checked through the resolved path.
            continue;
        }
        check_owner(ancestor, &metadata, true)?;
        let sticky = metadata.mode() & 0o1000 != 0;
        if !sticky {
            check_not_writable_by_others(ancestor, &metadata)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_new_directory_and_its_parents_are_created_owner_only() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/b/store");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&base.path().join("a")), 0o700);
    }

    #[test]
    fn an_existing_readable_directory_is_tightened() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("store");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_directory_others_can_write_is_refused_with_the_fix_and_left_alone() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("store");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).unwrap();
        let error = ensure_private_dir(&dir).unwrap_err();
        assert!(matches!(error, UnsafeDir::Writable { .. }), "{error}");
        let text = error.to_string();
        assert!(text.contains("writable by its group"), "{text}");
        assert!(
            text.contains(&format!("`chmod go-w {}`", dir.display())),
            "{text}"
        );
        assert_eq!(mode(&dir), 0o770, "a refused directory is not touched");
    }

    #[test]
    fn a_symbolic_link_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let real = base.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = base.path().join("store");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let error = ensure_private_dir(&link).unwrap_err();
        assert!(matches!(error, UnsafeDir::Symlink { .. }), "{error}");
        assert!(error.to_string().contains("readlink -f"), "{error}");
    }

    #[test]
    fn a_file_is_not_a_directory() {
        let base = tempfile::tempdir().unwrap();
        let file = base.path().join("store");
        fs::write(&file, b"x").unwrap();
        let error = ensure_private_dir(&file).unwrap_err();
        assert!(matches!(error, UnsafeDir::NotADirectory { .. }), "{error}");
    }

    #[test]
    fn a_parent_others_can_write_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let parent = base.path().join("shared");
        fs::create_dir(&parent).unwrap();
        fs::set_permissions(&parent, fs::Permissions::from_mode(0o777)).unwrap();
        let error = ensure_private_dir(&parent.join("store")).unwrap_err();
        assert!(
            matches!(&error, UnsafeDir::Writable { path, .. } if *path == parent),
            "{error}"
        );
        // Sticky, as /tmp is: nobody can rename what is not theirs, so it is fine.
        fs::set_permissions(&parent, fs::Permissions::from_mode(0o1777)).unwrap();
        ensure_private_dir(&parent.join("store")).unwrap();
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("store");
        fs::create_dir(&dir).unwrap();
        let other = Uid::effective().as_raw() + 4242;
        if nix::unistd::chown(&dir, Some(Uid::from_raw(other)), None).is_err() {
            // Only root can give a directory away; as anyone else, use one that
            // exists and is not ours: `/` belongs to root.
            let error = ensure_private_dir(Path::new("/")).unwrap_err();
            assert!(matches!(error, UnsafeDir::Owner { .. }), "{error}");
            return;
        }
        let error = ensure_private_dir(&dir).unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(error, UnsafeDir::Owner { owner, .. } if owner == other),
            "{text}"
        );
        assert!(text.contains(&format!("belongs to uid {other}")), "{text}");
        assert!(text.contains("`chown "), "{text}");
        assert!(
            ensure_trusted_dir(&dir, 0o700).is_err(),
            "only root may own a trusted directory besides tufkeyd's user"
        );
    }
}
