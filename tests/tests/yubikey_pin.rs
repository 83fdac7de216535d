//! YubiKey PIN handling through the real CLI, daemon and pcscd: tries left in the
//! error, exactly one try per PIN the user typed (never an automatic retry), no
//! cached PIN with one try left, a typed PIN at one try left only with `--force`, a
//! blocked PIN names the PUK reset, and the PIN never shows up in logs, replies or
//! files.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use tufkey_e2e::daemon::{Daemon, DaemonOptions, Sandbox};
use tufkey_e2e::leak_scan::encodings_of;
use tufkey_e2e::vcard::{
    self, generate_on_card, sign_raw, signature_verifies, unlock, unlock_forced, OTHER_PIN, PIN,
};

const GUN: &str = "example.com/pin";
const WRONG_PIN: &str = "24680135";

fn tries_listed(daemon: &Daemon, serial: u32) -> u64 {
    let devices = daemon.cli_ok(&["--json", "device", "list"]).json();
    devices
        .as_array()
        .unwrap()
        .iter()
        .find(|device| device["serial"] == serial)
        .unwrap_or_else(|| panic!("YubiKey {serial} not listed: {devices}"))["pin_tries_left"]
        .as_u64()
        .unwrap()
}

/// A daemon with a targets key on the card, PIN cached.
fn daemon_with_key(sandbox: &Sandbox, serial: u32, options: &DaemonOptions) -> (Daemon, Value) {
    vcard::daemon_with_targets_key(sandbox, serial, options, GUN)
}

#[test]
fn a_wrong_pin_shows_the_tries_left_costs_one_try_and_is_never_retried() {
    let cards = vcard::cards();
    let serial = cards.serial(3);
    let sandbox = Sandbox::new();
    let (daemon, key) = daemon_with_key(&sandbox, serial, &DaemonOptions::with_yubikeys());
    let keyid = key["keyid"].as_str().unwrap();
    assert_eq!(tries_listed(&daemon, serial), 3);

    unlock(&daemon, serial, WRONG_PIN)
        .assert_fails_with(&format!("wrong PIN for YubiKey {serial}: 2 tries left"));
    assert_eq!(
        vcard::pin_tries(serial),
        2,
        "one wrong PIN typed, one try gone"
    );
    // The wrong PIN cleared the cache: signing asks for the PIN instead of retrying.
    sign_raw(&daemon, sandbox.dir.path(), keyid, b"x")
        .expect_err("signed without a PIN")
        .assert_fails_with(&format!(
            "YubiKey {serial} needs its PIN: run `tufkey unlock --serial {serial}`"
        ));
    assert_eq!(tries_listed(&daemon, serial), 2, "no automatic retry");

    unlock(&daemon, serial, WRONG_PIN).assert_fails_with("1 try left");
    assert_eq!(vcard::pin_tries(serial), 1);
    // The last try is spent only when the user says so.
    let unlocked = unlock_forced(&daemon, serial, PIN);
    assert!(unlocked.success, "{}", unlocked.stderr);
    assert_eq!(
        unlocked.json()["pin_tries_left"],
        3,
        "the right PIN resets the counter"
    );
    let signature = sign_raw(&daemon, sandbox.dir.path(), keyid, b"x").expect("sign after unlock");
    assert!(signature_verifies(&key, b"x", &signature));
}

#[test]
fn with_one_try_left_the_cached_pin_is_not_used() {
    let cards = vcard::cards();
    let serial = cards.serial(3);
    let sandbox = Sandbox::new();
    let (daemon, key) = daemon_with_key(&sandbox, serial, &DaemonOptions::with_yubikeys());
    let keyid = key["keyid"].as_str().unwrap();
    // Another program spends two tries; the daemon still holds the right PIN.
    assert_eq!(vcard::type_wrong_pin(serial), 2);
    assert_eq!(vcard::type_wrong_pin(serial), 1);

    sign_raw(&daemon, sandbox.dir.path(), keyid, b"y")
        .expect_err("used a cached PIN with one try left")
        .assert_fails_with(&format!(
            "YubiKey {serial} has 1 PIN try left, so tufkeyd will not use a cached PIN"
        ));
    assert_eq!(vcard::pin_tries(serial), 1, "the cached PIN was not tried");

    // A typed PIN is not tried either unless the user says so: a wrong one would block.
    unlock(&daemon, serial, PIN).assert_fails_with(&format!(
        "YubiKey {serial} has 1 PIN try left and a wrong PIN would block it, so tufkeyd did not try this one: \
         if you are sure of the PIN, run `tufkey unlock --serial {serial} --force`"
    ));
    assert_eq!(vcard::pin_tries(serial), 1, "the typed PIN was not tried");
    assert!(
        unlock_forced(&daemon, serial, PIN).success,
        "with --force, typing the PIN is the user's call"
    );
    let signature = sign_raw(&daemon, sandbox.dir.path(), keyid, b"y").expect("sign after unlock");
    assert!(signature_verifies(&key, b"y", &signature));
    assert_eq!(vcard::pin_tries(serial), 3);
}

