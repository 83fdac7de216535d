//! The encrypted software keystore: the embedded default home for keys.
//!
//! Layout: `STORE/store.json` (KDF parameters + passphrase check) and
//! `STORE/keys/<keyid>.key` (one sealed key each), directories 0700, files 0600
//! ([`directory`]). Keys are decrypted lazily on first use and kept only in
//! zeroising memory; a `Lock` or the idle timeout drops them. A damaged or foreign
//! file is reported by name and skipped; the other keys still load. Every disk
//! access and the key derivation run on blocking threads.
//!
//! Key derivation (Argon2id, 64 MiB) is the costliest thing a caller can start, so
//! it runs behind a single permit: one derivation at a time, whoever asks. Automatic
//! unlock after the idle lock is single-flight (requests that find the store locked
//! wait for the one derivation rather than each deriving), and after a wrong
//! passphrase `Unlock` is refused at once for a back-off that doubles from 1 s to
//! 60 s, so guessing costs the guesser time and the daemon nothing.

mod backoff;
#[cfg(test)]
mod crash_tests;
mod directory;
mod durable;
mod envelope;
mod error;
mod files;
mod key_file;
mod manifest;
mod passphrase;
pub mod postgres;
pub mod private_dir;
mod signer;
mod storage;

pub use error::{FileProblem, SoftwareError};
pub use passphrase::{PassphraseSource, SecretFile, ENV_VAR as PASSPHRASE_ENV_VAR};

use crate::audit::AuditKey;
use crate::blocking;
use crate::keys::{
    now_rfc3339, Export, Import, ImportedKey, KeyBackend, KeyRecord, Location, LockState, NewKey,
    Origin, Placement, Unlock, SOFTWARE,
};
use crate::shutdown::Stopping;
use async_trait::async_trait;
use backoff::Backoff;
use directory::StoreDir;
use envelope::{KdfParams, StoreKey};
use error::Result;
use key_file::{StoreFile, StoredKey};
use p256::ecdsa::{Signature, SigningKey};
use passphrase::AutomaticSources;
use postgres::{PostgresConfig, PostgresStorage};
use rand_core::OsRng;
use secrecy::SecretString;
use signer::DigestSigner;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};
use storage::{KeyStorage, StoredChange};
use tokio::sync::broadcast;
use tokio::sync::MutexGuard as AsyncMutexGuard;

/// How the software keystore is set up.
#[derive(Clone, Debug)]
pub struct SoftwareConfig {
    /// The store directory.
    pub dir: PathBuf,
    /// Whether to read (and for a new store, create) the passphrase in the OS keyring.
    pub use_keyring: bool,
    /// A file holding the passphrase, tried before the keyring: `--secret-file`, else
    /// systemd's `$CREDENTIALS_DIRECTORY/tufkey-secret`.
    pub secret_file: Option<SecretFile>,
    /// Decrypted keys are dropped after this long without a signature.
    pub idle_timeout: Duration,
    /// `TUFKEY_PASSPHRASE`, tried after the keyring: taken out of the environment
    /// at start (`tufkeyd`'s hardening) and kept here, zeroised on drop.
    pub environment_passphrase: Option<SecretString>,
}

#[derive(Default)]
struct UnlockState {
    store_key: Option<Arc<StoreKey>>,
    source: Option<PassphraseSource>,
    signers: HashMap<String, Arc<DigestSigner>>,
    /// Bumped by every lock (explicit and idle). A key decrypted with the store key
    /// of an earlier generation is never cached: a lock that lands while a key is
    /// being decrypted must not leave that key behind, signing after the lock.
    generation: u64,
}

impl UnlockState {
    /// Drops the store key and every decrypted key, and starts a new generation.
    fn lock(&mut self) {
        *self = UnlockState {
            generation: self.generation.wrapping_add(1),
            ..UnlockState::default()
        };
    }

    /// The store key with the generation it belongs to, when unlocked.
    fn store_key(&self) -> Option<(Arc<StoreKey>, u64)> {
        self.store_key
            .clone()
            .map(|store_key| (store_key, self.generation))
    }
}

