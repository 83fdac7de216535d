//! [`KeyBackend`]: the one seam every home for private keys plugs into.
//!
//! A backend must do five things (load, find, generate, sign, delete). Anything more
//! is an optional capability that the service layer discovers through the trait
//! ([`KeyBackend::unlock`], [`KeyBackend::import`], [`KeyBackend::export`],
//! [`KeyBackend::devices`]), never by naming a concrete type. Backends own their
//! errors (each converts into [`crate::error::Error`] through
//! [`crate::error::BackendFailure`], keeping the source) and their background work
//! ([`KeyBackend::maintain`], run and awaited by the server).

use super::devices::Devices;
use super::location::Placement;
use super::names::{Gun, Role};
use super::record::KeyRecord;
use crate::audit::AuditKey;
use crate::error::Result;
use crate::shutdown::Stopping;
use async_trait::async_trait;
use p256::ecdsa::Signature;
use secrecy::SecretString;
use tokio::sync::broadcast;

/// What the caller asks for when creating a key.
#[derive(Clone, Debug)]
pub struct NewKey {
    pub gun: Gun,
    pub role: Role,
    /// Whether the key may ever leave its backend as an encrypted bundle.
    pub exportable: bool,
    /// Which backend, and where in it.
    pub placement: Placement,
}

/// A private key brought in from elsewhere (a backup, another tool's key file).
pub struct ImportedKey {
    pub gun: Gun,
    pub role: Role,
    /// Whether the key may leave this daemon again.
    pub exportable: bool,
    /// The private scalar; zeroised when dropped.
    pub secret: p256::SecretKey,
    /// Where in the backend (a YubiKey's serial and slot), or its default.
    pub placement: Placement,
    /// When the key was first created (RFC 3339, kept across backups); `None`: now.
    pub created_at: Option<String>,
}

/// A place that holds private keys and signs with them.
#[async_trait]
pub trait KeyBackend: Send + Sync + 'static {
    /// The backend's name: what [`crate::keys::Location::backend`] says for its keys.
    fn name(&self) -> &'static str;

    /// Discovers the keys this backend holds (their public descriptions).
    async fn load(&self) -> Result<Vec<KeyRecord>>;

    /// Looks for one key (by TUF or Notary key ID) that the registry has not seen,
    /// e.g. one another process added after start-up.
    async fn find(&self, id: &str) -> Result<Option<KeyRecord>>;

    /// Creates a key where `new_key.placement` says (or this backend's default).
    async fn generate(&self, new_key: &NewKey) -> Result<KeyRecord>;

    /// Signs a SHA-256 digest with the key's private half.
    async fn sign_digest(&self, key: &KeyRecord, digest: &[u8; 32]) -> Result<Signature>;

    /// Destroys the key's private half.
    async fn delete(&self, key: &KeyRecord) -> Result<()>;

    /// Whether the key can sign right now.
    fn is_available(&self, _key: &KeyRecord) -> bool {
        true
    }

    /// A notice for every change in the set of keys that did not come through this
    /// daemon's calls (a device inserted or removed), so the registry reloads.
    fn changes(&self) -> Option<broadcast::Receiver<()>> {
        None
    }

    /// Background work (idle locks, expiries, device watching), run by the server
    /// until `stopping` fires; the server awaits it before exiting.
    async fn maintain(&self, _stopping: Stopping) {}

    /// The backend's keys sit behind a passphrase it can be given.
    fn unlock(&self) -> Option<&dyn Unlock> {
        None
    }

    /// The backend can take in existing private keys.
    fn import(&self) -> Option<&dyn Import> {
        None
    }

    /// The backend can hand out the private half of keys created exportable.
    fn export(&self) -> Option<&dyn Export> {
        None
    }

    /// The backend manages devices (list, watch, init, PIN unlock, attestation).
    fn devices(&self) -> Option<&dyn Devices> {
        None
    }
}

/// What `Status` reports about a passphrase-protected backend.
#[derive(Clone, Debug)]
pub struct LockState {
    pub locked: bool,
    /// Where the keys are (e.g. the keystore directory).
    pub store: String,
    /// Where the current passphrase came from ("keyring", "environment", "unlock").
    pub passphrase_source: Option<&'static str>,
    /// Files or entries the backend could not read, each "NAME: reason".
    pub problems: Vec<String>,
}

/// Capability: keys behind a passphrase.
#[async_trait]
pub trait Unlock: Send + Sync {
    /// Opens the keys with a passphrase someone typed.
    async fn unlock(&self, passphrase: SecretString) -> Result<()>;

    /// Forgets every decrypted key until the next [`Unlock::unlock`].
    fn lock(&self);

    /// Locked or not, and what went wrong reading the store.
    fn lock_state(&self) -> LockState;

    /// The audit log's HMAC key, derived from the keystore's secret at the first
    /// successful unlock and kept from then on (locking drops signing keys, not
    /// this); `None` until the keystore has been unlocked once.
    fn audit_key(&self) -> Option<AuditKey>;
}

/// Capability: taking in an existing private key.
#[async_trait]
pub trait Import: Send + Sync {
    async fn import(&self, key: ImportedKey) -> Result<KeyRecord>;
}

/// Capability: handing out a private key created exportable, to be wrapped into an
/// encrypted bundle by the caller at once (never returned over the wire as is).
#[async_trait]
pub trait Export: Send + Sync {
    async fn export(&self, key: &KeyRecord) -> Result<p256::SecretKey>;
}
