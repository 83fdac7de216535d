//! The client's one error type.

use std::path::PathBuf;

/// What can go wrong talking to tufkeyd.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The daemon's socket could not be reached.
    #[error("cannot reach tufkeyd at {}: {reason} (is it running? start it with `tufkeyd`, or point TUFKEY_SOCK / --socket at its socket)", path.display())]
    Connect { path: PathBuf, reason: String },

    /// The socket's permissions keep this user out (a system-mode daemon admits
    /// only the members of its group).
    #[error("not allowed to open tufkeyd's socket {} (permission denied): ask its administrator to add you to the group the socket belongs to (`ls -l` shows it; tufkey-clients in system mode), then log in again", path.display())]
    SocketForbidden { path: PathBuf },

    /// The process listening on the socket is not the daemon expected: it runs as
    /// another uid. Nothing was sent to it.
    #[error("refusing tufkeyd's socket {}: the process listening there runs as uid {found}, but tufkey expects uid {expected}; nothing was sent to it. If uid {found} is the daemon's own user (system mode: `tufkey`), say so with --server-uid {found} or TUFKEY_SERVER_UID={found}; otherwise someone else is listening on that path: check it with `ls -l {}`", path.display(), path.display())]
    UnexpectedServer {
        path: PathBuf,
        found: u32,
        expected: u32,
    },

    /// The daemon answered with an error.
    #[error("{}", rpc_message(.0))]
    Rpc(#[from] tonic::Status),

    /// A local file could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// The user's input was unusable before anything was sent.
    #[error("{0}")]
    Usage(String),

    /// The daemon found a bad record in its audit log (where, and why).
    #[error("the audit log does not verify: {0}")]
    AuditDamaged(String),

    /// No endpoint answered, or a request that must not be sent twice lost its
    /// connection before an answer ([`crate::FailoverError`]).
    #[error(transparent)]
    Failover(#[from] crate::failover::FailoverError),
}

/// The daemon's message and code, plus what lies under a transport failure (e.g. the
/// TLS alert that refused a client certificate), which the message alone hides.
fn rpc_message(status: &tonic::Status) -> String {
    let text = with_causes(
        status.message().to_owned(),
        std::error::Error::source(status),
    );
    format!("{text} ({:?})", status.code())
}

/// `text`, then each cause under `source` whose text it does not already hold,
/// after ": " (one line for people, however deep the chain).
pub fn with_causes(
    mut text: String,
    mut source: Option<&(dyn std::error::Error + 'static)>,
) -> String {
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

impl Error {
    /// Builds an [`Error::Io`] for `action` on `path`; for `map_err`.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

/// Shorthand for client results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_show_their_cause() {
        let cause = std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "peer sent alert: unknown ca",
        );
        let mut status = tonic::Status::unavailable("transport error");
        status.set_source(std::sync::Arc::new(cause));
        assert_eq!(
            Error::Rpc(status).to_string(),
            "transport error: peer sent alert: unknown ca (Unavailable)"
        );
        assert_eq!(
            Error::Rpc(tonic::Status::not_found("no key with ID x")).to_string(),
            "no key with ID x (NotFound)"
        );
    }
}
