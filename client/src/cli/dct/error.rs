//! What can go wrong in `tufkey dct`: each error names what was wrong and the fix,
//! and keeps its cause as its source. The CLI prints the whole chain on one line.

use std::path::PathBuf;
use tufkey::dct::transport::TransportError;

#[derive(Debug, thiserror::Error)]
pub enum DctError {
    /// Talking to tufkeyd (including waiting for a card).
    #[error(transparent)]
    Client(Box<tufkey::Error>),

    /// Talking to the Notary server or the registry.
    #[error(transparent)]
    Transport(Box<TransportError>),

    #[error("{0}")]
    Usage(String),

    #[error("encoding metadata")]
    Encode(#[source] serde_json::Error),

    #[error("metadata to sign is not UTF-8")]
    NotUtf8,

    #[error("{role}.json from the server is not Notary metadata")]
    Malformed {
        role: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("{role}.json from the server says it is {found}, not {wanted}: the server is serving the wrong file")]
    WrongType {
        role: String,
        wanted: &'static str,
        found: String,
    },

    #[error("{role}.json has an unreadable expiry {expires:?}")]
    BadExpiry { role: String, expires: String },

    #[error("the system clock is out of range")]
    Clock,

    #[error("a {keytype} key: {why}")]
    BadKey { keytype: String, why: &'static str },

    #[error("{gun} has no collection on {server}: create it with `tufkey dct init {gun} --server {server}`")]
    NoCollection { gun: String, server: String },

    #[error("{gun} already has a collection on {server}: sign into it with `tufkey dct sign {gun}:TAG`, or see it with `tufkey dct inspect {gun}`")]
    AlreadyInitialised { gun: String, server: String },

    #[error("the root of {gun} on the server is not signed by the root keys pinned for it in {}: the server holds another collection under this name (a reset server, or an attack). Nothing was published. If the collection was re-created on purpose, check its new root key out of band and remove the pin", pin.display())]
    RootMismatch { gun: String, pin: PathBuf },

    #[error("the server offers root version {served} of {gun}, older than the pinned version {pinned} in {}: a rollback; nothing was published", pin.display())]
    RootRollback {
        gun: String,
        served: u64,
        pinned: u64,
        pin: PathBuf,
    },

    #[error("{role}.json of {gun} has {valid} valid signature(s) by its keys, it needs {threshold}: the server serves metadata signed by other keys; nothing was published")]
    Signatures {
        gun: String,
        role: String,
        valid: usize,
        threshold: u32,
    },

    #[error("{role}.json of {gun} expired at {expires}: the server must re-sign it (for timestamp and snapshot, the server does this itself when it works); nothing was published")]
    Expired {
        gun: String,
        role: String,
        expires: String,
    },

    #[error("{role}.json of {gun} does not match the hashes {by} lists for it: the server is inconsistent or tampered with; nothing was published")]
    HashMismatch {
        gun: String,
        role: String,
        by: &'static str,
    },

    #[error("{role}.json of {gun} is missing on the server although {by} lists it")]
    Missing {
        gun: String,
        role: String,
        by: &'static str,
    },

    #[error("root of {gun} lists no {role} role")]
    NoRole { gun: String, role: String },

    #[error("root certificate {keyid} of {gun} is for {common_name:?}, not for this collection")]
    CertificateName {
        gun: String,
        keyid: String,
        common_name: String,
    },

    #[error("no key of {role} of {gun} is in tufkeyd (the role's keys: {keyids}): import it with `tufkey import docker DIR`, or ask whoever holds it to sign")]
    NoSigningKey {
        gun: String,
        role: String,
        keyids: String,
    },

    #[error("building the root certificate for {gun}")]
    Certificate {
        gun: String,
        #[source]
        source: x509_cert::builder::Error,
    },

    #[error("tufkeyd returned a signature that is not hex DER: {0}")]
    BadSignature(String),

    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is damaged: remove it and run the command again to pin the server's root anew", path.display())]
    PinDamaged {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("the registry serves {reference} with digest {served}, not {given}: sign what the registry holds (leave out --digest), or push the image you meant; nothing was published")]
    DigestMismatch {
        reference: String,
        served: String,
        given: String,
    },
}

impl From<tufkey::Error> for DctError {
    fn from(error: tufkey::Error) -> Self {
        DctError::Client(Box::new(error))
    }
}

impl From<TransportError> for DctError {
    fn from(error: TransportError) -> Self {
        DctError::Transport(Box::new(error))
    }
}

impl DctError {
    /// The I/O error of `action` on `path`.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> DctError {
        let path = path.into();
        move |source| DctError::Io {
            action,
            path,
            source,
        }
    }
}

/// The CLI's error, with the whole chain of causes in its one line.
pub fn into_cli_error(error: DctError) -> tufkey::Error {
    match error {
        DctError::Client(inner) => *inner,
        other => tufkey::Error::Usage(super::super::output::one_line(&other)),
    }
}
