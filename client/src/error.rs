//! The client's one error type.

use std::path::PathBuf;

/// What can go wrong talking to tufkeyd.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The daemon's socket could not be reached.
    #[error("cannot reach tufkeyd at {}: {reason} (is it running? start it with `tufkeyd`, or point TUFKEY_SOCK / --socket at its socket)", path.display())]
    Connect { path: PathBuf, reason: String },

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
}

fn rpc_message(status: &tonic::Status) -> String {
    format!("{} ({:?})", status.message(), status.code())
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
