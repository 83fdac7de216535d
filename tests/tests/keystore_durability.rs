//! The software keystore survives restarts and a full disk: same keys, same IDs,
//! never a half-written key file, and a clear error when the disk is full.
//!
//! Crashes at every step of the write path are tested in the daemon crate
//! (`backend::software::crash_tests`), against a model of what POSIX lets a crash
//! keep, with a negative control: killing the real daemon cannot show a lost
//! write (the page cache survives the process), so no kill -9 test stands here.
//! ENOSPC, though, is real: the store sits on a 64 KiB tmpfs mounted in a private
//! mount namespace (the test needs root, as CI has), the daemon runs inside it, and
//! the test looks at the store through `/proc/PID/root`.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
use tufkey_e2e::daemon::{bin_dir, cli, CliOutput, DaemonOptions, Sandbox, TEST_PASSPHRASE};

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
fn store_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let keyid = daemon.generate_keyid("example.com/app", "root");
    let mode = |path: PathBuf| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(sandbox.store()), 0o700);
    assert_eq!(mode(sandbox.store().join("keys")), 0o700);
    assert_eq!(
        mode(sandbox.store().join("keys").join(format!("{keyid}.key"))),
        0o600
    );
    assert_eq!(mode(sandbox.store().join("store.json")), 0o600);
    assert_eq!(mode(daemon.socket.clone()), 0o600);
}

/// A small tmpfs on `dir`, mounted in a mount namespace of its own that a holder
/// process keeps alive (so the store outlives a daemon restart).
struct SmallTmpfs {
    holder: Child,
    /// Closing it ends the holder.
    _stdin: ChildStdin,
    dir: PathBuf,
}

