//! A release signed with keys on (virtual) YubiKeys through the real CLI, daemon and
//! pcscd, as a release manager would: `tufkey repo init` with root in slot 9c of one
//! card and targets on another (snapshot and timestamp in software), three files
//! added and published, python-tuf and tough updating from the result; the same
//! `repo publish` started while the targets card is out says which card to insert
//! (serial and label), waits, and completes once the test inserts it; a wrong PIN
//! fails once with the tries left and costs exactly one try (never retried); a
//! release with a delegation, then a rotation of the targets key off its card (root
//! re-signed on the root card), after which clients trusting the first root still
//! update. The same waiting, through `tufkey sign-raw --wait`, proves the
//! card-waiting module on its own.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tufkey_e2e::daemon::{Daemon, Sandbox};
use tufkey_e2e::repo_clients::{python_update, tough_update, Wanted};
use tufkey_e2e::running::Running;
use tufkey_e2e::tuf_repo::read_json;
use tufkey_e2e::vcard::{self, daemon_on_cards, generate_on_card, signature_verifies, PIN};

const GUN: &str = "example.com/release";
const WRONG_PIN: &str = "24680135";
/// How long a CLI run that waits for a card may take once the card is in.
const FINISH_DEADLINE: Duration = Duration::from_secs(60);

fn keyid(key: &Value) -> &str {
    key["keyid"].as_str().unwrap()
}

/// Pulls the card and puts it back: the daemon forgets its PIN when it leaves.
fn forget_pin(cards: &vcard::Cards, serial: u32) {
    cards.pull(serial);
    cards.insert(serial);
}

#[test]
fn sign_raw_with_wait_says_which_card_to_insert_waits_for_it_takes_its_pin_from_stdin_and_never_retries_a_wrong_one(
) {
    let cards = vcard::cards();
    let serial = cards.serial(1);
    let sandbox = Sandbox::new();
    let daemon = daemon_on_cards(&sandbox, &[serial]);
    let key = generate_on_card(
        &daemon,
        serial,
        GUN,
        "targets",
        &["--allow-default-mgmt-key", "--touch", "cached"],
    );
    let payload = sandbox.path("payload");
    std::fs::write(&payload, b"signed once the card is back").unwrap();
    cards.pull(serial);

    let mut run = Running::start(
        &daemon,
        &[
            "sign-raw",
            "--wait",
            "--pin-stdin",
            "--key",
            keyid(&key),
            payload.to_str().unwrap(),
        ],
        &format!("{PIN}\n"),
    );
    let asked = run.wait_for_stderr("insert YubiKey", Duration::from_secs(15));
    assert_eq!(
        asked,
        format!("insert YubiKey {serial} to sign with {}", keyid(&key))
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(run.still_running(), "did not wait for the card");
    cards.insert(serial);
    // The card came back without its PIN: the PIN line on stdin unlocks it.
    run.wait_for_stderr(
        &format!(
            "touch YubiKey {serial} (slot 82) to sign with {}",
            keyid(&key)
        ),
        FINISH_DEADLINE,
    );
    let finished = run.finish(FINISH_DEADLINE);
    assert!(finished.success, "{}", finished.stderr);
    assert_eq!(
        finished.stderr.matches("insert YubiKey").count(),
        1,
        "one line says which card to insert: {}",
        finished.stderr
    );
    assert!(signature_verifies(
        &key,
        b"signed once the card is back",
        finished.stdout.trim()
    ));
    assert_eq!(vcard::pin_tries(serial), 3);

    // A wrong PIN is reported with the tries left and costs one try; the right PIN
    // follows on stdin, so an automatic retry would use it and succeed.
    forget_pin(&cards, serial);
    let output = daemon.cli_with_stdin(
        &[
            "sign-raw",
            "--wait",
            "--pin-stdin",
            "--key",
            keyid(&key),
            payload.to_str().unwrap(),
        ],
        format!("{WRONG_PIN}\n{PIN}\n").as_bytes(),
    );
    output.assert_fails_with(&format!("wrong PIN for YubiKey {serial}: 2 tries left"));
    assert_eq!(vcard::pin_tries(serial), 2, "exactly one try spent");
}

/// `tufkey repo ARGS...`, which must succeed; its stderr.
fn repo_ok(daemon: &Daemon, args: &[&str], stdin: &str) -> String {
    let mut full = vec!["repo"];
    full.extend_from_slice(args);
    let output = daemon.cli_with_stdin(&full, stdin.as_bytes());
    assert!(
        output.success,
        "tufkey {full:?} failed: {}{}",
        output.stderr, output.stdout
    );
    output.stderr
}

/// The version a metadata file of the repository carries.
fn version(dir: &Path, file: &str) -> u64 {
    read_json(&dir.join("metadata").join(file)).unwrap()["signed"]["version"]
        .as_u64()
        .unwrap()
}

/// The targets version the current release lists (timestamp -> snapshot -> targets,
/// as a client finds it in a consistent-snapshot repository).
fn targets_version(dir: &Path) -> u64 {
    let listed = |file: &str, entry: &str| {
        read_json(&dir.join("metadata").join(file)).unwrap()["signed"]["meta"][entry]["version"]
            .as_u64()
            .unwrap_or_else(|| panic!("{file} lists no {entry}"))
    };
    let snapshot = listed("timestamp.json", "snapshot.json");
    listed(&format!("{snapshot}.snapshot.json"), "targets.json")
}

/// python-tuf's ngclient and tough both update from the repository, trusting its
/// first root, and download every file released so far; the targets version each
/// trusts afterwards.
fn clients_update(dir: &Path, released: &[PathBuf]) -> (u64, u64) {
    let wanted: Vec<Wanted<'_>> = released
        .iter()
        .map(|file| (file.file_name().unwrap().to_str().unwrap(), file.as_path()))
        .collect();
    let trusted_root = dir.join("metadata").join("1.root.json");
    let python =
        python_update(dir, &trusted_root, &wanted).expect("python-tuf rejected the release");
    let tough = tough_update(dir, &trusted_root, &wanted).expect("tough rejected the release");
    (python["targets"], tough["targets"])
}

/// Files to release, written into the sandbox.
fn release_files(sandbox: &Sandbox, names: &[&str]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|name| {
            let path = sandbox.path(name);
            std::fs::write(&path, format!("contents of {name}\n")).unwrap();
            path
        })
        .collect()
}

