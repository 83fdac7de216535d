//! The software keystore survives restarts and crashes: same keys, same IDs, and
//! never a half-written key file.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tufkey_e2e::daemon::{cli, DaemonOptions, Sandbox};

fn key_files(store: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store.join("keys"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn keys_and_key_ids_survive_a_restart() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    for role in [
        "root",
        "targets",
        "snapshot",
        "timestamp",
        "targets/releases",
    ] {
        daemon.generate("example.com/app", role);
    }
    let before = daemon.cli_ok(&["--json", "key", "list"]).json();
    daemon.stop();

    let daemon = sandbox.start(&DaemonOptions::default());
    let after = daemon.cli_ok(&["--json", "key", "list"]).json();
    assert_eq!(before, after, "keys changed across a restart");
    for key in after.as_array().unwrap() {
        let payload = sandbox.path("payload");
        std::fs::write(&payload, b"after restart").unwrap();
        daemon.cli_ok(&[
            "sign-raw",
            "--key",
            key["keyid"].as_str().unwrap(),
            payload.to_str().unwrap(),
        ]);
    }
}

#[test]
fn kill_9_during_a_burst_of_generations_leaves_only_complete_key_files() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let attempts = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (stop, acknowledged, attempts, socket) = (
                stop.clone(),
                acknowledged.clone(),
                attempts.clone(),
                daemon.socket.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    attempts.fetch_add(1, Ordering::Relaxed);
                    let gun = format!("example.com/burst-{worker}");
                    let out = cli(
                        &socket,
                        &["key", "generate", "--gun", &gun, "--role", "targets"],
                        None,
                    );
                    if out.success {
                        acknowledged
                            .lock()
                            .unwrap()
                            .push(out.stdout.trim().to_owned());
                    }
                }
            })
        })
        .collect();
    // Let the burst get going, then pull the plug mid-stream.
    while acknowledged.lock().unwrap().len() < 12 {
        std::thread::sleep(Duration::from_millis(5));
    }
    daemon.kill9();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        attempts.load(Ordering::Relaxed) > acknowledged.len(),
        "the kill did not interrupt any generation"
    );

    // Every file left behind is either a complete key or a temp file the next start removes.
    let daemon = sandbox.start(&DaemonOptions::default());
    let status = daemon.cli_ok(&["--json", "status"]).json();
    assert_eq!(
        status["unreadable_files"],
        Value::Array(vec![]),
        "damaged key files after kill -9"
    );
    let files = key_files(&sandbox.store());
    assert!(
        files.iter().all(|name| name.ends_with(".key")),
        "leftover temporary files: {files:?}"
    );
    let listed = daemon.cli_ok(&["--json", "key", "list"]).json();
    let listed_ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["keyid"].as_str().unwrap())
        .collect();
    assert_eq!(listed_ids.len(), files.len());
    for keyid in &acknowledged {
        assert!(
            listed_ids.contains(&keyid.as_str()),
            "acknowledged key {keyid} was lost"
        );
    }
    let payload = sandbox.path("payload");
    std::fs::write(&payload, b"still signs").unwrap();
    for keyid in listed_ids {
        daemon.cli_ok(&["sign-raw", "--key", keyid, payload.to_str().unwrap()]);
    }
}

#[test]
fn store_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let keyid = daemon.generate_keyid("example.com/app", "root");
    let mode =
        |path: std::path::PathBuf| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(sandbox.store()), 0o700);
    assert_eq!(mode(sandbox.store().join("keys")), 0o700);
    assert_eq!(
        mode(sandbox.store().join("keys").join(format!("{keyid}.key"))),
        0o600
    );
    assert_eq!(mode(sandbox.store().join("store.json")), 0o600);
    assert_eq!(mode(daemon.socket.clone()), 0o600);
}
