//! Drives the real `yubikey` 0.8 crate through real pcscd to tufkey-vcard.
//!
//! Needs the environment from `scripts/vcard/start.sh STATE_DIR SERIAL...`:
//!   TUFKEY_VCARD_SERIALS=1001,1002   serials of the running cards
//!   TUFKEY_VCARD_STATE_DIR=STATE_DIR (only for the pull/re-insert test)
//! Without them the tests fail: start the cards first (scripts/test does).
//!
//! Tests share the cards, so they take a global lock. They leave each card
//! with the default PIN / management key, whatever state it started in.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use std::{
    path::PathBuf,
    process::Command,
    str::FromStr,
    sync::Mutex,
    thread,
    time::{Duration, Instant},
};

use p256::ecdsa::{signature::hazmat::PrehashVerifier, Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use x509_cert::{der::Encode, name::Name, serial_number::SerialNumber, time::Validity};
use yubikey::{
    certificate::Certificate,
    piv::{self, AlgorithmId, RetiredSlotId, SlotId},
    Error, MgmKey, PinPolicy, Serial, TouchPolicy, YubiKey,
};

const PIN: &[u8] = b"123456";
const WRONG_PIN: &[u8] = b"654321";

static LOCK: Mutex<()> = Mutex::new(());

fn serials() -> Option<Vec<u32>> {
    let v = std::env::var("TUFKEY_VCARD_SERIALS").ok()?;
    let s: Vec<u32> = v
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .expect("TUFKEY_VCARD_SERIALS: comma-separated u32")
        })
        .collect();
    (!s.is_empty()).then_some(s)
}

/// Serialise the tests and give them the serials of the running cards.
fn setup(test: &str) -> (std::sync::MutexGuard<'static, ()>, Vec<u32>) {
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    match serials() {
        Some(s) => (guard, s),
        None => panic!(
            "{test}: TUFKEY_VCARD_SERIALS is not set; start the cards with scripts/vcard/start.sh"
        ),
    }
}

/// Open by serial, retrying while pcscd notices a (re-)inserted card.
fn open(serial: u32) -> YubiKey {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match YubiKey::open_by_serial(Serial(serial)) {
            Ok(yk) => return yk,
            Err(e) if Instant::now() < deadline => {
                eprintln!("open_by_serial({serial}): {e}; retrying");
                thread::sleep(Duration::from_millis(250));
            }
            Err(e) => panic!("open_by_serial({serial}) failed: {e}"),
        }
    }
}

/// Make sure the card uses the default management key (a failed earlier
/// run may have left another one) and authenticate with it.
fn admin(yk: &mut YubiKey) {
    yk.authenticate(MgmKey::default())
        .expect("authenticate with the default management key");
}

fn public_key(spki: &x509_cert::spki::SubjectPublicKeyInfoOwned) -> VerifyingKey {
    VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).expect("P-256 point")
}

fn sign_and_verify(yk: &mut YubiKey, slot: SlotId, vk: &VerifyingKey, msg: &[u8]) {
    let digest = Sha256::digest(msg);
    yk.verify_pin(PIN).expect("verify PIN before signing");
    let der = piv::sign_data(yk, &digest, AlgorithmId::EccP256, slot).expect("sign_data");
    let sig = Signature::from_der(&der).expect("signature is DER");
    vk.verify_prehash(&digest, &sig)
        .expect("card signature verifies with p256");
}

fn generate(yk: &mut YubiKey, slot: SlotId) -> VerifyingKey {
    let spki = piv::generate(
        yk,
        slot,
        AlgorithmId::EccP256,
        PinPolicy::Default,
        TouchPolicy::Never,
    )
    .unwrap_or_else(|e| panic!("generate P-256 in {slot:?}: {e}"));
    public_key(&spki)
}

fn self_signed(yk: &mut YubiKey, slot: SlotId, vk: &VerifyingKey, cn: &str) -> Certificate {
    use p256::pkcs8::EncodePublicKey;
    let spki_der = vk.to_public_key_der().unwrap();
    let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::try_from(spki_der.as_bytes()).unwrap();
    yk.verify_pin(PIN).expect("verify PIN");
    Certificate::generate_self_signed::<_, p256::NistP256>(
        yk,
        slot,
        SerialNumber::from(42u32),
        Validity::from_now(Duration::from_secs(3600)).unwrap(),
        Name::from_str(&format!("CN={cn}")).unwrap(),
        spki,
        |_b| Ok(()),
    )
    .unwrap_or_else(|e| panic!("self-signed cert in {slot:?}: {e}"))
}

fn cert_key(cert: &Certificate) -> VerifyingKey {
    VerifyingKey::from_sec1_bytes(cert.subject_pki().subject_public_key.raw_bytes())
        .expect("P-256 key in certificate")
}

