//! A software key put onto two (virtual) YubiKeys, a primary and a spare, through
//! the daemon's own key registry and YubiKey backend, in process: both copies have
//! the key's ID and sign as its public key, the registry keeps one record, the key
//! signs from whichever card is plugged in, and a backend started afresh reads
//! both cards' certificates back as imported keys (never attestable).

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::VerifyingKey;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tufkey_e2e::vcard::{self, PIN};
use tufkeyd::backend::yubikey::{YubiKeyBackend, YubiKeyConfig};
use tufkeyd::error::ErrorKind;
use tufkeyd::keys::{
    Backends, ImportedKey, KeyBackend, KeyManager, KeyRecord, Origin, Pin, Placement, TouchPolicy,
    YubiKeyPlacement, YUBIKEY,
};
use tufkeyd::shutdown::StopSignal;
use tufkeyd::tuf::key_json;

const GUN: &str = "example.com/import";

fn config() -> YubiKeyConfig {
    YubiKeyConfig {
        pin_cache: Duration::from_secs(600),
        use_keyring: false,
    }
}

/// The root key for card `serial`, in `slot` or the role's default (the factory
/// management key is allowed: the cards were just reset).
fn onto(
    secret: &p256::SecretKey,
    serial: u32,
    slot: Option<&str>,
    exportable: bool,
) -> ImportedKey {
    ImportedKey {
        gun: GUN.parse().expect("a valid gun"),
        role: "root".parse().expect("a valid role"),
        exportable,
        secret: secret.clone(),
        placement: Placement::YubiKey(YubiKeyPlacement {
            serial: Some(serial),
            slot: slot.map(|slot| slot.parse().expect("a PIV slot")),
            touch_policy: Some(TouchPolicy::Never),
            allow_default_mgmt_key: true,
        }),
        created_at: None,
    }
}

fn serial_and_slot(key: &KeyRecord) -> (u32, String) {
    let at = key.location.yubikey().expect("a YubiKey key");
    (at.serial, at.slot.to_string())
}

async fn assert_signs(keys: &KeyManager, key: &KeyRecord, public: &p256::PublicKey, what: &str) {
    let digest = sha2_digest(what);
    let signature = keys
        .sign_digest(key, &digest)
        .await
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    VerifyingKey::from(public)
        .verify_prehash(&digest, &signature)
        .unwrap_or_else(|error| panic!("{what}: the signature does not verify: {error}"));
}

fn sha2_digest(text: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).into()
}

