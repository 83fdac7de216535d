//! [`KeyManager`]: the registry of every key the daemon holds, across backends.
//!
//! Keys are found by TUF key ID or Notary key ID; each operation is routed to the
//! backend that holds the key.

use super::backend::{KeyBackend, NewKey};
use super::names::{Gun, Role};
use super::record::{BackendKind, KeyRecord};
use crate::error::{Error, Result};
use p256::ecdsa::Signature;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

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
    backends: HashMap<BackendKind, Arc<dyn KeyBackend>>,
    default_backend: BackendKind,
    index: RwLock<Index>,
}

impl KeyManager {
    /// Builds the registry and loads every backend's keys.
    pub async fn new(backends: Vec<Arc<dyn KeyBackend>>) -> Result<Self> {
        let default_backend = backends
            .first()
            .map(|backend| backend.kind())
            .ok_or_else(|| Error::Config("no key backend configured".into()))?;
        let manager = KeyManager {
            backends: backends.into_iter().map(|b| (b.kind(), b)).collect(),
            default_backend,
            index: RwLock::new(Index::default()),
        };
        manager.reload().await?;
        Ok(manager)
    }

    /// Re-reads every backend's keys.
    pub async fn reload(&self) -> Result<()> {
        let mut index = Index::default();
        for backend in self.backends.values() {
            for record in backend.load().await? {
                index.insert(record);
            }
        }
        *self.write_index() = index;
        Ok(())
    }

    /// Re-reads one backend's keys, keeping every other backend's (e.g. after a
    /// device was inserted).
    pub async fn reload_backend(&self, kind: BackendKind) -> Result<()> {
        let records = self.backend(kind)?.load().await?;
        let mut index = self.write_index();
        let stale: Vec<Arc<KeyRecord>> = index
            .by_keyid
            .values()
            .filter(|key| key.backend == kind)
            .cloned()
            .collect();
        for key in stale {
            index.by_keyid.remove(&key.keyid);
            index.notary_to_tuf.remove(&key.notary_keyid);
        }
        for record in records {
            index.insert(record);
        }
        Ok(())
    }

    /// Creates a key in `backend` (the default backend when `None`).
    pub async fn generate(
        &self,
        backend: Option<BackendKind>,
        new_key: &NewKey,
    ) -> Result<Arc<KeyRecord>> {
        let backend = self.backend(backend.unwrap_or(self.default_backend))?;
        let record = backend.generate(new_key).await?;
        tracing::info!(keyid = %record.keyid, gun = %record.gun, role = %record.role, backend = %record.backend, "generated key");
        Ok(self.write_index().insert(record))
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

    /// Finds a key by its TUF or Notary key ID.
    pub fn get(&self, id: &str) -> Result<Arc<KeyRecord>> {
        self.read_index()
            .find(id)
            .cloned()
            .ok_or_else(|| Error::KeyNotFound(id.to_owned()))
    }

    /// Whether the key's backend can sign with it right now.
    pub fn is_available(&self, key: &KeyRecord) -> bool {
        self.backends
            .get(&key.backend)
            .is_some_and(|backend| backend.is_available(key))
    }

    /// Deletes a key from its backend and the registry.
    pub async fn delete(&self, id: &str) -> Result<Arc<KeyRecord>> {
        let key = self.get(id)?;
        self.backend(key.backend)?.delete(&key).await?;
        let mut index = self.write_index();
        index.by_keyid.remove(&key.keyid);
        index.notary_to_tuf.remove(&key.notary_keyid);
        tracing::info!(keyid = %key.keyid, "deleted key");
        Ok(key)
    }

    /// Signs a SHA-256 digest with the key.
    pub async fn sign_digest(&self, key: &KeyRecord, digest: &[u8; 32]) -> Result<Signature> {
        self.backend(key.backend)?.sign_digest(key, digest).await
    }

    fn backend(&self, kind: BackendKind) -> Result<&Arc<dyn KeyBackend>> {
        self.backends.get(&kind).ok_or_else(|| {
            Error::invalid("backend", format!("{kind} is not enabled in this daemon"))
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