#[test]
fn open_each_card_by_its_serial() {
    let (_g, serials) = setup("open_each_card_by_its_serial");
    let mut names = Vec::new();
    for &s in &serials {
        let yk = open(s);
        assert_eq!(yk.serial(), Serial(s));
        assert_eq!(yk.version().major, 5, "reports 5.x firmware");
        eprintln!(
            "serial {s}: reader {:?}, version {}",
            yk.name(),
            yk.version()
        );
        names.push(yk.name().to_string());
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), serials.len(), "each card in its own reader");
    assert!(matches!(
        YubiKey::open_by_serial(Serial(4_000_000_000)),
        Err(Error::NotFound)
    ));
}

#[test]
fn pin_tries_and_verify() {
    let (_g, serials) = setup("pin_tries_and_verify");
    for &s in &serials {
        let mut yk = open(s);
        let before = yk.get_pin_retries().expect("get_pin_retries");
        assert!(before >= 2, "card {s}: PIN nearly blocked ({before} tries)");
        match yk.verify_pin(WRONG_PIN) {
            Err(Error::WrongPin { tries }) => assert_eq!(tries, before - 1),
            other => panic!("wrong PIN gave {other:?}"),
        }
        assert_eq!(yk.get_pin_retries().unwrap(), before - 1);
        yk.verify_pin(PIN).expect("right PIN");
        assert_eq!(yk.get_pin_retries().unwrap(), before, "counter reset");
    }
}

#[test]
fn management_key_authenticate_and_change() {
    let (_g, serials) = setup("management_key_authenticate_and_change");
    for &s in &serials {
        let mut yk = open(s);
        admin(&mut yk);
        let new = MgmKey::generate();
        new.set_manual(&mut yk, false)
            .expect("change management key (3DES)");
        assert!(
            yk.authenticate(MgmKey::default()).is_err(),
            "old key rejected"
        );
        yk.authenticate(new.clone()).expect("new key accepted");
        MgmKey::set_default(&mut yk).expect("back to the default key");
        admin(&mut yk);
    }
}

#[test]
fn generate_sign_and_certificates() {
    let (_g, serials) = setup("generate_sign_and_certificates");
    for &s in &serials {
        let mut yk = open(s);
        for slot in [SlotId::Signature, SlotId::Retired(RetiredSlotId::R1)] {
            admin(&mut yk);
            let vk = generate(&mut yk, slot);
            sign_and_verify(&mut yk, slot, &vk, b"tufkey smoke");
            admin(&mut yk);
            let cert = self_signed(&mut yk, slot, &vk, &format!("tufkey-{s}-{slot:?}"));
            let back = Certificate::read(&mut yk, slot).expect("read certificate");
            assert_eq!(
                back.cert.to_der().unwrap(),
                cert.cert.to_der().unwrap(),
                "certificate round-trips"
            );
            assert_eq!(cert_key(&back), vk, "public key from the certificate");
        }
        // All retired slots 0x82..=0x95 can hold a key.
        admin(&mut yk);
        for id in 0x82u8..=0x95 {
            let slot = SlotId::Retired(RetiredSlotId::try_from(id).unwrap());
            admin(&mut yk);
            let vk = generate(&mut yk, slot);
            if id == 0x95 {
                sign_and_verify(&mut yk, slot, &vk, b"last retired slot");
            }
        }
    }
}

