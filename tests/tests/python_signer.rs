//! python-tuf signs through tufkeyd: the `tufkey:` securesystemslib signer of
//! client/python, installed into the test venv, builds a whole TUF repository with
//! python-tuf's unchanged `Metadata.sign()` (tests/python/python_signer_repo.py), over
//! the Unix socket and over mutual TLS, and both tough and python-tuf's ngclient
//! accept it. The audit log proves every signature came from tufkeyd over the
//! expected transport, for exactly the bytes python-tuf signed. Also: an unknown key
//! ID and a public key that is not the URI's key fail with clear errors, the signer's
//! own unit tests pass, and the committed gRPC stubs match a fresh generation.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tufkey_e2e::daemon::{Daemon, DaemonOptions, Sandbox};
use tufkey_e2e::notary::{Pki, TlsDaemon};
use tufkey_e2e::verify::{
    python_dir, venv_python, verify_with_python_tuf, verify_with_tough, workspace_root,
};

const GUN: &str = "example.org/python-signer";
const ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];

/// A TLS client certificate's grant for python-tuf signing every role, root included
/// (a root key is reached only through a grant that names the role).
const SIGNING_POLICY: &str = r#"
[[grant]]
cert_cn = "tufkey-test-client"
permissions = ["sign", "keys_read"]
roles = ["root", "targets", "snapshot", "timestamp"]
"#;

/// One new software key per top-level role: (role, TUF key ID).
fn role_keys(daemon: &Daemon) -> Vec<(&'static str, String)> {
    ROLES
        .iter()
        .map(|role| (*role, daemon.generate_keyid(GUN, role)))
        .collect()
}

/// The key ID of `role` in `keys`.
fn keyid_of<'a>(keys: &'a [(&str, String)], role: &str) -> &'a str {
    &keys.iter().find(|(r, _)| *r == role).unwrap().1
}

/// Runs `python_signer_repo.py REPO --ROLE KEYID... EXTRA...` in the venv, with
/// `TUFKEY_SOCK` set to `tufkey_sock` (nothing else in the environment names a socket).
fn build_repo(repo: &Path, keys: &[(&str, String)], extra: &[&str], tufkey_sock: &Path) -> Output {
    let python = venv_python().unwrap();
    let mut command = Command::new(python);
    command
        .arg(python_dir().join("python_signer_repo.py"))
        .arg(repo)
        .env("TUFKEY_SOCK", tufkey_sock)
        .env_remove("XDG_RUNTIME_DIR");
    for (role, keyid) in keys {
        command.arg(format!("--{role}")).arg(keyid);
    }
    command.args(extra).output().unwrap()
}

