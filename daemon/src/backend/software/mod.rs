//! The encrypted software keystore: the embedded default home for keys.
//!
//! Layout: `STORE/store.json` (KDF parameters + passphrase check) and
//! `STORE/keys/<keyid>.key` (one sealed key each), directories 0700, files 0600.
//! Keys are decrypted lazily on first use and kept only in zeroising memory; a
//! `Lock` or the idle timeout drops them. A damaged or foreign file is reported by
//! name and skipped; the other keys still load.

mod envelope;
mod files;
mod key_file;
mod passphrase;
mod signer;

pub use passphrase::{PassphraseSource, ENV_VAR as PASSPHRASE_ENV_VAR};

use crate::error::{Error, Result};
use crate::keys::{now_rfc3339, BackendKind, KeyBackend, KeyRecord, NewKey};
use async_trait::async_trait;
use envelope::{KdfParams, StoreKey};
use key_file::{StoreFile, StoredKey};
use p256::ecdsa::{Signature, SigningKey};
use passphrase::AutomaticSources;
use rand_core::OsRng;
use secrecy::SecretString;
use signer::DigestSigner;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

const STORE_FILE: &str = "store.json";
const KEYS_DIR: &str = "keys";
const KEY_SUFFIX: &str = ".key";

/// How the software keystore is set up.
#[derive(Clone, Debug)]
pub struct SoftwareConfig {
    /// The store directory.
    pub dir: PathBuf,
    /// Whether to read (and for a new store, create) the passphrase in the OS keyring.
    pub use_keyring: bool,
    /// Decrypted keys are dropped after this long without a signature.
    pub idle_timeout: Duration,
}

/// What `Status` reports about the keystore.
#[derive(Clone, Debug)]
pub struct KeystoreStatus {
    pub locked: bool,
    pub dir: PathBuf,
    pub passphrase_source: Option<PassphraseSource>,
    pub unreadable_files: Vec<String>,
}

#[derive(Default)]
struct UnlockState {
    store_key: Option<Arc<StoreKey>>,
    source: Option<PassphraseSource>,
    signers: HashMap<String, Arc<DigestSigner>>,
}

/// The encrypted software keystore.
pub struct SoftwareBackend {
    dir: PathBuf,
    keys_dir: PathBuf,
    sources: AutomaticSources,
    /// False after an explicit Lock: automatic sources are not used again until Unlock.
    auto_unlock: Mutex<bool>,
    state: RwLock<UnlockState>,
    stored: RwLock<HashMap<String, Arc<StoredKey>>>,
    unreadable: Mutex<Vec<String>>,
    idle_timeout: Duration,
    epoch: Instant,
    last_used_ms: AtomicU64,
}

impl SoftwareBackend {
    /// Opens (creating if needed) the store directory. Stays locked until
    /// [`SoftwareBackend::unlock_automatically`] or [`SoftwareBackend::unlock`].
    pub fn open(config: &SoftwareConfig) -> Result<Arc<Self>> {
        let keys_dir = config.dir.join(KEYS_DIR);
        files::ensure_private_dir(&config.dir)?;
        files::ensure_private_dir(&keys_dir)?;
        Ok(Arc::new(SoftwareBackend {
            dir: config.dir.clone(),
            keys_dir,
            sources: AutomaticSources::new(&config.dir, config.use_keyring),
            auto_unlock: Mutex::new(true),
            state: RwLock::default(),
            stored: RwLock::default(),
            unreadable: Mutex::default(),
            idle_timeout: config.idle_timeout,
            epoch: Instant::now(),
            last_used_ms: AtomicU64::new(0),
        }))
    }