#[test]
fn keys_survive_pull_and_reinsert() {
    let (_g, serials) = setup("keys_survive_pull_and_reinsert");
    let state_dir = std::env::var("TUFKEY_VCARD_STATE_DIR")
        .expect("TUFKEY_VCARD_STATE_DIR is not set; start the cards with scripts/vcard/start.sh");
    let s = serials[0];
    let slot = SlotId::Retired(RetiredSlotId::R2);
    let vk = {
        let mut yk = open(s);
        admin(&mut yk);
        let vk = generate(&mut yk, slot);
        admin(&mut yk);
        self_signed(&mut yk, slot, &vk, "persist");
        vk
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/vcard/card.sh");
    let card = |action: &str| {
        let st = Command::new("bash")
            .arg(&script)
            .args([state_dir.as_str(), action, &s.to_string()])
            .status()
            .expect("run card.sh");
        assert!(st.success(), "card.sh {action} {s} failed");
    };
    card("stop");
    assert!(
        matches!(YubiKey::open_by_serial(Serial(s)), Err(Error::NotFound)),
        "pulled card must be gone"
    );
    card("start");
    let mut yk = open(s);
    let cert = Certificate::read(&mut yk, slot).expect("certificate after re-insert");
    assert_eq!(cert_key(&cert), vk, "same key after re-insert");
    sign_and_verify(&mut yk, slot, &vk, b"after re-insert");
}

/// PIN semantics the daemon's YubiKey backend must live with (they match a
/// YubiKey with PIN policy ALWAYS for 9c and ONCE for retired slots; the
/// virtual card ignores the PIN/touch policy given at generation).
#[test]
fn pin_policy_and_reset_semantics() {
    let (_g, serials) = setup("pin_policy_and_reset_semantics");
    let s = serials[0];
    let r1 = SlotId::Retired(RetiredSlotId::R1);
    let digest = Sha256::digest(b"policy");
    let sign = |yk: &mut YubiKey, slot| piv::sign_data(yk, &digest, AlgorithmId::EccP256, slot);
    let mut yk = open(s);
    admin(&mut yk);
    let vk9c = generate(&mut yk, SlotId::Signature);
    admin(&mut yk);
    let vk82 = generate(&mut yk, r1);
    drop(yk); // disconnect resets the card: PIN and admin state are gone

    let mut yk = open(s);
    assert!(matches!(
        sign(&mut yk, SlotId::Signature),
        Err(Error::AuthenticationError)
    ));
    assert!(matches!(sign(&mut yk, r1), Err(Error::AuthenticationError)));
    yk.verify_pin(PIN).unwrap();
    let sig = sign(&mut yk, SlotId::Signature).expect("9c right after VERIFY");
    vk9c.verify_prehash(&digest, &Signature::from_der(&sig).unwrap())
        .unwrap();
    assert!(
        matches!(
            sign(&mut yk, SlotId::Signature),
            Err(Error::AuthenticationError)
        ),
        "9c needs a VERIFY before every signature"
    );
    for _ in 0..2 {
        let sig = sign(&mut yk, r1).expect("retired slot: PIN once per session");
        vk82.verify_prehash(&digest, &Signature::from_der(&sig).unwrap())
            .unwrap();
    }
    // get_pin_retries re-SELECTs PIV, which (as on a YubiKey) logs out.
    yk.get_pin_retries().unwrap();
    assert!(matches!(sign(&mut yk, r1), Err(Error::AuthenticationError)));
    drop(yk);

    let mut yk = open(s);
    assert!(
        matches!(sign(&mut yk, r1), Err(Error::AuthenticationError)),
        "reopening (card reset) forgets the PIN"
    );
}

/// Rediscovery from the card alone: `piv_keys` lists the slots with certs.
#[test]
fn piv_keys_lists_certified_slots() {
    let (_g, serials) = setup("piv_keys_lists_certified_slots");
    let s = serials[0];
    let mut yk = open(s);
    let mut want = Vec::new();
    for slot in [SlotId::Signature, SlotId::Retired(RetiredSlotId::R4)] {
        admin(&mut yk);
        let vk = generate(&mut yk, slot);
        admin(&mut yk);
        self_signed(&mut yk, slot, &vk, "listed");
        want.push((slot, vk));
    }
    let keys = yk.piv_keys().expect("piv_keys");
    for (slot, vk) in want {
        let k = keys
            .iter()
            .find(|k| k.slot() == slot)
            .unwrap_or_else(|| panic!("{slot:?} not listed"));
        assert_eq!(cert_key(k.certificate()), vk);
    }
}

/// Yubico's P-256 import: needs the management key, then the slot signs as the
/// imported key; a refused import leaves nothing behind for later generations.
#[test]
fn import_p256_needs_the_management_key_and_signs_as_the_imported_key() {
    let (_g, serials) = setup("import_p256_needs_the_management_key_and_signs_as_the_imported_key");
    let mut yk = open(serials[0]);
    let slot = SlotId::Retired(RetiredSlotId::R5);
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let imported = VerifyingKey::from(&p256::ecdsa::SigningKey::from(&secret));
    let import = |yk: &mut YubiKey| {
        piv::import_ecc_key(
            yk,
            slot,
            AlgorithmId::EccP256,
            &secret.to_bytes(),
            TouchPolicy::Never,
            PinPolicy::Once,
        )
    };

    yk.verify_pin(PIN).expect("verify PIN");
    assert!(
        matches!(import(&mut yk), Err(Error::AuthenticationError)),
        "import without the management key"
    );
    admin(&mut yk);
    let generated = generate(&mut yk, slot);
    assert_ne!(generated, imported, "a refused import is not used later");

    admin(&mut yk);
    import(&mut yk).expect("import P-256");
    sign_and_verify(&mut yk, slot, &imported, b"imported");
    admin(&mut yk);
    let fresh = generate(&mut yk, slot);
    assert_ne!(
        fresh, imported,
        "generation after an import makes a new key"
    );
    sign_and_verify(&mut yk, slot, &fresh, b"generated again");
}

/// What the virtual card does not do (documented in README.md).
#[test]
fn unsupported_features_fail_cleanly() {
    let (_g, serials) = setup("unsupported_features_fail_cleanly");
    let mut yk = open(serials[0]);
    assert!(
        piv::metadata(&mut yk, SlotId::Signature).is_err(),
        "no GET METADATA"
    );
    assert!(
        piv::attest(&mut yk, SlotId::Signature).is_err(),
        "no attestation"
    );
}
