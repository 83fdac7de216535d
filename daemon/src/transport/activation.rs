//! systemd integration: socket activation and readiness. systemd (or
//! `systemd-socket-activate`) may bind the Unix socket itself and pass it to tufkeyd
//! (`LISTEN_FDS`, `LISTEN_PID`), so the first connection starts the daemon; tufkeyd
//! then serves on that socket exactly as on one it bound (the same accept path, peer
//! identification and connection cap), and tells the service manager when it is
//! ready and when it stops (`NOTIFY_SOCKET`, `Type=notify`).
//!
//! Taking the socket reads and clears the `LISTEN_*` environment variables, which is
//! only sound while the process has one thread: [`adopt_from_environment`] runs in
//! `main` before the runtime starts and keeps the socket until the server takes it.

use nix::sys::socket::{getsockopt, sockopt::AcceptConn};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Mutex;

/// The socket systemd passed, from [`adopt_from_environment`] until the server takes
/// it with [`take_adopted`]. Process-wide because what systemd passes is: one
/// environment, one set of inherited descriptors.
static ADOPTED: Mutex<Option<UnixListener>> = Mutex::new(None);

/// Why tufkeyd refused what systemd passed it.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error(
        "systemd passed {count} sockets (LISTEN_FDS={count}); tufkeyd serves exactly one Unix \
         socket: give tufkeyd.socket a single ListenStream= line"
    )]
    NotOneSocket { count: usize },

    #[error(
        "the socket systemd passed (LISTEN_FDS, fd 3) is not a Unix stream socket: tufkeyd.socket \
         must use ListenStream=/path/to/tufkeyd.sock (not ListenDatagram=, \
         ListenSequentialPacket=, or a TCP port)"
    )]
    NotUnixStream(#[source] std::io::Error),

    #[error(
        "the socket systemd passed (LISTEN_FDS, fd 3) is a connection, not a listening socket: \
         set Accept=no in tufkeyd.socket (the default), or drop --accept from \
         systemd-socket-activate"
    )]
    NotListening,

    #[error("inspecting the socket systemd passed (LISTEN_FDS, fd 3): {0}")]
    Inspect(#[source] nix::errno::Errno),

    #[error("configuring the socket systemd passed (LISTEN_FDS, fd 3): {0}")]
    Configure(#[source] std::io::Error),
}

/// Takes the socket systemd passed, if any, after checking it is a listening Unix
/// stream socket, and keeps it for [`take_adopted`]. Without `LISTEN_FDS` (or with a
/// `LISTEN_PID` of another process) nothing is adopted and tufkeyd binds `--socket`.
/// Call only while the process has a single thread.
pub fn adopt_from_environment() -> Result<(), ActivationError> {
    let mut passed = listenfd::ListenFd::from_env();
    let count = passed.len();
    if count == 0 {
        return Ok(());
    }
    if count != 1 {
        return Err(ActivationError::NotOneSocket { count });
    }
    // `None` only for a socket already taken, and this is the first take.
    let Some(listener) = passed
        .take_unix_listener(0)
        .map_err(ActivationError::NotUnixStream)?
    else {
        return Ok(());
    };
    if !getsockopt(&listener, AcceptConn).map_err(ActivationError::Inspect)? {
        return Err(ActivationError::NotListening);
    }
    listener
        .set_nonblocking(true)
        .map_err(ActivationError::Configure)?;
    *ADOPTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(listener);
    Ok(())
}

/// The socket [`adopt_from_environment`] took, once: the server serves on it instead
/// of binding `--socket`, and leaves its file to systemd at shutdown.
pub fn take_adopted() -> Option<UnixListener> {
    ADOPTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take()
}

/// Where an adopted socket is, for the log (`None`: unnamed or abstract).
pub fn socket_path(listener: &UnixListener) -> Option<PathBuf> {
    listener
        .local_addr()
        .ok()
        .and_then(|address| address.as_pathname().map(PathBuf::from))
}

/// Tells the service manager tufkeyd is serving (`READY=1`): every listener is
/// bound and the keystore is open. Without `NOTIFY_SOCKET` this does nothing.
pub fn notify_ready() {
    notify(sd_notify::NotifyState::Ready);
}

/// Tells the service manager tufkeyd is shutting down (`STOPPING=1`).
pub fn notify_stopping() {
    notify(sd_notify::NotifyState::Stopping);
}

fn notify(state: sd_notify::NotifyState<'_>) {
    if let Err(error) = sd_notify::notify(false, std::slice::from_ref(&state)) {
        tracing::warn!(%error, %state, "telling systemd (NOTIFY_SOCKET)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_socket_passes_the_listening_check_and_a_connection_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        assert!(getsockopt(&listener, AcceptConn).unwrap());
        let connection = std::os::unix::net::UnixStream::connect(&path).unwrap();
        assert!(!getsockopt(&connection, AcceptConn).unwrap());
        assert_eq!(socket_path(&listener).unwrap(), path);
    }
}