#[test]
fn a_blocked_pin_says_so_and_how_to_reset_it_with_the_puk() {
    let cards = vcard::cards();
    let serial = cards.serial(3);
    let sandbox = Sandbox::new();
    let (daemon, key) = daemon_with_key(&sandbox, serial, &DaemonOptions::with_yubikeys());
    for tries_left in ["2 tries left", "1 try left"] {
        unlock(&daemon, serial, WRONG_PIN).assert_fails_with(tries_left);
    }
    unlock(&daemon, serial, WRONG_PIN).assert_fails_with("--force");
    assert_eq!(
        vcard::pin_tries(serial),
        1,
        "refused untried without --force"
    );
    let blocked = unlock_forced(&daemon, serial, WRONG_PIN);
    blocked.assert_fails_with(&format!("the PIN of YubiKey {serial} is blocked"));
    assert!(
        blocked.stderr.contains("PUK") && blocked.stderr.contains("unblock-pin"),
        "{}",
        blocked.stderr
    );
    assert_eq!(vcard::pin_tries(serial), 0);
    unlock(&daemon, serial, PIN).assert_fails_with("blocked");
    sign_raw(
        &daemon,
        sandbox.dir.path(),
        key["keyid"].as_str().unwrap(),
        b"z",
    )
    .expect_err("signed with a blocked PIN")
    .assert_fails_with(&format!("run `tufkey unlock --serial {serial}`"));
    vcard::reset(serial);
}

#[test]
fn the_pin_never_appears_in_logs_replies_or_files() {
    let cards = vcard::cards();
    let serial = cards.serial(3);
    vcard::reset(serial);
    vcard::open(serial)
        .change_pin(PIN.as_bytes(), OTHER_PIN.as_bytes())
        .expect("switch to a distinctive PIN");
    let sandbox = Sandbox::new();
    // Trace level: every library's view of the requests and of the card exchange.
    let options = DaemonOptions {
        log_level: "trace".into(),
        ..DaemonOptions::with_yubikeys()
    };
    let daemon = sandbox.start(&options);
    let mut replies = Vec::new();
    let wrong = unlock(&daemon, serial, WRONG_PIN);
    assert!(!wrong.success);
    replies.push(wrong);
    let right = unlock(&daemon, serial, OTHER_PIN);
    assert!(right.success, "{}", right.stderr);
    replies.push(right);
    let key = generate_on_card(&daemon, serial, GUN, "root", &["--allow-default-mgmt-key"]);
    let keyid = key["keyid"].as_str().unwrap();
    sign_raw(&daemon, sandbox.dir.path(), keyid, b"payload").expect("sign");
    for args in [
        vec!["--json", "device", "list"],
        vec!["--json", "key", "show", keyid],
        vec!["--json", "status"],
        vec!["device", "list"],
    ] {
        replies.push(daemon.cli_ok(&args));
    }
    daemon.stop();

    let mut haystacks: Vec<(String, Vec<u8>)> = replies
        .iter()
        .enumerate()
        .map(|(index, reply)| {
            (
                format!("reply {index}"),
                format!("{}{}", reply.stdout, reply.stderr).into_bytes(),
            )
        })
        .collect();
    haystacks.push((
        "daemon log".into(),
        std::fs::read(sandbox.store().with_extension("log")).unwrap(),
    ));
    let mut pending = vec![sandbox.dir.path().to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.is_file() {
                haystacks.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    let (_, log) = haystacks
        .iter()
        .find(|(name, _)| name == "daemon log")
        .unwrap();
    assert!(
        String::from_utf8_lossy(log).contains("TRACE"),
        "the daemon did not log at trace level"
    );
    for pin in [OTHER_PIN, WRONG_PIN] {
        for encoding in encodings_of(pin) {
            for (name, bytes) in &haystacks {
                assert!(
                    !bytes
                        .windows(encoding.len())
                        .any(|window| window == encoding.as_bytes()),
                    "the PIN ({encoding:?}) appears in {name}"
                );
            }
        }
    }
    vcard::reset(serial);
}