/// A repository whose root key is in slot 9c of `root_card` and targets key on
/// `targets_card` (labelled "release card"); snapshot and timestamp in software.
fn init_on_cards(daemon: &Daemon, dir: &Path, root_card: u32, targets_card: u32) -> (Value, Value) {
    let root = generate_on_card(
        daemon,
        root_card,
        GUN,
        "root",
        &["--allow-default-mgmt-key"],
    );
    assert_eq!(root["slot"], "9c", "{root}");
    let targets = generate_on_card(
        daemon,
        targets_card,
        GUN,
        "targets",
        &["--allow-default-mgmt-key"],
    );
    let root_label = format!("{root_card}=root card");
    let targets_label = format!("{targets_card}=release card");
    let progress = repo_ok(
        daemon,
        &[
            "init",
            dir.to_str().unwrap(),
            "--gun",
            GUN,
            "--root-key",
            keyid(&root),
            "--targets-key",
            keyid(&targets),
            "--card-label",
            &root_label,
            "--card-label",
            &targets_label,
            "--pin-stdin",
        ],
        "",
    );
    // Slot 9c needs a touch for every signature: the user is told which card, when.
    assert!(
        progress.contains(&format!("touch YubiKey {root_card} (slot 9c) to sign root")),
        "{progress}"
    );
    (root, targets)
}

