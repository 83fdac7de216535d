//! `Lock` is authoritative: once it returns, no signature succeeds until the next
//! unlock, even when it lands while keys are being decrypted.
//!
//! Many signing loops over several keys of the real software keystore run while the
//! test unlocks and locks over and over, each lock landing a little later after the
//! unlock, when the loops are decrypting the keys the unlock left uncached. Any
//! signature from a request that started after a `Lock` returned and before the
//! next unlock began is a violation: a key decrypted during the lock and cached
//! after it (the bug this guards against) shows up as exactly that. The keystore is
//! driven in-process, through the same `KeyBackend` and `Unlock` calls the server
//! makes: the race window is the tens of microseconds a key takes to decrypt, which
//! in-process loops hit in most cycles and socket round trips would mostly miss.

use secrecy::SecretString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use tufkeyd::backend::software::{SoftwareBackend, SoftwareConfig};
use tufkeyd::keys::{KeyBackend, KeyRecord, NewKey, Placement, Unlock};

const KEYS: usize = 6;
const LOOPS_PER_KEY: usize = 4;
const CYCLES: u64 = 12;
const PASSPHRASE: &str = "lock race passphrase";

/// A new software keystore in `dir`, unlocked.
async fn unlocked_backend(dir: &std::path::Path) -> Arc<SoftwareBackend> {
    let backend = SoftwareBackend::start(&SoftwareConfig {
        dir: dir.join("store"),
        use_keyring: false,
        idle_timeout: Duration::from_secs(600),
        secret_file: None,
        environment_passphrase: None,
    })
    .await
    .expect("start the keystore");
    Unlock::unlock(&*backend, SecretString::from(PASSPHRASE))
        .await
        .expect("unlock the keystore");
    backend
}

#[derive(Default)]
struct Tally {
    /// Set once a `Lock` has returned, cleared before the next unlock starts.
    locked: AtomicBool,
    stop: AtomicBool,
    signatures: AtomicU64,
    /// Signatures from requests that started while `locked` was set.
    after_lock: AtomicU64,
}