impl SmallTmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs -o \"size=$1,mode=0700\" tmpfs \"$0\" && echo mounted && exec cat")
            .arg(dir)
            .arg(size)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn unshare (util-linux)");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "mounted" {
            let output = holder.wait_with_output().unwrap();
            panic!(
                "could not mount a tmpfs in a private mount namespace (this test needs root, \
                 as CI has; uid {}): {}",
                current_uid(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let stdin = holder.stdin.take().unwrap();
        SmallTmpfs {
            holder,
            _stdin: stdin,
            dir: dir.to_path_buf(),
        }
    }

    /// `path` (inside the tmpfs) as seen from outside the namespace.
    fn outside(&self, path: &Path) -> PathBuf {
        let relative = path.strip_prefix("/").unwrap();
        PathBuf::from(format!("/proc/{}/root", self.holder.id())).join(relative)
    }

    /// Every file in the store, as path relative to the store -> bytes.
    fn files(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        let store = self.outside(&self.dir);
        for dir in [store.clone(), store.join("keys")] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_file() {
                    let name = entry
                        .path()
                        .strip_prefix(&store)
                        .unwrap()
                        .display()
                        .to_string();
                    files.insert(name, std::fs::read(entry.path()).unwrap());
                }
            }
        }
        files
    }

    /// Starts tufkeyd inside the namespace, its store on the tmpfs.
    fn start_daemon(&self, sandbox: &Sandbox) -> NamespacedDaemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sandbox.path("tufkeyd.log"))
            .unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--mount=/proc/{}/ns/mnt", self.holder.id()))
            .arg("--")
            .arg(bin_dir().join("tufkeyd"))
            .arg("--socket")
            .arg(sandbox.socket())
            .arg("--store")
            .arg(&self.dir)
            // The audit log elsewhere: this test fills the keystore's disk only.
            .arg("--audit-log")
            .arg(sandbox.path("audit").join("audit.log"))
            .args(["--no-keyring", "--no-yubikey"])
            .env("RUST_LOG", "info")
            .env("TUFKEY_PASSPHRASE", TEST_PASSPHRASE)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nsenter (util-linux)");
        let mut daemon = NamespacedDaemon {
            child,
            socket: sandbox.socket(),
            log: sandbox.path("tufkeyd.log"),
        };
        daemon.wait_until_listening();
        daemon
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn current_uid() -> String {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// tufkeyd running in the tmpfs's mount namespace.
struct NamespacedDaemon {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl NamespacedDaemon {
    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("tufkeyd exited with {status}; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "tufkeyd did not listen within 30 s; log:\n{}",
            self.log_text()
        );
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn cli(&self, args: &[&str]) -> CliOutput {
        cli(&self.socket, args, None)
    }

    fn cli_ok(&self, args: &[&str]) -> CliOutput {
        let output = self.cli(args);
        assert!(output.success, "tufkey {args:?} failed: {}", output.stderr);
        output
    }

    /// SIGTERM, and a clean exit.
    fn stop(mut self) {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "tufkeyd exited with {status}; log:\n{}",
            self.log_text()
        );
    }
}

impl Drop for NamespacedDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Key ID -> public key PEM of every key listed.
fn listed(daemon: &NamespacedDaemon) -> BTreeMap<String, String> {
    daemon
        .cli_ok(&["--json", "key", "list"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|key| {
            (
                key["keyid"].as_str().unwrap().to_owned(),
                key["public_pem"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Signs with each key and verifies the signature with the key's public key.
fn assert_all_sign(daemon: &NamespacedDaemon, keys: &BTreeMap<String, String>, payload: &Path) {
    let message = std::fs::read(payload).unwrap();
    for (keyid, pem) in keys {
        let signature = daemon
            .cli_ok(&["sign-raw", "--key", keyid, payload.to_str().unwrap()])
            .stdout;
        let signature = Signature::from_der(&hex::decode(signature.trim()).unwrap()).unwrap();
        VerifyingKey::from_public_key_pem(pem)
            .unwrap()
            .verify(&message, &signature)
            .unwrap_or_else(|error| panic!("key {keyid}: bad signature: {error}"));
    }
}

/// No temporary file left, and every key file whole (the daemon reports none
/// unreadable, and each parses).
fn assert_store_clean(tmpfs: &SmallTmpfs, daemon: &NamespacedDaemon) {
    for (name, bytes) in tmpfs.files() {
        let base = name.rsplit('/').next().unwrap();
        assert!(
            !base.starts_with(".tmp-"),
            "temporary file left behind: {name}"
        );
        if name.ends_with(".key") {
            serde_json::from_slice::<Value>(&bytes)
                .unwrap_or_else(|error| panic!("torn key file {name}: {error}"));
        }
    }
    let status = daemon.cli_ok(&["--json", "status"]).json();
    assert_eq!(
        status["unreadable_files"],
        Value::Array(vec![]),
        "unreadable files: {status}"
    );
}

#[test]
fn a_full_disk_refuses_new_keys_clearly_and_loses_none() {
    let sandbox = Sandbox::new();
    let tmpfs = SmallTmpfs::mount(&sandbox.store(), "64k");
    let daemon = tmpfs.start_daemon(&sandbox);
    let payload = sandbox.path("payload");
    std::fs::write(&payload, b"signed on a full disk").unwrap();

    let generate = |daemon: &NamespacedDaemon| {
        daemon.cli(&[
            "--json",
            "key",
            "generate",
            "--gun",
            "example.com/full",
            "--role",
            "targets",
        ])
    };
    let mut acknowledged = BTreeMap::new();
    let refusal = loop {
        let out = generate(&daemon);
        if !out.success {
            break out;
        }
        let key = out.json();
        acknowledged.insert(
            key["keyid"].as_str().unwrap().to_owned(),
            key["public_pem"].as_str().unwrap().to_owned(),
        );
        assert!(
            acknowledged.len() < 100,
            "100 keys fit on a 64 KiB disk: the store is not on the tmpfs"
        );
    };
    assert!(
        acknowledged.len() >= 3,
        "only {} keys before the disk was full: {}",
        acknowledged.len(),
        refusal.stderr
    );
    assert_ne!(refusal.code, Some(0));
    assert!(
        refusal.stderr.contains("no space left for the keystore")
            && refusal.stderr.contains("free space")
            && refusal.stderr.contains("(Unavailable)"),
        "the refusal does not say the disk is full: {}",
        refusal.stderr
    );
    // Refused again, and still nothing half-written.
    let again = generate(&daemon);
    assert!(!again.success, "a key was generated on a full disk");
    assert_store_clean(&tmpfs, &daemon);
    assert_eq!(listed(&daemon), acknowledged, "keys changed on a full disk");
    assert_all_sign(&daemon, &acknowledged, &payload);

    // Freeing space makes room again.
    let freed: Vec<String> = acknowledged.keys().take(2).cloned().collect();
    for keyid in &freed {
        daemon.cli_ok(&["key", "delete", keyid, "--yes"]);
        acknowledged.remove(keyid);
    }
    let out = generate(&daemon);
    assert!(
        out.success,
        "no key after freeing space: {}\nlog:\n{}",
        out.stderr,
        daemon.log_text()
    );
    let key = out.json();
    acknowledged.insert(
        key["keyid"].as_str().unwrap().to_owned(),
        key["public_pem"].as_str().unwrap().to_owned(),
    );
    assert_store_clean(&tmpfs, &daemon);
    assert_eq!(listed(&daemon), acknowledged);

    // And a restart finds exactly the acknowledged keys, all signing.
    daemon.stop();
    let daemon = tmpfs.start_daemon(&sandbox);
    assert_store_clean(&tmpfs, &daemon);
    assert_eq!(
        listed(&daemon),
        acknowledged,
        "keys changed across a restart"
    );
    assert_all_sign(&daemon, &acknowledged, &payload);
    for keyid in &freed {
        assert!(
            !tmpfs.files().contains_key(&format!("keys/{keyid}.key")),
            "deleted key {keyid} is back"
        );
    }
}
