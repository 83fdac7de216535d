//! TUF keys on a (virtual) YubiKey through the real CLI, daemon and pcscd: root in
//! slot 9c and targets in slot 82 sign a repository that python-tuf and tough
//! accept, and a second daemon with an empty store finds the same keys on the card.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use tufkey_e2e::daemon::{DaemonOptions, Sandbox};
use tufkey_e2e::tuf_repo::{RepoBuilder, RepoKeys, RoleKey};
use tufkey_e2e::vcard::{self, generate_on_card, sign_raw, signature_verifies, unlock, PIN};
use tufkey_e2e::verify::{verify_with_python_tuf, verify_with_tough};

const GUN: &str = "docker.io/acme/app";

fn role_key(key: &Value) -> RoleKey {
    RoleKey::new(key["keyid"].as_str().unwrap(), key["tuf_key"].clone())
}

fn assert_on_card(key: &Value, serial: u32, slot: &str, pin_policy: &str, touch_policy: &str) {
    assert_eq!(key["backend"], "yubikey", "{key}");
    assert_eq!(key["serial"], serial, "{key}");
    assert_eq!(key["slot"], slot, "{key}");
    assert_eq!(key["pin_policy"], pin_policy, "{key}");
    assert_eq!(key["touch_policy"], touch_policy, "{key}");
    assert_eq!(key["exportable"], false, "{key}");
    assert_eq!(key["available"], true, "{key}");
}

#[test]
fn root_in_9c_and_targets_in_82_sign_a_repository_that_python_tuf_and_tough_accept() {
    let cards = vcard::cards();
    let serial = cards.serial(0);
    let sandbox = Sandbox::new();
    let daemon = vcard::daemon_on_unlocked_card(&sandbox, serial, &DaemonOptions::with_yubikeys());

    let root = generate_on_card(&daemon, serial, GUN, "root", &["--allow-default-mgmt-key"]);
    let targets = generate_on_card(
        &daemon,
        serial,
        GUN,
        "targets",
        &["--allow-default-mgmt-key"],
    );
    // Root needs a touch by default; online roles do not.
    assert_on_card(&root, serial, "9c", "always", "always");
    assert_on_card(&targets, serial, "82", "once", "never");
    assert_eq!(
        daemon
            .cli_ok(&["--json", "key", "show", root["keyid"].as_str().unwrap()])
            .json(),
        root
    );

    let snapshot = daemon.generate(GUN, "snapshot");
    let timestamp = daemon.generate(GUN, "timestamp");
    assert_eq!(snapshot["backend"], "software");
    assert!(snapshot["serial"].is_null() && snapshot["slot"].is_null());

    let repo = RepoBuilder::new(RepoKeys::single(
        role_key(&root),
        role_key(&targets),
        role_key(&snapshot),
        role_key(&timestamp),
    ))
    .target("app-1.0.tar.gz", b"signed on a YubiKey".to_vec())
    .build(&sandbox.path("repo"), &mut daemon.metadata_signer())
    .expect("build and sign the repository");
    verify_with_python_tuf(&repo.dir)
        .expect("python-tuf rejected root/targets signed on the YubiKey");
    verify_with_tough(&repo.dir).expect("tough rejected root/targets signed on the YubiKey");
}

#[test]
fn a_second_daemon_with_an_empty_store_finds_the_same_keys_on_the_card_and_signs_with_them() {
    let cards = vcard::cards();
    let serial = cards.serial(0);
    vcard::reset(serial);
    let first_sandbox = Sandbox::new();
    let first = first_sandbox.start(&DaemonOptions::with_yubikeys());
    assert!(unlock(&first, serial, PIN).success);
    let root = generate_on_card(&first, serial, GUN, "root", &["--allow-default-mgmt-key"]);
    let delegation = generate_on_card(
        &first,
        serial,
        "example.com/other",
        "targets/releases",
        &[
            "--allow-default-mgmt-key",
            "--slot",
            "8a",
            "--touch",
            "cached",
        ],
    );
    first.stop();

    let sandbox = Sandbox::new();
    let second = sandbox.start(&DaemonOptions::with_yubikeys());
    let listed = second.cli_ok(&["--json", "key", "list"]).json();
    // Other cards may hold keys left by other tests: look at this card's.
    let listed: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|key| key["serial"] == serial)
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let mut expected = vec![root.clone(), delegation.clone()];
    expected.sort_by(|a, b| a["keyid"].as_str().cmp(&b["keyid"].as_str()));
    for (found, generated) in listed.into_iter().zip(&expected) {
        for field in [
            "keyid",
            "notary_keyid",
            "gun",
            "role",
            "public_pem",
            "serial",
            "slot",
            "touch_policy",
            "pin_policy",
            "created_at",
        ] {
            assert_eq!(
                found[field], generated[field],
                "{field} differs for {}",
                generated["keyid"]
            );
        }
    }
    assert!(
        std::fs::read_dir(sandbox.store().join("keys"))
            .unwrap()
            .next()
            .is_none(),
        "the second daemon's software store stays empty"
    );

    let unsigned = sign_raw(
        &second,
        sandbox.dir.path(),
        root["keyid"].as_str().unwrap(),
        b"payload",
    )
    .expect_err("no PIN yet");
    // Root needs a touch: the CLI says so on a line of its own before the error.
    assert!(
        unsigned.stderr.contains(&format!("touch YubiKey {serial}")),
        "{}",
        unsigned.stderr
    );
    let reason = unsigned
        .stderr
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default();
    assert!(
        reason.contains(&format!("run `tufkey unlock --serial {serial}`")),
        "{}",
        unsigned.stderr
    );
    assert!(unlock(&second, serial, PIN).success);
    for key in [&root, &delegation] {
        let signature = sign_raw(
            &second,
            sandbox.dir.path(),
            key["keyid"].as_str().unwrap(),
            b"from another host",
        )
        .unwrap_or_else(|failure| panic!("signing failed: {}", failure.stderr));
        assert!(
            signature_verifies(key, b"from another host", &signature),
            "bad signature by {}",
            key["keyid"]
        );
    }
}
