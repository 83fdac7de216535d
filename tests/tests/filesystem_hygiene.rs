//! Filesystem and socket hygiene, against the real binaries: the daemon refuses a
//! store reached through a symbolic link or writable by others (naming the fix),
//! never deletes what is at `--socket` unless it is a dead socket of its own, never
//! takes over a live one, and its socket is 0600 from the moment it appears; the
//! CLI sends nothing to a socket whose listener runs as an unexpected uid; and the
//! key manifest reports key files removed, changed or added behind its back.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tufkey_e2e::daemon::{bin_dir, cli, DaemonOptions, Sandbox, TEST_PASSPHRASE};

const GUN: &str = "example.com/hygiene";

/// Runs tufkeyd on `socket` and `store`, expecting it to refuse to start; returns
/// what it printed.
fn refused_start(socket: &Path, store: &Path) -> String {
    let mut child = Command::new(bin_dir().join("tufkeyd"))
        .arg("--socket")
        .arg(socket)
        .arg("--store")
        .arg(store)
        .args(["--no-keyring", "--no-yubikey"])
        .env("TUFKEY_PASSPHRASE", TEST_PASSPHRASE)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tufkeyd (run `cargo build --bins` first)");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            assert!(!status.success(), "tufkeyd started: {stderr}");
            return stderr;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("tufkeyd neither started nor refused within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn unreadable_files(status: &Value) -> Vec<String> {
    status["unreadable_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_store_reached_through_a_symbolic_link_is_refused() {
    let sandbox = Sandbox::new();
    let real = sandbox.path("real-store");
    fs::create_dir(&real).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&real, sandbox.store()).unwrap();
    let stderr = refused_start(&sandbox.socket(), &sandbox.store());
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
    assert!(stderr.contains("readlink -f"), "{stderr}");
    assert_eq!(
        fs::read_dir(&real).unwrap().count(),
        0,
        "nothing was written"
    );
    assert!(!sandbox.socket().exists(), "no socket for a refused store");
}

#[test]
fn a_store_its_group_can_write_is_refused_with_the_fix() {
    let sandbox = Sandbox::new();
    fs::create_dir(sandbox.store()).unwrap();
    fs::set_permissions(sandbox.store(), fs::Permissions::from_mode(0o770)).unwrap();
    let stderr = refused_start(&sandbox.socket(), &sandbox.store());
    assert!(stderr.contains("writable by its group"), "{stderr}");
    let fix = format!("`chmod go-w {}`", sandbox.store().display());
    assert!(stderr.contains(&fix), "{stderr}");
    assert_eq!(
        mode(&sandbox.store()),
        0o770,
        "a refused directory is left as it is"
    );

    // Once fixed as told, the daemon starts.
    fs::set_permissions(sandbox.store(), fs::Permissions::from_mode(0o750)).unwrap();
    let daemon = sandbox.start(&DaemonOptions::default());
    daemon.generate_keyid(GUN, "targets");
    assert_eq!(mode(&sandbox.store()), 0o700, "tightened once accepted");
}

#[test]
fn a_file_at_the_socket_path_is_not_deleted_and_the_daemon_refuses_to_start() {
    let sandbox = Sandbox::new();
    let root_json = sandbox.path("root.json");
    let contents = br#"{"signed":{"_type":"root"},"signatures":[]}"#;
    fs::write(&root_json, contents).unwrap();
    let stderr = refused_start(&root_json, &sandbox.store());
    assert!(stderr.contains("it is a regular file"), "{stderr}");
    assert!(stderr.contains("choose another --socket"), "{stderr}");
    assert_eq!(
        fs::read(&root_json).unwrap(),
        contents,
        "the file is untouched"
    );
}

#[test]
fn a_live_socket_is_not_taken_over() {
    let first = Sandbox::new();
    let daemon = first.start(&DaemonOptions::default());
    let keyid = daemon.generate_keyid(GUN, "targets");
    let second = Sandbox::new();
    let stderr = refused_start(&daemon.socket, &second.store());
    assert!(stderr.contains("already listening"), "{stderr}");
    // The first daemon still owns its socket and answers on it.
    let shown = daemon.cli_ok(&["--json", "key", "show", &keyid]).json();
    assert_eq!(shown["keyid"], keyid.as_str());
}

#[test]
fn the_socket_is_owner_only_from_the_moment_it_appears() {
    let sandbox = Sandbox::new();
    let socket = sandbox.socket();
    // Under umask 000 a plain bind would make the socket 0777 until its chmod.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(bin_dir().join("tufkeyd"))
        .arg("--socket")
        .arg(&socket)
        .arg("--store")
        .arg(sandbox.store())
        .args(["--no-keyring", "--no-yubikey"])
        .env("TUFKEY_PASSPHRASE", TEST_PASSPHRASE)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let first_seen = loop {
        if let Ok(metadata) = fs::symlink_metadata(&socket) {
            break metadata.mode() & 0o7777;
        }
        assert!(Instant::now() < deadline, "no socket within 30 s");
        assert!(child.try_wait().unwrap().is_none(), "tufkeyd exited");
        std::hint::spin_loop();
    };
    assert_eq!(first_seen, 0o600, "mode when the socket first appeared");
    // Once the daemon answers (it serves only after placing the socket), no staging
    // directory is left beside it.
    while !cli(&socket, &["status"], None).success {
        assert!(Instant::now() < deadline, "no answer within 30 s");
        assert!(child.try_wait().unwrap().is_none(), "tufkeyd exited");
        std::thread::sleep(Duration::from_millis(20));
    }
    let names: Vec<String> = fs::read_dir(sandbox.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "{names:?}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn the_cli_sends_nothing_to_a_listener_of_an_unexpected_uid() {
    let sandbox = Sandbox::new();
    // A listener that records whatever a client sends it.
    let socket = sandbox.path("impostor.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let received = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        bytes
    });
    let passphrase = format!("{TEST_PASSPHRASE}\n");
    let refused = cli(
        &socket,
        &["--server-uid", "4242", "unlock", "--passphrase-stdin"],
        Some(passphrase.as_bytes()),
    );
    let own_uid = fs::metadata(&socket).unwrap().uid();
    refused.assert_fails_with(&format!(
        "runs as uid {own_uid}, but tufkey expects uid 4242; nothing was sent to it"
    ));
    assert!(
        refused.stderr.contains("--server-uid"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        received.join().unwrap(),
        Vec::<u8>::new(),
        "the client sent bytes to a listener it did not trust"
    );

    // The same through the environment, against the real daemon; and told the
    // right uid, the CLI goes ahead.
    let daemon = sandbox.start(&DaemonOptions::default());
    let status = Command::new(bin_dir().join("tufkey"))
        .arg("--socket")
        .arg(&daemon.socket)
        .arg("status")
        .env("TUFKEY_SERVER_UID", "4242")
        .output()
        .unwrap();
    assert!(!status.status.success());
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(stderr.contains("tufkey expects uid 4242"), "{stderr}");
    daemon.cli_ok(&["--server-uid", &own_uid.to_string(), "status"]);
}

/// Generates three keys, stops the daemon, lets `tamper` change `keys/`, restarts
/// it, and returns the key IDs and the restarted daemon's status.
fn tampered(
    sandbox: &Sandbox,
    tamper: impl FnOnce(&Path, &[String]),
) -> (Vec<String>, tufkey_e2e::daemon::Daemon, Value) {
    let daemon = sandbox.start(&DaemonOptions::default());
    let keyids: Vec<String> = ["root", "targets", "snapshot"]
        .iter()
        .map(|role| daemon.generate_keyid(GUN, role))
        .collect();
    let status = daemon.cli_ok(&["--json", "status"]).json();
    assert_eq!(unreadable_files(&status), Vec::<String>::new());
    daemon.stop();
    tamper(&sandbox.store().join("keys"), &keyids);
    let daemon = sandbox.start(&DaemonOptions::default());
    let status = daemon.cli_ok(&["--json", "status"]).json();
    (keyids, daemon, status)
}

fn key_file(keys: &Path, keyid: &str) -> std::path::PathBuf {
    keys.join(format!("{keyid}.key"))
}

#[test]
fn the_manifest_reports_a_key_file_removed_behind_the_daemons_back() {
    let sandbox = Sandbox::new();
    let (keyids, daemon, status) = tampered(&sandbox, |keys, keyids| {
        fs::remove_file(key_file(keys, &keyids[1])).unwrap();
    });
    let problems = unreadable_files(&status);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(&format!(
            "{}.key: listed in the key manifest but gone",
            keyids[1]
        )),
        "{problems:?}"
    );
    assert!(
        problems[0].contains("restore it from a backup"),
        "{problems:?}"
    );
    // The others still sign.
    let payload = sandbox.path("payload");
    fs::write(&payload, b"still here").unwrap();
    daemon.cli_ok(&["sign-raw", "--key", &keyids[2], payload.to_str().unwrap()]);
}

#[test]
fn the_manifest_refuses_a_key_file_whose_bytes_changed() {
    let sandbox = Sandbox::new();
    // Another valid encoding of the same key file: it still parses and opens
    // (as an old copy written by another release would), but it is not the file
    // tufkeyd wrote.
    let (keyids, daemon, status) = tampered(&sandbox, |keys, keyids| {
        let path = key_file(keys, &keyids[0]);
        let file: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    });
    let problems = unreadable_files(&status);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(&format!(
            "{}.key: differs from the file tufkeyd wrote",
            keyids[0]
        )),
        "{problems:?}"
    );
    let listed = daemon.cli_ok(&["--json", "key", "list"]).json();
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["keyid"].as_str().unwrap())
        .collect();
    assert!(!listed.contains(&keyids[0].as_str()), "{listed:?}");
    let payload = sandbox.path("payload");
    fs::write(&payload, b"x").unwrap();
    let refused = daemon.cli(&["sign-raw", "--key", &keyids[0], payload.to_str().unwrap()]);
    refused.assert_fails_with("differs from the file tufkeyd wrote");
}