/// The script's JSON summary; panics with its stderr when it failed.
fn summary(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "python_signer_repo.py failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// stderr of a run that must have failed with exit code 1 and one line of reason.
fn failure(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit 1: stdout {} stderr {stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    stderr
}

/// Hex SHA-256 of the canonical JSON of a metadata file's `signed` (what python-tuf
/// hands the signer).
fn signed_sha256(file: &Path) -> String {
    let document: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let mut canonical = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(
        &mut canonical,
        olpc_cjson::CanonicalFormatter::new(),
    );
    serde::Serialize::serialize(&document["signed"], &mut serializer).unwrap();
    hex::encode(Sha256::digest(&canonical))
}

/// Each role's metadata carries exactly one signature, by its tufkeyd key, and the
/// daemon's audit log has a successful SignRaw by that key, over `transport` ("unix"
/// or "tls"), of exactly those canonical bytes.
fn assert_signed_by_tufkeyd(
    daemon: &Daemon,
    repo: &Path,
    keys: &[(&str, String)],
    transport: &str,
) {
    let signs: Vec<Value> = daemon
        .audit_records()
        .into_iter()
        .filter(|record| record["rpc"] == "tufkey.v1.Signing/SignRaw")
        .collect();
    assert_eq!(signs.len(), ROLES.len(), "one SignRaw per role: {signs:?}");
    for role in ROLES {
        let file = repo.join("metadata").join(format!("{role}.json"));
        let document: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let keyid = keyid_of(keys, role);
        let signers: Vec<&str> = document["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|signature| signature["keyid"].as_str().unwrap())
            .collect();
        assert_eq!(signers, [keyid], "{role}.json signatures");
        let digest = signed_sha256(&file);
        assert!(
            signs.iter().any(|record| record["keyid"] == keyid
                && record["result"] == "ok"
                && record["payload_sha256"] == digest.as_str()
                && record["caller"]["kind"] == transport),
            "no audited {transport} SignRaw by {keyid} of {role}.json's signed bytes: {signs:?}"
        );
    }
}

fn assert_verifiers_accept(repo: &Path) {
    let python = verify_with_python_tuf(repo).expect("python-tuf rejected the repository");
    assert!(
        python.contains("2 targets"),
        "python-tuf did not fetch both targets: {python}"
    );
    verify_with_tough(repo).expect("tough rejected the repository");
}

#[test]
fn python_tuf_signs_over_the_default_unix_socket_and_tough_and_python_tuf_accept() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let keys = role_keys(&daemon);
    let repo = sandbox.path("repo");

    // No socket in the URIs: the signer finds the daemon through $TUFKEY_SOCK.
    let summary = summary(&build_repo(&repo, &keys, &[], &daemon.socket));
    for (role, keyid) in &keys {
        assert_eq!(summary["uris"][role], format!("tufkey:{keyid}").as_str());
        assert_eq!(summary["keyids"][role], keyid.as_str());
    }

    assert_signed_by_tufkeyd(&daemon, &repo, &keys, "unix");
    assert_verifiers_accept(&repo);
}

#[test]
fn python_tuf_signs_over_mutual_tls_and_tough_and_python_tuf_accept() {
    let sandbox = Sandbox::new();
    let pki = Pki::make(&sandbox.path("pki"));
    let policy = sandbox.path("policy.toml");
    std::fs::write(&policy, SIGNING_POLICY).unwrap();
    let tufkeyd = TlsDaemon::start(&sandbox, &pki, &["--policy", policy.to_str().unwrap()]);
    let keys = role_keys(&tufkeyd.daemon);
    let repo = sandbox.path("repo");

    let addr = format!("127.0.0.1:{}", tufkeyd.port);
    let file = |name: &str| pki.file(name).display().to_string();
    let (ca, cert, key) = (file("ca.crt"), file("client.crt"), file("client.key"));
    let tls_args = [
        "--addr",
        addr.as_str(),
        "--ca",
        &ca,
        "--cert",
        &cert,
        "--tls-key",
        &key,
    ];
    // $TUFKEY_SOCK leads nowhere: every call must go over TCP.
    let nowhere = sandbox.path("no-daemon-here.sock");
    let summary = summary(&build_repo(&repo, &keys, &tls_args, &nowhere));
    for (role, keyid) in &keys {
        let uri = summary["uris"][role].as_str().unwrap();
        assert!(
            uri.starts_with(&format!("tufkey:{keyid}?addr={addr}&ca=")),
            "{role}: {uri}"
        );
    }

    assert_signed_by_tufkeyd(&tufkeyd.daemon, &repo, &keys, "tls");
    let signs = tufkeyd.daemon.audit_records();
    assert!(signs
        .iter()
        .filter(|record| record["rpc"] == "tufkey.v1.Signing/SignRaw")
        .all(|record| record["caller"]["common_name"] == "tufkey-test-client"));
    assert_verifiers_accept(&repo);
}

#[test]
fn an_unknown_key_id_fails_naming_it() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let mut keys = role_keys(&daemon);
    let unknown = hex::encode(Sha256::digest(b"no such key"));
    keys[1].1.clone_from(&unknown);
    let repo = sandbox.path("repo");
    let socket = daemon.socket.display().to_string();

    // The socket named in the URI, $TUFKEY_SOCK leading nowhere.
    let output = build_repo(
        &repo,
        &keys,
        &["--socket", &socket],
        &sandbox.path("no-daemon-here.sock"),
    );
    let stderr = failure(&output);
    for needle in [
        unknown.as_str(),
        "NOT_FOUND",
        "/tufkey.v1.Keys/GetKey",
        &socket,
    ] {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    }
    assert!(!repo.join("metadata").exists(), "metadata written anyway");
}

#[test]
fn a_public_key_other_than_the_uris_key_is_refused_before_anything_is_signed() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let keys = role_keys(&daemon);
    let repo = sandbox.path("repo");

    let output = build_repo(
        &repo,
        &keys,
        &["--public-key-of", "targets=snapshot"],
        &daemon.socket,
    );
    let stderr = failure(&output);
    for needle in [
        "TufkeyKeyMismatchError",
        "is not the key tufkeyd holds",
        keyid_of(&keys, "targets"),
        keyid_of(&keys, "snapshot"),
        "TufkeySigner.import_",
    ] {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    }
    assert!(
        !daemon
            .audit_records()
            .iter()
            .any(|record| record["rpc"] == "tufkey.v1.Signing/SignRaw"),
        "something was signed"
    );
}

fn client_python() -> PathBuf {
    workspace_root().join("client").join("python")
}

#[test]
fn the_signers_unit_tests_pass() {
    let output = Command::new(venv_python().unwrap())
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(client_python().join("tests"))
        // Not the source tree: the tests run against the installed package.
        .current_dir(std::env::temp_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "unit tests failed: {report}");
    assert!(report.contains("\nOK"), "{report}");
}

#[test]
fn the_committed_stubs_match_a_fresh_generation_from_proto() {
    let fresh = tempfile::tempdir().unwrap();
    let python = venv_python().unwrap();
    let output = Command::new("bash")
        .arg(client_python().join("generate-stubs.sh"))
        .arg(fresh.path())
        .env("PYTHON", &python)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "generate-stubs.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let committed = client_python().join("src/tufkey_signer/_proto");
    for name in ["tufkey_pb2.py", "tufkey_pb2.pyi", "tufkey_pb2_grpc.py"] {
        let want = std::fs::read(fresh.path().join(name)).unwrap();
        let have = std::fs::read(committed.join(name)).unwrap();
        assert!(
            want == have,
            "{} differs from what proto/ generates: run \
             PYTHON=target/tufkey-venv/bin/python client/python/generate-stubs.sh",
            committed.join(name).display()
        );
    }
}
