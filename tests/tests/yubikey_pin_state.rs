//! Back-to-back YubiKey signatures skip the card exchanges that only re-establish
//! what the daemon already knows about the card (its identity, and that the cached
//! PIN filled its counter). That knowledge must not outlive the connection it was
//! learned on: once another program has used the card (which resets it), the daemon
//! checks the tries again and still refuses to spend a cached PIN at one try left.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use tufkey_e2e::daemon::{DaemonOptions, Sandbox};
use tufkey_e2e::vcard::{self, sign_raw, signature_verifies};

#[test]
fn after_another_program_used_the_card_the_tries_are_checked_again() {
    let cards = vcard::cards();
    let serial = cards.serial(2);
    let sandbox = Sandbox::new();
    let (daemon, key) = vcard::daemon_with_targets_key(
        &sandbox,
        serial,
        &DaemonOptions::with_yubikeys(),
        "example.com/pin-state",
    );
    let keyid = key["keyid"].as_str().unwrap();

    // Several signatures in a row on one connection: the PIN state becomes known.
    for payload in [&b"one"[..], b"two", b"three"] {
        let signature = sign_raw(&daemon, sandbox.dir.path(), keyid, payload).expect("sign");
        assert!(signature_verifies(&key, payload, &signature));
    }
    assert_eq!(vcard::pin_tries(serial), 3);

    // Another program spends two tries.
    assert_eq!(vcard::type_wrong_pin(serial), 2);
    assert_eq!(vcard::type_wrong_pin(serial), 1);

    sign_raw(&daemon, sandbox.dir.path(), keyid, b"four")
        .expect_err("used a cached PIN with one try left")
        .assert_fails_with(&format!(
            "YubiKey {serial} has 1 PIN try left, so tufkeyd will not use a cached PIN"
        ));
    assert_eq!(vcard::pin_tries(serial), 1, "the cached PIN was not tried");
    vcard::reset(serial);
}
