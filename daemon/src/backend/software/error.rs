//! The software keystore's errors. Each keeps its underlying source, and each knows
//! its [`ErrorKind`], which is all the core needs to answer with the right status.

use crate::error::{BackendError, BackendFailure, Error, ErrorKind, TaskFailed};
use std::path::PathBuf;

/// Everything that can go wrong in the software keystore.
#[derive(Debug, thiserror::Error)]
pub enum SoftwareError {
    /// The keystore has no passphrase yet.
    #[error("the keystore is locked: run `tufkey unlock`, or start tufkeyd with --secret-file, TUFKEY_PASSPHRASE set or a keyring entry")]
    Locked,

    /// The passphrase does not open the keystore.
    #[error("wrong passphrase for the keystore at {0}")]
    WrongPassphrase(PathBuf),

    /// The store secret does not open the keystore kept in PostgreSQL.
    #[error("wrong store secret for the keystore in {store}: every replica must be given the same --secret-file (or TUFKEY_PASSPHRASE) as the one that created it")]
    WrongStoreSecret { store: String },

    /// The keystore's database failed (boxed: it is the largest error here).
    #[error(transparent)]
    Database(Box<super::postgres::PostgresError>),

    /// Wrong passphrases were given in a row; `Unlock` is refused until the back-off ends.
    #[error("unlock refused: {failures} wrong passphrase{} in a row; wait {wait_secs} s, then run `tufkey unlock` again with the right passphrase", if *.failures == 1 { "" } else { "s" })]
    BackingOff { failures: u32, wait_secs: u64 },