/// The encrypted software keystore.
pub struct SoftwareBackend {
    /// Where the store file and the sealed keys are: the store directory, or
    /// PostgreSQL.
    storage: Arc<dyn KeyStorage>,
    /// Fired when another process (a replica) added or removed keys.
    changes: broadcast::Sender<()>,
    sources: AutomaticSources,
    /// False after an explicit Lock: automatic sources are not used again until Unlock.
    auto_unlock: Mutex<bool>,
    /// The single key-derivation permit; holding it is the right to derive.
    kdf: tokio::sync::Mutex<()>,
    /// Wrong `Unlock` passphrases in a row, and until when `Unlock` is refused.
    backoff: Mutex<Backoff>,
    /// The audit log's key, derived at the first successful unlock and kept for the
    /// daemon's lifetime: `Lock` and the idle lock drop the signing keys, not this,
    /// so a locked daemon still records (and refuses) what callers ask of it.
    audit_key: OnceLock<AuditKey>,
    state: RwLock<UnlockState>,
    stored: RwLock<HashMap<String, Arc<StoredKey>>>,
    unreadable: Mutex<Vec<String>>,
    idle_timeout: Duration,
    epoch: Instant,
    last_used_ms: AtomicU64,
}

impl SoftwareBackend {
    /// Opens (creating if needed) the store directory and unlocks it from the
    /// keyring or `TUFKEY_PASSPHRASE` when it can; otherwise it stays locked until
    /// `tufkey unlock` (said in the log, with the fix).
    pub async fn start(config: &SoftwareConfig) -> Result<Arc<Self>> {
        let root = config.dir.clone();
        let dir = blocking::run(move || StoreDir::open(&root)).await?;
        Self::start_on(config, Arc::new(dir)).await
    }

    /// Like [`SoftwareBackend::start`], with the store file and the sealed keys in
    /// PostgreSQL (shared by replicas) instead of `STORE/keys`; the store directory
    /// is still created for the daemon's local state.
    pub async fn start_in_postgres(
        config: &SoftwareConfig,
        postgres: &PostgresConfig,
    ) -> Result<Arc<Self>> {
        let root = config.dir.clone();
        blocking::run(move || private_dir::ensure_private_dir(&root).map_err(SoftwareError::from))
            .await?;
        let storage = PostgresStorage::connect(postgres).await?;
        Self::start_on(config, Arc::new(storage)).await
    }

