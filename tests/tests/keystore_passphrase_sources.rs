//! Where the keystore passphrase comes from: the kernel keyring on a newcomer's
//! first start, `TUFKEY_PASSPHRASE`, or `tufkey unlock`; and the idle timeout that
//! drops decrypted keys.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use std::time::Duration;
use tufkey_e2e::daemon::{Daemon, DaemonOptions, Sandbox, TEST_PASSPHRASE};

fn signs(daemon: &Daemon, keyid: &str, sandbox: &Sandbox) -> tufkey_e2e::daemon::CliOutput {
    let payload = sandbox.path("payload");
    std::fs::write(&payload, b"payload").unwrap();
    daemon.cli(&["sign-raw", "--key", keyid, payload.to_str().unwrap()])
}

#[test]
fn first_start_with_nothing_configured_keeps_a_random_secret_in_the_kernel_keyring() {
    let sandbox = Sandbox::new();
    let options = DaemonOptions {
        passphrase: None,
        keyring: true,
        ..DaemonOptions::default()
    };
    let daemon = sandbox.start(&options);
    let status = daemon.cli_ok(&["--json", "status"]).json();
    assert_eq!(
        status["locked"], false,
        "a newcomer's daemon must just work: {status}"
    );
    assert_eq!(status["passphrase_source"], "keyring");
    let keyid = daemon.generate_keyid("example.com/newcomer", "targets");
    daemon.stop();

    // Read the kernel keyring where the daemon writes: the uid's user keyring.
    let credential = keyring::keyutils::KeyutilsCredential {
        session: linux_keyutils::KeyRing::from_special_id(
            linux_keyutils::KeyRingIdentifier::User,
            false,
        )
        .unwrap(),
        persistent: None,
        description: format!("keyring-rs:keystore:{}@tufkey", sandbox.store().display()),
    };
    let entry = keyring::Entry::new_with_credential(Box::new(credential));
    let secret = entry
        .get_password()
        .expect("the store secret is in the kernel keyring");
    assert!(secret.len() >= 40, "the generated secret is too short");

    let daemon = sandbox.start(&options);
    assert_eq!(
        daemon.cli_ok(&["--json", "status"]).json()["passphrase_source"],
        "keyring"
    );
    assert!(
        signs(&daemon, &keyid, &sandbox).success,
        "the key must sign after a restart"
    );
    daemon.stop();
    entry.delete_credential().unwrap();
}

#[test]
fn idle_timeout_drops_keys_and_an_unlocked_by_hand_store_needs_unlock_again() {
    let sandbox = Sandbox::new();
    let options = DaemonOptions {
        passphrase: None,
        args: vec!["--idle-lock-secs".into(), "1".into()],
        ..DaemonOptions::default()
    };
    let daemon = sandbox.start(&options);
    assert_eq!(daemon.cli_ok(&["--json", "status"]).json()["locked"], true);
    daemon.cli_with_stdin(
        &["unlock", "--passphrase-stdin"],
        format!("{TEST_PASSPHRASE}\n").as_bytes(),
    );
    let keyid = daemon.generate_keyid("example.com/idle", "targets");
    assert!(signs(&daemon, &keyid, &sandbox).success);

    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        daemon.cli_ok(&["--json", "status"]).json()["locked"],
        true,
        "keys were not dropped when idle"
    );
    signs(&daemon, &keyid, &sandbox).assert_fails_with("the keystore is locked");
    assert!(daemon
        .log_text()
        .contains("keystore idle: dropped decrypted keys"));
}

#[test]
fn idle_timeout_with_an_unattended_passphrase_unlocks_again_on_demand() {
    let sandbox = Sandbox::new();
    let options = DaemonOptions {
        args: vec!["--idle-lock-secs".into(), "1".into()],
        ..DaemonOptions::default()
    };
    let daemon = sandbox.start(&options);
    let keyid = daemon.generate_keyid("example.com/idle", "targets");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        daemon.cli_ok(&["--json", "status"]).json()["locked"],
        true,
        "keys were not dropped when idle"
    );
    assert!(
        signs(&daemon, &keyid, &sandbox).success,
        "TUFKEY_PASSPHRASE must unlock again on demand"
    );
    assert_eq!(
        daemon.cli_ok(&["--json", "status"]).json()["passphrase_source"],
        "environment"
    );
}