    /// Unlocks from the keyring or `TUFKEY_PASSPHRASE`; a brand-new store with
    /// neither gets a random secret saved in the keyring. Returns whether unlocked.
    pub async fn unlock_automatically(&self) -> Result<bool> {
        if let Some((passphrase, source)) = self.sources.find() {
            if let Err(error) = self.unlock(passphrase, source).await {
                // Never retry a wrong automatic passphrase: wait for an explicit Unlock.
                *self.auto_unlock.lock().unwrap_or_else(|p| p.into_inner()) = false;
                return Err(error);
            }
            return Ok(true);
        }
        if self.is_new() {
            if let Some(secret) = self.sources.create_in_keyring()? {
                tracing::info!(store = %self.dir.display(), "new keystore: created a random passphrase in the OS keyring");
                self.unlock(secret, PassphraseSource::Keyring).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Unlocks with `passphrase`. On a new store this sets the passphrase.
    pub async fn unlock(&self, passphrase: SecretString, source: PassphraseSource) -> Result<()> {
        let params = self.kdf_params()?;
        let store_key = tokio::task::spawn_blocking(move || params.derive(&passphrase))
            .await
            .map_err(|error| Error::Crypto(format!("key derivation task: {error}")))??;
        self.verify_or_create_store_file(&store_key)?;
        let mut state = self.write_state();
        state.signers.clear();
        state.store_key = Some(Arc::new(store_key));
        state.source = Some(source);
        drop(state);
        *self.auto_unlock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.touch();
        tracing::info!(store = %self.dir.display(), source = source.as_str(), "keystore unlocked");
        Ok(())
    }

    /// Drops every decrypted key; automatic sources stay unused until the next Unlock.
    pub fn lock(&self) {
        *self.auto_unlock.lock().unwrap_or_else(|p| p.into_inner()) = false;
        *self.write_state() = UnlockState::default();
        tracing::info!(store = %self.dir.display(), "keystore locked");
    }

    /// The keystore's lock state and problems.
    pub fn status(&self) -> KeystoreStatus {
        let state = self.read_state();
        KeystoreStatus {
            locked: state.store_key.is_none(),
            dir: self.dir.clone(),
            passphrase_source: state.source,
            unreadable_files: self
                .unreadable
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    /// Drops decrypted keys after `idle_timeout` without use. Runs until the
    /// backend is dropped.
    pub fn spawn_idle_lock(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let period =
            (self.idle_timeout / 4).clamp(Duration::from_millis(250), Duration::from_secs(30));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            loop {
                ticker.tick().await;
                let Some(backend) = weak.upgrade() else { break };
                backend.lock_if_idle();
            }
        });
    }

    fn lock_if_idle(&self) {
        let idle = Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.last_used_ms.load(Ordering::Relaxed)),
        );
        if idle >= self.idle_timeout && self.read_state().store_key.is_some() {
            *self.write_state() = UnlockState::default();
            tracing::info!(store = %self.dir.display(), idle_secs = idle.as_secs(), "keystore idle: dropped decrypted keys");
        }
    }

    fn is_new(&self) -> bool {
        !self.dir.join(STORE_FILE).exists()
            && self
                .stored
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
    }

    /// KDF parameters: from store.json, else from a key file (store.json lost), else fresh.
    fn kdf_params(&self) -> Result<KdfParams> {
        if let Some(store_file) = self.read_store_file()? {
            return Ok(store_file.kdf);
        }
        let stored = self.stored.read().unwrap_or_else(|p| p.into_inner());
        Ok(stored
            .values()
            .next()
            .map(|key| key.kdf().clone())
            .unwrap_or_else(KdfParams::fresh))
    }

    fn read_store_file(&self) -> Result<Option<StoreFile>> {
        let path = self.dir.join(STORE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => StoreFile::parse(&bytes)
                .map(Some)
                .map_err(|reason| Error::UnreadableKeyFile { path, reason }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(Error::io("reading", path)(error)),
        }
    }

    fn verify_or_create_store_file(&self, store_key: &StoreKey) -> Result<()> {
        if let Some(store_file) = self.read_store_file()? {
            return if store_file.accepts(store_key) {
                Ok(())
            } else {
                Err(Error::WrongPassphrase(self.dir.clone()))
            };
        }
        // No store.json: a new store, or one whose store.json was lost. In the latter
        // case the passphrase must open an existing key before we bless it.
        let existing = self
            .stored
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .next()
            .cloned();
        if let Some(key) = existing {
            key.unseal(store_key)
                .map_err(|_| Error::WrongPassphrase(self.dir.clone()))?;
        }
        let (_, bytes) = StoreFile::create(store_key)?;
        files::write_new_file_atomically(&self.dir, STORE_FILE, &bytes)
    }

    /// The decrypted key's signer, unlocking automatically if allowed.
    async fn signer(&self, keyid: &str) -> Result<Arc<DigestSigner>> {
        if let Some(signer) = self.read_state().signers.get(keyid) {
            return Ok(signer.clone());
        }
        let store_key = self.store_key().await?;
        let stored = self
            .stored
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(keyid)
            .cloned()
            .ok_or_else(|| Error::KeyNotFound(keyid.to_owned()))?;
        let signing_key = stored
            .unseal(&store_key)
            .map_err(|reason| Error::UnreadableKeyFile {
                path: self.key_path(keyid),
                reason,
            })?;
        let signer = Arc::new(DigestSigner::new(&signing_key)?);
        self.write_state()
            .signers
            .insert(keyid.to_owned(), signer.clone());
        Ok(signer)
    }

    async fn store_key(&self) -> Result<Arc<StoreKey>> {
        if let Some(key) = self.read_state().store_key.clone() {
            return Ok(key);
        }
        let may_auto_unlock = *self.auto_unlock.lock().unwrap_or_else(|p| p.into_inner());
        if may_auto_unlock && self.unlock_automatically().await? {
            if let Some(key) = self.read_state().store_key.clone() {
                return Ok(key);
            }
        }
        Err(Error::Locked)
    }

    fn key_path(&self, keyid: &str) -> PathBuf {
        self.keys_dir.join(format!("{keyid}{KEY_SUFFIX}"))
    }

    fn load_key_file(path: &Path, keyid: &str) -> std::result::Result<StoredKey, String> {
        let bytes = std::fs::read(path).map_err(|error| error.to_string())?;
        StoredKey::parse(&bytes, keyid)
    }

    fn touch(&self) {
        self.last_used_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, UnlockState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, UnlockState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl KeyBackend for SoftwareBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Software
    }

    async fn load(&self) -> Result<Vec<KeyRecord>> {
        let entries =
            std::fs::read_dir(&self.keys_dir).map_err(Error::io("reading", &self.keys_dir))?;
        let mut stored = HashMap::new();
        let mut unreadable = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Error::io("reading", &self.keys_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(files::TEMP_PREFIX) {
                tracing::info!(file = %path.display(), "removing a temporary file left by an interrupted write");
                files::remove_file_durably(&path)?;
                continue;
            }
            let Some(keyid) = name.strip_suffix(KEY_SUFFIX) else {
                tracing::warn!(file = %path.display(), "ignoring a file that is not a key file");
                continue;
            };
            match Self::load_key_file(&path, keyid) {
                Ok(key) => {
                    stored.insert(keyid.to_owned(), Arc::new(key));
                }
                Err(reason) => {
                    tracing::error!(file = %path.display(), %reason, "skipping unreadable key file");
                    unreadable.push(format!("{name}: {reason}"));
                }
            }
        }
        unreadable.sort();
        let records = stored.values().map(|key| key.record.clone()).collect();
        *self.stored.write().unwrap_or_else(|p| p.into_inner()) = stored;
        *self.unreadable.lock().unwrap_or_else(|p| p.into_inner()) = unreadable;
        Ok(records)
    }

    async fn generate(&self, new_key: &NewKey) -> Result<KeyRecord> {
        let store_key = self.store_key().await?;
        let signing_key = SigningKey::random(&mut OsRng);
        let record = KeyRecord::new(
            (*signing_key.verifying_key()).into(),
            new_key.gun.clone(),
            new_key.role.clone(),
            BackendKind::Software,
            now_rfc3339(),
            new_key.exportable,
        );
        let (stored, bytes) = StoredKey::seal(&record, &signing_key, &store_key)?;
        files::write_new_file_atomically(
            &self.keys_dir,
            &format!("{}{KEY_SUFFIX}", record.keyid),
            &bytes,
        )?;
        self.stored
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(record.keyid.clone(), Arc::new(stored));
        self.write_state().signers.insert(
            record.keyid.clone(),
            Arc::new(DigestSigner::new(&signing_key)?),
        );
        self.touch();
        Ok(record)
    }

    async fn sign_digest(&self, key: &KeyRecord, digest: &[u8; 32]) -> Result<Signature> {
        let signer = self.signer(&key.keyid).await?;
        self.touch();
        signer.sign_digest(digest)
    }

    async fn delete(&self, key: &KeyRecord) -> Result<()> {
        files::remove_file_durably(&self.key_path(&key.keyid))?;
        self.stored
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key.keyid);
        self.write_state().signers.remove(&key.keyid);
        Ok(())
    }
}
