//! The daemon's one error type, and its single mapping onto gRPC status codes.
//!
//! Messages name what was wrong and, where there is one, the fix. They never carry
//! secret material: passphrases and private keys are not in scope where errors are made.

use std::path::PathBuf;

/// Everything that can go wrong inside tufkeyd.
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

    /// The software keystore has no passphrase yet.
    #[error("the keystore is locked: run `tufkey unlock`, or start tufkeyd with TUFKEY_PASSPHRASE set or a keyring entry")]
    Locked,

    /// The passphrase does not open the keystore.
    #[error("wrong passphrase for the keystore at {0}")]
    WrongPassphrase(PathBuf),

    /// A key cannot be used right now (e.g. its device is absent).
    #[error("key {keyid} is unavailable: {reason}")]
    Unavailable { keyid: String, reason: String },

    /// A keystore file could not be read or decrypted.
    #[error("keystore file {path}: {reason}")]
    UnreadableKeyFile { path: PathBuf, reason: String },

    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// The OS keyring refused an operation.
    #[error("OS keyring: {0}")]
    Keyring(String),

    /// A Unix-socket caller whose uid is not on the allow-list.
    #[error("uid {uid} is not allowed to use this tufkeyd (allowed: {allowed}); the daemon's owner can add it with --allow-uid {uid}")]
    PeerNotAllowed { uid: u32, allowed: String },

    /// A TLS client whose certificate subject is not on the allow-list.
    #[error("client certificate subject CN={subject} is not allowed to use this tufkeyd (allowed: {allowed}); the daemon's owner can add it with --tls-allow-subject")]
    SubjectNotAllowed { subject: String, allowed: String },

    /// The caller's credentials could not be established.
    #[error("cannot identify the caller: {0}")]
    PeerUnknown(String),

    /// The daemon's configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),

    /// A cryptographic primitive failed (never carries key material).
    #[error("cryptographic operation failed: {0}")]
    Crypto(String),

    /// The daemon runs without YubiKey support.
    #[error("YubiKey support is off: {0}")]
    YubiKeyDisabled(String),

    /// The YubiKey is not plugged in (or was pulled).
    #[error("YubiKey {serial} is not present: insert YubiKey {serial}")]
    DeviceAbsent { serial: u32 },

    /// No YubiKey, or several, when the caller named none.
    #[error("{0}")]
    DeviceChoice(String),

    /// The daemon has no PIN for this YubiKey.
    #[error("YubiKey {serial} needs its PIN: run `tufkey unlock --serial {serial}`")]
    PinRequired { serial: u32 },

    /// The PIN was refused; the cached PIN is gone and nothing was retried.
    #[error("wrong PIN for YubiKey {serial}: {tries} {} left; run `tufkey unlock --serial {serial}` with the right PIN", if *.tries == 1 { "try" } else { "tries" })]
    WrongPin { serial: u32, tries: u8 },

    /// The PIN has no tries left.
    #[error("the PIN of YubiKey {serial} is blocked: reset it with the PUK (`ykman --device {serial} piv access unblock-pin`), then run `tufkey unlock --serial {serial}`")]
    PinBlocked { serial: u32 },

    /// One try left: a cached PIN is not worth the risk of blocking the device.
    #[error("YubiKey {serial} has 1 PIN try left, so tufkeyd will not use a cached PIN: run `tufkey unlock --serial {serial}` and type the PIN")]
    LastPinTry { serial: u32 },

    /// The device still has the factory management key.
    #[error("YubiKey {serial} still has the factory management key: run `tufkey device init --serial {serial}` first (or pass --allow-default-mgmt-key to generate anyway)")]
    DefaultManagementKey { serial: u32 },

    /// The device cannot do what was asked.
    #[error("{what} is not supported by this device (YubiKey {serial})")]
    NotSupportedByDevice { serial: u32, what: &'static str },

    /// The device failed or refused an operation.
    #[error("YubiKey {serial}: {reason}")]
    Device { serial: u32, reason: String },
}

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
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        use tonic::Code;
        let code = match &error {
            Error::InvalidArgument { .. } | Error::NotCanonicalizable { .. } => {
                Code::InvalidArgument
            }
            Error::KeyNotFound(_) => Code::NotFound,
            Error::Locked
            | Error::Unavailable { .. }
            | Error::YubiKeyDisabled(_)
            | Error::DeviceAbsent { .. }
            | Error::DeviceChoice(_)
            | Error::PinRequired { .. }
            | Error::PinBlocked { .. }
            | Error::LastPinTry { .. }
            | Error::DefaultManagementKey { .. } => Code::FailedPrecondition,
            Error::WrongPassphrase(_) | Error::WrongPin { .. } => Code::Unauthenticated,
            Error::NotSupportedByDevice { .. } => Code::Unimplemented,
            Error::Device { .. } => Code::Unavailable,
            Error::PeerNotAllowed { .. }
            | Error::SubjectNotAllowed { .. }
            | Error::PeerUnknown(_) => Code::PermissionDenied,
            Error::UnreadableKeyFile { .. } => Code::DataLoss,
            Error::Io { .. } | Error::Keyring(_) | Error::Config(_) | Error::Crypto(_) => {
                Code::Internal
            }
        };
        tonic::Status::new(code, error.to_string())
    }
}