#[test]
fn the_manifest_refuses_a_key_file_put_back_after_its_deletion() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let kept = daemon.generate_keyid(GUN, "targets");
    let deleted = daemon.generate_keyid(GUN, "snapshot");
    let keys = sandbox.store().join("keys");
    let copy = fs::read(key_file(&keys, &deleted)).unwrap();
    daemon.cli_ok(&["key", "delete", &deleted, "--yes"]);
    // Added behind the daemon's back, while it runs: a valid key file of this very
    // store, which without the manifest would load and sign again.
    fs::write(key_file(&keys, &deleted), &copy).unwrap();
    fs::set_permissions(key_file(&keys, &deleted), fs::Permissions::from_mode(0o600)).unwrap();
    let payload = sandbox.path("payload");
    fs::write(&payload, b"x").unwrap();
    let refused = daemon.cli(&["sign-raw", "--key", &deleted, payload.to_str().unwrap()]);
    refused.assert_fails_with("not in the key manifest");
    daemon.stop();

    let daemon = sandbox.start(&DaemonOptions::default());
    let problems = unreadable_files(&daemon.cli_ok(&["--json", "status"]).json());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(&format!(
            "{deleted}.key: not in the key manifest (added behind tufkeyd's back)"
        )),
        "{problems:?}"
    );
    daemon.cli_ok(&["sign-raw", "--key", &kept, payload.to_str().unwrap()]);
}

