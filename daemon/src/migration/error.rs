//! [`MigrationError`]: what can go wrong reading, writing, wrapping and unwrapping
//! keys on their way between hosts and tools. Each variant keeps its source and says
//! what to do; none ever carries key material or a passphrase.

use crate::error::ErrorKind;

/// Everything that can go wrong in `crate::migration`.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    // -- migrator.rs --
    /// A key that may never leave its backend was named for a backup, transfer,
    /// export or move.
    #[error("key {keyid} was created non-exportable (or lives on a YubiKey) and never leaves its backend: it cannot be backed up, transferred, exported or moved")]
    NotExportable { keyid: String },

    /// The selection names no exportable key.
    #[error("no exportable key matches: name keys with --key, or a collection with --gun (keys created with --no-export and YubiKey keys never leave)")]
    NothingToExport,

    /// A Docker/Notary key with no collection in its headers or path.
    #[error("{file} is a {role} key with no `gun` header and no collection in its path: pass --gun for keys without one")]
    NoGun { file: String, role: String },

    /// An encrypted key whose passphrase was not given.
    #[error("{file} needs the `{name}` passphrase: set NOTARY_{}_PASSPHRASE (or the Docker variable for it), or answer the prompt", name.to_uppercase())]
    NoPassphrase { file: String, name: String },

    /// A key file whose key is not the one its name says.
    #[error("{file} is named for key {claimed} but holds key {actual}: the file was renamed or replaced; remove it from what you import")]
    KeyIdMismatch {
        file: String,
        claimed: String,
        actual: String,
    },

    /// Only software keys can be moved onto a YubiKey.
    #[error("key {keyid} is not in the software keystore: only software keys can be moved onto a YubiKey")]
    NotASoftwareKey { keyid: String },

    /// A move not covered by a backup.
    #[error("key {keyid} is not covered by a backup: run `tufkey backup --key {keyid} --out FILE` first (keep the file safe), or pass --no-backup-needed")]
    NoBackup { keyid: String },

    /// The card's copy of a moved key did not produce a valid signature.
    #[error("the copy of key {keyid} at {location} did not sign correctly; the software copy is kept: remove the card's copy with `tufkey key delete` and try again")]
    CardSignatureMismatch { keyid: String, location: String },

    // -- notary_pem.rs --
    /// A Docker/Notary key input larger than any key file or export bundle.
    #[error(
        "{file} is {size} bytes, more than the {limit} bytes a Docker/Notary key file or \
         `notary key export` bundle may be: check it is the right file, or export fewer keys \
         at a time (`notary key export --gun`)"
    )]
    NotaryPemTooLarge {
        file: String,
        size: usize,
        limit: usize,
    },

    /// The input has no PEM block at all.
    #[error(
        "{file} is not a PEM key file (no `-----BEGIN ... PRIVATE KEY-----` line): give a \
         Docker/Notary key file (`~/.docker/trust/private/<keyid>.key`) or the output of \
         `notary key export`"
    )]
    NotaryNotPem { file: String },

    /// A PEM block that is not a private key (a certificate, a public key ...).
    #[error(
        "{file} holds a `{label}` PEM block, which is not a private key: give only key \
         files (remove that block)"
    )]
    NotaryNotAPrivateKey { file: String, label: String },

    /// The PEM framing or headers are broken.
    #[error(
        "{file}: malformed PEM{}: {problem}; the file is damaged or not a key file",
        .line.map(|n| format!(" at line {n}")).unwrap_or_default()
    )]
    NotaryMalformedPem {
        file: String,
        line: Option<usize>,
        problem: &'static str,
    },

    /// The PEM body is not base64.
    #[error("{file}: the PEM body is not valid base64 ({source}): the file is damaged")]
    NotaryPemBase64 {
        file: String,
        #[source]
        source: base64::DecodeError,
    },

    /// An encrypted key file and no passphrase.
    #[error(
        "{file} is encrypted and no passphrase was given for it: set the passphrase of its \
         role (NOTARY_<ROLE>_PASSPHRASE or DOCKER_CONTENT_TRUST_<ROOT|REPOSITORY>_PASSPHRASE) \
         or enter it when asked"
    )]
    NotaryPassphraseRequired { file: String },

    /// The passphrase does not decrypt the key file.
    #[error(
        "wrong passphrase for {file}: it does not decrypt the key (Notary keeps one \
         passphrase per role: give the one for this key's role)"
    )]
    NotaryWrongPassphrase { file: String },

    /// A key that is not ECDSA P-256.
    #[error(
        "{file} holds a {key_type} key: tufkey keys are ECDSA P-256 (what Notary and Docker \
         generate), so this key cannot be imported"
    )]
    NotaryUnsupportedKeyType { file: String, key_type: String },

    /// A key file encrypted with a scheme we do not read.
    #[error(
        "{file} is encrypted with {scheme}, which tufkey does not read (Notary writes PBES2 \
         with PBKDF2 and AES-256-CBC): re-encrypt it with `openssl pkcs8 -topk8 -v2 \
         aes-256-cbc -v2prf hmacWithSHA1`"
    )]
    NotaryUnsupportedEncryption { file: String, scheme: String },

    /// A key file asking for absurd key-derivation work (a DoS guard).
    #[error(
        "{file} asks for {iterations} PBKDF2 iterations, more than the {limit} tufkey \
         accepts: it was not written by Notary; re-encrypt it with fewer iterations \
         (`openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA1 -iter 600000`)"
    )]
    NotaryKdfTooExpensive {
        file: String,
        iterations: u32,
        limit: u32,
    },

    /// The DER inside a key file is broken.
    #[error("{file}: {what} in it is malformed ({source}): the file is damaged or not a key")]
    NotaryMalformedKey {
        file: String,
        what: &'static str,
        #[source]
        source: pkcs8::der::Error,
    },

    /// The encryption parameters of a key file are unusable.
    #[error("{file}: its encryption parameters are invalid ({source}): the file is damaged")]
    NotaryEncryptionParameters {
        file: String,
        #[source]
        source: pkcs8::Error,
    },

    /// A `role`/`gun`/`path` header value that a PEM file cannot carry unchanged.
    #[error(
        "the `{header}` header of a Notary key file must be one line of text without \
         surrounding spaces"
    )]
    NotaryBadHeader { header: &'static str },

    /// An empty passphrase for a Notary key file.
    #[error("a Notary key file needs a passphrase: choose a non-empty one")]
    NotaryEmptyPassphrase,

    /// Encoding or encrypting a key for Notary failed (a bug).
    #[error("cannot encrypt the key as a Notary key file: {source}")]
    NotaryEncryptFailed {
        #[source]
        source: pkcs8::Error,
    },

    // -- bundle.rs --
    /// A key created non-exportable was selected for a bundle.
    #[error(
        "key {keyid} was created non-exportable (`--no-export`, or on a YubiKey), so it can \
         never leave this host: leave it out of the backup or transfer"
    )]
    BundleKeyNotExportable { keyid: String },

    /// A bundle was asked for with no keys in it.
    #[error("a bundle needs at least one key: select some exportable keys")]
    BundleEmpty,

    /// More keys than one bundle may hold.
    #[error(
        "{count} keys are more than one bundle may hold ({max}): split them over several bundles"
    )]
    BundleTooManyKeys { count: usize, max: usize },

    /// A file larger than any bundle tufkey writes.
    #[error(
        "the bundle is {size} bytes, more than the {max} bytes a tufkey bundle may be: \
         this is not a tufkey bundle, or it holds too many keys (split them)"
    )]
    BundleTooLarge { size: usize, max: usize },

    /// An empty passphrase for a passphrase-wrapped bundle.
    #[error("a bundle passphrase must not be empty: choose one (or wrap to an age recipient)")]
    BundlePassphraseEmpty,

    /// The daemon's own private key does not match the public key it recorded.
    #[error(
        "the stored private key of {keyid} does not match its recorded public key: the \
         keystore is damaged; restore this key from a backup"
    )]
    BundleKeyMismatch { keyid: String },

    /// A key handed to `seal` is inconsistent with itself (a bug in the caller).
    #[error("cannot put key {keyid} into a bundle: {problem}")]
    BundleKeyInconsistent { keyid: String, problem: String },

    /// Encrypting or encoding a bundle failed (a bug or an I/O problem).
    #[error("cannot write the bundle ({step}): {source}")]
    BundleSealFailed {
        step: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The input is not an age file, or its header is damaged.
    #[error(
        "this is not a tufkey bundle (not an age file, or its header is damaged): {source}; \
         use the file `tufkey backup` or `tufkey transfer send` wrote"
    )]
    BundleNotAge {
        #[source]
        source: age::DecryptError,
    },

    /// The bundle ends early: a copy was cut short.
    #[error(
        "the bundle is truncated (it ends before its encrypted content does): copy it again \
         from the original"
    )]
    BundleTruncated,

    /// The encrypted content does not authenticate: the file was changed after sealing.
    #[error(
        "the bundle was modified after it was made (its encrypted content does not \
         authenticate): {source}; use an unmodified copy"
    )]
    BundleDamaged {
        #[source]
        source: std::io::Error,
    },

    /// The age header's MAC does not verify: the header was edited.
    #[error(
        "the bundle's header was modified after it was made (its MAC does not verify): use an \
         unmodified copy"
    )]
    BundleHeaderTampered,

    /// The passphrase does not open this bundle.
    #[error("wrong passphrase for this bundle (the passphrase given when it was made is needed)")]
    BundleWrongPassphrase,

    /// The identity does not open this bundle.
    #[error(
        "this bundle was wrapped to another age recipient, not to this receiving identity: \
         have the sender wrap the keys to this host's recipient"
    )]
    BundleWrongRecipient,

    /// A passphrase was given for a bundle wrapped to an age recipient.
    #[error(
        "this bundle is wrapped to an age recipient (a transfer), not to a passphrase: \
         open it with `tufkey transfer accept` on the receiving host"
    )]
    BundleNeedsIdentity,

    /// An identity was given for a passphrase-wrapped bundle.
    #[error(
        "this bundle is protected by a passphrase (a backup), not wrapped to a recipient: \
         open it with `tufkey restore`"
    )]
    BundleNeedsPassphrase,

    /// The passphrase wrap asks for more scrypt work than we allow (a DoS guard).
    #[error(
        "the bundle's passphrase wrap asks for scrypt work factor 2^{log_n}, more than the \
         2^{max} tufkey accepts: it was not made by tufkey; re-encrypt it with a lower work \
         factor"
    )]
    BundleWorkFactorTooHigh { log_n: u8, max: u8 },

    /// The decrypted manifest is a format version this tufkey does not read.
    #[error(
        "the bundle is format version {version}; this tufkey reads version {supported}: \
         upgrade tufkey on this host"
    )]
    BundleVersionUnsupported { version: u64, supported: u64 },

    /// The decrypted manifest is malformed or inconsistent.
    #[error(
        "the bundle's contents are invalid ({problem}): it was not made by tufkey, or was \
         altered and re-encrypted; use the bundle tufkey wrote"
    )]
    BundleManifestInvalid {
        problem: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    // -- transfer.rs / backups.rs --
    /// Too many receiving identities wait at once (each is a live private key).
    #[error(
        "{max} receiving identities are already waiting for transfers: accept the bundles \
         made for them, or wait for them to expire (at most {ttl_secs} s), then run \
         `tufkey transfer receive` again"
    )]
    ReceiversFull { max: usize, ttl_secs: u64 },

    /// No live receiving identity opens this bundle.
    #[error(
        "this transfer bundle was made for another recipient, or its receiving identity \
         expired or was already used: run `tufkey transfer receive` again and have the \
         sender wrap the keys to the new recipient"
    )]
    NoReceiverForBundle,

    /// The expiry time of a receiving identity is out of range or cannot be written.
    #[error(
        "cannot compute when a receiving identity expires: the system clock or the \
         transfer time limit is out of range"
    )]
    ReceiverExpiry {
        #[source]
        source: Option<time::error::Format>,
    },

    /// The backup log file could not be read or written.
    #[error("{action} the backup log {}: {source}", path.display())]
    BackupLogIo {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The backup log file exists but is not a backup log this daemon reads.
    #[error(
        "the backup log {} is damaged ({problem}): move it aside or delete it and restart \
         the daemon; it only records when keys were last backed up, so keys show no backup \
         until the next `tufkey backup`",
        path.display()
    )]
    BackupLogDamaged {
        path: std::path::PathBuf,
        problem: String,
        #[source]
        source: Option<serde_json::Error>,
    },

    /// The backup log could not be encoded (a bug).
    #[error("cannot encode the backup log: {0}")]
    BackupLogEncode(#[source] serde_json::Error),

    /// A backup time that is not an RFC 3339 timestamp.
    #[error("backup time {at:?} is not an RFC 3339 timestamp: {source}")]
    BackupTimeInvalid {
        at: String,
        #[source]
        source: time::error::Parse,
    },
}

