//! `tufkey repo` end to end with software keys, against the real daemon: init, add
//! three files, publish; python-tuf's ngclient and tough update and download. Then a
//! release with a delegation, a targets key rotation that clients trusting the OLD
//! root follow, a timestamp refresh, `status --json`, and bad inputs that fail with
//! the fix and leave the published release untouched.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tufkey_e2e::daemon::{Daemon, DaemonOptions, Sandbox};
use tufkey_e2e::repo_clients::{python_update, tough_update};

const GUN: &str = "example.com/acme/app";

/// Every file in DIR/metadata and its bytes.
fn metadata_files(repo: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(repo.join("metadata"))
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().into_string().unwrap(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

fn write_file(dir: &Path, name: &str, body: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

fn status(daemon: &Daemon, repo: &str) -> Value {
    daemon.cli_ok(&["--json", "repo", "status", repo]).json()
}

#[test]
fn release_workflow_updates_python_tuf_and_tough_clients_across_rotation() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let repo_dir = sandbox.path("repo");
    let repo = repo_dir.to_str().unwrap();
    let inputs = sandbox.path("inputs");

    // Release 1: init (software keys), three files, publish.
    daemon.cli_ok(&["repo", "init", repo, "--gun", GUN]);
    let old_root = sandbox.path("trusted-1.root.json");
    std::fs::copy(repo_dir.join("metadata/1.root.json"), &old_root).unwrap();
    let app = write_file(&inputs, "app.tar.gz", "application v1");
    let readme = write_file(&inputs, "README.txt", "read me");
    let config = write_file(&inputs, "config.json", "{\"debug\": false}");
    let added = daemon.cli_ok(&[
        "repo",
        "add",
        repo,
        app.to_str().unwrap(),
        readme.to_str().unwrap(),
        config.to_str().unwrap(),
    ]);
    assert!(
        added.stdout.contains("3 change(s) staged"),
        "{}",
        added.stdout
    );
    let published = daemon.cli_ok(&["--json", "repo", "publish", repo]);
    assert_eq!(published.json()["versions"]["targets"], 2);
    // One progress line per role.
    for line in [
        "targets v2 signed by",
        "snapshot v2 signed by",
        "timestamp v2 signed by",
    ] {
        assert!(published.stderr.contains(line), "{}", published.stderr);
    }
    assert_eq!(published.stderr.lines().count(), 3, "{}", published.stderr);
    assert!(
        published.stderr.contains("(software)"),
        "{}",
        published.stderr
    );
    // Consistent snapshots: targets stored under their hashes.
    let stored: Vec<String> = std::fs::read_dir(repo_dir.join("targets"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert!(stored
        .iter()
        .all(|name| name.len() > 65 && name.as_bytes()[64] == b'.'));

    let release_1 = [
        ("app.tar.gz", app.as_path()),
        ("README.txt", readme.as_path()),
        ("config.json", config.as_path()),
    ];
    let versions = python_update(&repo_dir, &old_root, &release_1).unwrap();
    assert_eq!(versions["targets"], 2, "{versions:?}");
    let versions = tough_update(&repo_dir, &old_root, &release_1).unwrap();
    assert_eq!(versions["timestamp"], 2, "{versions:?}");

    // Release 2: a delegation with a target of its own.
    let delegation_key = daemon.generate_keyid(GUN, "targets/releases");
    daemon.cli_ok(&[
        "repo",
        "delegate",
        repo,
        "releases",
        "--key",
        &delegation_key,
        "--path",
        "rel-*",
    ]);
    let rel = write_file(&inputs, "rel-1.tar.gz", "release one");
    daemon.cli_ok(&[
        "repo",
        "add",
        repo,
        rel.to_str().unwrap(),
        "--delegation",
        "releases",
    ]);
    // A target named by its path below a directory, stored as consistent snapshots
    // name it (the hash on the last part).
    let tool = write_file(&inputs.join("pkg/linux"), "tool.tar.gz", "a tool");
    daemon.cli_ok(&[
        "repo",
        "add",
        repo,
        tool.to_str().unwrap(),
        "--relative-to",
        inputs.to_str().unwrap(),
    ]);
    let outside = daemon.cli(&[
        "repo",
        "add",
        repo,
        old_root.to_str().unwrap(),
        "--relative-to",
        inputs.to_str().unwrap(),
    ]);
    assert!(!outside.success);
    assert!(
        outside.stderr.contains("is not under --relative-to"),
        "{}",
        outside.stderr
    );
    let published = daemon.cli_ok(&["--json", "repo", "publish", repo]);
    assert_eq!(published.json()["versions"]["releases"], 1);
    let stored: Vec<String> = std::fs::read_dir(repo_dir.join("targets/pkg/linux"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].ends_with(".tool.tar.gz") && stored[0].len() == 64 + 12);
    assert!(published
        .stderr
        .contains(&format!("releases v1 signed by {delegation_key}")));
    let mut release_2 = release_1.to_vec();
    release_2.push(("rel-1.tar.gz", rel.as_path()));
    release_2.push(("pkg/linux/tool.tar.gz", tool.as_path()));
    let versions = python_update(&repo_dir, &old_root, &release_2).unwrap();
    assert_eq!(versions["releases"], 1, "{versions:?}");
    assert_eq!(versions["targets"], 3, "{versions:?}");
    tough_update(&repo_dir, &old_root, &release_2).unwrap();

    // Rotate the targets key, then publish: clients trusting root v1 follow to v2.
    let old_targets_key = status(&daemon, repo)["roles"]["targets"]["keys"][0]["keyid"].clone();
    let rotated = daemon.cli_ok(&["--json", "repo", "rotate", repo, "targets"]);
    assert_eq!(rotated.json()["versions"]["root"], 2);
    let root_2: Value =
        serde_json::from_slice(&std::fs::read(repo_dir.join("metadata/2.root.json")).unwrap())
            .unwrap();
    let old_root_key = status(&daemon, repo)["roles"]["root"]["keys"][0]["keyid"].clone();
    assert_eq!(root_2["signatures"][0]["keyid"], old_root_key);
    let fourth = write_file(&inputs, "notes.txt", "after the rotation");
    daemon.cli_ok(&["repo", "add", repo, fourth.to_str().unwrap()]);
    daemon.cli_ok(&["repo", "publish", repo]);
    let report = status(&daemon, repo);
    assert_ne!(
        report["roles"]["targets"]["keys"][0]["keyid"],
        old_targets_key
    );
    assert_eq!(report["roles"]["root"]["version"], 2);
    let mut release_3 = release_2.clone();
    release_3.push(("notes.txt", fourth.as_path()));
    let versions = python_update(&repo_dir, &old_root, &release_3).unwrap();
    assert_eq!(versions["root"], 2, "{versions:?}");
    let versions = tough_update(&repo_dir, &old_root, &release_3).unwrap();
    assert_eq!(versions["root"], 2, "{versions:?}");
    let targets_version = versions["targets"];
    let snapshot_version = versions["snapshot"];
    let timestamp_version = versions["timestamp"];

    // refresh --role timestamp: only timestamp.json changes.
    let before = metadata_files(&repo_dir);
    let refreshed = daemon.cli_ok(&["--json", "repo", "refresh", repo, "--role", "timestamp"]);
    assert_eq!(refreshed.stderr.lines().count(), 1, "{}", refreshed.stderr);
    let after = metadata_files(&repo_dir);
    let changed: Vec<&String> = after
        .iter()
        .filter(|(name, bytes)| before.get(*name) != Some(bytes))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(changed, ["timestamp.json"], "refresh changed {changed:?}");
    let versions = tough_update(&repo_dir, &old_root, &release_3).unwrap();
    assert_eq!(versions["timestamp"], timestamp_version + 1);
    assert_eq!(versions["snapshot"], snapshot_version);
    assert_eq!(versions["targets"], targets_version);
    python_update(&repo_dir, &old_root, &release_3).unwrap();

    // refresh --role snapshot: a new snapshot and timestamp, targets untouched.
    daemon.cli_ok(&["repo", "refresh", repo, "--role", "snapshot"]);
    let versions = python_update(&repo_dir, &old_root, &release_3).unwrap();
    assert_eq!(versions["snapshot"], snapshot_version + 1);
    assert_eq!(versions["targets"], targets_version);

    // Rotate root: root v3 carries signatures of the old and the new root key, and
    // clients trusting root v1 still walk the chain to it.
    daemon.cli_ok(&["repo", "rotate", repo, "root"]);
    let root_3: Value =
        serde_json::from_slice(&std::fs::read(repo_dir.join("metadata/3.root.json")).unwrap())
            .unwrap();
    let new_root_key = status(&daemon, repo)["roles"]["root"]["keys"][0]["keyid"].clone();
    assert_ne!(new_root_key, old_root_key);
    let signers: Vec<&Value> = root_3["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|signature| &signature["keyid"])
        .collect();
    assert!(
        signers.contains(&&old_root_key) && signers.contains(&&new_root_key),
        "{signers:?}"
    );
    daemon.cli_ok(&["repo", "publish", repo]);
    let versions = python_update(&repo_dir, &old_root, &release_3).unwrap();
    assert_eq!(versions["root"], 3, "{versions:?}");
    let versions = tough_update(&repo_dir, &old_root, &release_3).unwrap();
    assert_eq!(versions["root"], 3, "{versions:?}");

    // Remove a target: clients no longer find it, the others still download.
    daemon.cli_ok(&["repo", "remove", repo, "config.json"]);
    daemon.cli_ok(&["repo", "publish", repo]);
    release_3.retain(|(name, _)| *name != "config.json");
    let versions = python_update(&repo_dir, &old_root, &release_3).unwrap();
    let targets_version = versions["targets"];
    let timestamp_version = versions["timestamp"];
    let gone = python_update(&repo_dir, &old_root, &[("config.json", config.as_path())]);
    assert!(gone.unwrap_err().contains("'config.json' not found"));
    let gone = tough_update(&repo_dir, &old_root, &[("config.json", config.as_path())]);
    assert!(gone.unwrap_err().contains("config.json not found"));

    // status --json: versions, keys and where they are, nothing missing.
    let report = status(&daemon, repo);
    assert_eq!(report["gun"], GUN);
    assert_eq!(report["roles"]["timestamp"]["version"], timestamp_version);
    assert_eq!(report["roles"]["root"]["version"], 3);
    assert_eq!(report["roles"]["targets"]["version"], targets_version);
    for role in ["root", "targets", "snapshot", "timestamp"] {
        let key = &report["roles"][role]["keys"][0];
        assert_eq!(key["location"], "software", "{role}: {key}");
        assert_eq!(key["available"], true, "{role}: {key}");
        assert!(report["roles"][role]["expires"]
            .as_str()
            .unwrap()
            .ends_with('Z'));
    }
    assert_eq!(report["delegations"]["releases"]["version"], 1);
    assert_eq!(report["delegations"]["releases"]["published"], true);
    // app, README, pkg/linux/tool (config.json removed); rel-1 is the delegation's.
    assert_eq!(report["targets"], 4);
    assert_eq!(report["missing"], Value::Array(vec![]), "{report}");
    // A staged change is reported as missing work.
    let extra = write_file(&inputs, "extra.txt", "staged only");
    daemon.cli_ok(&["repo", "add", repo, extra.to_str().unwrap()]);
    let report = status(&daemon, repo);
    assert_eq!(report["staged"]["add"][0]["name"], "extra.txt");
    assert!(
        report["missing"][0]
            .as_str()
            .unwrap()
            .contains("1 staged change(s): run `tufkey repo publish"),
        "{report}"
    );
}

#[test]
fn bad_inputs_fail_with_the_fix_and_leave_the_release_untouched() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let repo_dir = sandbox.path("repo");
    let repo = repo_dir.to_str().unwrap();
    let inputs = sandbox.path("inputs");

    daemon
        .cli(&["repo", "status", repo])
        .assert_fails_with("is not a tufkey repository");
    daemon
        .cli(&[
            "repo",
            "init",
            repo,
            "--gun",
            GUN,
            "--targets-key",
            &"ab".repeat(32),
        ])
        .assert_fails_with("is not in tufkeyd");
    daemon
        .cli(&["repo", "init", repo, "--gun", GUN, "--threshold", "root=2"])
        .assert_fails_with("give a threshold from 1 to 1");
    daemon
        .cli(&["repo", "init", repo, "--gun", GUN, "--expires", "moon=3"])
        .assert_fails_with("expected ROLE=DAYS");
    assert!(!repo_dir.exists(), "a failed init left {repo}");

    daemon.cli_ok(&["repo", "init", repo, "--gun", GUN]);
    daemon
        .cli(&["repo", "init", repo, "--gun", GUN])
        .assert_fails_with("already holds a tufkey repository");
    daemon
        .cli(&["repo", "add", repo, "/nonexistent/file.txt"])
        .assert_fails_with("/nonexistent/file.txt: no such file");
    let file = write_file(&inputs, "a.txt", "a");
    daemon
        .cli(&[
            "repo",
            "add",
            repo,
            file.to_str().unwrap(),
            "--delegation",
            "nope",
        ])
        .assert_fails_with(
            "unknown delegation \"nope\": create it first with `tufkey repo delegate",
        );
    daemon
        .cli(&["repo", "remove", repo, "missing.txt"])
        .assert_fails_with("target \"missing.txt\" is not in targets");
    daemon
        .cli(&["repo", "refresh", repo, "--role", "targets"])
        .assert_fails_with("only timestamp and snapshot are refreshed");
    daemon
        .cli(&["repo", "rotate", repo, "--key", &"cd".repeat(32), "targets"])
        .assert_fails_with("is not in tufkeyd");
    let unknown_role = daemon.cli(&["repo", "rotate", repo, "admin"]);
    assert!(!unknown_role.success);
    assert!(
        unknown_role.stderr.contains("invalid value 'admin'")
            && unknown_role
                .stderr
                .contains("root, targets, snapshot, timestamp"),
        "{}",
        unknown_role.stderr
    );

    // Another command holding the DIR's lock (flock(1) stands in for it): refused.
    let mut holder = std::process::Command::new("flock")
        .arg("--no-fork")
        .arg(repo_dir.join("tufkey-repo.lock"))
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let busy = daemon.cli(&["repo", "refresh", repo, "--role", "timestamp"]);
        if !busy.success {
            busy.assert_fails_with("another `tufkey repo` command is working in this DIR");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "flock(1) never took the lock"
        );
    }
    holder.kill().unwrap();
    holder.wait().unwrap();

    // A staged file that vanished before publish: nothing signed, nothing written.
    let before = metadata_files(&repo_dir);
    daemon.cli_ok(&["repo", "add", repo, file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    daemon
        .cli(&["repo", "publish", repo])
        .assert_fails_with("a.txt: no such file");
    assert_eq!(metadata_files(&repo_dir), before);

    // Signing fails halfway (the snapshot key is gone from tufkeyd after targets was
    // signed): the published release is untouched and still verifies.
    write_file(&inputs, "a.txt", "a again");
    let snapshot_key = status(&daemon, repo)["roles"]["snapshot"]["keys"][0]["keyid"]
        .as_str()
        .unwrap()
        .to_owned();
    daemon.cli_ok(&["key", "delete", &snapshot_key, "--yes"]);
    let failed = daemon.cli(&["repo", "publish", repo]);
    assert!(!failed.success);
    assert!(
        failed.stderr.contains(&format!(
            "key {snapshot_key} for snapshot is not in tufkeyd"
        )),
        "{}",
        failed.stderr
    );
    assert_eq!(metadata_files(&repo_dir), before);
    let leftovers: Vec<_> = std::fs::read_dir(&repo_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().starts_with(".tufkey"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let report = status(&daemon, repo);
    assert!(
        report["missing"]
            .to_string()
            .contains(&format!("key {snapshot_key} (snapshot) is not in tufkeyd")),
        "{report}"
    );
}