#[test]
fn a_store_without_a_manifest_gets_one_at_its_first_unlock() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let keyid = daemon.generate_keyid(GUN, "targets");
    daemon.stop();
    // As a store written before manifests existed.
    fs::remove_file(sandbox.store().join("manifest.json")).unwrap();
    let daemon = sandbox.start(&DaemonOptions::default());
    let status = daemon.cli_ok(&["--json", "status"]).json();
    assert_eq!(unreadable_files(&status), Vec::<String>::new());
    let manifest: Value =
        serde_json::from_slice(&fs::read(sandbox.store().join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["keys"][&keyid]["sha256"].is_string(), "{manifest}");
    assert_eq!(mode(&sandbox.store().join("manifest.json")), 0o600);
    // A manifest edited by hand no longer verifies, and says so.
    daemon.stop();
    let mut edited = manifest.clone();
    edited["keys"]["f00d"] = serde_json::json!({ "sha256": "00" });
    fs::write(
        sandbox.store().join("manifest.json"),
        serde_json::to_vec(&edited).unwrap(),
    )
    .unwrap();
    let daemon = sandbox.start(&DaemonOptions::default());
    let problems = unreadable_files(&daemon.cli_ok(&["--json", "status"]).json());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("manifest.json: its MAC does not verify"),
        "{problems:?}"
    );
}
