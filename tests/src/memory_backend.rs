//! An in-memory key backend, plugged into the real server through its public seam
//! (`tufkeyd::keys::Backends` + `tufkeyd::server::serve`), exactly as a new backend
//! would be. It lives in the tests, not the daemon: it proves the seam is enough
//! for a backend the daemon has never heard of, and lets in-process tests observe
//! what the server does with a backend (finding keys added behind its back,
//! running and stopping its background work).
//!
//! Its keys sit behind a passphrase (the `Unlock` capability) so the Session API can
//! be driven against it too.

use async_trait::async_trait;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use tokio::sync::broadcast;
use tufkeyd::audit::AuditKey;
use tufkeyd::error::{BackendError, BackendFailure, Error, ErrorKind};
use tufkeyd::keys::{
    now_rfc3339, Gun, KeyBackend, KeyRecord, Location, LockState, NewKey, Placement, Role, Unlock,
};
use tufkeyd::shutdown::Stopping;

/// The name this backend registers under.
pub const NAME: &str = "memory";

/// What the memory backend can fail with.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("the memory backend is locked: unlock it with its passphrase")]
    Locked,
    #[error("wrong passphrase for the memory backend")]
    WrongPassphrase,
    #[error("the memory backend only takes the default placement")]
    Placement,
    #[error("key {0} is not in the memory backend")]
    Missing(String),
    #[error("signing failed: {0}")]
    Sign(#[source] p256::ecdsa::Error),
}

impl BackendFailure for MemoryError {
    fn kind(&self) -> ErrorKind {
        match self {
            MemoryError::Locked => ErrorKind::FailedPrecondition,
            MemoryError::WrongPassphrase => ErrorKind::Unauthenticated,
            MemoryError::Placement => ErrorKind::InvalidInput,
            MemoryError::Missing(_) => ErrorKind::NotFound,
            MemoryError::Sign(_) => ErrorKind::Internal,
        }
    }
}

impl From<MemoryError> for Error {
    fn from(error: MemoryError) -> Self {
        Error::Backend(BackendError::new(error))
    }
}

/// Keys in a map, locked until the right passphrase arrives.
pub struct MemoryBackend {
    passphrase: SecretString,
    unlocked: AtomicBool,
    /// Derived from the passphrase at the first unlock and kept, as the software
    /// keystore does with its store key.
    audit_key: OnceLock<AuditKey>,
    keys: Mutex<BTreeMap<String, (KeyRecord, SigningKey)>>,
    changes: broadcast::Sender<()>,
    maintaining: AtomicBool,
    maintained: AtomicBool,
}

impl MemoryBackend {
    /// An empty, locked backend that opens with `passphrase`.
    pub fn new(passphrase: &str) -> Self {
        MemoryBackend {
            passphrase: SecretString::from(passphrase.to_owned()),
            unlocked: AtomicBool::new(false),
            audit_key: OnceLock::new(),
            keys: Mutex::default(),
            changes: broadcast::channel(4).0,
            maintaining: AtomicBool::new(false),
            maintained: AtomicBool::new(false),
        }
    }

    /// Adds a key without telling the daemon, as another process sharing the
    /// backend's storage would.
    pub fn add_behind_the_daemons_back(&self, gun: &str, role: &str) -> KeyRecord {
        let signing_key = SigningKey::random(&mut rand_core::OsRng);
        let record = record_for(
            &signing_key,
            gun.parse().expect("valid gun"),
            role.parse().expect("valid role"),
        );
        self.lock_keys()
            .insert(record.keyid.clone(), (record.clone(), signing_key));
        record
    }

    /// Whether the key is (still) in the backend.
    pub fn holds(&self, keyid: &str) -> bool {
        self.lock_keys().contains_key(keyid)
    }

    /// Whether the server started this backend's background work.
    pub fn maintenance_started(&self) -> bool {
        self.maintaining.load(Ordering::SeqCst)
    }

