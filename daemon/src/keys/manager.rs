//! [`KeyManager`]: the registry of every key the daemon holds, across backends.
//!
//! Keys are found by TUF key ID or Notary key ID; each operation is routed to the
//! backend named by the key's [`super::Location`]. The index is a cache: a key it
//! does not know is looked for in every backend ([`KeyBackend::find`]) before the
//! answer is "not found", so keys another process added become visible at once.

use super::backend::{Export, ImportedKey, KeyBackend, NewKey, Unlock};
use super::devices::Devices;
use super::names::{Gun, Role};
use super::record::KeyRecord;
use crate::error::{Error, Result};
use crate::shutdown::Stopping;
use p256::ecdsa::Signature;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::broadcast;

/// The backends a daemon runs, the first being the default for new keys, and the
/// ones that are off with the reason (so requests for them can say why).
#[derive(Default)]
pub struct Backends {
    running: Vec<Arc<dyn KeyBackend>>,
    off: Vec<(&'static str, String)>,
}

impl Backends {
    /// No backends yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a running backend; the first one added is the default for new keys.
    pub fn register(&mut self, backend: Arc<dyn KeyBackend>) -> Result<()> {
        if self
            .running
            .iter()
            .any(|known| known.name() == backend.name())
        {
            return Err(Error::Config(format!(
                "two key backends are both named {:?}",
                backend.name()
            )));
        }
        self.running.push(backend);
        Ok(())
    }

    /// Records that the backend `name` is off; `why` is the sentence callers who ask
    /// for it are shown (what is off, the reason, the fix).
    pub fn switched_off(&mut self, name: &'static str, why: String) {
        self.off.push((name, why));
    }
}

#[derive(Default)]
struct Index {
    by_keyid: BTreeMap<String, Arc<KeyRecord>>,
    notary_to_tuf: HashMap<String, String>,
}

impl Index {
    fn insert(&mut self, record: KeyRecord) -> Arc<KeyRecord> {
        let record = Arc::new(record);
        self.notary_to_tuf
            .insert(record.notary_keyid.clone(), record.keyid.clone());
        self.by_keyid.insert(record.keyid.clone(), record.clone());
        record
    }

    fn remove(&mut self, key: &KeyRecord) {
        self.by_keyid.remove(&key.keyid);
        self.notary_to_tuf.remove(&key.notary_keyid);
    }

    fn find(&self, id: &str) -> Option<&Arc<KeyRecord>> {
        self.by_keyid.get(id).or_else(|| {
            self.notary_to_tuf
                .get(id)
                .and_then(|keyid| self.by_keyid.get(keyid))
        })
    }
}

/// Every key the daemon knows, and the backends that hold them.
pub struct KeyManager {
    backends: Vec<Arc<dyn KeyBackend>>,
    off: Vec<(&'static str, String)>,
    index: RwLock<Index>,
}

impl KeyManager {
    /// Builds the registry and loads every backend's keys.
    pub async fn new(backends: Backends) -> Result<Self> {
        if backends.running.is_empty() {
            return Err(Error::Config("no key backend is running".into()));
        }
        let manager = KeyManager {
            backends: backends.running,
            off: backends.off,
            index: RwLock::new(Index::default()),
        };
        for backend in &manager.backends {
            manager.reload_backend(backend.as_ref()).await?;
        }
        Ok(manager)
    }

    /// The running backends, the default first.
    pub fn backends(&self) -> &[Arc<dyn KeyBackend>] {
        &self.backends
    }

