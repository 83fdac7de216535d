//! `tufkey key move` through the real CLI, daemon and pcscd, onto two virtual
//! YubiKeys (a primary and a spare): a software root key is refused until a backup
//! covers it; once backed up it moves onto both cards, keeps its key ID and public
//! key, is reported as imported (and never attestable), and its software key file is
//! gone; a TUF repository whose root it signs passes python-tuf and tough with only
//! the primary plugged in and again with only the spare, and with neither card it
//! signs nothing. A key created with `--no-export` is never moved. Every refusal is
//! in the audit log, which verifies at the end.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tufkey_e2e::daemon::{CliOutput, Daemon, DaemonOptions, Sandbox};
use tufkey_e2e::tuf_repo::{RepoBuilder, RepoKeys, RoleKey};
use tufkey_e2e::vcard::{self, sign_raw, signature_verifies, unlock, Cards, PIN};
use tufkey_e2e::verify::{verify_with_python_tuf, verify_with_tough, workspace_root};

const GUN: &str = "docker.io/acme/moved";
const ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];
const BACKUP_PASSPHRASE: &str = "backup before the move: copper lantern 5521";
const MOVE_RPC: &str = "tufkey.v1.Migration/MoveToYubiKey";

/// A daemon with YubiKeys, and the primary and spare card it moves keys onto (both
/// reset, initialised with `device init` and unlocked). The daemon is declared first
/// so it stops before its directory goes; the cards are reset again at the end.
struct Host {
    daemon: Option<Daemon>,
    sandbox: Sandbox,
    cards: Cards,
    primary: u32,
    spare: u32,
}

impl Host {
    fn start() -> Host {
        let cards = vcard::cards();
        let (primary, spare) = (cards.serial(0), cards.serial(1));
        vcard::reset(primary);
        vcard::reset(spare);
        let sandbox = Sandbox::new();
        let daemon = sandbox.start(&DaemonOptions::with_yubikeys());
        let host = Host {
            daemon: Some(daemon),
            sandbox,
            cards,
            primary,
            spare,
        };
        for serial in [primary, spare] {
            host.init_and_unlock(serial);
        }
        host
    }

    fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().unwrap()
    }

    /// What an operator does once per card: replace the factory management key (a
    /// move never imports with it), then give the PIN.
    fn init_and_unlock(&self, serial: u32) {
        let init = self.daemon().cli_with_stdin(
            &[
                "device",
                "init",
                "--serial",
                &serial.to_string(),
                "--pin-stdin",
            ],
            format!("{PIN}\n").as_bytes(),
        );
        assert!(init.success, "device init {serial}: {}", init.stderr);
        let unlocked = unlock(self.daemon(), serial, PIN);
        assert!(unlocked.success, "unlock {serial}: {}", unlocked.stderr);
    }

    fn show(&self, keyid: &str) -> Value {
        self.daemon()
            .cli_ok(&["--json", "key", "show", keyid])
            .json()
    }

    /// `tufkey key move KEYID --to-yubikey --serial PRIMARY --also-serial SPARE ...`.
    fn move_key(&self, keyid: &str, extra: &[&str]) -> CliOutput {
        let (primary, spare) = (self.primary.to_string(), self.spare.to_string());
        let mut args = vec![
            "--json",
            "key",
            "move",
            keyid,
            "--to-yubikey",
            "--serial",
            &primary,
            "--also-serial",
            &spare,
        ];
        args.extend_from_slice(extra);
        self.daemon().cli(&args)
    }

    /// The software key file of `keyid` in the store.
    fn key_file(&self, keyid: &str) -> PathBuf {
        self.sandbox
            .store()
            .join("keys")
            .join(format!("{keyid}.key"))
    }

    /// `device list`: the cards the daemon sees now.
    fn devices(&self) -> Vec<Value> {
        let listed = self.daemon().cli_ok(&["--json", "device", "list"]).json();
        listed.as_array().unwrap().clone()
    }

    /// The key IDs the daemon sees on card `serial`.
    fn keys_on_card(&self, serial: u32) -> Vec<String> {
        let devices = self.devices();
        let device = devices
            .iter()
            .find(|device| device["serial"] == serial)
            .unwrap_or_else(|| panic!("YubiKey {serial} not listed: {devices:?}"));
        device["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["keyid"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits (up to 20 s) until the daemon sees exactly the cards `present` of the
    /// primary and spare.
    fn wait_for_cards(&self, present: &[u32]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen: Vec<u32> = self
                .devices()
                .iter()
                .filter_map(|device| device["serial"].as_u64())
                .map(|serial| u32::try_from(serial).unwrap())
                .filter(|serial| [self.primary, self.spare].contains(serial))
                .collect();
            if present.iter().all(|serial| seen.contains(serial)) && seen.len() == present.len() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon sees cards {seen:?}, expected {present:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every audit record, oldest first.
    fn audit_records(&self) -> Vec<Value> {
        self.daemon().audit_records()
    }

    fn assert_audit_intact(&self) {
        self.daemon().assert_audit_intact();
    }

    /// After a refused move of `keyid`: still a software key with its key file, no
    /// card holds it, and the audit log (intact) ends with the refusal, giving
    /// `reason`.
    fn assert_move_refused(&self, keyid: &str, audit_len_before: usize, reason: &str) {
        let shown = self.show(keyid);
        assert_eq!(shown["backend"], "software", "{shown}");
        assert!(shown["serial"].is_null(), "{shown}");
        assert!(
            self.key_file(keyid).is_file(),
            "a refused move removed the software key file"
        );
        for serial in [self.primary, self.spare] {
            assert!(
                !self.keys_on_card(serial).contains(&keyid.to_owned()),
                "a refused move put key {keyid} on YubiKey {serial}"
            );
        }
        self.assert_audit_intact();
        let records = self.audit_records();
        assert_eq!(
            records.len(),
            audit_len_before + 1,
            "a refused move should leave exactly one audit record: {:#?}",
            &records[audit_len_before.min(records.len())..]
        );
        let last = records.last().unwrap();
        assert_eq!(last["rpc"], MOVE_RPC, "{last}");
        assert_eq!(last["keyid"], keyid, "{last}");
        assert_ne!(
            last["result"], "ok",
            "the refusal is recorded as ok: {last}"
        );
        assert!(
            last["error"]
                .as_str()
                .is_some_and(|error| error.contains(reason)),
            "the refusal record does not say {reason:?}: {last}"
        );
    }

    /// Builds a repository signed through the daemon with `keys` into `name`, and has
    /// python-tuf and tough verify it.
    fn sign_and_verify_repository(&self, keys: &[Value], name: &str) {
        let repo = RepoBuilder::new(RepoKeys::single(
            role_key(&keys[0]),
            role_key(&keys[1]),
            role_key(&keys[2]),
            role_key(&keys[3]),
        ))
        .target(
            "app-2.0.tar.gz",
            format!("released with {name}").into_bytes(),
        )
        .build(
            &self.sandbox.path(name),
            &mut self.daemon().metadata_signer(),
        )
        .unwrap_or_else(|error| panic!("{name}: signing the repository failed: {error}"));
        verify_with_python_tuf(&repo.dir)
            .unwrap_or_else(|error| panic!("{name}: python-tuf rejected the repository: {error}"));
        verify_with_tough(&repo.dir)
            .unwrap_or_else(|error| panic!("{name}: tough rejected the repository: {error}"));
    }

    /// A raw signature by `key` (its `--json` form), checked against its public key.
    fn assert_signs(&self, key: &Value, what: &str) {
        let signature = sign_raw(
            self.daemon(),
            self.sandbox.dir.path(),
            key["keyid"].as_str().unwrap(),
            what.as_bytes(),
        )
        .unwrap_or_else(|failure| panic!("{what}: {}", failure.stderr));
        assert!(
            signature_verifies(key, what.as_bytes(), &signature),
            "{what}: the signature does not verify against the key's public key"
        );
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Leave both cards present and at factory state for the next test, whatever
        // happened (the daemon first: it holds the cards open).
        drop(self.daemon.take());
        for serial in [self.primary, self.spare] {
            if std::thread::panicking() {
                // No second panic here: re-insert a card a failed step left pulled,
                // and let the next test's reset do the rest.
                let _ = Command::new("bash")
                    .arg(workspace_root().join("scripts/vcard/card.sh"))
                    .args([self.cards.state_dir.as_str(), "start", &serial.to_string()])
                    .status();
            } else {
                vcard::reset(serial);
            }
        }
    }
}

fn role_key(key: &Value) -> RoleKey {
    RoleKey::new(key["keyid"].as_str().unwrap(), key["tuf_key"].clone())
}

fn keyid(key: &Value) -> &str {
    key["keyid"].as_str().unwrap()
}

fn backup(host: &Host, keyid: &str, out: &Path) -> Value {
    let output = host.daemon().cli_with_stdin(
        &[
            "--json",
            "backup",
            "--key",
            keyid,
            "--out",
            out.to_str().unwrap(),
            "--passphrase-stdin",
        ],
        format!("{BACKUP_PASSPHRASE}\n").as_bytes(),
    );
    assert!(output.success, "backup failed: {}", output.stderr);
    output.json()
}

#[test]
fn a_backed_up_root_key_moved_onto_a_primary_and_a_spare_signs_a_repository_from_either_card() {
    let host = Host::start();
    let (primary, spare) = (host.primary, host.spare);
    let keys: Vec<Value> = ROLES
        .iter()
        .map(|role| host.daemon().generate(GUN, role))
        .collect();
    let root = keys[0].clone();
    let root_id = keyid(&root).to_owned();
    assert_eq!(root["backend"], "software", "{root}");
    assert_eq!(root["exportable"], true, "{root}");
    assert_eq!(root["origin"], "generated", "{root}");
    assert_eq!(root["last_backup"], Value::Null, "{root}");
    assert!(host.key_file(&root_id).is_file());

    // Without a backup the move is refused, naming the fix; nothing moves.
    let audit_len = host.audit_records().len();
    let refused = host.move_key(&root_id, &[]);
    refused.assert_fails_with("tufkey backup");
    assert!(refused.stderr.contains(&root_id), "{}", refused.stderr);
    host.assert_move_refused(&root_id, audit_len, "not covered by a backup");

    // A backup of the key, then the move succeeds.
    let written = backup(&host, &root_id, &host.sandbox.path("root-backup.age"));
    let backed_up: Vec<&str> = written["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(keyid)
        .collect();
    assert_eq!(backed_up, [root_id.as_str()], "{written}");
    let last_backup = host.show(&root_id)["last_backup"].clone();
    assert!(
        last_backup.is_string(),
        "key show has no last_backup: {last_backup}"
    );

    let moved = host.move_key(&root_id, &[]);
    assert!(moved.success, "key move failed: {}", moved.stderr);
    let moved = moved.json();
    assert_eq!(moved["software_copy_deleted"], true, "{moved}");
    let copies = moved["keys"].as_array().unwrap();
    assert_eq!(copies.len(), 2, "one copy per card: {moved}");
    for (copy, serial) in copies.iter().zip([primary, spare]) {
        assert_eq!(copy["keyid"], root["keyid"], "{copy}");
        assert_eq!(copy["public_pem"], root["public_pem"], "{copy}");
        assert_eq!(copy["backend"], "yubikey", "{copy}");
        assert_eq!(copy["serial"], serial, "{copy}");
        assert_eq!(copy["slot"], "9c", "the root slot: {copy}");
        assert_eq!(copy["origin"], "imported", "{copy}");
        assert_eq!(copy["exportable"], false, "{copy}");
    }

    // `key show` now says YubiKey, imported; same key and IDs; the file is gone.
    let shown = host.show(&root_id);
    assert_eq!(shown["backend"], "yubikey", "{shown}");
    assert_eq!(shown["origin"], "imported", "{shown}");
    assert_eq!(shown["exportable"], false, "{shown}");
    assert_eq!(shown["available"], true, "{shown}");
    assert!(
        shown["serial"] == primary || shown["serial"] == spare,
        "{shown}"
    );
    for field in [
        "keyid",
        "notary_keyid",
        "gun",
        "role",
        "public_pem",
        "tuf_key",
    ] {
        assert_eq!(shown[field], root[field], "{field} changed in the move");
    }
    assert!(
        !host.key_file(&root_id).exists(),
        "the software key file {} is still there after the move",
        host.key_file(&root_id).display()
    );
    for other in &keys[1..] {
        assert!(host.key_file(keyid(other)).is_file(), "{other}");
    }
    let listed = host.daemon().cli_ok(&["--json", "key", "list"]).json();
    let listed_root: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|key| key["keyid"] == root["keyid"])
        .collect();
    assert_eq!(
        listed_root.len(),
        1,
        "one listing per key ID: {listed_root:?}"
    );
    for serial in [primary, spare] {
        assert_eq!(
            host.keys_on_card(serial),
            [root_id.as_str()],
            "YubiKey {serial}"
        );
    }

    // An imported key is never presented as attestable.
    host.daemon()
        .cli(&["key", "attest", &root_id])
        .assert_fails_with("imported");

    // The repository's root signed on the primary alone, then on the spare alone.
    let mut repo_keys = keys.clone();
    repo_keys[0] = shown.clone();
    host.cards.pull(spare);
    host.wait_for_cards(&[primary]);
    host.assert_signs(&shown, "the primary alone");
    host.sign_and_verify_repository(&repo_keys, "repo-primary-only");

    host.cards.insert(spare);
    host.cards.pull(primary);
    host.wait_for_cards(&[spare]);
    // The spare was pulled: its PIN is asked for again.
    assert!(unlock(host.daemon(), spare, PIN).success);
    host.assert_signs(&shown, "the spare alone");
    host.sign_and_verify_repository(&repo_keys, "repo-spare-only");

    // With neither card the key signs nothing: no software copy is left behind.
    host.cards.pull(spare);
    host.wait_for_cards(&[]);
    sign_raw(
        host.daemon(),
        host.sandbox.dir.path(),
        &root_id,
        b"no card at all",
    )
    .expect_err("the moved key signed with no card plugged in")
    .assert_fails_with(&format!(
        "is on YubiKeys {primary}, {spare}, none of them present: insert one of them"
    ));
    host.cards.insert(primary);
    host.cards.insert(spare);
    host.wait_for_cards(&[primary, spare]);

    // The whole story is in the audit log, which verifies.
    host.assert_audit_intact();
    let records = host.audit_records();
    let moves: Vec<&Value> = records
        .iter()
        .filter(|record| record["rpc"] == MOVE_RPC && record["keyid"] == root["keyid"])
        .collect();
    assert_eq!(
        moves
            .iter()
            .map(|record| record["result"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["failed_precondition", "ok"],
        "the refused and the accepted move: {moves:#?}"
    );
    assert!(
        records
            .iter()
            .any(|record| record["rpc"] == "tufkey.v1.Migration/Backup"
                && record["keyid"] == root["keyid"]
                && record["result"] == "ok"),
        "no audit record of the backup"
    );

    // Moving a key does not make it younger: `key show` keeps its creation time.
    assert_eq!(
        shown["created_at"], root["created_at"],
        "after the move `key show` gives the time of the move as the key's creation"
    );
}

#[test]
fn a_no_export_key_is_never_moved_even_without_needing_a_backup() {
    let host = Host::start();
    let sealed = host
        .daemon()
        .cli_ok(&[
            "--json",
            "key",
            "generate",
            "--gun",
            GUN,
            "--role",
            "root",
            "--no-export",
        ])
        .json();
    let sealed_id = keyid(&sealed).to_owned();
    assert_eq!(sealed["exportable"], false, "{sealed}");
    assert_eq!(sealed["backend"], "software", "{sealed}");

    for extra in [&[][..], &["--no-backup-needed"][..]] {
        let audit_len = host.audit_records().len();
        let refused = host.move_key(&sealed_id, extra);
        refused.assert_fails_with("cannot be backed up, transferred, exported or moved");
        assert!(refused.stderr.contains(&sealed_id), "{}", refused.stderr);
        host.assert_move_refused(&sealed_id, audit_len, "non-exportable");
    }
    assert_eq!(host.show(&sealed_id)["exportable"], false);
    host.assert_signs(&sealed, "still a working software key");
    host.assert_audit_intact();
}

#[test]
fn a_move_that_fails_on_the_spare_is_taken_back_and_can_be_tried_again() {
    let host = Host::start();
    let root = host.daemon().generate(GUN, "root");
    let id = keyid(&root).to_owned();
    let primary = host.primary.to_string();

    // The spare is a card nobody plugged in: the primary gets its copy first, then
    // the move fails, and the primary's copy must go again.
    let audit_len = host.audit_records().len();
    let failed = host.daemon().cli(&[
        "--json",
        "key",
        "move",
        &id,
        "--to-yubikey",
        "--serial",
        &primary,
        "--also-serial",
        "4242",
        "--no-backup-needed",
    ]);
    failed.assert_fails_with("4242");
    host.assert_move_refused(&id, audit_len, "4242");
    host.assert_signs(&root, "still the software key after a failed move");

    let moved = host.move_key(&id, &["--no-backup-needed"]);
    assert!(moved.success, "the retry failed: {}", moved.stderr);
    assert_eq!(moved.json()["keys"].as_array().unwrap().len(), 2);
    host.assert_audit_intact();
}