    async fn start_on(config: &SoftwareConfig, storage: Arc<dyn KeyStorage>) -> Result<Arc<Self>> {
        let backend = Arc::new(SoftwareBackend {
            sources: AutomaticSources::new(
                &config.dir,
                config.use_keyring,
                config.secret_file.clone(),
                config.environment_passphrase.clone(),
            )?,
            storage,
            changes: broadcast::channel(16).0,
            auto_unlock: Mutex::new(true),
            kdf: tokio::sync::Mutex::new(()),
            backoff: Mutex::default(),
            audit_key: OnceLock::new(),
            state: RwLock::default(),
            stored: RwLock::default(),
            unreadable: Mutex::default(),
            idle_timeout: config.idle_timeout,
            epoch: Instant::now(),
            last_used_ms: AtomicU64::new(0),
        });
        backend.rescan().await?;
        let permit = backend.kdf.lock().await;
        let unlocked = backend.unlock_automatically(&permit).await;
        drop(permit);
        match unlocked {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(store = %backend.storage.describe(), "keystore locked: run `tufkey unlock`, or set TUFKEY_PASSPHRASE")
            }
            Err(error) => tracing::error!(%error, "keystore stays locked"),
        }
        Ok(backend)
    }

    /// Unlocks from the secret file, the keyring or `TUFKEY_PASSPHRASE`; a brand-new
    /// store with none gets a random secret saved in the `--secret-file` or the
    /// keyring. Returns whether unlocked.
    async fn unlock_automatically(&self, permit: &KdfPermit<'_>) -> Result<bool> {
        if let Some((passphrase, source)) = self.sources.find() {
            if let Err(error) = self.unlock_with(permit, passphrase, source).await {
                // Never retry a wrong automatic passphrase: wait for an explicit Unlock.
                *self.auto_unlock.lock().unwrap_or_else(|p| p.into_inner()) = false;
                return Err(error);
            }
            return Ok(true);
        }
        if self.is_new().await? {
            if let Some((secret, source)) = self.sources.create_for_new_store()? {
                self.unlock_with(permit, secret, source).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Unlocks with `passphrase`. On a new store this sets the passphrase. Only the
    /// holder of the key-derivation permit may derive.
    async fn unlock_with(
        &self,
        _permit: &KdfPermit<'_>,
        passphrase: SecretString,
        source: PassphraseSource,
    ) -> Result<()> {
        let storage = self.storage.as_ref();
        let existing = self.any_stored_key();
        let mut params = kdf_params(storage, existing.as_deref()).await?;
        let store_key = loop {
            let passphrase = passphrase.clone();
            let derived = params.clone();
            let store_key =
                blocking::run(move || derived.derive(&passphrase).map_err(SoftwareError::Kdf))
                    .await?;
            match verify_or_create_store_file(storage, existing.as_deref(), &store_key).await? {
                None => break store_key,
                // Another replica created the store at the same moment, with its own
                // salt: derive again with the parameters that won.
                Some(stored) if stored != params => params = stored,
                Some(_) => return Err(storage.wrong_secret()),
            }
        };
        let established = storage.establish_manifest(store_key.manifest_key()).await?;
        if established {
            // Drops the key files the manifest does not vouch for, and reports them.
            self.rescan().await?;
        }
        self.audit_key.get_or_init(|| store_key.audit_key());
        let mut state = self.write_state();
        state.signers.clear();
        state.store_key = Some(Arc::new(store_key));
        state.source = Some(source);
        drop(state);
        *self.auto_unlock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.touch();
        tracing::info!(store = %self.storage.describe(), source = source.as_str(), "keystore unlocked");
        Ok(())
    }

    fn lock_if_idle(&self) {
        let idle = Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.last_used_ms.load(Ordering::Relaxed)),
        );
        if idle >= self.idle_timeout && self.read_state().store_key.is_some() {
            self.write_state().lock();
            tracing::info!(store = %self.storage.describe(), idle_secs = idle.as_secs(), "keystore idle: dropped decrypted keys");
        }
    }

    async fn is_new(&self) -> Result<bool> {
        Ok(self.read_stored().is_empty() && !self.storage.has_store_file().await?)
    }

    fn any_stored_key(&self) -> Option<Arc<StoredKey>> {
        self.read_stored().values().next().cloned()
    }

    /// Re-reads every stored key.
    async fn rescan(&self) -> Result<Vec<KeyRecord>> {
        let scan = self.storage.scan().await?;
        let records = scan.keys.values().map(|key| key.record.clone()).collect();
        *self.stored.write().unwrap_or_else(|p| p.into_inner()) = scan.keys;
        *self.unreadable.lock().unwrap_or_else(|p| p.into_inner()) = scan.unreadable;
        Ok(records)
    }

    /// Signs `digest` with the key, decrypting it first (unlocking automatically if
    /// allowed) when it is not cached.
    ///
    /// `Lock` is authoritative. Signing happens only while holding the state's read
    /// lock, with a signer found in that state; `Lock` replaces the state under the
    /// write lock, so it waits for signatures under way and, once it returns, no
    /// signature can start until the next unlock. A key decrypted while a lock
    /// happened is cached only if its generation is still current, checked under
    /// the write lock; otherwise the request is refused as locked, as it would have
    /// been a moment later.
    async fn sign(&self, keyid: &str, digest: &[u8; 32]) -> Result<Signature> {
        if let Some(signature) = self.sign_if_cached(keyid, digest) {
            return signature;
        }
        let (signing_key, generation) = self.unseal(keyid).await?;
        let signer = Arc::new(DigestSigner::new(&signing_key)?);
        drop(signing_key);
        {
            let mut state = self.write_state();
            if state.generation != generation {
                return Err(SoftwareError::Locked);
            }
            // `delete` forgets the key before it drops its signer, so a key deleted
            // while it was being decrypted is not cached (and signing) after the delete.
            if !self.read_stored().contains_key(keyid) {
                return Err(SoftwareError::NotHere(keyid.to_owned()));
            }
            state.signers.insert(keyid.to_owned(), signer);
        }
        // A lock between the insertion and here has dropped the signer again.
        self.sign_if_cached(keyid, digest)
            .unwrap_or(Err(SoftwareError::Locked))
    }

    /// A signature by the cached signer, signed under the state's read lock.
    fn sign_if_cached(&self, keyid: &str, digest: &[u8; 32]) -> Option<Result<Signature>> {
        let state = self.read_state();
        state
            .signers
            .get(keyid)
            .map(|signer| signer.sign_digest(digest))
    }

    /// Decrypts a key's private half; also gives the lock generation of the store
    /// key it was decrypted with.
    async fn unseal(&self, keyid: &str) -> Result<(SigningKey, u64)> {
        let (store_key, generation) = self.store_key().await?;
        let stored = self
            .read_stored()
            .get(keyid)
            .cloned()
            .ok_or_else(|| SoftwareError::NotHere(keyid.to_owned()))?;
        let signing_key = stored
            .unseal(&store_key)
            .map_err(|problem| self.storage.unreadable(keyid, problem))?;
        Ok((signing_key, generation))
    }

    /// The store key and its lock generation, unlocking automatically if allowed.
    async fn store_key(&self) -> Result<(Arc<StoreKey>, u64)> {
        if let Some(key) = self.read_state().store_key() {
            return Ok(key);
        }
        if !self.may_auto_unlock() {
            return Err(SoftwareError::Locked);
        }
        // Single flight: whoever gets the permit first derives; the others find the
        // key (or the refusal) when it is their turn, and do not derive again.
        let permit = self.kdf.lock().await;
        if let Some(key) = self.read_state().store_key() {
            return Ok(key);
        }
        if self.may_auto_unlock() && self.unlock_automatically(&permit).await? {
            if let Some(key) = self.read_state().store_key() {
                return Ok(key);
            }
        }
        Err(SoftwareError::Locked)
    }

    fn may_auto_unlock(&self) -> bool {
        *self.auto_unlock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An explicit `Unlock`: refused at once during a back-off; otherwise one
    /// derivation behind the permit, and a wrong passphrase starts (or doubles) the
    /// back-off.
    async fn unlock_explicitly(&self, passphrase: SecretString) -> Result<()> {
        self.refuse_while_backing_off()?;
        let permit = self.kdf.lock().await;
        // A derivation that ran while this one waited may have failed.
        self.refuse_while_backing_off()?;
        let result = self
            .unlock_with(&permit, passphrase, PassphraseSource::Unlock)
            .await;
        let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        match &result {
            Ok(()) => backoff.succeeded(),
            Err(SoftwareError::WrongPassphrase(_) | SoftwareError::WrongStoreSecret { .. }) => {
                let wait = backoff.failed(Instant::now());
                tracing::warn!(
                    failures = backoff.failures,
                    wait_secs = wait.as_secs(),
                    "wrong keystore passphrase: Unlock refused until the back-off ends"
                );
            }
            Err(_) => {}
        }
        result
    }

    fn refuse_while_backing_off(&self) -> Result<()> {
        let backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        match backoff.remaining(Instant::now()) {
            Some(wait) => Err(SoftwareError::BackingOff {
                failures: backoff.failures,
                wait_secs: wait
                    .as_millis()
                    .div_ceil(1000)
                    .try_into()
                    .unwrap_or(u64::MAX),
            }),
            None => Ok(()),
        }
    }

    /// Seals `signing_key` into a new key file and keeps it ready to sign.
    async fn store_new_key(
        &self,
        signing_key: SigningKey,
        new_key: &NewKey,
        origin: Origin,
        created_at: String,
    ) -> Result<KeyRecord> {
        let (store_key, generation) = self.store_key().await?;
        let mut record = KeyRecord::new(
            (*signing_key.verifying_key()).into(),
            new_key.gun.clone(),
            new_key.role.clone(),
            Location::Software,
            created_at,
            new_key.exportable,
        );
        record.origin = origin;
        let (stored, bytes) = StoredKey::seal(&record, &signing_key, &store_key)?;
        self.storage.write_key(&stored, bytes).await?;
        self.stored
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(record.keyid.clone(), Arc::new(stored));
        let signer = Arc::new(DigestSigner::new(&signing_key)?);
        // Stored either way; kept ready to sign only if no lock came in between.
        let mut state = self.write_state();
        if state.generation == generation {
            state.signers.insert(record.keyid.clone(), signer);
        }
        drop(state);
        self.touch();
        Ok(record)
    }

    /// Forgets a key that is gone from the storage: its description first, so a
    /// decryption under way is not cached ([`SoftwareBackend::sign`]), then its signer.
    fn forget(&self, keyid: &str) {
        self.stored
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(keyid);
        self.write_state().signers.remove(keyid);
    }

    /// Takes in what another replica changed, and tells the registry to reload.
    async fn take_in(&self, change: StoredChange) {
        let read = match &change {
            StoredChange::Added(keyid) => self.storage.read_key(keyid).await.map(|stored| {
                if let Some(stored) = stored {
                    self.stored
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(stored.record.keyid.clone(), Arc::new(stored));
                }
            }),
            // Forgotten already, as soon as it was heard of.
            StoredChange::Removed(_) => Ok(()),
            StoredChange::Unknown => {
                self.rescan().await.map(|records| {
                    // Keys gone while the feed was down: no signer may outlive them.
                    let present: std::collections::HashSet<String> =
                        records.into_iter().map(|record| record.keyid).collect();
                    self.write_state()
                        .signers
                        .retain(|keyid, _| present.contains(keyid));
                })
            }
        };
        match read {
            Ok(()) => {
                let _ = self.changes.send(());
            }
            Err(error) => {
                tracing::warn!(%error, ?change, "reading keys another replica changed; read again at the next change")
            }
        }
    }

    fn touch(&self) {
        self.last_used_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn read_stored(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<StoredKey>>> {
        self.stored.read().unwrap_or_else(|p| p.into_inner())
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, UnlockState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, UnlockState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The key-derivation permit, held.
type KdfPermit<'a> = AsyncMutexGuard<'a, ()>;

/// KDF parameters: from store.json, else from a key file (store.json lost), else fresh.
async fn kdf_params(storage: &dyn KeyStorage, existing: Option<&StoredKey>) -> Result<KdfParams> {
    if let Some(store_file) = storage.read_store_file().await? {
        return Ok(store_file.kdf);
    }
    Ok(existing.map_or_else(KdfParams::fresh, |key| key.kdf().clone()))
}

/// Checks the passphrase against store.json, or creates store.json for a new store.
/// When store.json was lost, the passphrase must open an existing key first. A
/// store file another replica stored at the same moment wins: when it was made
/// with other KDF parameters, those come back (`Some`) to derive with.
async fn verify_or_create_store_file(
    storage: &dyn KeyStorage,
    existing: Option<&StoredKey>,
    store_key: &StoreKey,
) -> Result<Option<KdfParams>> {
    if !storage.has_store_file().await? {
        if let Some(key) = existing {
            key.unseal(store_key).map_err(|_| storage.wrong_secret())?;
        }
        let (_, bytes) = StoreFile::create(store_key)?;
        storage.write_store_file(bytes).await?;
    }
    match storage.read_store_file().await? {
        Some(store_file) if store_file.accepts(store_key) => Ok(None),
        Some(store_file) if &store_file.kdf != store_key.params() => Ok(Some(store_file.kdf)),
        _ => Err(storage.wrong_secret()),
    }
}

#[async_trait]
impl KeyBackend for SoftwareBackend {
    fn name(&self) -> &'static str {
        SOFTWARE
    }

    /// The keys `start` read from the directory (it has to, to tell a new store from
    /// one whose passphrase it must check); files added later are picked up by `find`.
    async fn load(&self) -> crate::error::Result<Vec<KeyRecord>> {
        Ok(self
            .read_stored()
            .values()
            .map(|key| key.record.clone())
            .collect())
    }

    /// A stored key by TUF key ID, else by Notary key ID (the database looks both up
    /// at once; the directory is scanned again).
    async fn find(&self, id: &str) -> crate::error::Result<Option<KeyRecord>> {
        if let Some(stored) = self.storage.read_key(id).await? {
            let record = stored.record.clone();
            self.stored
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(record.keyid.clone(), Arc::new(stored));
            return Ok(Some(record));
        }
        if self.storage.finds_notary_keyids() {
            return Ok(None);
        }
        Ok(self
            .rescan()
            .await?
            .into_iter()
            .find(|record| record.notary_keyid == id))
    }

    async fn generate(&self, new_key: &NewKey) -> crate::error::Result<KeyRecord> {
        if !matches!(new_key.placement, Placement::Default | Placement::Software) {
            return Err(crate::error::Error::invalid(
                "placement",
                "the software keystore takes no device placement",
            ));
        }
        Ok(self
            .store_new_key(
                SigningKey::random(&mut OsRng),
                new_key,
                Origin::Generated,
                now_rfc3339(),
            )
            .await?)
    }

    async fn sign_digest(
        &self,
        key: &KeyRecord,
        digest: &[u8; 32],
    ) -> crate::error::Result<Signature> {
        let signature = self.sign(&key.keyid, digest).await?;
        self.touch();
        Ok(signature)
    }

    async fn delete(&self, key: &KeyRecord) -> crate::error::Result<()> {
        self.storage.remove_key(&key.keyid).await?;
        self.forget(&key.keyid);
        Ok(())
    }

    fn changes(&self) -> Option<broadcast::Receiver<()>> {
        Some(self.changes.subscribe())
    }

    /// Drops decrypted keys after the idle timeout, and follows the keys other
    /// replicas add and remove, until the server stops.
    async fn maintain(&self, stopping: Stopping) {
        let period =
            (self.idle_timeout / 4).clamp(Duration::from_millis(250), Duration::from_secs(30));
        let mut ticker = tokio::time::interval(period);
        let mut idle_stopping = stopping.clone();
        let idle_locks = async {
            loop {
                tokio::select! {
                    () = idle_stopping.stopped() => break,
                    _ = ticker.tick() => self.lock_if_idle(),
                }
            }
        };
        let (to_loop, mut heard) = tokio::sync::mpsc::unbounded_channel();
        let apply = |change: StoredChange| {
            // A removed key stops signing now; the rest (reading rows, telling the
            // registry) needs awaits: handed to the loop below.
            if let StoredChange::Removed(keyid) = &change {
                self.forget(keyid);
            }
            let _ = to_loop.send(change);
        };
        let follow = self.storage.follow(stopping.clone(), &apply);
        let mut reload_stopping = stopping;
        let reloads = async {
            loop {
                tokio::select! {
                    () = reload_stopping.stopped() => break,
                    Some(change) = heard.recv() => self.take_in(change).await,
                }
            }
        };
        tokio::join!(idle_locks, follow, reloads);
        self.lock();
    }

    fn unlock(&self) -> Option<&dyn Unlock> {
        Some(self)
    }

    fn import(&self) -> Option<&dyn Import> {
        Some(self)
    }

    fn export(&self) -> Option<&dyn Export> {
        Some(self)
    }
}

#[async_trait]
impl Unlock for SoftwareBackend {
    async fn unlock(&self, passphrase: SecretString) -> crate::error::Result<()> {
        Ok(self.unlock_explicitly(passphrase).await?)
    }

    /// Drops every decrypted key; automatic sources stay unused until the next Unlock.
    fn lock(&self) {
        *self.auto_unlock.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.write_state().lock();
        tracing::info!(store = %self.storage.describe(), "keystore locked");
    }

    fn lock_state(&self) -> LockState {
        let state = self.read_state();
        LockState {
            locked: state.store_key.is_none(),
            store: self.storage.describe(),
            passphrase_source: state.source.map(PassphraseSource::as_str),
            problems: self
                .unreadable
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    fn audit_key(&self) -> Option<AuditKey> {
        self.audit_key.get().cloned()
    }
}

#[async_trait]
impl Import for SoftwareBackend {
    async fn import(&self, key: ImportedKey) -> crate::error::Result<KeyRecord> {
        let signing_key = SigningKey::from(&key.secret);
        let new_key = NewKey {
            gun: key.gun,
            role: key.role,
            exportable: key.exportable,
            placement: Placement::Software,
        };
        Ok(self
            .store_new_key(
                signing_key,
                &new_key,
                Origin::Imported,
                key.created_at.unwrap_or_else(now_rfc3339),
            )
            .await?)
    }
}

#[async_trait]
impl Export for SoftwareBackend {
    /// Checks the flag sealed into the file (the registry checked the record's).
    async fn export(&self, key: &KeyRecord) -> crate::error::Result<p256::SecretKey> {
        let sealed_exportable = self
            .read_stored()
            .get(&key.keyid)
            .is_some_and(|stored| stored.record.exportable);
        if !sealed_exportable {
            return Err(SoftwareError::NotExportable(key.keyid.clone()).into());
        }
        let (signing_key, _) = self.unseal(&key.keyid).await?;
        Ok(p256::SecretKey::from(signing_key.as_nonzero_scalar()))
    }
}
