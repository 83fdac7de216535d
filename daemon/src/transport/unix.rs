//! The Unix socket listener: private directory, stale-socket cleanup. The default
//! path is part of the wire contract: `tufkey_proto::paths::default_socket_path`.

use crate::error::{Error, Result};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use tokio::net::UnixListener;

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
