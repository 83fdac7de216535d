//! What users of release 0.1 have on disk and on their YubiKeys still works with
//! the current daemon: a software keystore written by 0.1.0 loads with the same
//! key IDs, owners and public keys, signs, and is not rewritten; a YubiKey key
//! whose certificate has 0.1's subject (policies in `description=`, before they
//! moved to Yubico's policy extension) is still discovered and signs.
//!
//! The fixtures were written by the 0.1.0 binaries (tests/fixtures/README.md): a
//! test that generated its "old" files with the current code would prove nothing.

use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;
use std::collections::BTreeSet;
use tufkey_e2e::daemon::{Daemon, DaemonOptions, Sandbox};
use tufkey_e2e::fixtures::{copy_private_tree, fixtures_dir, snapshot};
use tufkey_e2e::vcard::{self, unlock, PIN};
use yubikey::certificate::Certificate;
use yubikey::piv::{AlgorithmId, SlotId};
use yubikey::MgmKey;

/// The passphrase of tests/fixtures/store-v0.1 (a test fixture, protecting nothing).
const STORE_V0_1_PASSPHRASE: &str = "tufkey legacy fixture v0.1 - do not regenerate";
const GUN: &str = "example.com/legacy";

/// What 0.1.0 printed for `tufkey --json key list` on that store.
fn recorded_keys() -> Vec<Value> {
    let path = fixtures_dir().join("store-v0.1-keys.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let keys: Value = serde_json::from_str(&text).expect("recorded key list is JSON");
    keys.as_array().expect("a list of keys").clone()
}

fn public_key(key: &Value) -> p256::ecdsa::VerifyingKey {
    let pem = key["public_pem"]
        .as_str()
        .unwrap_or_else(|| panic!("no public_pem: {key}"));
    p256::ecdsa::VerifyingKey::from_public_key_pem(pem)
        .unwrap_or_else(|e| panic!("public_pem of {}: {e}", key["keyid"]))
}

/// `tufkey sign-raw --key KEYID --format FORMAT -` with `payload` on stdin.
fn sign_raw(daemon: &Daemon, keyid: &str, format: &str, payload: &[u8]) -> String {
    let output = daemon.cli_with_stdin(
        &["sign-raw", "--key", keyid, "--format", format, "-"],
        payload,
    );
    assert!(
        output.success,
        "sign-raw --key {keyid} --format {format} failed: {}",
        output.stderr
    );
    output.stdout.trim().to_owned()
}

/// Signs `payload` with the key in both encodings and checks both signatures
/// against `public` (the public key the old release recorded).
fn assert_signs(daemon: &Daemon, keyid: &str, public: &p256::ecdsa::VerifyingKey, payload: &[u8]) {
    let tuf = sign_raw(daemon, keyid, "tuf", payload);
    let der = hex::decode(&tuf).unwrap_or_else(|e| panic!("tuf signature {tuf:?}: {e}"));
    let signature = p256::ecdsa::Signature::from_der(&der).expect("a DER ECDSA signature");
    public
        .verify(payload, &signature)
        .unwrap_or_else(|e| panic!("{keyid}: TUF signature does not verify: {e}"));

    let notary = sign_raw(daemon, keyid, "notary", payload);
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&notary)
        .unwrap_or_else(|e| panic!("notary signature {notary:?}: {e}"));
    let signature = p256::ecdsa::Signature::from_slice(&raw).expect("raw r||s");
    public
        .verify(payload, &signature)
        .unwrap_or_else(|e| panic!("{keyid}: Notary signature does not verify: {e}"));
}

#[test]
fn a_software_keystore_written_by_0_1_loads_with_the_same_keys_signs_and_is_not_rewritten() {
    let recorded = recorded_keys();
    assert_eq!(recorded.len(), 3, "the fixture's three keys");
    let sandbox = Sandbox::new();
    copy_private_tree(&fixtures_dir().join("store-v0.1"), &sandbox.store());
    let before = snapshot(&sandbox.store());
    let fixture = snapshot(&fixtures_dir().join("store-v0.1"));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        fixture.keys().collect::<Vec<_>>()
    );
    assert_eq!(before.len(), 4, "store.json and three key files");

    let daemon = sandbox.start(&DaemonOptions {
        passphrase: Some(STORE_V0_1_PASSPHRASE.into()),
        ..DaemonOptions::default()
    });
    let listed = daemon.cli_ok(&["--json", "key", "list"]).json();
    let listed = listed.as_array().expect("key list is a JSON list");
    let keyids = |keys: &[Value]| -> BTreeSet<String> {
        keys.iter()
            .map(|key| key["keyid"].as_str().expect("keyid").to_owned())
            .collect()
    };
    assert_eq!(keyids(listed), keyids(&recorded), "{listed:?}");

    for old in &recorded {
        let keyid = old["keyid"].as_str().unwrap();
        let new = listed.iter().find(|key| key["keyid"] == *keyid).unwrap();
        for field in ["notary_keyid", "gun", "role", "exportable", "created_at"] {
            assert_eq!(new[field], old[field], "{field} of {keyid} changed");
        }
        assert_eq!(new["gun"], GUN);
        assert_eq!(new["backend"], "software", "{new}");
        assert_eq!(new["available"], true, "{new}");
        assert_eq!(public_key(new), public_key(old), "public key of {keyid}");
        assert_eq!(
            &daemon.cli_ok(&["--json", "key", "show", keyid]).json(),
            new,
            "key show and key list disagree"
        );

        let payload = format!("signed by the {} key after the upgrade", old["role"]);
        assert_signs(&daemon, keyid, &public_key(old), payload.as_bytes());
    }
    let exportable: Vec<&Value> = listed
        .iter()
        .filter(|key| key["exportable"] == true)
        .collect();
    assert_eq!(
        exportable.len(),
        1,
        "only the targets key was created exportable"
    );
    assert_eq!(exportable[0]["role"], "targets");

    // A key created after the upgrade lives next to the old ones.
    let added = daemon.generate_keyid(GUN, "snapshot");
    let listed = daemon.cli_ok(&["--json", "key", "list"]).json();
    assert_eq!(listed.as_array().unwrap().len(), 4, "{listed}");
    assert!(keyids(listed.as_array().unwrap()).contains(&added));
    daemon.stop();

    let after = snapshot(&sandbox.store());
    for (path, old) in &before {
        let new = after
            .get(path)
            .unwrap_or_else(|| panic!("{} is gone", path.display()));
        assert!(
            new.bytes == old.bytes,
            "{} was rewritten with other bytes",
            path.display()
        );
        assert_eq!(
            (new.inode, new.modified),
            (old.inode, old.modified),
            "{} was rewritten with the same bytes (new inode or mtime)",
            path.display()
        );
        assert_eq!(
            new.bytes,
            fixture[path].bytes,
            "{} differs from the fixture",
            path.display()
        );
    }
}

