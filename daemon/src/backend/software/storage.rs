//! Where the software keystore's sealed bytes live, and nothing else.
//!
//! The keystore ([`super::SoftwareBackend`]) derives the store key, seals and opens
//! keys, caches signers and locks; a [`KeyStorage`] only keeps the store file (KDF
//! parameters + check value) and one sealed [`StoredKey`] per key. Two homes: the
//! store directory ([`StoreDir`]: files, an HMAC manifest, atomic durable writes) and
//! PostgreSQL ([`super::postgres`]: rows, transactions, shared by replicas). Both keep
//! the exact bytes a key file holds, so the sealing and its associated data are the
//! same wherever a key is.

use super::directory::{Scan, StoreDir};
use super::error::{FileProblem, Result, SoftwareError};
use super::key_file::{StoreFile, StoredKey};
use super::manifest::ManifestKey;
use crate::blocking;
use crate::shutdown::Stopping;
use async_trait::async_trait;

/// A change another process made to the stored keys, reported by
/// [`KeyStorage::follow`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredChange {
    /// A key was stored (by its TUF key ID).
    Added(String),
    /// A key was removed (by its TUF key ID).
    Removed(String),
    /// Changes may have been missed (the feed was down): read everything again.
    Unknown,
}

/// Where a [`StoredChange`] goes.
pub type ChangeSink<'a> = &'a (dyn Fn(StoredChange) + Send + Sync);

/// The store file and the sealed keys, wherever they are kept.
#[async_trait]
pub trait KeyStorage: Send + Sync + 'static {
    /// Where the keys are, for logs and `tufkey status` (never a password).
    fn describe(&self) -> String;

    /// Whether the store file exists.
    async fn has_store_file(&self) -> Result<bool>;

    /// The store file; `None` for a new store.
    async fn read_store_file(&self) -> Result<Option<StoreFile>>;

    /// Stores a new store file. Never replaces one: when another process stored one
    /// first, this returns `Ok` and the caller reads back whichever won.
    async fn write_store_file(&self, bytes: Vec<u8>) -> Result<()>;

    /// Checks (or creates) the storage's own integrity record with a key derived
    /// from the store key; returns whether this call established it, after which
    /// the keys are scanned again. Storage without such a record returns `false`.
    async fn establish_manifest(&self, key: ManifestKey) -> Result<bool>;

    /// Every stored key; unusable entries reported by name and skipped.
    async fn scan(&self) -> Result<Scan>;

    /// One key by TUF key ID, or by Notary key ID when
    /// [`KeyStorage::finds_notary_keyids`]; `None` when there is none.
    async fn read_key(&self, id: &str) -> Result<Option<StoredKey>>;

    /// Whether [`KeyStorage::read_key`] also finds keys by Notary key ID (else the
    /// keystore scans everything for one).
    fn finds_notary_keyids(&self) -> bool {
        false
    }

    /// Stores a new key's sealed bytes (never replacing a key), all or nothing.
    async fn write_key(&self, stored: &StoredKey, bytes: Vec<u8>) -> Result<()>;

    /// Removes a key, all or nothing.
    async fn remove_key(&self, keyid: &str) -> Result<()>;

    /// The error for a stored key that cannot be used, naming where it is.
    fn unreadable(&self, keyid: &str, problem: FileProblem) -> SoftwareError;

    /// The error for a store secret that does not open this store.
    fn wrong_secret(&self) -> SoftwareError;

    /// Reports changes other processes make, until `stopping` fires. Storage only
    /// this daemon writes has none to report.
    async fn follow(&self, mut stopping: Stopping, _changes: ChangeSink<'_>) {
        stopping.stopped().await;
    }
}

/// The store directory: every call runs on a blocking thread ([`blocking::run`]).
#[async_trait]
impl KeyStorage for StoreDir {
    fn describe(&self) -> String {
        self.root().display().to_string()
    }

    async fn has_store_file(&self) -> Result<bool> {
        let dir = self.clone();
        blocking::run(move || Ok(dir.has_store_file())).await
    }

    async fn read_store_file(&self) -> Result<Option<StoreFile>> {
        let dir = self.clone();
        blocking::run(move || dir.read_store_file()).await
    }

    async fn write_store_file(&self, bytes: Vec<u8>) -> Result<()> {
        let dir = self.clone();
        blocking::run(move || StoreDir::write_store_file(&dir, &bytes)).await
    }

    async fn establish_manifest(&self, key: ManifestKey) -> Result<bool> {
        let dir = self.clone();
        blocking::run(move || StoreDir::establish_manifest(&dir, key)).await
    }

    async fn scan(&self) -> Result<Scan> {
        let dir = self.clone();
        blocking::run(move || StoreDir::scan(&dir)).await
    }

    async fn read_key(&self, id: &str) -> Result<Option<StoredKey>> {
        let dir = self.clone();
        let keyid = id.to_owned();
        blocking::run(move || StoreDir::read_key(&dir, &keyid)).await
    }

    async fn write_key(&self, stored: &StoredKey, bytes: Vec<u8>) -> Result<()> {
        let dir = self.clone();
        let keyid = stored.record.keyid.clone();
        blocking::run(move || StoreDir::write_key(&dir, &keyid, &bytes)).await
    }

    async fn remove_key(&self, keyid: &str) -> Result<()> {
        let dir = self.clone();
        let keyid = keyid.to_owned();
        blocking::run(move || StoreDir::remove_key(&dir, &keyid)).await
    }

    fn unreadable(&self, keyid: &str, problem: FileProblem) -> SoftwareError {
        SoftwareError::Unreadable {
            path: self.key_path(keyid),
            problem,
        }
    }

    fn wrong_secret(&self) -> SoftwareError {
        SoftwareError::WrongPassphrase(self.root().to_path_buf())
    }
}