impl MigrationError {
    /// What kind of failure this is (the gRPC status it becomes).
    pub fn kind(&self) -> ErrorKind {
        match self {
            // -- migrator.rs --
            MigrationError::NotExportable { .. }
            | MigrationError::NotASoftwareKey { .. }
            | MigrationError::NoBackup { .. } => ErrorKind::FailedPrecondition,
            MigrationError::NothingToExport
            | MigrationError::NoGun { .. }
            | MigrationError::NoPassphrase { .. }
            | MigrationError::KeyIdMismatch { .. } => ErrorKind::InvalidInput,
            MigrationError::CardSignatureMismatch { .. } => ErrorKind::Internal,
            // -- notary_pem.rs --
            MigrationError::NotaryPemTooLarge { .. }
            | MigrationError::NotaryNotPem { .. }
            | MigrationError::NotaryNotAPrivateKey { .. }
            | MigrationError::NotaryMalformedPem { .. }
            | MigrationError::NotaryPemBase64 { .. }
            | MigrationError::NotaryPassphraseRequired { .. }
            | MigrationError::NotaryKdfTooExpensive { .. }
            | MigrationError::NotaryMalformedKey { .. }
            | MigrationError::NotaryEncryptionParameters { .. }
            | MigrationError::NotaryBadHeader { .. }
            | MigrationError::NotaryEmptyPassphrase => ErrorKind::InvalidInput,
            MigrationError::NotaryWrongPassphrase { .. } => ErrorKind::Unauthenticated,
            MigrationError::NotaryUnsupportedKeyType { .. }
            | MigrationError::NotaryUnsupportedEncryption { .. } => ErrorKind::Unsupported,
            MigrationError::NotaryEncryptFailed { .. } => ErrorKind::Internal,
            // -- bundle.rs --
            MigrationError::BundleKeyNotExportable { .. } => ErrorKind::PermissionDenied,
            MigrationError::BundleEmpty
            | MigrationError::BundleTooManyKeys { .. }
            | MigrationError::BundleTooLarge { .. }
            | MigrationError::BundlePassphraseEmpty
            | MigrationError::BundleNotAge { .. }
            | MigrationError::BundleTruncated
            | MigrationError::BundleDamaged { .. }
            | MigrationError::BundleHeaderTampered
            | MigrationError::BundleWrongRecipient
            | MigrationError::BundleNeedsIdentity
            | MigrationError::BundleNeedsPassphrase
            | MigrationError::BundleWorkFactorTooHigh { .. }
            | MigrationError::BundleManifestInvalid { .. } => ErrorKind::InvalidInput,
            MigrationError::BundleWrongPassphrase => ErrorKind::Unauthenticated,
            MigrationError::BundleVersionUnsupported { .. } => ErrorKind::Unsupported,
            MigrationError::BundleKeyMismatch { .. } => ErrorKind::DataLoss,
            MigrationError::BundleKeyInconsistent { .. }
            | MigrationError::BundleSealFailed { .. } => ErrorKind::Internal,
            // -- transfer.rs / backups.rs --
            MigrationError::ReceiversFull { .. } | MigrationError::NoReceiverForBundle => {
                ErrorKind::FailedPrecondition
            }
            MigrationError::ReceiverExpiry { .. }
            | MigrationError::BackupLogIo { .. }
            | MigrationError::BackupLogEncode(_) => ErrorKind::Internal,
            MigrationError::BackupLogDamaged { .. } => ErrorKind::DataLoss,
            MigrationError::BackupTimeInvalid { .. } => ErrorKind::InvalidInput,
        }
    }
}
