//! Which card gets a cached PIN, what a deleted YubiKey key leaves behind, and the
//! touch a root key needs, through the real CLI, daemon and pcscd with the virtual
//! cards: a pulled and re-inserted card must be unlocked again; a look-alike card
//! reporting an unlocked card's serial (a fresh card with its own attestation
//! certificate, in another reader) is sent no PIN at all; `key delete` destroys the
//! private key, not just its certificate; root keys in 9c need a touch unless told
//! otherwise.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use tufkey_e2e::daemon::{Daemon, DaemonOptions, Sandbox};
use tufkey_e2e::vcard::{self, generate_on_card, sign_raw, signature_verifies, unlock, PIN};

const GUN: &str = "example.com/identity";

/// Waits (10 s at most) until `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The reader the daemon lists card `serial` in, if it lists it.
fn reader_of(daemon: &Daemon, serial: u32) -> Option<String> {
    daemon
        .cli_ok(&["--json", "device", "list"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|device| device["serial"] == serial)
        .map(|device| device["reader"].as_str().unwrap().to_owned())
}

fn key_available(daemon: &Daemon, keyid: &str) -> bool {
    daemon.cli_ok(&["--json", "key", "show", keyid]).json()["available"] == true
}

/// A daemon with a targets key on card `serial` (reset first), PIN cached.
fn daemon_with_key(sandbox: &Sandbox, serial: u32) -> (Daemon, Value) {
    vcard::daemon_with_targets_key(sandbox, serial, &DaemonOptions::with_yubikeys(), GUN)
}

#[test]
fn a_pulled_card_must_be_unlocked_again_once_it_is_back() {
    let cards = vcard::cards();
    let serial = cards.serial(2);
    let sandbox = Sandbox::new();
    let (daemon, key) = daemon_with_key(&sandbox, serial);
    let keyid = key["keyid"].as_str().unwrap();
    let signature = sign_raw(&daemon, sandbox.dir.path(), keyid, b"before").unwrap();
    assert!(signature_verifies(&key, b"before", &signature));

    cards.pull(serial);
    wait_until("the pulled card's key is unavailable", || {
        !key_available(&daemon, keyid)
    });
    cards.insert(serial);
    wait_until("the card is seen back", || key_available(&daemon, keyid));

    let refused = sign_raw(&daemon, sandbox.dir.path(), keyid, b"after")
        .expect_err("signed with a PIN cached before the card was pulled");
    refused.assert_fails_with(&format!(
        "YubiKey {serial} needs its PIN: run `tufkey unlock --serial {serial}`"
    ));
    assert!(
        refused.stderr.contains("FailedPrecondition"),
        "{}",
        refused.stderr
    );
    let device = daemon.cli_ok(&["--json", "device", "list"]).json();
    let device = device
        .as_array()
        .unwrap()
        .iter()
        .find(|device| device["serial"] == serial)
        .unwrap();
    assert_eq!(device["pin_cached"], false, "{device}");
    assert_eq!(device["pin_tries_left"], 3, "no PIN was tried: {device}");

    assert!(unlock(&daemon, serial, PIN).success);
    let signature = sign_raw(&daemon, sandbox.dir.path(), keyid, b"after").unwrap();
    assert!(signature_verifies(&key, b"after", &signature));
    vcard::reset(serial);
}

#[test]
fn a_lookalike_reporting_an_unlocked_cards_serial_is_not_sent_the_pin() {
    let cards = vcard::cards();
    let (genuine, host) = (cards.serial(0), cards.serial(1));
    let sandbox = Sandbox::new();
    let (daemon, key) = daemon_with_key(&sandbox, genuine);
    let keyid = key["keyid"].as_str().unwrap();
    let signature = sign_raw(&daemon, sandbox.dir.path(), keyid, b"genuine").unwrap();
    assert!(signature_verifies(&key, b"genuine", &signature));
    let genuine_reader = reader_of(&daemon, genuine).unwrap();
    let host_reader = reader_of(&daemon, host).unwrap();
    assert_ne!(genuine_reader, host_reader);

    // The genuine card stays in its reader, unlocked; the look-alike reports its
    // serial from another reader and becomes the card the daemon talks to.
    let lookalike = cards.insert_lookalike(genuine, host);
    wait_until("the daemon talks to the look-alike", || {
        reader_of(&daemon, genuine).as_deref() == Some(host_reader.as_str())
    });

    // Generating a key on "that card" needs the cached PIN: not for the look-alike.
    let refused = daemon.cli(&[
        "key",
        "generate",
        "--gun",
        GUN,
        "--role",
        "snapshot",
        "--backend",
        "yubikey",
        "--serial",
        &genuine.to_string(),
        "--allow-default-mgmt-key",
    ]);
    refused.assert_fails_with(&format!(
        "the YubiKey reporting serial {genuine} is not the card its PIN was given for"
    ));
    assert!(
        refused.stderr.contains("FailedPrecondition"),
        "{}",
        refused.stderr
    );
    // Nor does signing with the genuine card's key send it anything.
    sign_raw(&daemon, sandbox.dir.path(), keyid, b"look-alike")
        .expect_err("signed on a look-alike");
    assert_eq!(
        lookalike.pins_received(),
        0,
        "the look-alike was sent a PIN"
    );
    // Control: the look-alike does count the PINs it is sent.
    let mut readers = yubikey::reader::Context::open().unwrap();
    let mut in_host_reader = readers
        .iter()
        .unwrap()
        .find(|reader| reader.name() == host_reader)
        .expect("the look-alike's reader")
        .open()
        .unwrap();
    assert_eq!(in_host_reader.serial().0, genuine);
    in_host_reader
        .verify_pin(b"00000000")
        .expect_err("a wrong PIN");
    drop(in_host_reader);
    assert_eq!(lookalike.pins_received(), 1);
    drop(lookalike);
    vcard::reset(genuine);
}

#[test]
fn deleting_a_key_destroys_the_private_key_in_its_slot() {
    let cards = vcard::cards();
    let serial = cards.serial(3);
    let sandbox = Sandbox::new();
    let (daemon, key) = daemon_with_key(&sandbox, serial);
    assert_eq!(key["slot"], "82", "{key}");
    let keyid = key["keyid"].as_str().unwrap();
    let old_key =
        p256::ecdsa::VerifyingKey::from_public_key_pem(key["public_pem"].as_str().unwrap())
            .unwrap();
    let digest: [u8; 32] = Sha256::digest(b"after the deletion").into();
    let verifies_with_old_key = |der: &[u8]| {
        p256::ecdsa::Signature::from_der(der)
            .is_ok_and(|signature| old_key.verify_prehash(&digest, &signature).is_ok())
    };
    // Control: before the deletion, the slot signs as the key.
    let before = vcard::sign_in_slot(serial, 0x82, &digest).unwrap();
    assert!(verifies_with_old_key(&before));

    daemon.cli_ok(&["key", "delete", keyid, "--yes"]);
    daemon.cli(&["key", "show", keyid]).assert_fails_with(keyid);

    // Whatever the slot signs now, the deleted key's public key verifies none of it.
    for attempt in 0..3 {
        match vcard::sign_in_slot(serial, 0x82, &digest) {
            Ok(signature) => assert!(
                !verifies_with_old_key(&signature),
                "attempt {attempt}: the deleted key still signs"
            ),
            Err(error) => eprintln!("attempt {attempt}: the slot does not sign ({error})"),
        }
    }
    // The slot is free for a new key.
    let next = generate_on_card(
        &daemon,
        serial,
        GUN,
        "targets",
        &["--allow-default-mgmt-key"],
    );
    assert_eq!(next["slot"], "82", "{next}");
    assert_ne!(next["public_pem"], key["public_pem"]);
    vcard::reset(serial);
}

#[test]
fn root_keys_need_a_touch_unless_told_otherwise_and_the_choice_is_recorded() {
    let cards = vcard::cards();
    let serial = cards.serial(2);
    let sandbox = Sandbox::new();
    let daemon = vcard::daemon_on_unlocked_card(&sandbox, serial, &DaemonOptions::with_yubikeys());

    let root = generate_on_card(&daemon, serial, GUN, "root", &["--allow-default-mgmt-key"]);
    assert_eq!(
        (&root["slot"], &root["touch_policy"]),
        (&"9c".into(), &"always".into())
    );
    let untouched = generate_on_card(
        &daemon,
        serial,
        "example.com/other",
        "root",
        &[
            "--allow-default-mgmt-key",
            "--slot",
            "83",
            "--touch",
            "never",
        ],
    );
    assert_eq!(untouched["touch_policy"], "never", "{untouched}");
    let targets = generate_on_card(
        &daemon,
        serial,
        GUN,
        "targets",
        &["--allow-default-mgmt-key"],
    );
    assert_eq!(targets["touch_policy"], "never", "{targets}");

    // Recorded on the card: a daemon with an empty store reads the same back.
    daemon.stop();
    let fresh = Sandbox::new();
    let second = fresh.start(&DaemonOptions::with_yubikeys());
    for (key, touch) in [
        (&root, "always"),
        (&untouched, "never"),
        (&targets, "never"),
    ] {
        let shown = second
            .cli_ok(&["--json", "key", "show", key["keyid"].as_str().unwrap()])
            .json();
        assert_eq!(shown["touch_policy"], touch, "{shown}");
    }

    // Signing with the root key tells the user to touch the card.
    assert!(unlock(&second, serial, PIN).success);
    let payload = fresh.path("payload");
    std::fs::write(&payload, b"touch").unwrap();
    let signed = second.cli_ok(&[
        "sign-raw",
        "--key",
        root["keyid"].as_str().unwrap(),
        payload.to_str().unwrap(),
    ]);
    assert!(
        signed.stderr.contains(&format!("touch YubiKey {serial}")),
        "{}",
        signed.stderr
    );
    vcard::reset(serial);
}