/// The retired slot the test puts the 0.1-style key in.
const LEGACY_SLOT: u8 = 0x85;

/// Generates a P-256 key on the card in [`LEGACY_SLOT`] (PIN once, no touch) and
/// writes a certificate for it carrying the subject, serial number and validity
/// of the certificate 0.1.0 wrote (tests/fixtures/yubikey-v0.1). Returns the
/// key's public half.
fn put_key_with_0_1_certificate(serial: u32) -> p256::ecdsa::VerifyingKey {
    let path = fixtures_dir().join("yubikey-v0.1/targets-certificate.der");
    let der = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let old = Certificate::from_bytes(der)
        .expect("0.1's certificate parses")
        .cert;
    let subject = old.tbs_certificate.subject.clone();
    // RFC 4514 lists the RDNs last to first.
    assert_eq!(
        subject.to_string(),
        "DESCRIPTION=touch=never\\;pin=once,CN=example.com/legacy,OU=targets,O=tufkey",
        "the fixture is not 0.1's form"
    );
    assert!(
        old.tbs_certificate.extensions.is_none(),
        "0.1 wrote no extensions"
    );

    let mut yubikey = vcard::open(serial);
    yubikey
        .authenticate(MgmKey::default())
        .expect("factory management key");
    let slot = SlotId::try_from(LEGACY_SLOT).expect("a retired slot");
    let spki = yubikey::piv::generate(
        &mut yubikey,
        slot,
        AlgorithmId::EccP256,
        yubikey::PinPolicy::Once,
        yubikey::TouchPolicy::Never,
    )
    .expect("generate P-256 on the card");
    let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
        .expect("a P-256 public key");
    // The certificate is signed by the new key, on the card: that takes the PIN.
    yubikey.verify_pin(PIN.as_bytes()).expect("factory PIN");
    let written = Certificate::generate_self_signed::<_, p256::NistP256>(
        &mut yubikey,
        slot,
        old.tbs_certificate.serial_number.clone(),
        old.tbs_certificate.validity,
        subject.clone(),
        spki,
        |_| Ok(()),
    )
    .expect("write the certificate");
    assert_eq!(written.cert.tbs_certificate.subject, subject);
    public
}

#[test]
fn a_yubikey_key_whose_certificate_has_the_0_1_subject_is_still_discovered_and_signs() {
    let cards = vcard::cards();
    let serial = cards.serial(0);
    vcard::reset(serial);
    let public = put_key_with_0_1_certificate(serial);

    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::with_yubikeys());
    let listed = daemon.cli_ok(&["--json", "key", "list"]).json();
    // Other cards may hold keys left by other tests: look at this card's.
    let on_card: Vec<&Value> = listed
        .as_array()
        .expect("key list is a JSON list")
        .iter()
        .filter(|key| key["serial"] == serial)
        .collect();
    assert_eq!(on_card.len(), 1, "{listed}");
    let key = on_card[0];
    assert_eq!(key["backend"], "yubikey", "{key}");
    assert_eq!(key["slot"], "85", "{key}");
    assert_eq!(key["gun"], GUN, "{key}");
    assert_eq!(key["role"], "targets", "{key}");
    assert_eq!(key["pin_policy"], "once", "{key}");
    assert_eq!(key["touch_policy"], "never", "{key}");
    assert_eq!(key["exportable"], false, "{key}");
    assert_eq!(key["available"], true, "{key}");
    // notBefore of 0.1's certificate: when 0.1.0 generated the key.
    assert_eq!(key["created_at"], "2026-11-27T23:26:05Z", "{key}");
    assert_eq!(public_key(key), public, "the card's key");
    let keyid = key["keyid"].as_str().expect("keyid");

    let unlocked = unlock(&daemon, serial, PIN);
    assert!(unlocked.success, "{}", unlocked.stderr);
    assert_signs(
        &daemon,
        keyid,
        &public,
        b"signed on a YubiKey set up by 0.1",
    );
    daemon.stop();
    vcard::reset(serial);
}
