//! A TUF repository whose every signature comes from `tufkey sign` is accepted by
//! python-tuf and tough; with one signature tampered, both reject it. Key IDs agree
//! with tough's computation and with Notary's rule.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tufkey_e2e::daemon::{Daemon, DaemonOptions, Sandbox};
use tufkey_e2e::tuf_repo::{self, RepoBuilder, RepoKeys, RoleKey};
use tufkey_e2e::verify::{tough_key_id, verify_with_python_tuf, verify_with_tough};

const GUN: &str = "docker.io/acme/app";

fn role_key(daemon: &Daemon, role: &str) -> (RoleKey, Value) {
    let key = daemon.generate(GUN, role);
    for field in [
        "keyid",
        "notary_keyid",
        "gun",
        "role",
        "public_pem",
        "tuf_key",
    ] {
        assert!(
            !key[field].is_null(),
            "`key generate --json` lacks {field}: {key}"
        );
    }
    assert_eq!(key["gun"], GUN);
    assert_eq!(key["role"], role);
    (
        RoleKey::new(key["keyid"].as_str().unwrap(), key["tuf_key"].clone()),
        key,
    )
}

/// The Notary key ID, computed independently: sha256 of olpc-cjson's canonical form of
/// `{"keytype":"ecdsa","keyval":{"private":null,"public":base64(DER SPKI)}}`.
fn notary_keyid_of(public_pem: &str) -> String {
    let der = p256::PublicKey::from_public_key_pem(public_pem)
        .unwrap()
        .to_public_key_der()
        .unwrap();
    let public = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
    let value = json!({"keytype": "ecdsa", "keyval": {"private": null, "public": public}});
    let mut canonical = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(
        &mut canonical,
        olpc_cjson::CanonicalFormatter::new(),
    );
    serde::Serialize::serialize(&value, &mut serializer).unwrap();
    hex::encode(Sha256::digest(&canonical))
}

#[test]
fn repository_signed_only_through_tufkey_is_accepted_and_tampering_is_rejected() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());

    let (root, root_json) = role_key(&daemon, "root");
    let (targets, targets_json) = role_key(&daemon, "targets");
    let (snapshot, snapshot_json) = role_key(&daemon, "snapshot");
    let (timestamp, timestamp_json) = role_key(&daemon, "timestamp");

    for key in [&root_json, &targets_json, &snapshot_json, &timestamp_json] {
        assert_eq!(
            key["keyid"].as_str().unwrap(),
            tough_key_id(&key["tuf_key"]),
            "TUF key ID differs from tough's"
        );
        assert_eq!(
            key["notary_keyid"].as_str().unwrap(),
            notary_keyid_of(key["public_pem"].as_str().unwrap()),
            "Notary key ID differs from Notary's rule"
        );
        assert_eq!(key["tuf_key"]["keyval"]["public"], key["public_pem"]);
    }

    let builder = RepoBuilder::new(RepoKeys::single(root, targets, snapshot, timestamp))
        .target("app-1.0.tar.gz", b"release one".to_vec())
        .target("docs/readme.txt", b"hello from tufkey\n".to_vec())
        .target_with_custom("bin/tool", vec![0u8, 1, 2, 255], json!({"arch": "amd64"}));
    let good = builder
        .build(&sandbox.path("good"), &mut daemon.metadata_signer())
        .expect("build and sign the repository");

    let summary = verify_with_python_tuf(&good.dir)
        .expect("python-tuf rejected a repository signed by tufkey");
    assert!(
        summary.contains('3'),
        "python-tuf did not fetch all three targets: {summary}"
    );
    verify_with_tough(&good.dir).expect("tough rejected a repository signed by tufkey");

    // Tamper with the timestamp signature: timestamp is never hash-pinned, so only
    // the signature check can catch it.
    let tampered = builder
        .build(&sandbox.path("tampered"), &mut daemon.metadata_signer())
        .expect("build the second repository");
    tuf_repo::tamper_signature(&tampered.metadata("timestamp.json")).unwrap();
    let python_error = verify_with_python_tuf(&tampered.dir)
        .expect_err("python-tuf accepted a tampered signature");
    assert!(
        python_error.to_lowercase().contains("sign"),
        "python-tuf failed for another reason: {python_error}"
    );
    let tough_error =
        verify_with_tough(&tampered.dir).expect_err("tough accepted a tampered signature");
    assert!(
        tough_error.to_lowercase().contains("signature"),
        "tough failed for another reason: {tough_error}"
    );
}