#[test]
fn a_release_with_root_and_targets_on_two_cards_publishes_a_publish_started_without_the_targets_card_waits_for_it_and_a_wrong_pin_is_never_retried(
) {
    let cards = vcard::cards();
    let (root_card, targets_card) = (cards.serial(0), cards.serial(1));
    let sandbox = Sandbox::new();
    let daemon = daemon_on_cards(&sandbox, &[root_card, targets_card]);
    let dir = sandbox.path("repo");
    init_on_cards(&daemon, &dir, root_card, targets_card);

    let files = release_files(&sandbox, &["app-1.0.tar.gz", "app-1.0.sig", "README"]);
    let mut add = vec!["add", dir.to_str().unwrap()];
    add.extend(files.iter().map(|file| file.to_str().unwrap()));
    repo_ok(&daemon, &add, "");
    let targets_before = targets_version(&dir);
    let progress = repo_ok(
        &daemon,
        &["publish", dir.to_str().unwrap(), "--pin-stdin"],
        "",
    );
    assert!(
        progress.contains(&format!("(YubiKey {targets_card} slot 82)")),
        "one line per role, naming the card: {progress}"
    );
    let first = targets_version(&dir);
    assert!(
        first > targets_before,
        "publish made no new targets version"
    );
    assert_eq!(clients_update(&dir, &files), (first, first));

    // The next release is published while the targets card is in a drawer.
    let more = release_files(&sandbox, &["app-1.1.tar.gz"]);
    repo_ok(
        &daemon,
        &["add", dir.to_str().unwrap(), more[0].to_str().unwrap()],
        "",
    );
    cards.pull(targets_card);
    let timestamp_before = version(&dir, "timestamp.json");
    let mut publish = Running::start(
        &daemon,
        &["repo", "publish", dir.to_str().unwrap(), "--pin-stdin"],
        &format!("{PIN}\n"),
    );
    let asked = publish.wait_for_stderr(
        &format!("insert YubiKey {targets_card}"),
        Duration::from_secs(30),
    );
    assert_eq!(
        asked,
        format!("insert YubiKey {targets_card} (release card) to sign targets")
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(publish.still_running(), "did not wait for the card");
    assert_eq!(
        version(&dir, "timestamp.json"),
        timestamp_before,
        "nothing is published before the card is in"
    );
    cards.insert(targets_card);
    let finished = publish.finish(FINISH_DEADLINE);
    assert!(finished.success, "{}{}", finished.stderr, finished.stdout);
    let second = targets_version(&dir);
    assert!(second > first, "no new targets version: {second}");
    assert!(version(&dir, "timestamp.json") > timestamp_before);
    let released: Vec<PathBuf> = files.iter().chain(&more).cloned().collect();
    assert_eq!(clients_update(&dir, &released), (second, second));
    // The card came back without its PIN: one line of stdin, one try.
    assert_eq!(vcard::pin_tries(targets_card), 3);

    // A wrong PIN fails the publish once, with the tries left, and costs one try.
    let last = release_files(&sandbox, &["app-2.0.tar.gz"]);
    repo_ok(
        &daemon,
        &["add", dir.to_str().unwrap(), last[0].to_str().unwrap()],
        "",
    );
    let targets_before = targets_version(&dir);
    forget_pin(&cards, targets_card);
    assert_eq!(vcard::pin_tries(targets_card), 3);

    // The right PIN follows on stdin: an automatic retry would use it and succeed.
    let output = daemon.cli_with_stdin(
        &["repo", "publish", dir.to_str().unwrap(), "--pin-stdin"],
        format!("{WRONG_PIN}\n{PIN}\n").as_bytes(),
    );
    assert!(!output.success, "published with a wrong PIN");
    assert!(
        output.stderr.contains(&format!(
            "wrong PIN for YubiKey {targets_card}: 2 tries left"
        )),
        "{}",
        output.stderr
    );
    assert_eq!(vcard::pin_tries(targets_card), 2, "exactly one try spent");
    assert_eq!(targets_version(&dir), targets_before, "nothing published");

    // A release with a delegation (its key in software): the top-level targets that
    // delegates is signed on the targets card, whose PIN comes from stdin again.
    let delegation_key = daemon.generate_keyid(GUN, "targets/releases");
    repo_ok(
        &daemon,
        &[
            "delegate",
            dir.to_str().unwrap(),
            "releases",
            "--key",
            &delegation_key,
            "--path",
            "rel-*",
        ],
        "",
    );
    let delegated = release_files(&sandbox, &["rel-2.0.tar.gz"]);
    repo_ok(
        &daemon,
        &[
            "add",
            dir.to_str().unwrap(),
            delegated[0].to_str().unwrap(),
            "--delegation",
            "releases",
        ],
        "",
    );
    let progress = repo_ok(
        &daemon,
        &["publish", dir.to_str().unwrap(), "--pin-stdin"],
        &format!("{PIN}\n"),
    );
    assert!(
        progress.contains(&format!(
            "releases v1 signed by {delegation_key} (software)"
        )),
        "{progress}"
    );
    assert_eq!(
        vcard::pin_tries(targets_card),
        3,
        "the right PIN resets the count"
    );
    let with_delegation = targets_version(&dir);
    let released: Vec<PathBuf> = released.into_iter().chain(last).chain(delegated).collect();
    assert_eq!(
        clients_update(&dir, &released),
        (with_delegation, with_delegation)
    );

    // Rotating the targets key off the card: root v2 is signed on the root card
    // (slot 9c), and clients that trust root v1 follow it and still download all.
    let rotated = repo_ok(&daemon, &["rotate", dir.to_str().unwrap(), "targets"], "");
    assert!(
        rotated.contains(&format!("(YubiKey {root_card} slot 9c)")),
        "root re-signed on its card: {rotated}"
    );
    assert_eq!(version(&dir, "2.root.json"), 2);
    let next = release_files(&sandbox, &["app-3.0.tar.gz"]);
    repo_ok(
        &daemon,
        &["add", dir.to_str().unwrap(), next[0].to_str().unwrap()],
        "",
    );
    let progress = repo_ok(&daemon, &["publish", dir.to_str().unwrap()], "");
    assert!(
        !progress.contains(&format!("YubiKey {targets_card}")),
        "the old targets card signs nothing after the rotation: {progress}"
    );
    let after_rotation = targets_version(&dir);
    let released: Vec<PathBuf> = released.into_iter().chain(next).collect();
    assert_eq!(
        clients_update(&dir, &released),
        (after_rotation, after_rotation)
    );
}
