//! The Unix socket listener: default path, private directory, stale-socket cleanup.

use crate::error::{Error, Result};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::net::UnixListener;

/// `$XDG_RUNTIME_DIR/tufkey/tufkeyd.sock`, else `/run/tufkey/tufkeyd.sock`.
pub fn default_socket_path() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run"))
        .join("tufkey")
        .join("tufkeyd.sock")
}

/// Binds `path` with mode 0600. A missing parent directory is created 0700; a
/// leftover socket nobody listens on is replaced; a live one is an error.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(Error::io("creating socket directory", dir))?;
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
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(Error::io("setting permissions on", path))?;
    Ok(listener)
}
