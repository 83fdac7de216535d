//! The daemon's core error, and its single mapping onto gRPC status codes.
//!
//! Every error has an [`ErrorKind`], and the kind alone decides the status code.
//! Backends keep their own error types (in their folders) and plug in through
//! [`BackendFailure`], so the core never flattens a backend's failure into a string
//! and the original `source` stays reachable. Messages name what was wrong and the
//! fix; they never carry secret material.

use std::fmt;
use std::path::PathBuf;

/// What kind of failure an error is; decides the gRPC status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller sent something malformed.
    InvalidInput,
    /// No such key.
    NotFound,
    /// Something must happen first (unlock, insert a device, initialise it).
    FailedPrecondition,
    /// A passphrase or PIN was wrong.
    Unauthenticated,
    /// The caller may not do this.
    PermissionDenied,
    /// The backend or device cannot do this at all.
    Unsupported,
    /// A device failed or did not answer; trying again may work.
    Unavailable,
    /// Stored data is damaged.
    DataLoss,
    /// A bug or an environment problem (filesystem, keyring, crypto library).
    Internal,
}

impl ErrorKind {
    /// The gRPC status code for this kind.
    pub fn code(self) -> tonic::Code {
        use tonic::Code;
        match self {
            ErrorKind::InvalidInput => Code::InvalidArgument,
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::FailedPrecondition => Code::FailedPrecondition,
            ErrorKind::Unauthenticated => Code::Unauthenticated,
            ErrorKind::PermissionDenied => Code::PermissionDenied,
            ErrorKind::Unsupported => Code::Unimplemented,
            ErrorKind::Unavailable => Code::Unavailable,
            ErrorKind::DataLoss => Code::DataLoss,
            ErrorKind::Internal => Code::Internal,
        }
    }
}

/// A backend's own error type: it says which kind it is, and keeps its source.
pub trait BackendFailure: std::error::Error + Send + Sync + 'static {
    fn kind(&self) -> ErrorKind;
}

/// A backend's error, boxed so the core needs no list of backends.
pub struct BackendError(Box<dyn BackendFailure>);

impl BackendError {
    /// Wraps a backend's error.
    pub fn new(failure: impl BackendFailure) -> Self {
        BackendError(Box::new(failure))
    }

