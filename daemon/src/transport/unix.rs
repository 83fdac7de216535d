//! The Unix socket listener: private directory, stale-socket cleanup. The default
//! path is part of the wire contract: `tufkey_proto::paths::default_socket_path`.
//!
//! By default only the daemon's own user can reach the socket (0600 in a 0700
//! directory). With `--allow-gid` (system mode: the daemon runs as its own user and
//! clients are members of a group) the socket is 0660 and its directory 0750, both
//! owned by that group, so the filesystem already keeps everyone else out before the
//! daemon's own caller check runs.

use crate::backend::software::private_dir;
use crate::error::{Error, Result};
use nix::unistd::{Gid, Uid};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use tokio::net::UnixListener;

/// Binds `path`: mode 0600, or 0660 owned by `group` when one is given. A missing
/// parent directory is created 0700 (0750 owned by `group`); an existing one must be
/// tufkeyd's user's (or root's) and writable by no one else, and one the daemon owns
/// is given `group` too. Only a leftover socket of tufkeyd's user that nothing
/// listens on is replaced; anything else at `path` is refused and left alone.
pub fn bind(path: &Path, group: Option<u32>) -> Result<UnixListener> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    private_dir::ensure_trusted_dir(dir, if group.is_some() { 0o750 } else { 0o700 }).map_err(
        |source| Error::UnsafeDirectory {
            what: "socket directory",
            source,
        },
    )?;
    if let Some(group) = group {
        share_directory(dir, group)?;
    }
    remove_stale_socket(path)?;
    bind_with_final_mode(dir, path, group)
}

/// Removes what is at `path` only if it is a socket of tufkeyd's user that refuses
/// connections (a daemon that died); a live socket, another user's, or anything that
/// is not a socket (`--socket ~/root.json` by mistake) is refused and left alone.
fn remove_stale_socket(path: &Path) -> Result<()> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(Error::io("reading", path)(error)),
    };
    let kind = metadata.file_type();
    if !kind.is_socket() {
        let what = if kind.is_file() {
            "a regular file"
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_symlink() {
            "a symbolic link"
        } else {
            "not a socket"
        };
        return Err(Error::Config(format!(
            "--socket {}: something is already there and it is {what}, not a socket tufkeyd left behind; tufkeyd never removes it: choose another --socket path",
            path.display()
        )));
    }
    let uid = Uid::effective().as_raw();
    if metadata.uid() != uid {
        return Err(Error::Config(format!(
            "--socket {}: a socket of uid {} is already there, not one of tufkeyd's user (uid {uid}); tufkeyd never removes it: stop whatever made it, or choose another --socket path",
            path.display(),
            metadata.uid()
        )));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(Error::Config(format!(
            "another tufkeyd is already listening on {}: stop it first, or choose another --socket path",
            path.display()
        ))),
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
            tracing::info!(socket = %path.display(), "removing the socket of a tufkeyd that is gone");
            fs::remove_file(path).map_err(Error::io("removing stale socket", path))
        }
        Err(error) => Err(Error::io("checking whether something listens on", path)(error)),
    }
}

/// Binds the socket inside a fresh directory only tufkeyd's user can enter, gives
/// it its final group and mode there, and only then links it in at `path` (never
/// replacing anything). So nobody can reach the socket while its mode is still the
/// one the umask gave at `bind`. The umask itself is not narrowed for this: it is
/// per process, and the runtime's other threads may be creating directories.
fn bind_with_final_mode(dir: &Path, path: &Path, group: Option<u32>) -> Result<UnixListener> {
    let staging = tempfile::Builder::new()
        .prefix(".tk-")
        .tempdir_in(dir)
        .map_err(Error::io("creating a private directory in", dir))?;
    let staged = staging.path().join("s");
    let listener =
        std::os::unix::net::UnixListener::bind(&staged).map_err(Error::io("binding", &staged))?;
    // The group first, then the mode: the socket is never 0660 for the wrong group.
    if let Some(group) = group {
        change_group(&staged, group)?;
    }
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    fs::set_permissions(&staged, fs::Permissions::from_mode(mode))
        .map_err(Error::io("setting permissions on", &staged))?;
    fs::hard_link(&staged, path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Config(format!(
                "--socket {}: something appeared there while tufkeyd was starting (another tufkeyd?); it is left alone",
                path.display()
            ))
        } else {
            Error::io("placing the socket at", path)(error)
        }
    })?;
    staging
        .close()
        .map_err(Error::io("removing the private directory", dir))?;
    listener
        .set_nonblocking(true)
        .map_err(Error::io("configuring", path))?;
    UnixListener::from_std(listener).map_err(Error::io("registering", path))
}

