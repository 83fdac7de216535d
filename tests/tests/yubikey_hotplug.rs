//! Pulling and re-inserting a (virtual) YubiKey while tufkeyd runs, through the
//! real pcscd: a burst of signatures never hangs and never kills the daemon, the
//! pulled card's keys show as unavailable with "insert YubiKey <serial>", signing
//! works again within 2 s of re-insertion (once the card, whose PIN was forgotten
//! when it left, is unlocked again), and `device watch` reports both events.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tufkey_e2e::daemon::{bin_dir, DaemonOptions, Sandbox};
use tufkey_e2e::vcard::{self, generate_on_card, sign_raw, signature_verifies, unlock, PIN};

const GUN: &str = "example.com/hotplug";
/// No single signing request may take longer than this.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

#[test]
fn pulling_the_card_during_a_burst_of_signatures_gives_signatures_or_clear_errors_and_reinserting_restores_signing_within_2_s(
) {
    let cards = vcard::cards();
    let serial = cards.serial(1);
    vcard::reset(serial);
    let sandbox = Sandbox::new();
    let daemon = Arc::new(sandbox.start(&DaemonOptions::with_yubikeys()));
    assert!(unlock(&daemon, serial, PIN).success);
    let key = generate_on_card(
        &daemon,
        serial,
        GUN,
        "targets",
        &["--allow-default-mgmt-key"],
    );
    let keyid = key["keyid"].as_str().unwrap().to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let burst = {
        let (daemon, stop, keyid, dir) = (
            daemon.clone(),
            stop.clone(),
            keyid.clone(),
            sandbox.path("burst"),
        );
        std::fs::create_dir(&dir).unwrap();
        std::thread::spawn(move || {
            let mut outcomes = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let outcome = sign_raw(&daemon, &dir, &keyid, b"burst");
                outcomes.push((started.elapsed(), outcome));
            }
            outcomes
        })
    };
    std::thread::sleep(Duration::from_millis(800));
    cards.pull(serial);
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::Relaxed);
    let outcomes = burst.join().unwrap();

    let mut signed = 0;
    let mut refused = 0;
    for (took, outcome) in &outcomes {
        assert!(*took < REQUEST_DEADLINE, "a request took {took:?}");
        match outcome {
            Ok(signature) => {
                assert!(
                    signature_verifies(&key, b"burst", signature),
                    "invalid signature during the pull"
                );
                signed += 1;
            }
            Err(failure) => {
                failure.assert_fails_with(&format!("YubiKey {serial}"));
                refused += 1;
            }
        }
    }
    assert!(signed > 0, "nothing was signed before the pull");
    assert!(refused > 0, "nothing was refused after the pull");
    let last = outcomes
        .last()
        .unwrap()
        .1
        .as_ref()
        .expect_err("signed with the card pulled");
    last.assert_fails_with(&format!("insert YubiKey {serial}"));
    assert!(
        last.stderr.contains("FailedPrecondition"),
        "{}",
        last.stderr
    );

    let shown = daemon.cli_ok(&["--json", "key", "show", &keyid]).json();
    assert_eq!(
        shown["available"], false,
        "a pulled card's key is unavailable"
    );
    daemon.cli_ok(&["status"]);

    cards.insert(serial);
    let inserted = Instant::now();
    // The card's PIN was forgotten when it left: it is unlocked again first.
    while !unlock(&daemon, serial, PIN).success {
        assert!(
            inserted.elapsed() < Duration::from_secs(5),
            "the card is not back 5 s after re-insertion"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let signature = sign_raw(&daemon, &sandbox.path("burst"), &keyid, b"back")
        .unwrap_or_else(|failure| panic!("no signature after re-insertion: {}", failure.stderr));
    let took = inserted.elapsed();
    assert!(signature_verifies(&key, b"back", &signature));
    assert!(
        took < Duration::from_secs(2),
        "signing came back after {took:?}"
    );
    assert_eq!(
        daemon.cli_ok(&["--json", "key", "show", &keyid]).json()["available"],
        true
    );
}

#[test]
fn device_watch_reports_the_cards_present_then_removal_and_insertion() {
    let cards = vcard::cards();
    let serial = cards.serial(1);
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::with_yubikeys());
    let mut watch = Command::new(bin_dir().join("tufkey"))
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["--json", "device", "watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tufkey device watch");
    let (lines, events) = mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let event: serde_json::Value =
                serde_json::from_str(&line).expect("one JSON object per line");
            if lines.send(event).is_err() {
                break;
            }
        }
    });
    let next_for_card = |kind: &str| loop {
        let event = events
            .recv_timeout(Duration::from_secs(15))
            .unwrap_or_else(|_| panic!("no {kind} event for YubiKey {serial}"));
        if event["serial"] == serial {
            assert_eq!(event["event"], kind, "{event}");
            assert!(event["reader"]
                .as_str()
                .is_some_and(|reader| !reader.is_empty()));
            break;
        }
    };
    next_for_card("present");
    cards.pull(serial);
    next_for_card("removed");
    cards.insert(serial);
    next_for_card("inserted");
    let _ = watch.kill();
    let _ = watch.wait();
}