    /// Keeps the index in step with one backend's changes until `stopping` fires.
    pub async fn follow(
        self: Arc<Self>,
        backend: Arc<dyn KeyBackend>,
        mut changes: broadcast::Receiver<()>,
        mut stopping: Stopping,
    ) {
        loop {
            tokio::select! {
                () = stopping.stopped() => return,
                change = changes.recv() => match change {
                    Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        if let Err(error) = self.reload_backend(backend.as_ref()).await {
                            tracing::warn!(backend = backend.name(), %error, "refreshing keys");
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    /// Re-reads one backend's keys, keeping every other backend's.
    async fn reload_backend(&self, backend: &dyn KeyBackend) -> Result<()> {
        let records = backend.load().await?;
        let mut index = self.write_index();
        let stale: Vec<Arc<KeyRecord>> = index
            .by_keyid
            .values()
            .filter(|key| key.location.backend() == backend.name())
            .cloned()
            .collect();
        for key in stale {
            index.remove(&key);
        }
        for record in records {
            index.insert(record);
        }
        Ok(())
    }

    /// Creates a key in the backend its placement names (else the default backend).
    pub async fn generate(&self, new_key: &NewKey) -> Result<Arc<KeyRecord>> {
        let backend = match new_key.placement.backend() {
            Some(name) => self.backend(name)?,
            None => self.default_backend(),
        };
        let record = backend.generate(new_key).await?;
        tracing::info!(keyid = %record.keyid, gun = %record.gun, role = %record.role, backend = backend.name(), "generated key");
        Ok(self.write_index().insert(record))
    }

    /// Brings an existing private key into `backend` (else the default backend).
    pub async fn import(&self, backend: Option<&str>, key: ImportedKey) -> Result<Arc<KeyRecord>> {
        let backend = match backend {
            Some(name) => self.backend(name)?,
            None => self.default_backend(),
        };
        let importer = backend.import().ok_or_else(|| Error::NotCapable {
            what: "importing keys",
            fix: format!(
                "the {} backend cannot take in private keys; import into one that can",
                backend.name()
            ),
        })?;
        let record = importer.import(key).await?;
        tracing::info!(keyid = %record.keyid, gun = %record.gun, role = %record.role, backend = backend.name(), "imported key");
        Ok(self.write_index().insert(record))
    }

    /// The private half of a key created exportable, for wrapping into a bundle.
    pub async fn export(&self, id: &str) -> Result<(Arc<KeyRecord>, p256::SecretKey)> {
        let key = self.get(id).await?;
        if !key.exportable {
            return Err(Error::invalid(
                "keyid",
                format!(
                    "key {} was created non-exportable and never leaves its backend",
                    key.keyid
                ),
            ));
        }
        let backend = self.backend(key.location.backend())?;
        let exporter: &dyn Export = backend.export().ok_or_else(|| Error::NotCapable {
            what: "exporting keys",
            fix: format!("keys in the {} backend cannot leave it", backend.name()),
        })?;
        let secret = exporter.export(&key).await?;
        tracing::info!(keyid = %key.keyid, "exported key");
        Ok((key, secret))
    }

    /// Keys matching the optional gun and role filters, ordered by key ID.
    pub fn list(&self, gun: Option<&Gun>, role: Option<&Role>) -> Vec<Arc<KeyRecord>> {
        self.read_index()
            .by_keyid
            .values()
            .filter(|key| gun.is_none_or(|gun| &key.gun == gun))
            .filter(|key| role.is_none_or(|role| &key.role == role))
            .cloned()
            .collect()
    }

    /// Finds a key by its TUF or Notary key ID, asking the backends for keys the
    /// index has not seen.
    pub async fn get(&self, id: &str) -> Result<Arc<KeyRecord>> {
        if let Some(key) = self.read_index().find(id) {
            return Ok(key.clone());
        }
        // Key IDs are hex SHA-256; anything else cannot be in any backend.
        if id.len() == 64
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            for backend in &self.backends {
                if let Some(record) = backend.find(id).await? {
                    tracing::info!(keyid = %record.keyid, backend = backend.name(), "found a key added outside this daemon");
                    return Ok(self.write_index().insert(record));
                }
            }
        }
        Err(Error::KeyNotFound(id.to_owned()))
    }

    /// Whether the key's backend can sign with it right now.
    pub fn is_available(&self, key: &KeyRecord) -> bool {
        self.backend(key.location.backend())
            .is_ok_and(|backend| backend.is_available(key))
    }

    /// Deletes a key from its backend and the registry.
    pub async fn delete(&self, id: &str) -> Result<Arc<KeyRecord>> {
        let key = self.get(id).await?;
        self.backend(key.location.backend())?.delete(&key).await?;
        self.write_index().remove(&key);
        tracing::info!(keyid = %key.keyid, "deleted key");
        Ok(key)
    }

    /// Destroys one copy of a key: the private half `key.location` names, and its
    /// registry entry only if that is the copy the registry points at (a key moved
    /// onto a YubiKey keeps its key ID, and the registry then names the card).
    pub async fn delete_copy(&self, key: &KeyRecord) -> Result<()> {
        self.backend(key.location.backend())?.delete(key).await?;
        let mut index = self.write_index();
        if index
            .by_keyid
            .get(&key.keyid)
            .is_some_and(|current| current.location == key.location)
        {
            index.remove(key);
        }
        tracing::info!(keyid = %key.keyid, backend = key.location.backend(), "deleted a copy of a key");
        Ok(())
    }

    /// Signs a SHA-256 digest with the key.
    pub async fn sign_digest(&self, key: &KeyRecord, digest: &[u8; 32]) -> Result<Signature> {
        self.backend(key.location.backend())?
            .sign_digest(key, digest)
            .await
    }

    /// The backend that takes the store passphrase (the first that can).
    pub fn unlocker(&self) -> Result<&dyn Unlock> {
        self.backends
            .iter()
            .find_map(|backend| backend.unlock())
            .ok_or_else(|| Error::NotCapable {
                what: "a passphrase-protected keystore",
                fix: "none of this daemon's backends takes a passphrase".into(),
            })
    }

    /// The backend that manages devices.
    pub fn devices(&self) -> Result<&dyn Devices> {
        if let Some(devices) = self.backends.iter().find_map(|backend| backend.devices()) {
            return Ok(devices);
        }
        let why: Vec<String> = self.off.iter().map(|(_, why)| why.clone()).collect();
        Err(Error::NotCapable {
            what: "device management",
            fix: if why.is_empty() {
                "no backend of this daemon manages devices".into()
            } else {
                why.join("; ")
            },
        })
    }

    fn default_backend(&self) -> &Arc<dyn KeyBackend> {
        &self.backends[0]
    }

    fn backend(&self, name: &str) -> Result<&Arc<dyn KeyBackend>> {
        self.backends
            .iter()
            .find(|backend| backend.name() == name)
            .ok_or_else(|| Error::NoBackend {
                name: name.to_owned(),
                reason: self
                    .off
                    .iter()
                    .find(|(off, _)| *off == name)
                    .map(|(_, reason)| reason.clone()),
            })
    }

    fn read_index(&self) -> RwLockReadGuard<'_, Index> {
        self.index
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_index(&self) -> RwLockWriteGuard<'_, Index> {
        self.index
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