    /// Whether that background work has returned (the server stopped it).
    pub fn maintenance_finished(&self) -> bool {
        self.maintained.load(Ordering::SeqCst)
    }

    /// How many listeners the change notices have (the registry's follower).
    pub fn change_listeners(&self) -> usize {
        self.changes.receiver_count()
    }

    fn check_unlocked(&self) -> Result<(), MemoryError> {
        if self.unlocked.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(MemoryError::Locked)
        }
    }

    fn lock_keys(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (KeyRecord, SigningKey)>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn record_for(signing_key: &SigningKey, gun: Gun, role: Role) -> KeyRecord {
    KeyRecord::new(
        signing_key.verifying_key().into(),
        gun,
        role,
        Location::Other { backend: NAME },
        now_rfc3339(),
        false,
    )
}

#[async_trait]
impl KeyBackend for MemoryBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn load(&self) -> tufkeyd::error::Result<Vec<KeyRecord>> {
        Ok(self
            .lock_keys()
            .values()
            .map(|(record, _)| record.clone())
            .collect())
    }

    async fn find(&self, id: &str) -> tufkeyd::error::Result<Option<KeyRecord>> {
        Ok(self
            .lock_keys()
            .values()
            .find(|(record, _)| record.keyid == id || record.notary_keyid == id)
            .map(|(record, _)| record.clone()))
    }

    async fn generate(&self, new_key: &NewKey) -> tufkeyd::error::Result<KeyRecord> {
        if new_key.placement != Placement::Default {
            return Err(MemoryError::Placement.into());
        }
        self.check_unlocked()?;
        let signing_key = SigningKey::random(&mut rand_core::OsRng);
        let record = record_for(&signing_key, new_key.gun.clone(), new_key.role.clone());
        self.lock_keys()
            .insert(record.keyid.clone(), (record.clone(), signing_key));
        Ok(record)
    }

    async fn sign_digest(
        &self,
        key: &KeyRecord,
        digest: &[u8; 32],
    ) -> tufkeyd::error::Result<Signature> {
        self.check_unlocked()?;
        let keys = self.lock_keys();
        let (_, signing_key) = keys
            .get(&key.keyid)
            .ok_or_else(|| MemoryError::Missing(key.keyid.clone()))?;
        Ok(signing_key
            .sign_prehash(digest)
            .map_err(MemoryError::Sign)?)
    }

    async fn delete(&self, key: &KeyRecord) -> tufkeyd::error::Result<()> {
        self.lock_keys()
            .remove(&key.keyid)
            .map(|_| ())
            .ok_or_else(|| MemoryError::Missing(key.keyid.clone()).into())
    }

    fn changes(&self) -> Option<broadcast::Receiver<()>> {
        Some(self.changes.subscribe())
    }

    async fn maintain(&self, mut stopping: Stopping) {
        self.maintaining.store(true, Ordering::SeqCst);
        stopping.stopped().await;
        self.maintained.store(true, Ordering::SeqCst);
    }

    fn unlock(&self) -> Option<&dyn Unlock> {
        Some(self)
    }
}

#[async_trait]
impl Unlock for MemoryBackend {
    async fn unlock(&self, passphrase: SecretString) -> tufkeyd::error::Result<()> {
        if passphrase.expose_secret() != self.passphrase.expose_secret() {
            return Err(MemoryError::WrongPassphrase.into());
        }
        self.unlocked.store(true, Ordering::SeqCst);
        self.audit_key
            .get_or_init(|| AuditKey::derive(passphrase.expose_secret().as_bytes()));
        Ok(())
    }

    fn lock(&self) {
        self.unlocked.store(false, Ordering::SeqCst);
    }

    fn lock_state(&self) -> LockState {
        LockState {
            locked: !self.unlocked.load(Ordering::SeqCst),
            store: NAME.into(),
            passphrase_source: None,
            problems: Vec::new(),
        }
    }

    fn audit_key(&self) -> Option<AuditKey> {
        self.audit_key.get().cloned()
    }
}
