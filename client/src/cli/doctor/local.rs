//! The checks on this host's files: whether the socket answers and who listens on
//! it, the modes and owners of the socket, its directory and the store, and
//! pcscd's socket.

use super::Check;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use tokio::net::UnixStream;
use tufkey::{Client, ServerUid};

/// What starts the daemon, for fixes.
const START: &str = "start tufkeyd: `systemctl --user start tufkeyd.socket` (system mode: `sudo systemctl start tufkeyd.socket`; without the units: run `tufkeyd`)";

/// pcsc-lite's socket unless `PCSCLITE_CSOCK_NAME` moves it.
const PCSCD_SOCKET: &str = "/run/pcscd/pcscd.comm";

/// Whether the daemon answers on `socket` as `server`, and the socket's and its
/// directory's modes. With the daemon reachable: a client and the daemon's uid.
pub async fn socket_checks(
    socket: &Path,
    server: ServerUid,
) -> (Vec<Check>, Option<(Client, u32)>) {
    let shown = socket.display();
    let daemon_uid = match probe(socket).await {
        Ok(uid) => uid,
        Err(check) => return (vec![check], None),
    };
    if daemon_uid != server.uid() {
        let check = Check::fail(
            "daemon",
            format!(
                "the process listening on {shown} runs as uid {daemon_uid}, not uid {} as expected; nothing was sent to it",
                server.uid()
            ),
            format!(
                "if uid {daemon_uid} is tufkeyd's own user (system mode: `tufkey`), pass --server-uid {daemon_uid} or set TUFKEY_SERVER_UID={daemon_uid}; otherwise someone else listens there: `ls -l {shown}`"
            ),
        );
        return (vec![check], None);
    }
    let mut checks = vec![Check::ok(
        "daemon",
        format!("tufkeyd answers on {shown} (uid {daemon_uid})"),
    )];
    checks.push(socket_mode(socket, daemon_uid));
    if let Some(dir) = socket.parent() {
        checks.push(private_dir(
            "socket directory",
            dir,
            daemon_uid,
            &[0o700, 0o750],
        ));
    }
    match Client::connect_unix_as(socket, server).await {
        Ok(client) => (checks, Some((client, daemon_uid))),
        Err(error) => {
            checks.push(Check::fail("daemon", error.to_string(), START));
            (checks, None)
        }
    }
}

/// Connects once and reads the listener's uid (SO_PEERCRED); a failure becomes
/// the finding that explains it.
async fn probe(socket: &Path) -> Result<u32, Check> {
    let shown = socket.display();
    let stream = UnixStream::connect(socket).await.map_err(|error| match error.kind() {
        ErrorKind::NotFound => Check::fail(
            "daemon",
            format!("no socket at {shown}: tufkeyd is not running (or listens elsewhere: see TUFKEY_SOCK / --socket)"),
            START,
        ),
        ErrorKind::ConnectionRefused => Check::fail(
            "daemon",
            format!("{shown} exists but nothing listens on it: tufkeyd stopped and left its socket behind"),
            START,
        ),
        ErrorKind::PermissionDenied => Check::fail(
            "daemon",
            format!("not allowed to open {shown} (permission denied)"),
            "ask tufkeyd's administrator to add you to the socket's group (`ls -l` shows it; tufkey-clients in system mode), then log in again",
        ),
        _ => Check::fail("daemon", format!("cannot connect to {shown}: {error}"), START),
    })?;
    stream.peer_cred().map(|cred| cred.uid()).map_err(|error| {
        Check::fail(
            "daemon",
            format!("{shown}: cannot tell who listens: {error}"),
            START,
        )
    })
}

/// The socket: the daemon's own, 0600 (or 0660, handed to a group).
fn socket_mode(socket: &Path, daemon_uid: u32) -> Check {
    let shown = socket.display();
    let metadata = match std::fs::symlink_metadata(socket) {
        Ok(metadata) => metadata,
        Err(error) => {
            return Check::warn(
                "socket",
                format!("cannot read {shown}'s mode: {error}"),
                format!("run `ls -l {shown}` as tufkeyd's user"),
            )
        }
    };
    let mode = metadata.mode() & 0o7777;
    if metadata.uid() != daemon_uid {
        return Check::fail(
            "socket",
            format!(
                "{shown} is owned by uid {}, not tufkeyd's uid {daemon_uid}",
                metadata.uid()
            ),
            format!(
                "restart tufkeyd, which recreates its socket (or `chown {daemon_uid} {shown}`)"
            ),
        );
    }
    match mode {
        0o600 => Check::ok(
            "socket",
            format!("{shown} mode 0600, owned by uid {daemon_uid}"),
        ),
        0o660 => Check::ok(
            "socket",
            format!(
                "{shown} mode 0660 (group gid {}), owned by uid {daemon_uid}",
                metadata.gid()
            ),
        ),
        _ => Check::fail(
            "socket",
            format!(
                "{shown} has mode {mode:04o}: others may connect (want 0600, or 0660 for a group)"
            ),
            format!("`chmod 600 {shown}` (or restart tufkeyd, which recreates it 0600)"),
        ),
    }
}

/// A directory only the daemon (and perhaps its group) may enter, owned by it (or
/// root). Writable by others fails (they could replace what is in it); readable
/// by others warns.
pub fn private_dir(check: &'static str, dir: &Path, daemon_uid: u32, modes: &[u32]) -> Check {
    let shown = dir.display();
    let metadata = match std::fs::metadata(dir) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == ErrorKind::PermissionDenied => {
            return Check::ok(
                check,
                format!(
                    "{shown} is not visible to you (as expected when tufkeyd runs as another user)"
                ),
            )
        }
        Err(error) => {
            return Check::warn(
                check,
                format!("cannot read {shown}: {error}"),
                format!("run `ls -ld {shown}` as tufkeyd's user"),
            )
        }
    };
    let mode = metadata.mode() & 0o7777;
    let owner = metadata.uid();
    let wanted: Vec<String> = modes.iter().map(|mode| format!("{mode:04o}")).collect();
    let found = format!("{shown} has mode {mode:04o} (want {})", wanted.join(" or "));
    let chmod = format!("`chmod {:o} {shown}`", modes[0]);
    if owner != daemon_uid && owner != 0 {
        return Check::fail(
            check,
            format!("{shown} is owned by uid {owner}, not tufkeyd's uid {daemon_uid}"),
            format!("`chown {daemon_uid} {shown}`"),
        );
    }
    if mode & 0o022 != 0 {
        return Check::fail(
            check,
            format!("{found}: others may replace what is in it"),
            chmod,
        );
    }
    if !modes.contains(&mode) {
        return Check::warn(check, format!("{found}: others may look in"), chmod);
    }
    Check::ok(
        check,
        format!("{shown} mode {mode:04o}, owned by uid {owner}"),
    )
}

/// Whether pcscd's socket exists on this host.
pub fn pcscd_socket() -> (String, bool) {
    let path = std::env::var("PCSCLITE_CSOCK_NAME")
        .ok()
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| PCSCD_SOCKET.to_owned());
    let exists = Path::new(&path).exists();
    (path, exists)
}