/// Waits (up to 20 s) until `done` holds.
async fn wait_until<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_software_key_on_a_primary_and_a_spare_card_signs_from_either_and_stays_imported() {
    let cards = vcard::cards();
    let (primary, spare) = (cards.serial(0), cards.serial(1));
    vcard::reset(primary);
    vcard::reset(spare);

    let backend = YubiKeyBackend::start(&config()).await.unwrap();
    let stop = StopSignal::new();
    let watching = tokio::spawn({
        let backend = backend.clone();
        let stopping = stop.subscribe();
        async move { backend.maintain(stopping).await }
    });
    let mut backends = Backends::new();
    backends.register(backend.clone()).unwrap();
    let keys = KeyManager::new(backends).await.unwrap();
    let devices = keys.devices().unwrap();
    for serial in [primary, spare] {
        devices
            .unlock(serial, Pin::new(PIN.as_bytes().to_vec()), false, false)
            .await
            .unwrap();
    }

    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let public = secret.public_key();
    let keyid = key_json::tuf_keyid(&public);

    // Exportable keys are refused before any card is touched.
    let exportable = keys
        .import(Some(YUBIKEY), onto(&secret, primary, None, true))
        .await
        .unwrap_err();
    assert_eq!(exportable.kind(), ErrorKind::InvalidInput);
    assert!(
        exportable
            .to_string()
            .contains("YubiKey keys never leave the device"),
        "{exportable}"
    );

    // The primary gets the root slot 9c, the spare a retired slot asked for.
    let on_primary = keys
        .import(Some(YUBIKEY), onto(&secret, primary, None, false))
        .await
        .unwrap();
    let on_spare = keys
        .import(Some(YUBIKEY), onto(&secret, spare, Some("83"), false))
        .await
        .unwrap();
    for (copy, serial, slot) in [(&on_primary, primary, "9c"), (&on_spare, spare, "83")] {
        assert_eq!(copy.keyid, keyid);
        assert_eq!(copy.public_key, public);
        assert_eq!(copy.origin, Origin::Imported);
        assert!(!copy.exportable);
        assert_eq!(serial_and_slot(copy), (serial, slot.to_owned()));
    }
    let listed: Vec<_> = keys
        .list(None, None)
        .into_iter()
        .filter(|key| key.keyid == keyid)
        .collect();
    assert_eq!(
        listed.len(),
        1,
        "one registry record per key ID: {listed:?}"
    );

    // A card holds one copy at most.
    let again = keys
        .import(Some(YUBIKEY), onto(&secret, spare, None, false))
        .await
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::FailedPrecondition);
    assert!(
        again.to_string().contains(&format!(
            "YubiKey {spare} already holds key {keyid} in slot 83"
        )),
        "{again}"
    );

    // Each card signs as the key.
    assert_signs(&keys, &on_primary, &public, "signed on the primary").await;
    assert_signs(&keys, &on_spare, &public, "signed on the spare").await;

    // Either card alone: the other copy signs, whichever record the caller holds.
    for (pulled, remaining) in [(primary, spare), (spare, primary)] {
        cards.pull(pulled);
        wait_until(&format!("YubiKey {pulled} is seen gone"), || async {
            !devices
                .present()
                .iter()
                .any(|(serial, _)| *serial == pulled)
        })
        .await;
        let registry_record = keys.get(&keyid).await.unwrap();
        assert!(keys.is_available(&registry_record));
        for record in [&on_primary, &on_spare, &registry_record] {
            assert_signs(
                &keys,
                record,
                &public,
                &format!("signed with only YubiKey {remaining} present"),
            )
            .await;
        }
        cards.insert(pulled);
        wait_until(&format!("YubiKey {pulled} is seen back"), || async {
            devices
                .present()
                .iter()
                .any(|(serial, _)| *serial == pulled)
        })
        .await;
        // A card that was pulled is unlocked again: its PIN was forgotten.
        devices
            .unlock(pulled, Pin::new(PIN.as_bytes().to_vec()), false, false)
            .await
            .unwrap();
    }

    // An imported key has no attestation (the card only attests its own keys).
    let attest = devices.attest(&on_primary).await.unwrap_err();
    assert_eq!(attest.kind(), ErrorKind::Unsupported);
    assert!(attest.to_string().contains("imported"), "{attest}");

    stop.stop();
    watching.await.unwrap();
    drop(keys);
    drop(backend);

    // Another daemon (a fresh backend) reads the origin back from each card.
    let fresh: Arc<YubiKeyBackend> = YubiKeyBackend::start(&config()).await.unwrap();
    let loaded = fresh.load().await.unwrap();
    let rediscovered: Vec<_> = loaded.iter().filter(|key| key.keyid == keyid).collect();
    assert_eq!(rediscovered.len(), 1, "{loaded:?}");
    assert_eq!(rediscovered[0].origin, Origin::Imported);
    assert_eq!(rediscovered[0].public_key, public);
    let listing = fresh.devices().unwrap().list().await.unwrap();
    for (serial, slot) in [(primary, "9c"), (spare, "83")] {
        let card = listing
            .iter()
            .find(|card| card.serial == serial)
            .unwrap_or_else(|| panic!("YubiKey {serial} not listed"));
        let copy = card
            .keys
            .iter()
            .find(|key| key.keyid == keyid)
            .unwrap_or_else(|| panic!("YubiKey {serial} does not list key {keyid}"));
        assert_eq!(copy.origin, Origin::Imported, "on YubiKey {serial}");
        assert_eq!(serial_and_slot(copy), (serial, slot.to_owned()));
    }
}