async fn sign_until_stopped(backend: Arc<SoftwareBackend>, key: KeyRecord, tally: Arc<Tally>) {
    let digest = [0x5a; 32];
    while !tally.stop.load(SeqCst) {
        let started_locked = tally.locked.load(SeqCst);
        if backend.sign_digest(&key, &digest).await.is_ok() {
            tally.signatures.fetch_add(1, SeqCst);
            if started_locked {
                tally.after_lock.fetch_add(1, SeqCst);
            }
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_signature_succeeds_after_lock_returns() {
    let dir = tempfile::tempdir().unwrap();
    let backend = unlocked_backend(dir.path()).await;
    let mut keys = Vec::new();
    for _ in 0..KEYS {
        let new_key = NewKey {
            gun: "example.com/race".parse().unwrap(),
            role: "targets".parse().unwrap(),
            exportable: false,
            placement: Placement::Software,
        };
        keys.push(backend.generate(&new_key).await.unwrap());
    }

    let tally = Arc::new(Tally::default());
    let loops: Vec<_> = keys
        .iter()
        .flat_map(|key| std::iter::repeat_n(key, LOOPS_PER_KEY))
        .map(|key| {
            tokio::spawn(sign_until_stopped(
                backend.clone(),
                key.clone(),
                tally.clone(),
            ))
        })
        .collect();

    let mut cycles_with_signatures = 0;
    let mut cycles_signing_after_lock = Vec::new();
    for cycle in 0..CYCLES {
        let before = tally.signatures.load(SeqCst);
        let after_lock_before = tally.after_lock.load(SeqCst);
        // The lock lands 0 to ~1 ms after the unlock, while keys are decrypted.
        let delay = Duration::from_micros(cycle * 100);
        let locker = backend.clone();
        let flag = tally.clone();
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(delay);
            Unlock::lock(&*locker);
            flag.locked.store(true, SeqCst);
        })
        .await
        .unwrap();
        // Decryptions under way finish (and must not be cached) while it stays locked.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut keys_signing = 0;
        for key in &keys {
            if backend.sign_digest(key, &[1; 32]).await.is_ok() {
                keys_signing += 1;
            }
        }
        if keys_signing > 0 || tally.after_lock.load(SeqCst) > after_lock_before {
            cycles_signing_after_lock.push(cycle);
        }
        if tally.signatures.load(SeqCst) > before {
            cycles_with_signatures += 1;
        }
        tally.locked.store(false, SeqCst);
        Unlock::unlock(&*backend, SecretString::from(PASSPHRASE))
            .await
            .unwrap();
    }
    tally.stop.store(true, SeqCst);
    for signing_loop in loops {
        signing_loop.await.unwrap();
    }

    assert!(
        cycles_signing_after_lock.is_empty(),
        "signatures succeeded after Lock returned in {} of {CYCLES} cycles ({:?}); {} from \
         the signing loops",
        cycles_signing_after_lock.len(),
        cycles_signing_after_lock,
        tally.after_lock.load(SeqCst)
    );
    // Not vacuous: the loops signed between the unlocks and the locks.
    assert!(
        cycles_with_signatures >= CYCLES / 2,
        "the loops signed in only {cycles_with_signatures} of {CYCLES} cycles"
    );
}

/// Signs `key` until stopped; counts signatures from requests that started after
/// `deleted` was set.
async fn sign_deleted_until_stopped(
    backend: Arc<SoftwareBackend>,
    key: KeyRecord,
    deleted: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> u64 {
    let mut after_delete = 0;
    while !stop.load(SeqCst) {
        let started_deleted = deleted.load(SeqCst);
        if backend.sign_digest(&key, &[0x3c; 32]).await.is_ok() && started_deleted {
            after_delete += 1;
        }
        tokio::task::yield_now().await;
    }
    after_delete
}

/// Once `delete` returns, the key signs no more, with loops signing it throughout.
/// This catches a signer left cached by the delete; the narrower race (a decryption
/// that read the key just before the delete and caches it just after) is closed by
/// the check in the backend's `sign` and is rarely hit here: the loops have usually
/// cached the key while the delete waits for its fsyncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_key_never_signs_again_while_loops_sign_it() {
    let dir = tempfile::tempdir().unwrap();
    let backend = unlocked_backend(dir.path()).await;
    let mut cycles_signing_after_delete = Vec::new();
    for cycle in 0..CYCLES {
        let new_key = NewKey {
            gun: "example.com/race".parse().unwrap(),
            role: "snapshot".parse().unwrap(),
            exportable: false,
            placement: Placement::Software,
        };
        let key = backend.generate(&new_key).await.unwrap();
        // Locked and unlocked again, the key is not cached: the loops decrypt it.
        Unlock::lock(&*backend);
        Unlock::unlock(&*backend, SecretString::from(PASSPHRASE))
            .await
            .unwrap();
        let deleted = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let loops: Vec<_> = (0..KEYS * LOOPS_PER_KEY)
            .map(|_| {
                tokio::spawn(sign_deleted_until_stopped(
                    backend.clone(),
                    key.clone(),
                    deleted.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        // The delete lands 0 to ~1 ms after the loops start decrypting.
        let delay = Duration::from_micros(cycle * 100);
        tokio::task::spawn_blocking(move || std::thread::sleep(delay))
            .await
            .unwrap();
        backend.delete(&key).await.unwrap();
        deleted.store(true, SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let still_signs = backend.sign_digest(&key, &[2; 32]).await.is_ok();
        stop.store(true, SeqCst);
        let mut after_delete = 0;
        for signing_loop in loops {
            after_delete += signing_loop.await.unwrap();
        }
        if still_signs || after_delete > 0 {
            cycles_signing_after_delete.push((cycle, after_delete));
        }
    }
    assert!(
        cycles_signing_after_delete.is_empty(),
        "a deleted key signed after its delete returned in {} of {CYCLES} cycles \
         (cycle, signatures from the loops): {cycles_signing_after_delete:?}",
        cycles_signing_after_delete.len()
    );
}
