//! The Unix socket listener: private directory, stale-socket cleanup. The default
//! path is part of the wire contract: `tufkey_proto::paths::default_socket_path`.
//!
//! By default only the daemon's own user can reach the socket (0600 in a 0700
//! directory). With `--allow-gid` (system mode: the daemon runs as its own user and
//! clients are members of a group) the socket is 0660 and its directory 0750, both
//! owned by that group, so the filesystem already keeps everyone else out before the
//! daemon's own caller check runs.

use crate::error::{Error, Result};
use nix::unistd::{Gid, Uid};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;
use tokio::net::UnixListener;

/// Binds `path`: mode 0600, or 0660 owned by `group` when one is given. A missing
/// parent directory is created 0700 (0750 owned by `group`); an existing one the
/// daemon owns is given `group` too. A leftover socket nobody listens on is
/// replaced; a live one is an error.
pub fn bind(path: &Path, group: Option<u32>) -> Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(if group.is_some() { 0o750 } else { 0o700 })
                .create(dir)
                .map_err(Error::io("creating socket directory", dir))?;
        }
        if let Some(group) = group {
            share_directory(dir, group)?;
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Error::Config(format!(
                "another tufkeyd is already listening on {}",
                path.display()
            )));
        }
        fs::remove_file(path).map_err(Error::io("removing stale socket", path))?;
    }
    let listener = UnixListener::bind(path).map_err(Error::io("binding", path))?;
    // The group first, then the mode: the socket is never 0660 for the wrong group.
    if let Some(group) = group {
        change_group(path, group)?;
    }
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(Error::io("setting permissions on", path))?;
    Ok(listener)
}

/// Makes the socket directory 0750 owned by `group`, when the daemon owns it (as
/// with systemd's `RuntimeDirectory=`). A directory someone else owns is left
/// alone, with a warning if the group cannot get through it.
fn share_directory(dir: &Path, group: u32) -> Result<()> {
    let metadata = fs::metadata(dir).map_err(Error::io("reading", dir))?;
    if metadata.uid() != Uid::effective().as_raw() {
        if metadata.gid() != group && metadata.mode() & 0o001 == 0 {
            tracing::warn!(dir = %dir.display(), group, "the socket directory belongs to another user and does not let group {group} through: give it to tufkeyd's user, or use a --socket in a directory tufkeyd owns");
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
}
