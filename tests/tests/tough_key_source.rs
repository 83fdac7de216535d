//! tough's `RepositoryEditor`, signing every role through `tufkey::TufkeyKeySource`
//! (keys held by a real tufkeyd), builds a repository that python-tuf and tough
//! accept; the key source refuses private keys and names unknown keys.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::path::Path;
use tough::editor::signed::{PathExists, SignedRole};
use tough::editor::RepositoryEditor;
use tough::key_source::KeySource;
use tough::schema::{KeyHolder, RoleKeys, RoleType, Root};
use tufkey::{Client, TufkeyKeySource};
use tufkey_e2e::daemon::{DaemonOptions, Sandbox};
use tufkey_e2e::verify::{verify_with_python_tuf, verify_with_tough_async};

const GUN: &str = "example.com/tough-editor";
const ROLES: [RoleType; 4] = [
    RoleType::Root,
    RoleType::Targets,
    RoleType::Snapshot,
    RoleType::Timestamp,
];

/// `n` days from now, in whole seconds (TUF's `expires` has no fractions).
fn days(n: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + n * 86_400).unwrap()
}

fn one() -> NonZeroU64 {
    NonZeroU64::new(1).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_editor_signing_through_tufkeyd_is_accepted_by_python_tuf_and_tough() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let client = Client::connect_unix(&daemon.socket).await.unwrap();

    // One tufkeyd key per top-level role; root built with tough's schema types.
    let mut root = Root {
        spec_version: "1.0.0".into(),
        consistent_snapshot: true,
        version: one(),
        expires: days(365),
        keys: HashMap::new(),
        roles: HashMap::new(),
        _extra: HashMap::new(),
    };
    let mut sources: Vec<Box<dyn KeySource>> = Vec::new();
    for role in ROLES {
        let keyid = daemon.generate_keyid(GUN, &role.to_string());
        let source = TufkeyKeySource::new(client.clone(), &keyid);
        let (_, tuf_key) = source.tuf_key().await.unwrap();
        let id = tuf_key.key_id().unwrap();
        assert_eq!(hex::encode(&*id), keyid, "tough's key ID is tufkeyd's");
        root.keys.insert(id.clone(), tuf_key);
        root.roles.insert(
            role,
            RoleKeys {
                keyids: vec![id],
                threshold: one(),
                _extra: HashMap::new(),
            },
        );
        sources.push(Box::new(source));
    }

    let repo = sandbox.path("repo");
    let metadata = repo.join("metadata");
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let signed_root = SignedRole::new(root.clone(), &KeyHolder::Root(root), &sources, &rng)
        .await
        .unwrap();
    signed_root.write(&metadata, true).await.unwrap();

    // Three targets, through the editor.
    let inputs = sandbox.path("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    let mut editor = RepositoryEditor::new(metadata.join("1.root.json"))
        .await
        .unwrap();
    for (name, body) in [
        ("app.tar.gz", "app v1"),
        ("README.txt", "read me"),
        ("config.json", "{}"),
    ] {
        let path = inputs.join(name);
        std::fs::write(&path, body).unwrap();
        editor.add_target_path(&path).await.unwrap();
    }
    editor
        .targets_version(one())
        .unwrap()
        .targets_expires(days(90))
        .unwrap()
        .snapshot_version(one())
        .snapshot_expires(days(7))
        .timestamp_version(one())
        .timestamp_expires(days(1));
    let signed = editor.sign(&sources).await.unwrap();
    signed.write(&metadata).await.unwrap();
    // Consistent snapshots (`<sha256>.<name>`) for the clients, plain names for the
    // verifiers' byte-for-byte comparison.
    let targets = repo.join("targets");
    std::fs::create_dir_all(&targets).unwrap();
    signed
        .copy_targets(&inputs, &targets, PathExists::Fail)
        .await
        .unwrap();
    copy_dir(&inputs, &targets);

    let python = verify_with_python_tuf(&repo).unwrap();
    assert!(python.contains("3 targets"), "{python}");
    verify_with_tough_async(&repo).await.unwrap();

    // tufkeyd never takes private keys from tough.
    let refused = sources[1].write("-----BEGIN PRIVATE KEY-----", "x").await;
    let message = refused.unwrap_err().to_string();
    assert!(
        message.contains("does not accept private keys"),
        "{message}"
    );

    // An unknown key is named, and the daemon's reason is kept as the source.
    let unknown = TufkeyKeySource::new(client.clone(), "ab".repeat(32));
    let error = unknown.as_sign().await.err().unwrap();
    assert!(error.to_string().contains(&"ab".repeat(32)), "{error}");
    let source = std::error::Error::source(&*error).expect("the daemon's error is kept");
    assert!(source.to_string().contains("NotFound"), "{source}");
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