#[test]
fn signing_keeps_other_signatures_and_replaces_its_own() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let first = daemon.generate_keyid(GUN, "targets");
    let second = daemon.generate_keyid(GUN, "targets");
    let file = sandbox.path("targets.json");
    std::fs::write(
        &file,
        r#"{"signed":{"_type":"targets","version":1,"targets":{}},"signatures":[{"keyid":"someone-else","sig":"00"}]}"#,
    )
    .unwrap();
    daemon.cli_ok(&["sign", "--key", &first, file.to_str().unwrap()]);
    daemon.cli_ok(&[
        "sign",
        "--key",
        &first,
        "--key",
        &second,
        file.to_str().unwrap(),
    ]);
    let signed: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let keyids: Vec<&str> = signed["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap())
        .collect();
    assert_eq!(keyids, ["someone-else", first.as_str(), second.as_str()]);
    assert_eq!(signed["signed"]["_type"], "targets");

    // `-` reads the document from stdin and writes the signed one to stdout.
    let piped = daemon.cli_with_stdin(
        &["sign", "--key", &second, "-"],
        br#"{"signed":{"_type":"targets","version":2}}"#,
    );
    assert!(piped.success, "{}", piped.stderr);
    let out: Value = serde_json::from_str(&piped.stdout).unwrap();
    assert_eq!(out["signatures"][0]["keyid"], second.as_str());
    assert_eq!(out["signed"]["version"], 2);
}

#[test]
fn sign_raw_encodes_tuf_and_notary_signatures_that_verify() {
    use p256::ecdsa::signature::Verifier;
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let key = daemon.generate(GUN, "snapshot");
    let verifying =
        p256::ecdsa::VerifyingKey::from_public_key_pem(key["public_pem"].as_str().unwrap())
            .unwrap();
    let payload = sandbox.path("payload.bin");
    std::fs::write(&payload, b"raw bytes to sign").unwrap();
    let keyid = key["keyid"].as_str().unwrap();

    let tuf = daemon.cli_ok(&[
        "sign-raw",
        "--key",
        keyid,
        "--format",
        "tuf",
        payload.to_str().unwrap(),
    ]);
    let der = hex::decode(tuf.stdout.trim()).unwrap();
    verifying
        .verify(
            b"raw bytes to sign",
            &p256::ecdsa::Signature::from_der(&der).unwrap(),
        )
        .unwrap();

    let notary = daemon
        .cli_ok(&[
            "--json",
            "sign-raw",
            "--key",
            key["notary_keyid"].as_str().unwrap(),
            "--format",
            "notary",
            payload.to_str().unwrap(),
        ])
        .json();
    assert_eq!(
        notary["keyid"], keyid,
        "lookup by Notary key ID answers with the TUF key ID"
    );
    let raw = base64::engine::general_purpose::STANDARD
        .decode(notary["signature"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw.len(), 64);
    verifying
        .verify(
            b"raw bytes to sign",
            &p256::ecdsa::Signature::from_slice(&raw).unwrap(),
        )
        .unwrap();
}

#[test]
fn key_commands_list_show_and_delete_with_confirmation() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let root = daemon.generate("example.com/a", "root");
    let delegation = daemon.generate("example.com/b", "targets/releases");
    let keyid = root["keyid"].as_str().unwrap();

    let all = daemon.cli_ok(&["--json", "key", "list"]).json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    let only_b = daemon
        .cli_ok(&["--json", "key", "list", "--gun", "example.com/b"])
        .json();
    assert_eq!(only_b, json!([delegation.clone()]));
    let only_root = daemon
        .cli_ok(&["--json", "key", "list", "--role", "root"])
        .json();
    assert_eq!(only_root, json!([root.clone()]));
    assert_eq!(
        daemon.cli_ok(&["--json", "key", "show", keyid]).json(),
        root
    );

    daemon
        .cli(&["key", "delete", keyid])
        .assert_fails_with("--yes");
    assert_eq!(
        daemon
            .cli_ok(&["--json", "key", "list"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    daemon.cli_ok(&["key", "delete", keyid, "--yes"]);
    daemon
        .cli(&["key", "show", keyid])
        .assert_fails_with("no key with ID");
    assert_eq!(
        daemon.cli_ok(&["--json", "key", "list"]).json(),
        json!([delegation])
    );
}
