//! Two (virtual) YubiKeys at once: keys land on the card asked for, each card lists
//! its own keys, signing uses the right card, and leaving out --serial with two
//! cards present asks which one.

use tufkey_e2e::daemon::{DaemonOptions, Sandbox};
use tufkey_e2e::vcard::{self, generate_on_card, sign_raw, signature_verifies, unlock, PIN};

const GUN: &str = "example.com/two";

#[test]
fn keys_land_on_the_card_asked_for_and_each_signs_on_its_own_card() {
    let cards = vcard::cards();
    let (first, second) = (cards.serial(1), cards.serial(2));
    vcard::reset(first);
    vcard::reset(second);
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::with_yubikeys());
    for serial in [first, second] {
        assert!(unlock(&daemon, serial, PIN).success);
    }
    let on_first = generate_on_card(&daemon, first, GUN, "root", &["--allow-default-mgmt-key"]);
    let on_second = generate_on_card(&daemon, second, GUN, "root", &["--allow-default-mgmt-key"]);
    assert_eq!(on_first["serial"], first);
    assert_eq!(on_second["serial"], second);
    assert_eq!(
        (on_first["slot"].as_str(), on_second["slot"].as_str()),
        (Some("9c"), Some("9c"))
    );

    let devices = daemon.cli_ok(&["--json", "device", "list"]).json();
    for (serial, key) in [(first, &on_first), (second, &on_second)] {
        let device = devices
            .as_array()
            .unwrap()
            .iter()
            .find(|device| device["serial"] == serial)
            .unwrap_or_else(|| panic!("YubiKey {serial} not listed: {devices}"));
        let keyids: Vec<&str> = device["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["keyid"].as_str().unwrap())
            .collect();
        assert_eq!(
            keyids,
            [key["keyid"].as_str().unwrap()],
            "YubiKey {serial} holds exactly its key"
        );
        assert_eq!(device["firmware"], "5.4.3");
        assert_eq!(device["pin_cached"], true);
    }

    // Each key exists only on its card: a valid signature proves which card signed.
    for key in [&on_first, &on_second] {
        let signature = sign_raw(
            &daemon,
            sandbox.dir.path(),
            key["keyid"].as_str().unwrap(),
            b"two cards",
        )
        .unwrap_or_else(|failure| panic!("{}", failure.stderr));
        assert!(signature_verifies(key, b"two cards", &signature));
    }

    // With the first card pulled, its key is refused and the second still signs.
    cards.pull(first);
    sign_raw(
        &daemon,
        sandbox.dir.path(),
        on_first["keyid"].as_str().unwrap(),
        b"pulled",
    )
    .expect_err("signed without the card")
    .assert_fails_with(&format!("insert YubiKey {first}"));
    let signature = sign_raw(
        &daemon,
        sandbox.dir.path(),
        on_second["keyid"].as_str().unwrap(),
        b"still here",
    )
    .expect("the other card signs");
    assert!(signature_verifies(&on_second, b"still here", &signature));
    cards.insert(first);
}

#[test]
fn without_serial_several_cards_are_named_and_the_choice_is_left_to_the_user() {
    let cards = vcard::cards();
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::with_yubikeys());
    let failure = daemon.cli(&[
        "key",
        "generate",
        "--gun",
        GUN,
        "--role",
        "targets",
        "--backend",
        "yubikey",
    ]);
    failure.assert_fails_with("several YubiKeys are plugged in");
    for serial in &cards.serials {
        assert!(
            failure.stderr.contains(&serial.to_string()),
            "{}",
            failure.stderr
        );
    }
    assert!(failure.stderr.contains("--serial"), "{}", failure.stderr);
}