    /// The backend's own error, for callers that know its type.
    pub fn downcast_ref<T: BackendFailure>(&self) -> Option<&T> {
        let failure: &dyn std::error::Error = &*self.0;
        failure.downcast_ref()
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Everything that can go wrong in tufkeyd's core (transport, service, registry).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller sent something malformed; `what` names the field or input.
    #[error("invalid {what}: {reason}")]
    InvalidArgument { what: &'static str, reason: String },

    /// The metadata cannot be canonicalised the same way by every TUF verifier.
    #[error("cannot canonicalise metadata at {path}: {problem}")]
    NotCanonicalizable { path: String, problem: String },

    /// No key has this TUF or Notary key ID.
    #[error("no key with ID {0}")]
    KeyNotFound(String),

    /// A key or request names a backend this daemon does not run.
    #[error("no {name} backend in this daemon{}", off_reason(.reason))]
    NoBackend {
        name: String,
        /// Why it is off, when the daemon knows.
        reason: Option<String>,
    },

    /// No running backend offers what the request needs.
    #[error("{what} is not available in this daemon: {fix}")]
    NotCapable { what: &'static str, fix: String },

    /// The access policy does not give the caller this permission (for this key).
    #[error("{0}")]
    PermissionDenied(Box<Denial>),

    /// The caller's credentials could not be established.
    #[error("cannot identify the caller: {0}")]
    PeerUnknown(String),

    /// The daemon's configuration is unusable; the message names the setting.
    #[error("configuration: {0}")]
    Config(String),

    /// The socket systemd passed (socket activation) is not one tufkeyd can serve on.
    #[error(transparent)]
    Activation(#[from] crate::transport::activation::ActivationError),

    /// A directory the daemon relies on could be changed by someone else.
    #[error("{what}: {source}")]
    UnsafeDirectory {
        what: &'static str,
        #[source]
        source: crate::backend::software::private_dir::UnsafeDir,
    },

    /// A filesystem or socket operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// The TLS listener could not be set up from its files.
    #[error("TLS setup from {files}: {source}")]
    Tls {
        files: String,
        source: tonic::transport::Error,
    },

    /// A gRPC server stopped with an error.
    #[error("gRPC server on {listener}: {source}")]
    Serve {
        listener: &'static str,
        source: tonic::transport::Error,
    },

    /// Server reflection could not be built from the descriptors.
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),

    /// Work handed to a blocking thread panicked or was cancelled.
    #[error("a worker task failed: {0}")]
    Task(#[from] TaskFailed),

    /// The audit log cannot be written, so the call it would record is refused.
    #[error("cannot write the audit log {}: {source}; the call was refused because it could not be recorded (fix the disk or permissions there, or move the log with --audit-log)", path.display())]
    AuditUnavailable {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The audit log's key comes from the keystore's secret, which this daemon has
    /// not had yet.
    #[error("the audit log needs the keystore's secret to sign its records: unlock the keystore first (`tufkey unlock`, or start tufkeyd with TUFKEY_PASSPHRASE or the OS keyring)")]
    AuditLocked,

    /// The audit log on disk is damaged where the daemon must continue it.
    #[error("audit log {}: {problem}; move it aside (keep it as evidence) and restart tufkeyd, or point --audit-log elsewhere", path.display())]
    AuditDamaged { path: PathBuf, problem: String },

    /// A backend's own error.
    #[error(transparent)]
    Backend(#[from] BackendError),

    /// Backups, transfers, Docker/Notary key files.
    #[error(transparent)]
    Migration(#[from] crate::migration::MigrationError),
}

/// A refusal by the access policy (boxed in [`Error::PermissionDenied`]: it is
/// large, and every `Result` in the daemon carries the error's size).
#[derive(Debug, thiserror::Error)]
#[error("{caller} is not allowed `{permission}`{}: {reason} (caller: {details})", on_key(.key))]
pub struct Denial {
    /// Who, in short: `uid 1000`, `TLS client CN=notary-server`.
    pub caller: String,
    /// The permission's policy name.
    pub permission: &'static str,
    /// The key's TUF key ID, when the request named one.
    pub key: Option<String>,
    /// Why, and the fix.
    pub reason: String,
    /// Everything known about the caller (pid, executable, certificate key).
    pub details: String,
}

fn on_key(key: &Option<String>) -> String {
    key.as_ref()
        .map(|key| format!(" on key {key}"))
        .unwrap_or_default()
}

fn off_reason(reason: &Option<String>) -> String {
    reason
        .as_ref()
        .map(|reason| format!(": {reason}"))
        .unwrap_or_default()
}

/// A blocking task that panicked or was cancelled (see [`crate::blocking`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TaskFailed(#[from] pub tokio::task::JoinError);

/// Shorthand used throughout the daemon.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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

    /// Builds an [`Error::InvalidArgument`].
    pub fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            what,
            reason: reason.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument { .. } | Error::NotCanonicalizable { .. } => {
                ErrorKind::InvalidInput
            }
            Error::KeyNotFound(_) => ErrorKind::NotFound,
            Error::NoBackend { .. } | Error::NotCapable { .. } => ErrorKind::FailedPrecondition,
            Error::PermissionDenied(_) | Error::PeerUnknown(_) => ErrorKind::PermissionDenied,
            Error::Config(_)
            | Error::Activation(_)
            | Error::UnsafeDirectory { .. }
            | Error::Io { .. }
            | Error::Tls { .. }
            | Error::Serve { .. }
            | Error::Reflection(_)
            | Error::Task(_) => ErrorKind::Internal,
            Error::AuditUnavailable { .. } => ErrorKind::Unavailable,
            Error::AuditLocked => ErrorKind::FailedPrecondition,
            Error::AuditDamaged { .. } => ErrorKind::DataLoss,
            Error::Backend(error) => error.0.kind(),
            Error::Migration(error) => error.kind(),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        tonic::Status::new(error.kind().code(), error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("card said no: {source}")]
    struct CardSaidNo {
        source: std::io::Error,
    }

    impl BackendFailure for CardSaidNo {
        fn kind(&self) -> ErrorKind {
            ErrorKind::Unavailable
        }
    }

    #[test]
    fn a_backend_error_keeps_its_kind_message_and_source() {
        let error = Error::from(BackendError::new(CardSaidNo {
            source: std::io::Error::other("timeout"),
        }));
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        assert_eq!(error.to_string(), "card said no: timeout");
        let source = std::error::Error::source(&error).expect("the source is kept");
        assert_eq!(source.to_string(), "timeout");
        let Error::Backend(backend) = &error else {
            unreachable!()
        };
        assert!(backend.downcast_ref::<CardSaidNo>().is_some());
        let status = tonic::Status::from(error);
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.message(), "card said no: timeout");
    }

    #[test]
    fn a_backend_that_is_off_says_why() {
        let error = Error::NoBackend {
            name: "yubikey".into(),
            reason: Some("YubiKey support is off: tufkeyd was started with --no-yubikey".into()),
        };
        assert_eq!(
            error.to_string(),
            "no yubikey backend in this daemon: YubiKey support is off: tufkeyd was started with --no-yubikey"
        );
        assert_eq!(
            tonic::Status::from(error).code(),
            tonic::Code::FailedPrecondition
        );
    }
}