    /// A keystore file could not be read, parsed or decrypted.
    #[error("keystore file {path}: {problem}")]
    Unreadable {
        path: PathBuf,
        #[source]
        problem: FileProblem,
    },

    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The filesystem holding the keystore is full (ENOSPC, or a quota).
    #[error("no space left for the keystore: {action} {path}: {source}; free space on that filesystem (or delete keys you no longer need with `tufkey key delete`), then try again")]
    NoSpace {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The keystore secret file cannot be used; the problem says how to fix it.
    #[error("keystore secret file {path}: {problem}")]
    SecretFile { path: PathBuf, problem: String },

    /// The OS keyring refused an operation.
    #[error("OS keyring: {action}: {source}")]
    Keyring {
        action: &'static str,
        #[source]
        source: keyring::Error,
    },

    /// The stored key-derivation parameters are unusable.
    #[error("keystore key derivation: {0}")]
    Kdf(#[source] FileProblem),

    /// Encrypting a key for its file failed.
    #[error("encrypting a key failed: {0}")]
    Seal(#[source] chacha20poly1305::Error),

    /// Serialising a key file failed.
    #[error("encoding a key file: {0}")]
    Encode(#[source] serde_json::Error),

    /// AWS-LC refused a decrypted key.
    #[error("loading a P-256 key into the signer: {0}")]
    SignerKey(#[source] aws_lc_rs::error::KeyRejected),

    /// AWS-LC failed to sign.
    #[error("ECDSA signing failed: {0}")]
    Sign(#[source] aws_lc_rs::error::Unspecified),

    /// AWS-LC returned something that is not a P-256 signature.
    #[error("the signer returned a malformed signature: {0}")]
    MalformedSignature(#[source] p256::ecdsa::Error),

    /// A key asked for that this keystore does not hold.
    #[error("key {0} is not in the software keystore")]
    NotHere(String),

    /// A key created non-exportable was asked to leave.
    #[error("key {0} was created non-exportable and never leaves the keystore")]
    NotExportable(String),

    /// A blocking task (file I/O, key derivation) failed.
    #[error(transparent)]
    Task(#[from] TaskFailed),

    /// The store directory (or one above it) could be changed by someone else.
    #[error("keystore directory: {0}")]
    UnsafeDir(#[from] super::private_dir::UnsafeDir),
}

/// Why a keystore file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    #[error("not a tufkey {what}: {source}")]
    NotJson {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported format {0:?}")]
    UnsupportedFormat(String),
    #[error("public key does not parse: {0}")]
    PublicKey(#[source] pkcs8::spki::Error),
    #[error("{0}")]
    Name(#[source] Error),
    #[error("key ID does not match the public key it holds")]
    KeyIdMismatch,
    #[error("sealed under a different keystore passphrase or salt")]
    OtherPassphrase,
    #[error("unsupported KDF {0:?}")]
    UnsupportedKdf(String),
    #[error("bad KDF parameters: {0}")]
    KdfParams(#[source] argon2::Error),
    #[error("KDF parameter {parameter} = {value} is above the most tufkeyd accepts ({max}; it writes 65536 KiB, 3 iterations, 1 lane): the file was damaged or altered; restore it (store.json, or the key files if store.json is gone) from a backup")]
    KdfTooCostly {
        parameter: &'static str,
        value: u32,
        max: u32,
    },
    #[error("unsupported cipher {0:?}")]
    UnsupportedCipher(String),
    #[error("{what} is not base64: {source}")]
    NotBase64 {
        what: &'static str,
        #[source]
        source: base64::DecodeError,
    },
    #[error("nonce is not 24 bytes")]
    NonceLength,
    #[error("decryption failed (wrong passphrase, or the file was altered)")]
    Decrypt(#[source] chacha20poly1305::Error),
    #[error("private key is not a valid P-256 scalar")]
    NotAScalar,
    #[error("private key does not match the public key")]
    KeyMismatch,
    #[error("its MAC does not verify under this store's key (altered, or copied from another store), so key files are loaded unchecked: compare keys/ with a backup, then remove manifest.json and restart tufkeyd to record the key files as they are now")]
    ManifestMac,
    #[error("not in the key manifest (added behind tufkeyd's back), so it is not loaded: bring keys in with `tufkey restore` or `tufkey import`; if this file is yours, remove manifest.json and restart tufkeyd to record the key files as they are now")]
    NotInManifest,
    #[error("differs from the file tufkeyd wrote (an old copy restored, or altered), so it is not loaded: restore the file tufkeyd wrote from a backup; if this one is right, remove manifest.json and restart tufkeyd to record the key files as they are now")]
    ChangedSinceManifest,
    #[error("listed in the key manifest but gone (removed behind tufkeyd's back): restore it from a backup; if it was meant to go, remove manifest.json and restart tufkeyd to record the key files as they are now")]
    MissingSinceManifest,
}

/// Shorthand inside the software keystore.
pub type Result<T, E = SoftwareError> = std::result::Result<T, E>;

impl SoftwareError {
    /// Builds a [`SoftwareError::Io`] for `action` on `path` ([`SoftwareError::NoSpace`]
    /// when the filesystem is full); for `map_err`.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| match source.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                SoftwareError::NoSpace {
                    action,
                    path,
                    source,
                }
            }
            _ => SoftwareError::Io {
                action,
                path,
                source,
            },
        }
    }
}

impl BackendFailure for SoftwareError {
    fn kind(&self) -> ErrorKind {
        match self {
            SoftwareError::Locked
            | SoftwareError::SecretFile { .. }
            | SoftwareError::UnsafeDir(_) => ErrorKind::FailedPrecondition,
            SoftwareError::WrongPassphrase(_) | SoftwareError::WrongStoreSecret { .. } => {
                ErrorKind::Unauthenticated
            }
            SoftwareError::Database(error) => error.kind(),
            SoftwareError::BackingOff { .. } | SoftwareError::NoSpace { .. } => {
                ErrorKind::Unavailable
            }
            SoftwareError::Unreadable { .. } | SoftwareError::Kdf(_) => ErrorKind::DataLoss,
            SoftwareError::NotHere(_) => ErrorKind::NotFound,
            SoftwareError::NotExportable(_) => ErrorKind::InvalidInput,
            SoftwareError::Io { .. }
            | SoftwareError::Keyring { .. }
            | SoftwareError::Seal(_)
            | SoftwareError::Encode(_)
            | SoftwareError::SignerKey(_)
            | SoftwareError::Sign(_)
            | SoftwareError::MalformedSignature(_)
            | SoftwareError::Task(_) => ErrorKind::Internal,
        }
    }
}

impl From<super::postgres::PostgresError> for SoftwareError {
    fn from(error: super::postgres::PostgresError) -> Self {
        SoftwareError::Database(Box::new(error))
    }
}

impl From<SoftwareError> for Error {
    fn from(error: SoftwareError) -> Self {
        Error::Backend(BackendError::new(error))
    }
}