/// Makes the socket directory 0750 owned by `group`, when the daemon owns it (as
/// with systemd's `RuntimeDirectory=`). One root owns is left alone, with a warning
/// if the group cannot get through it.
fn share_directory(dir: &Path, group: u32) -> Result<()> {
    let metadata = fs::metadata(dir).map_err(Error::io("reading", dir))?;
    if metadata.uid() != Uid::effective().as_raw() {
        if metadata.gid() != group && metadata.mode() & 0o001 == 0 {
            tracing::warn!(dir = %dir.display(), group, "the socket directory belongs to root and does not let group {group} through: give it to tufkeyd's user, or use a --socket in a directory tufkeyd owns");
        }
        return Ok(());
    }
    change_group(dir, group)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o750))
        .map_err(Error::io("setting permissions on", dir))
}

/// `chgrp group path`; the daemon's user must be a member of `group`.
fn change_group(path: &Path, group: u32) -> Result<()> {
    nix::unistd::chown(path, None, Some(Gid::from_raw(group))).map_err(|errno| {
        if errno == nix::errno::Errno::EPERM {
            Error::Config(format!(
                "cannot give {} to group {group} (--allow-gid): tufkeyd's user (uid {}) is not \
                 a member of it; add it (`usermod -aG GROUP USER`, or `m tufkey GROUP` in \
                 sysusers.d) and restart tufkeyd",
                path.display(),
                Uid::effective()
            ))
        } else {
            Error::io("changing the group of", path)(std::io::Error::from(errno))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::DirBuilderExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o777
    }

    #[tokio::test]
    async fn alone_the_socket_is_the_owners_only() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run/tufkeyd.sock");
        let _listener = bind(&socket, None).unwrap();
        assert_eq!(mode(&socket), 0o600);
        assert_eq!(mode(socket.parent().unwrap()), 0o700);
    }

    #[tokio::test]
    async fn with_a_group_the_socket_and_its_directory_are_shared_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        fs::DirBuilder::new().mode(0o755).create(&run).unwrap();
        let socket = run.join("tufkeyd.sock");
        // A group the test process belongs to: its own primary group.
        let group = Gid::effective().as_raw();
        let _listener = bind(&socket, Some(group)).unwrap();
        assert_eq!(mode(&socket), 0o660);
        assert_eq!(fs::metadata(&socket).unwrap().gid(), group);
        assert_eq!(mode(&run), 0o750, "an existing directory is tightened");
        assert_eq!(fs::metadata(&run).unwrap().gid(), group);
    }

    #[tokio::test]
    async fn a_live_socket_is_not_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tufkeyd.sock");
        let _first = bind(&socket, None).unwrap();
        let error = bind(&socket, None).unwrap_err().to_string();
        assert!(error.contains("already listening"), "{error}");
    }

    #[tokio::test]
    async fn only_a_dead_socket_of_ours_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tufkeyd.sock");
        // A socket nobody listens on any more: what a killed daemon leaves.
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        let _listener = bind(&socket, None).unwrap();
        assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok());
        assert_eq!(mode(&socket), 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["tufkeyd.sock"], "the staging directory is gone");
    }

    #[tokio::test]
    async fn a_file_at_the_socket_path_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("root.json");
        fs::write(&file, b"{\"signed\":{}}").unwrap();
        let error = bind(&file, None).unwrap_err().to_string();
        assert!(error.contains("it is a regular file"), "{error}");
        assert!(error.contains("never removes it"), "{error}");
        assert_eq!(fs::read(&file).unwrap(), b"{\"signed\":{}}");

        let real = dir.path().join("real.sock");
        drop(std::os::unix::net::UnixListener::bind(&real).unwrap());
        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let error = bind(&link, None).unwrap_err().to_string();
        assert!(error.contains("a symbolic link"), "{error}");
        assert!(fs::symlink_metadata(&link).is_ok() && real.exists());
    }

    #[tokio::test]
    async fn a_socket_directory_others_can_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        fs::DirBuilder::new().mode(0o777).create(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
        let error = bind(&shared.join("tufkeyd.sock"), None)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("socket directory: "), "{error}");
        assert!(error.contains("`chmod go-w "), "{error}");
        assert!(!shared.join("tufkeyd.sock").exists());
    }
}
