//! Bad input gets a clear error naming what was wrong, a non-zero exit, and never
//! loses or changes stored keys.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use sha2::{Digest, Sha256};
use std::path::Path;
use tufkey_e2e::daemon::{store_fingerprint, Daemon, DaemonOptions, Sandbox, TEST_PASSPHRASE};

fn sign_file(
    daemon: &Daemon,
    keyid: &str,
    path: &Path,
    contents: &str,
) -> tufkey_e2e::daemon::CliOutput {
    std::fs::write(path, contents).unwrap();
    let out = daemon.cli(&["sign", "--key", keyid, path.to_str().unwrap()]);
    if !out.success {
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            contents,
            "a failed sign changed the input file"
        );
    }
    out
}

#[test]
fn malformed_metadata_is_rejected_with_the_reason() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let keyid = daemon.generate_keyid("example.com/app", "targets");
    let before = store_fingerprint(&sandbox.store());
    let file = sandbox.path("doc.json");

    sign_file(&daemon, &keyid, &file, "{\"signed\": {").assert_fails_with("not valid JSON");
    sign_file(&daemon, &keyid, &file, r#"{"signatures":[]}"#)
        .assert_fails_with("no \"signed\" field");
    sign_file(
        &daemon,
        &keyid,
        &file,
        r#"{"signed":{"_type":"targets","targets":{"a":{"length":1.5}}}}"#,
    )
    .assert_fails_with("at /signed/targets/a/length: the number 1.5 is not an integer");
    sign_file(
        &daemon,
        &keyid,
        &file,
        "{\"signed\":{\"targets\":{\"cafe\u{0301}\":{}}}}",
    )
    .assert_fails_with(
        "at /signed/targets/cafe\u{0301}: object key is not in Unicode normalisation form NFC",
    );
    sign_file(
        &daemon,
        &keyid,
        &file,
        "{\"signed\":{\"note\":\"e\u{0301}\"}}",
    )
    .assert_fails_with("at /signed/note: string is not in Unicode normalisation form NFC");
    sign_file(&daemon, &keyid, &file, r#"{"signed":{"ab":1,"ab!":2}}"#)
        .assert_fails_with("sort differently");
    let unknown = "0".repeat(64);
    sign_file(&daemon, &unknown, &file, r#"{"signed":{}}"#)
        .assert_fails_with(&format!("no key with ID {unknown}"));
    daemon
        .cli(&["sign-raw", "--key", &unknown, file.to_str().unwrap()])
        .assert_fails_with("NotFound");
    daemon
        .cli(&[
            "key",
            "generate",
            "--gun",
            "example.com/app",
            "--role",
            "admin",
        ])
        .assert_fails_with("invalid role");
    daemon
        .cli(&[
            "sign",
            "--key",
            &keyid,
            sandbox.path("missing.json").to_str().unwrap(),
        ])
        .assert_fails_with("missing.json");

    assert_eq!(
        store_fingerprint(&sandbox.store()),
        before,
        "bad input changed the store"
    );
}

#[test]
fn wrong_passphrase_and_locked_store_are_reported_and_recoverable() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let keyid = daemon.generate_keyid("example.com/app", "targets");
    let doc = sandbox.path("doc.json");
    let unsigned = r#"{"signed":{"_type":"targets","version":1}}"#;

    // An explicit lock: signing needs the passphrase again.
    daemon.cli_ok(&["lock"]);
    sign_file(&daemon, &keyid, &doc, unsigned).assert_fails_with("the keystore is locked");
    daemon
        .cli_with_stdin(&["unlock", "--passphrase-stdin"], b"not the passphrase\n")
        .assert_fails_with("wrong passphrase");
    // A wrong passphrase starts a back-off: even the right one waits it out.
    daemon
        .cli_with_stdin(
            &["unlock", "--passphrase-stdin"],
            format!("{TEST_PASSPHRASE}\n").as_bytes(),
        )
        .assert_fails_with("wait 1 s");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let unlocked = daemon.cli_with_stdin(
        &["unlock", "--passphrase-stdin"],
        format!("{TEST_PASSPHRASE}\n").as_bytes(),
    );
    assert!(unlocked.success, "{}", unlocked.stderr);
    assert!(sign_file(&daemon, &keyid, &doc, unsigned).success);
    daemon.stop();

    // A wrong TUFKEY_PASSPHRASE: the daemon starts locked and says why; keys intact.
    let before = store_fingerprint(&sandbox.store());
    let daemon = sandbox.start(&DaemonOptions {
        passphrase: Some("wrong".into()),
        ..DaemonOptions::default()
    });
    assert!(
        daemon
            .log_text()
            .contains("wrong passphrase for the keystore"),
        "{}",
        daemon.log_text()
    );
    assert_eq!(daemon.cli_ok(&["--json", "status"]).json()["locked"], true);
    // Nothing can be signed, and nothing audited, until the keystore is unlocked.
    sign_file(&daemon, &keyid, &doc, unsigned).assert_fails_with("unlock the keystore first");
    daemon.cli_with_stdin(
        &["unlock", "--passphrase-stdin"],
        format!("{TEST_PASSPHRASE}\n").as_bytes(),
    );
    assert!(sign_file(&daemon, &keyid, &doc, unsigned).success);
    assert_eq!(store_fingerprint(&sandbox.store()), before);
}

#[test]
fn requests_over_the_size_limit_are_refused_and_a_100k_target_file_fits_the_default() {
    let sandbox = Sandbox::new();
    let small = sandbox.start(&DaemonOptions {
        args: vec!["--max-message-bytes".into(), "100000".into()],
        ..DaemonOptions::default()
    });
    let keyid = small.generate_keyid("example.com/app", "targets");
    let big = format!(
        r#"{{"signed":{{"_type":"targets","padding":"{}"}}}}"#,
        "x".repeat(200_000)
    );
    sign_file(&small, &keyid, &sandbox.path("big.json"), &big).assert_fails_with("too large");
    small.stop();

    // The default limit admits a 100k-target targets.json (~15 MB).
    let daemon = sandbox.start(&DaemonOptions::default());
    let mut targets = serde_json::Map::new();
    for n in 0..100_000 {
        targets.insert(
            format!("pkg/file-{n:06}.tar.gz"),
            serde_json::json!({"length": 1000 + n, "hashes": {"sha256": hex::encode(Sha256::digest(n.to_string())), "sha512": format!("{:0128x}", n)}, "custom": {"build": n}}),
        );
    }
    let document = serde_json::json!({"signed": {"_type": "targets", "spec_version": "1.0.31", "version": 1, "expires": "2099-01-01T00:00:00Z", "targets": targets}, "signatures": []});
    let file = sandbox.path("targets.json");
    std::fs::write(&file, serde_json::to_vec(&document).unwrap()).unwrap();
    assert!(std::fs::metadata(&file).unwrap().len() > 14_000_000);
    daemon.cli_ok(&["sign", "--key", &keyid, file.to_str().unwrap()]);
    let signed: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(signed["signatures"][0]["keyid"], keyid.as_str());
    assert_eq!(
        signed["signed"]["targets"].as_object().unwrap().len(),
        100_000
    );
}

#[test]
fn a_corrupted_key_file_is_named_and_skipped_while_the_others_still_sign() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let keys: Vec<String> = ["root", "targets", "snapshot"]
        .iter()
        .map(|role| daemon.generate_keyid("example.com/app", role))
        .collect();
    daemon.stop();

    let keys_dir = sandbox.store().join("keys");
    let damaged = keys_dir.join(format!("{}.key", keys[1]));
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&damaged, &bytes).unwrap();
    std::fs::write(
        keys_dir.join("foreign.key"),
        b"-----BEGIN EC PRIVATE KEY-----\n",
    )
    .unwrap();

    let daemon = sandbox.start(&DaemonOptions::default());
    let status = daemon.cli_ok(&["--json", "status"]).json();
    let unreadable: Vec<&str> = status["unreadable_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(unreadable.len(), 2, "{unreadable:?}");
    assert!(
        unreadable[0].starts_with(&format!("{}.key: ", keys[1]))
            || unreadable[1].starts_with(&format!("{}.key: ", keys[1]))
    );
    assert!(
        unreadable
            .iter()
            .any(|line| line.starts_with("foreign.key: not a tufkey key file")),
        "{unreadable:?}"
    );
    assert!(daemon.cli_ok(&["status"]).stdout.contains("unreadable:"));
    let payload = sandbox.path("payload");
    std::fs::write(&payload, b"x").unwrap();
    for good in [&keys[0], &keys[2]] {
        daemon.cli_ok(&["sign-raw", "--key", good, payload.to_str().unwrap()]);
    }
    // Asked for by ID, the damaged key is named with its file and the problem.
    let damaged_reply = daemon.cli(&["sign-raw", "--key", &keys[1], payload.to_str().unwrap()]);
    damaged_reply.assert_fails_with(&format!("{}.key: not a tufkey key file", keys[1]));
    damaged_reply.assert_fails_with("DataLoss");
    assert_eq!(
        std::fs::read(&damaged).unwrap(),
        bytes,
        "the damaged file must be left for the operator"
    );
}

#[test]
fn callers_whose_uid_is_not_allowed_are_denied() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    // Open the directory and socket to everyone so that only the uid check stands in the way.
    std::fs::set_permissions(sandbox.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let daemon = sandbox.start(&DaemonOptions::default());
    std::fs::set_permissions(&daemon.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let as_nobody = |socket: &Path| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(tufkey_e2e::daemon::bin_dir().join("tufkey"))
            .arg("--socket")
            .arg(socket)
            // The daemon runs as the test's uid, not nobody's: tell the CLI so.
            .arg("--server-uid")
            .arg(
                std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(socket).unwrap())
                    .to_string(),
            )
            .arg("status")
            .output()
            .expect("setpriv (util-linux) runs the CLI as nobody")
    };
    let denied = as_nobody(&daemon.socket);
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(stderr.contains("uid 65534 is not allowed"), "{stderr}");
    assert!(stderr.contains("PermissionDenied"), "{stderr}");
    daemon.stop();

    let daemon = sandbox.start(&DaemonOptions {
        args: vec!["--allow-uid".into(), "65534".into()],
        ..DaemonOptions::default()
    });
    std::fs::set_permissions(&daemon.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let allowed = as_nobody(&daemon.socket);
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
}
