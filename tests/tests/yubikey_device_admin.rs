//! Managing a (virtual) YubiKey: the factory management key is refused for
//! generation until `device init` replaces it with a random PIN-protected one, after
//! which the factory key no longer authenticates and generation needs no key typed;
//! keys are never exportable; attestation the card cannot do says so.

use tufkey_e2e::daemon::{DaemonOptions, Sandbox};
use tufkey_e2e::vcard::{self, generate_on_card, PIN};

const GUN: &str = "example.com/admin";

#[test]
fn the_factory_management_key_is_refused_until_device_init_replaces_it() {
    let cards = vcard::cards();
    let serial = cards.serial(2);
    let sandbox = Sandbox::new();
    let daemon = vcard::daemon_on_unlocked_card(&sandbox, serial, &DaemonOptions::with_yubikeys());
    let generate = [
        "key",
        "generate",
        "--gun",
        GUN,
        "--role",
        "targets",
        "--backend",
        "yubikey",
        "--serial",
    ];
    let serial_text = serial.to_string();
    let mut args = generate.to_vec();
    args.push(&serial_text);
    daemon
        .cli(&args)
        .assert_fails_with(&format!("YubiKey {serial} still has the factory management key: run `tufkey device init --serial {serial}`"));

    let init = daemon.cli_with_stdin(
        &[
            "--json",
            "device",
            "init",
            "--serial",
            &serial_text,
            "--pin-stdin",
        ],
        format!("{PIN}\n").as_bytes(),
    );
    assert!(init.success, "{}", init.stderr);
    let init = init.json();
    assert_eq!(init["management_key_algorithm"], "TDES");
    assert_eq!(
        init["management_key_storage"],
        "pin-protected on the device"
    );
    assert!(
        !vcard::factory_management_key_works(serial),
        "the factory key still authenticates"
    );

    let mut json_args = vec!["--json"];
    json_args.extend_from_slice(&args);
    let key = daemon.cli_ok(&json_args).json();
    assert_eq!(key["serial"], serial);
    assert_eq!(key["slot"], "82");
    vcard::reset(serial);
}

#[test]
fn yubikey_keys_are_never_exportable_and_unsupported_attestation_says_so() {
    let cards = vcard::cards();
    let serial = cards.serial(2);
    let sandbox = Sandbox::new();
    let daemon = vcard::daemon_on_unlocked_card(&sandbox, serial, &DaemonOptions::with_yubikeys());
    daemon
        .cli(&[
            "key",
            "generate",
            "--gun",
            GUN,
            "--role",
            "root",
            "--backend",
            "yubikey",
            "--exportable",
            "--allow-default-mgmt-key",
        ])
        .assert_fails_with("YubiKey keys never leave the device");

    let key = generate_on_card(
        &daemon,
        serial,
        GUN,
        "root",
        &["--allow-default-mgmt-key", "--touch", "always"],
    );
    assert_eq!(key["exportable"], false);
    assert_eq!(key["touch_policy"], "always");
    let keyid = key["keyid"].as_str().unwrap();
    daemon
        .cli(&["key", "attest", keyid])
        .assert_fails_with(&format!(
            "attestation is not supported by this device (YubiKey {serial})"
        ));

    let software = daemon.generate(GUN, "snapshot");
    daemon
        .cli(&["key", "attest", software["keyid"].as_str().unwrap()])
        .assert_fails_with("is not on a YubiKey");

    // A touch-policy key: the CLI tells the user to touch the key while it signs.
    let payload = sandbox.path("payload");
    std::fs::write(&payload, b"touch me").unwrap();
    let signed = daemon.cli_ok(&["sign-raw", "--key", keyid, payload.to_str().unwrap()]);
    assert!(
        signed.stderr.contains(&format!("touch YubiKey {serial}")),
        "{}",
        signed.stderr
    );

    daemon.cli_ok(&["key", "delete", keyid, "--yes"]);
    let devices = daemon.cli_ok(&["--json", "device", "list"]).json();
    let on_card = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["serial"] == serial)
        .unwrap();
    assert_eq!(
        on_card["keys"].as_array().unwrap().len(),
        0,
        "the deleted key is gone from the card: {on_card}"
    );
}
