//! Keys moving between two hosts (two daemons with their own stores, sockets and
//! keystore passphrases, no keyring): a passphrase backup restored on the second host
//! and a host-to-host transfer keep every key ID, and a TUF repository signed on the
//! second host passes python-tuf and tough. The bundles are real age files: the Debian
//! `age` tool opens a backup with its passphrase (typed on a pseudo-terminal through
//! `expect`, since age reads passphrases from a terminal only). Keys created with
//! `--no-export` never leave; and every bad bundle (wrong passphrase, truncated,
//! corrupted, tampered manifest, another recipient, replayed, expired) is refused with
//! nothing written, the keystore unchanged and the refusal in the audit log.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tufkey_e2e::daemon::{store_fingerprint, Daemon, DaemonOptions, Sandbox};
use tufkey_e2e::tuf_repo::{RepoBuilder, RepoKeys, RoleKey};
use tufkey_e2e::verify::{tough_key_id, verify_with_python_tuf, verify_with_tough};

const GUN: &str = "docker.io/acme/app";
const ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];
const BACKUP_PASSPHRASE: &str = "backup passphrase: tangerine kettle 1987";

/// One host: its own sandbox (socket, store) and daemon with its own keystore
/// passphrase. The daemon is declared first so it stops before its directory goes.
struct Host {
    daemon: Daemon,
    sandbox: Sandbox,
}

impl Host {
    fn start(keystore_passphrase: &str, args: &[&str]) -> Host {
        let sandbox = Sandbox::new();
        let daemon = sandbox.start(&DaemonOptions {
            passphrase: Some(keystore_passphrase.to_owned()),
            keyring: false,
            args: args.iter().map(|arg| arg.to_string()).collect(),
            ..DaemonOptions::default()
        });
        Host { daemon, sandbox }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.sandbox.path(name)
    }

    /// `tufkey --json key list`.
    fn key_list(&self) -> Value {
        self.daemon.cli_ok(&["--json", "key", "list"]).json()
    }

    fn key_ids(&self) -> BTreeSet<String> {
        ids_of(&self.key_list())
    }

    fn show(&self, keyid: &str) -> Value {
        self.daemon.cli_ok(&["--json", "key", "show", keyid]).json()
    }

    /// A root, targets, snapshot and timestamp key of [`GUN`]; their `--json` form.
    fn generate_repo_keys(&self) -> Vec<Value> {
        ROLES
            .iter()
            .map(|role| self.daemon.generate(GUN, role))
            .collect()
    }

    /// sha256 of every file in the store and its keys/ (not the audit log, which
    /// records refusals too): proof that a refusal wrote nothing.
    fn store_files(&self) -> BTreeMap<String, String> {
        store_fingerprint(&self.sandbox.store())
    }

    /// Every audit record, oldest first.
    fn audit_records(&self) -> Vec<Value> {
        self.daemon.audit_records()
    }

    /// `audit verify` passes.
    fn assert_audit_intact(&self) {
        self.daemon.assert_audit_intact();
    }

    fn snapshot(&self) -> HostState {
        HostState {
            keys: self.key_list(),
            files: self.store_files(),
            audit_len: self.audit_records().len(),
        }
    }

    /// After a refused call: keys and store files exactly as in `before`, the audit
    /// log intact, with exactly one record more: a refused `rpc` (`.../Restore`,
    /// `.../AcceptTransfer`, ...) that read the bundle `bundle_sha256`, if given.
    fn assert_refused_and_unchanged(
        &self,
        before: &HostState,
        rpc: &str,
        bundle_sha256: Option<&str>,
    ) {
        assert_eq!(
            self.key_list(),
            before.keys,
            "a refused {rpc} changed the key list"
        );
        assert_eq!(
            self.store_files(),
            before.files,
            "a refused {rpc} changed the store"
        );
        self.assert_audit_intact();
        let records = self.audit_records();
        assert_eq!(
            records.len(),
            before.audit_len + 1,
            "a refused {rpc} should leave exactly one audit record: {:#?}",
            &records[before.audit_len.min(records.len())..]
        );
        let tail = self.daemon.cli_ok(&["--json", "audit", "tail", "-n", "5"]);
        let last = json_lines(&tail.stdout).pop().unwrap();
        assert_eq!(last, *records.last().unwrap());
        assert_eq!(
            last["rpc"],
            format!("tufkey.v1.Migration/{rpc}"),
            "last record: {last}"
        );
        assert_ne!(
            last["result"], "ok",
            "the refusal is recorded as ok: {last}"
        );
        assert!(
            last["error"]
                .as_str()
                .is_some_and(|error| !error.is_empty()),
            "the refusal record gives no reason: {last}"
        );
        if let Some(sha256) = bundle_sha256 {
            assert_eq!(
                last["payload_sha256"], sha256,
                "the refusal record does not name the bundle it read: {last}"
            );
        }
    }

    /// `tufkey transfer receive`: the recipient, after checking the fingerprint.
    /// `--json transfer send --to RECIPIENT SELECTION --out OUT`: its reply.
    fn send(&self, recipient: &str, selection: &[&str], out: &Path) -> Value {
        let mut args = vec!["--json", "transfer", "send", "--to", recipient];
        args.extend_from_slice(selection);
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
        self.daemon.cli_ok(&args).json()
    }

    fn receive(&self) -> String {
        let receiving = self
            .daemon
            .cli_ok(&["--json", "transfer", "receive"])
            .json();
        let recipient = receiving["recipient"].as_str().unwrap().to_owned();
        assert!(recipient.starts_with("age1"), "{receiving}");
        assert_eq!(
            receiving["fingerprint"],
            fingerprint_of(&recipient),
            "the fingerprint is not the first 8 bytes of SHA-256 over the recipient"
        );
        assert!(
            receiving["expires_at"]
                .as_str()
                .is_some_and(|at| at.ends_with('Z')),
            "{receiving}"
        );
        recipient
    }
}

/// What a refused call must leave as it was.
struct HostState {
    keys: Value,
    files: BTreeMap<String, String>,
    audit_len: usize,
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The `keyid`s of a JSON array of keys.
fn ids_of(keys: &Value) -> BTreeSet<String> {
    keys.as_array()
        .unwrap_or_else(|| panic!("not an array of keys: {keys}"))
        .iter()
        .map(|key| key["keyid"].as_str().unwrap().to_owned())
        .collect()
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// The transfer fingerprint as documented: first 8 bytes of SHA-256 over the
/// recipient text, hex, in groups of four.
fn fingerprint_of(recipient: &str) -> String {
    let hex = hex::encode(&Sha256::digest(recipient.as_bytes())[..8]);
    let groups: Vec<&str> = (0..4).map(|i| &hex[i * 4..i * 4 + 4]).collect();
    groups.join(" ")
}

fn stdin_line(passphrase: &str) -> Vec<u8> {
    format!("{passphrase}\n").into_bytes()
}

/// `tufkey --json backup --gun|--key ... --out FILE --passphrase-stdin`.
fn backup(host: &Host, selection: &[&str], out: &Path, passphrase: &str) -> Value {
    let mut args = vec!["--json", "backup", "--out", out.to_str().unwrap()];
    args.extend_from_slice(selection);
    args.push("--passphrase-stdin");
    let output = host.daemon.cli_with_stdin(&args, &stdin_line(passphrase));
    assert!(output.success, "backup failed: {}", output.stderr);
    output.json()
}

fn restore(host: &Host, file: &Path, passphrase: &str, dry_run: bool) -> Value {
    let mut args = vec![
        "--json",
        "restore",
        file.to_str().unwrap(),
        "--passphrase-stdin",
    ];
    if dry_run {
        args.push("--dry-run");
    }
    let output = host.daemon.cli_with_stdin(&args, &stdin_line(passphrase));
    assert!(output.success, "restore failed: {}", output.stderr);
    output.json()
}

/// Asserts a restore/accept reply: `dry_run`, and which key IDs were imported and
/// which skipped.
fn assert_restored(
    reply: &Value,
    dry_run: bool,
    imported: &BTreeSet<String>,
    skipped: &BTreeSet<String>,
) {
    assert_eq!(reply["dry_run"], dry_run, "{reply}");
    assert_eq!(&ids_of(&reply["imported"]), imported, "imported: {reply}");
    assert_eq!(&ids_of(&reply["skipped"]), skipped, "skipped: {reply}");
}

/// The keys arrived with the same IDs, names and public keys, as imported keys.
/// (Their creation time: [`restored_and_transferred_keys_keep_their_creation_time`].)
fn assert_same_keys_imported(from: &Host, to: &Host, keys: &[Value]) {
    for original in keys {
        let keyid = original["keyid"].as_str().unwrap();
        let source = from.show(keyid);
        let arrived = to.show(keyid);
        for field in [
            "keyid",
            "notary_keyid",
            "gun",
            "role",
            "public_pem",
            "tuf_key",
            "scheme",
        ] {
            assert_eq!(
                arrived[field], source[field],
                "{field} of {keyid} changed on the way"
            );
        }
        assert_eq!(arrived["origin"], "imported", "{arrived}");
        assert_eq!(arrived["backend"], "software", "{arrived}");
        assert_eq!(arrived["exportable"], true, "{arrived}");
        assert_eq!(arrived["available"], true, "{arrived}");
        assert_eq!(source["origin"], "generated", "{source}");
    }
}

/// A repository signed only by `host` with `keys` (root, targets, snapshot,
/// timestamp), checked by python-tuf and tough.
fn assert_repository_signed_by_verifies(host: &Host, keys: &[Value], name: &str) {
    let role_key = |key: &Value| {
        let keyid = key["keyid"].as_str().unwrap();
        let shown = host.show(keyid);
        assert_eq!(tough_key_id(&shown["tuf_key"]), keyid);
        RoleKey::new(keyid, shown["tuf_key"].clone())
    };
    let [root, targets, snapshot, timestamp] = [0, 1, 2, 3].map(|i| role_key(&keys[i]));
    let repo = RepoBuilder::new(RepoKeys::single(root, targets, snapshot, timestamp))
        .target("app-1.0.tar.gz", b"signed after the move".to_vec())
        .target("docs/readme.txt", b"hello from the second host\n".to_vec())
        .build(&host.path(name), &mut host.daemon.metadata_signer())
        .expect("sign a repository with the moved keys");
    verify_with_python_tuf(&repo.dir)
        .expect("python-tuf rejected a repository signed with moved keys");
    verify_with_tough(&repo.dir).expect("tough rejected a repository signed with moved keys");
}

// ---- the age tool under a pseudo-terminal ----

/// Fails loudly when a tool the test command installs is missing.
fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    assert!(
        found,
        "`{tool}` is not installed: run scripts/install-deps.sh (Debian packages age, expect)"
    );
}

/// Types `$AGE_PASSPHRASE` at every passphrase prompt of the command it spawns,
/// and exits with the command's status (124 on a timeout).
const EXPECT_SCRIPT: &str = r#"
set timeout 120
set passphrase $env(AGE_PASSPHRASE)
spawn -noecho {*}$argv
expect {
    -re "(Enter|Confirm) passphrase" { send -- "$passphrase\r"; exp_continue }
    timeout { exit 124 }
    eof
}
lassign [wait] pid spawn_id os_error status
exit $status
"#;

/// Runs `age ARGS...` on a pseudo-terminal (age reads passphrases only from a
/// terminal), answering every passphrase prompt with `passphrase`.
fn age_on_a_terminal(dir: &Path, args: &[&str], passphrase: &str) -> Output {
    require_tool("age");
    require_tool("expect");
    let script = dir.join("age-passphrase.exp");
    std::fs::write(&script, EXPECT_SCRIPT).unwrap();
    Command::new("expect")
        .arg(&script)
        .arg("age")
        .args(args)
        .env("AGE_PASSPHRASE", passphrase)
        .output()
        .expect("run expect")
}

/// `age -d -o OUT BUNDLE` with `passphrase`; Ok(the plaintext) or Err(age's output).
fn age_decrypt(dir: &Path, bundle: &Path, passphrase: &str) -> Result<Vec<u8>, String> {
    let out = dir.join("age-plaintext");
    let _ = std::fs::remove_file(&out);
    let output = age_on_a_terminal(
        dir,
        &["-d", "-o", out.to_str().unwrap(), bundle.to_str().unwrap()],
        passphrase,
    );
    let plaintext = std::fs::read(&out).ok();
    let _ = std::fs::remove_file(&out);
    match plaintext {
        Some(bytes) if output.status.success() => Ok(bytes),
        _ => Err(format!(
            "age -d failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

/// `age -p -o OUT` of `plaintext` with `passphrase` (typed twice).
fn age_encrypt(dir: &Path, plaintext: &[u8], passphrase: &str, out: &Path) {
    let input = dir.join("age-input");
    std::fs::write(&input, plaintext).unwrap();
    let output = age_on_a_terminal(
        dir,
        &["-p", "-o", out.to_str().unwrap(), input.to_str().unwrap()],
        passphrase,
    );
    std::fs::remove_file(&input).unwrap();
    assert!(
        output.status.success() && out.is_file(),
        "age -p failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The manifest inside a passphrase bundle, as the `age` tool decrypts it.
fn manifest_via_age(dir: &Path, bundle: &Path, passphrase: &str) -> Value {
    let plaintext = age_decrypt(dir, bundle, passphrase)
        .unwrap_or_else(|error| panic!("the age tool cannot open a tufkey backup: {error}"));
    serde_json::from_slice(&plaintext).expect("the age payload is not JSON")
}

/// The age header's lines up to (not including) the `---` MAC line.
fn age_header_lines(bundle: &Path) -> Vec<String> {
    let bytes = std::fs::read(bundle).unwrap();
    let header_end = bytes
        .windows(4)
        .position(|w| w == b"\n---")
        .expect("no age header MAC line");
    String::from_utf8(bytes[..header_end].to_vec())
        .expect("age header is text")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A fresh X25519 identity from `age-keygen`: (identity file, recipient).
fn foreign_identity(dir: &Path) -> (PathBuf, String) {
    require_tool("age-keygen");
    let file = dir.join("foreign-identity.txt");
    let output = Command::new("age-keygen")
        .arg("-o")
        .arg(&file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    let recipient = text
        .lines()
        .find_map(|line| line.strip_prefix("# public key: "))
        .expect("age-keygen names the public key")
        .to_owned();
    (file, recipient)
}

/// Where a copy of a `len`-byte bundle gets cut: one byte short, at a power-of-two
/// buffer boundary, and inside the age header.
fn truncations(len: usize) -> [(&'static str, usize); 3] {
    assert!(len > 1100, "bundle too small to cut at 1024: {len} bytes");
    [
        ("short-by-one.age", len - 1),
        ("cut-at-1024.age", 1024),
        ("cut-in-header.age", 40),
    ]
}

/// Writes `bytes` with one bit of byte `index` flipped.
fn flipped(bytes: &[u8], index: usize, out: &Path) {
    let mut edited = bytes.to_vec();
    edited[index] ^= 0x01;
    std::fs::write(out, edited).unwrap();
}

// ---- the tests ----

#[test]
fn a_backup_restores_on_another_host_with_the_same_key_ids_and_signs_a_valid_repository() {
    let host_a = Host::start("keystore passphrase of host A", &[]);
    let host_b = Host::start("keystore passphrase of host B", &[]);
    assert_ne!(host_a.sandbox.socket(), host_b.sandbox.socket());
    let keys = host_a.generate_repo_keys();
    let ids = ids_of(&Value::Array(keys.clone()));
    for key in &keys {
        let shown = host_a.show(key["keyid"].as_str().unwrap());
        assert_eq!(shown["last_backup"], Value::Null, "{shown}");
        assert_eq!(shown["exportable"], true, "{shown}");
    }

    let bundle = host_a.path("acme.age");
    let written = backup(&host_a, &["--gun", GUN], &bundle, BACKUP_PASSPHRASE);
    assert_eq!(ids_of(&written["keys"]), ids, "{written}");
    assert_eq!(written["sha256"], sha256_file(&bundle));
    let mode = std::fs::metadata(&bundle).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the backup is not private");
    for key in &keys {
        let shown = host_a.show(key["keyid"].as_str().unwrap());
        let last_backup = shown["last_backup"].as_str().unwrap_or_else(|| {
            panic!("`key show` does not say when the key was backed up: {shown}")
        });
        assert!(
            last_backup.len() >= 20 && last_backup.ends_with('Z'),
            "last_backup is not RFC 3339: {last_backup}"
        );
    }
    // A backup never overwrites a file.
    let before = std::fs::read(&bundle).unwrap();
    host_a
        .daemon
        .cli_with_stdin(
            &[
                "backup",
                "--gun",
                GUN,
                "--out",
                bundle.to_str().unwrap(),
                "--passphrase-stdin",
            ],
            &stdin_line(BACKUP_PASSPHRASE),
        )
        .assert_fails_with(bundle.to_str().unwrap());
    assert_eq!(std::fs::read(&bundle).unwrap(), before);

    // The second host gets the file only (copied, as it would be between hosts).
    let copy = host_b.path("acme.age");
    std::fs::copy(&bundle, &copy).unwrap();
    let none = BTreeSet::new();

    let dry = restore(&host_b, &copy, BACKUP_PASSPHRASE, true);
    assert_restored(&dry, true, &ids, &none);
    assert_eq!(
        host_b.key_list(),
        Value::Array(vec![]),
        "a dry run imported keys"
    );

    let restored = restore(&host_b, &copy, BACKUP_PASSPHRASE, false);
    assert_restored(&restored, false, &ids, &none);
    assert_eq!(host_b.key_ids(), ids);
    assert_same_keys_imported(&host_a, &host_b, &keys);

    let again = restore(&host_b, &copy, BACKUP_PASSPHRASE, false);
    assert_restored(&again, false, &none, &ids);
    assert_eq!(host_b.key_ids(), ids);

    assert_repository_signed_by_verifies(&host_b, &keys, "repo-on-b");
    host_a.assert_audit_intact();
    host_b.assert_audit_intact();
}

#[test]
fn the_age_tool_opens_a_backup_with_its_passphrase_and_a_transfer_is_wrapped_to_x25519() {
    let host_a = Host::start("keystore passphrase of host A", &[]);
    let host_b = Host::start("keystore passphrase of host B", &[]);
    let keys = host_a.generate_repo_keys();
    let ids = ids_of(&Value::Array(keys.clone()));
    let bundle = host_a.path("backup.age");
    backup(&host_a, &["--gun", GUN], &bundle, BACKUP_PASSPHRASE);

    let header = age_header_lines(&bundle);
    assert_eq!(header[0], "age-encryption.org/v1", "{header:?}");
    assert!(header[1].starts_with("-> scrypt "), "{header:?}");

    // The wrong passphrase gets nothing out of the age tool: the terminal input is real.
    let wrong = age_decrypt(host_a.sandbox.dir.path(), &bundle, "not the passphrase")
        .expect_err("age opened a backup with the wrong passphrase");
    assert!(wrong.contains("incorrect passphrase"), "{wrong}");

    let manifest = manifest_via_age(host_a.sandbox.dir.path(), &bundle, BACKUP_PASSPHRASE);
    assert_eq!(
        manifest["format"], "tufkey-key-bundle",
        "{}",
        manifest["format"]
    );
    assert_eq!(manifest["version"], 1);
    assert_eq!(ids_of(&manifest["keys"]), ids);
    for entry in manifest["keys"].as_array().unwrap() {
        let keyid = entry["keyid"].as_str().unwrap();
        let original = host_a.show(keyid);
        for field in ["notary_keyid", "gun", "role", "created_at", "exportable"] {
            assert_eq!(entry[field], original[field], "{field} of {keyid}");
        }
        let public =
            p256::PublicKey::from_public_key_pem(entry["public_key_pem"].as_str().unwrap())
                .unwrap();
        assert_eq!(
            public,
            p256::PublicKey::from_public_key_pem(original["public_pem"].as_str().unwrap()).unwrap()
        );
        // The private key is in there, as PKCS#8, and belongs to the public key.
        let der = base64::engine::general_purpose::STANDARD
            .decode(entry["private_key_pkcs8_b64"].as_str().unwrap())
            .unwrap();
        let secret = p256::SecretKey::from_pkcs8_der(&der).unwrap();
        assert_eq!(secret.public_key(), public, "private key of {keyid}");
    }

    // A transfer bundle is wrapped to the receiving daemon's X25519 recipient only.
    let recipient = host_b.receive();
    let transfer = host_a.path("transfer.age");
    let sent = host_a.send(&recipient, &["--gun", GUN], &transfer);
    assert_eq!(ids_of(&sent["keys"]), ids);
    let header = age_header_lines(&transfer);
    assert_eq!(header[0], "age-encryption.org/v1", "{header:?}");
    // One X25519 stanza and no other recipient type (age adds a random
    // `-> <something>-grease` stanza that every age implementation ignores).
    let stanza_types: Vec<&str> = header
        .iter()
        .filter_map(|line| line.strip_prefix("-> "))
        .map(|stanza| stanza.split(' ').next().unwrap())
        .filter(|kind| !kind.ends_with("-grease"))
        .collect();
    assert_eq!(stanza_types, ["X25519"], "{header:?}");
    // Another X25519 identity cannot open it.
    let (identity, _) = foreign_identity(host_a.sandbox.dir.path());
    let output = Command::new("age")
        .args(["-d", "-i"])
        .arg(&identity)
        .arg(&transfer)
        .output()
        .unwrap();
    assert!(!output.status.success(), "a foreign identity opened it");
    assert!(output.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no identity matched"),
        "{output:?}"
    );
}

#[test]
fn a_transfer_moves_keys_once_and_refuses_other_recipients_damage_and_replays() {
    let host_a = Host::start("keystore passphrase of host A", &[]);
    let host_b = Host::start("keystore passphrase of host B", &[]);
    let keys = host_a.generate_repo_keys();
    let ids = ids_of(&Value::Array(keys.clone()));
    let none = BTreeSet::new();

    let recipient = host_b.receive();
    let bundle = host_a.path("transfer.age");
    let sent = host_a.send(&recipient, &["--gun", GUN], &bundle);
    assert_eq!(ids_of(&sent["keys"]), ids);
    assert_eq!(sent["sha256"], sha256_file(&bundle));
    let bytes = std::fs::read(&bundle).unwrap();

    // A bundle wrapped for another recipient (not one host B is waiting with).
    let (_, foreign) = foreign_identity(host_a.sandbox.dir.path());
    let for_someone_else = host_a.path("for-someone-else.age");
    host_a.daemon.cli_ok(&[
        "transfer",
        "send",
        "--to",
        &foreign,
        "--gun",
        GUN,
        "--out",
        for_someone_else.to_str().unwrap(),
    ]);
    let accept = |file: &Path| {
        host_b
            .daemon
            .cli(&["--json", "transfer", "accept", file.to_str().unwrap()])
    };
    let before = host_b.snapshot();
    accept(&for_someone_else).assert_fails_with("another recipient");
    host_b.assert_refused_and_unchanged(
        &before,
        "AcceptTransfer",
        Some(&sha256_file(&for_someone_else)),
    );

    for (name, len) in truncations(bytes.len()) {
        let truncated = host_b.path(name);
        std::fs::write(&truncated, &bytes[..len]).unwrap();
        let before = host_b.snapshot();
        accept(&truncated).assert_fails_with("truncated");
        host_b.assert_refused_and_unchanged(
            &before,
            "AcceptTransfer",
            Some(&sha256_file(&truncated)),
        );
    }
    // One bit flipped in the encrypted payload.
    let edited = host_b.path("edited.age");
    flipped(&bytes, bytes.len() - 100, &edited);
    let before = host_b.snapshot();
    accept(&edited).assert_fails_with("modified");
    host_b.assert_refused_and_unchanged(&before, "AcceptTransfer", Some(&sha256_file(&edited)));

    let copy = host_b.path("transfer.age");
    std::fs::write(&copy, &bytes).unwrap();

    // The intact bundle: every key arrives with its ID.
    let accepted = accept(&copy);
    assert!(accepted.success, "accept failed: {}", accepted.stderr);
    assert_restored(&accepted.json(), false, &ids, &none);
    assert_eq!(host_b.key_ids(), ids);
    assert_same_keys_imported(&host_a, &host_b, &keys);

    // The identity is gone: the same bundle again is refused.
    let before = host_b.snapshot();
    accept(&copy).assert_fails_with("already used");
    host_b.assert_refused_and_unchanged(&before, "AcceptTransfer", Some(&sha256_file(&copy)));

    assert_repository_signed_by_verifies(&host_b, &keys, "repo-on-b");
    host_a.assert_audit_intact();
}

#[test]
fn a_transfer_accepted_after_its_receiving_identity_expired_is_refused() {
    let host_a = Host::start("keystore passphrase of host A", &[]);
    let host_b = Host::start(
        "keystore passphrase of host B",
        &["--transfer-ttl-secs", "1"],
    );
    let keyid = host_a.daemon.generate_keyid(GUN, "targets");
    let recipient = host_b.receive();
    let bundle = host_a.path("late.age");
    host_a.send(&recipient, &["--key", &keyid], &bundle);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let before = host_b.snapshot();
    host_b
        .daemon
        .cli(&["transfer", "accept", bundle.to_str().unwrap()])
        .assert_fails_with("expired");
    host_b.assert_refused_and_unchanged(&before, "AcceptTransfer", Some(&sha256_file(&bundle)));
    assert!(host_b.key_ids().is_empty());
}

#[test]
fn no_export_keys_are_refused_for_backup_transfer_and_docker_export_and_nothing_is_written() {
    let host_a = Host::start("keystore passphrase of host A", &[]);
    let host_b = Host::start("keystore passphrase of host B", &[]);
    let sealed = host_a
        .daemon
        .cli_ok(&[
            "--json",
            "key",
            "generate",
            "--gun",
            GUN,
            "--role",
            "targets",
            "--no-export",
        ])
        .json();
    let sealed_id = sealed["keyid"].as_str().unwrap().to_owned();
    assert_eq!(sealed["exportable"], false, "{sealed}");
    let exportable = host_a.daemon.generate_keyid(GUN, "snapshot");
    let recipient = host_b.receive();

    // (audited RPC, arguments, the file it must not write, whether it reads stdin)
    let refusals: Vec<(&str, Vec<String>, PathBuf, bool)> = {
        let out = |name: &str| host_a.path(name);
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let backup_out = out("sealed-backup.age");
        let both_out = out("both-backup.age");
        let transfer_out = out("sealed-transfer.age");
        let export_out = out("sealed-export.pem");
        vec![
            (
                "Backup",
                args(&[
                    "backup",
                    "--key",
                    &sealed_id,
                    "--out",
                    backup_out.to_str().unwrap(),
                    "--passphrase-stdin",
                ]),
                backup_out.clone(),
                true,
            ),
            // All or nothing: an exportable key beside it is not backed up either.
            (
                "Backup",
                args(&[
                    "backup",
                    "--key",
                    &exportable,
                    "--key",
                    &sealed_id,
                    "--out",
                    both_out.to_str().unwrap(),
                    "--passphrase-stdin",
                ]),
                both_out.clone(),
                true,
            ),
            (
                "Backup",
                args(&[
                    "transfer",
                    "send",
                    "--to",
                    &recipient,
                    "--key",
                    &sealed_id,
                    "--out",
                    transfer_out.to_str().unwrap(),
                ]),
                transfer_out.clone(),
                false,
            ),
            (
                "ExportNotaryKeys",
                args(&[
                    "export",
                    "docker",
                    "--key",
                    &sealed_id,
                    "--out",
                    export_out.to_str().unwrap(),
                    "--passphrase-stdin",
                ]),
                export_out.clone(),
                true,
            ),
        ]
    };
    for (rpc, args, out, reads_stdin) in &refusals {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let before = host_a.snapshot();
        let output = if *reads_stdin {
            host_a
                .daemon
                .cli_with_stdin(&args, &stdin_line("an export passphrase"))
        } else {
            host_a.daemon.cli(&args)
        };
        output.assert_fails_with("non-exportable");
        assert!(output.stderr.contains(&sealed_id), "{}", output.stderr);
        assert!(!out.exists(), "`tufkey {args:?}` wrote {}", out.display());
        host_a.assert_refused_and_unchanged(&before, rpc, None);
    }
    // Into a trust directory: not even the directory appears.
    let trust_dir = host_a.path("trust");
    let before = host_a.snapshot();
    host_a
        .daemon
        .cli_with_stdin(
            &[
                "export",
                "docker",
                "--key",
                &sealed_id,
                "--trust-dir",
                trust_dir.to_str().unwrap(),
                "--passphrase-stdin",
            ],
            &stdin_line("an export passphrase"),
        )
        .assert_fails_with("non-exportable");
    assert!(
        !trust_dir.exists(),
        "a refused export created {}",
        trust_dir.display()
    );
    host_a.assert_refused_and_unchanged(&before, "ExportNotaryKeys", None);

    assert_eq!(host_a.show(&exportable)["last_backup"], Value::Null);
    assert_eq!(host_a.show(&sealed_id)["last_backup"], Value::Null);
    // The transfer refused on A left host B's identity unused and B without keys.
    assert!(host_b.key_ids().is_empty());
}

#[test]
fn bad_backups_are_refused_and_nothing_is_imported() {
    let host_a = Host::start("keystore passphrase of host A", &[]);
    let host_b = Host::start("keystore passphrase of host B", &[]);
    let root = host_a.daemon.generate(GUN, "root");
    let targets = host_a.daemon.generate(GUN, "targets");
    let root_id = root["keyid"].as_str().unwrap().to_owned();
    let targets_id = targets["keyid"].as_str().unwrap().to_owned();
    let both = host_a.path("both.age");
    backup(&host_a, &["--gun", GUN], &both, BACKUP_PASSPHRASE);
    let only_root = host_a.path("root.age");
    backup(&host_a, &["--key", &root_id], &only_root, BACKUP_PASSPHRASE);

    // Host B has a key of its own, and A's root key (restored from its own backup).
    host_b.daemon.generate_keyid("example.com/b", "targets");
    let none = BTreeSet::new();
    let restored = restore(&host_b, &only_root, BACKUP_PASSPHRASE, false);
    assert_restored(&restored, false, &BTreeSet::from([root_id.clone()]), &none);
    let root_on_b = host_b.show(&root_id);

    let dir = host_b.sandbox.dir.path().to_path_buf();
    let bytes = std::fs::read(&both).unwrap();
    let refuse = |file: &Path, passphrase: &str, needle: &str| {
        let before = host_b.snapshot();
        for dry_run in [true, false] {
            let mut args = vec!["restore", file.to_str().unwrap(), "--passphrase-stdin"];
            if dry_run {
                args.push("--dry-run");
            }
            host_b
                .daemon
                .cli_with_stdin(&args, &stdin_line(passphrase))
                .assert_fails_with(needle);
        }
        assert_eq!(
            host_b.key_list(),
            before.keys,
            "a refused restore changed the keys"
        );
        // The dry run is audited too: check the real restore's record.
        let before = HostState {
            audit_len: before.audit_len + 1,
            ..before
        };
        host_b.assert_refused_and_unchanged(&before, "Restore", Some(&sha256_file(file)));
    };

    // Wrong passphrase.
    refuse(&both, "not the backup passphrase", "wrong passphrase");
    for (name, len) in truncations(bytes.len()) {
        let truncated = dir.join(name);
        std::fs::write(&truncated, &bytes[..len]).unwrap();
        refuse(&truncated, BACKUP_PASSPHRASE, "truncated");
    }
    // Corrupted: one bit of the encrypted payload flipped.
    let corrupted = dir.join("corrupted.age");
    flipped(&bytes, bytes.len() - 100, &corrupted);
    refuse(&corrupted, BACKUP_PASSPHRASE, "modified");

    // Tampered manifests, re-encrypted with the age tool and the right passphrase.
    let manifest = manifest_via_age(&dir, &both, BACKUP_PASSPHRASE);
    let index_of = |keyid: &str| {
        manifest["keys"]
            .as_array()
            .unwrap()
            .iter()
            .position(|key| key["keyid"] == keyid)
            .unwrap()
    };
    let (root_at, targets_at) = (index_of(&root_id), index_of(&targets_id));
    let reencrypt = |edited: &Value, name: &str| {
        let out = dir.join(name);
        age_encrypt(&dir, edited.to_string().as_bytes(), BACKUP_PASSPHRASE, &out);
        out
    };
    // Control: the untouched manifest, re-encrypted the same way, is accepted (so
    // the refusals below are about the edits, not the re-encryption).
    let untouched = reencrypt(&manifest, "untouched.age");
    let dry = restore(&host_b, &untouched, BACKUP_PASSPHRASE, true);
    assert_restored(
        &dry,
        true,
        &BTreeSet::from([targets_id.clone()]),
        &BTreeSet::from([root_id.clone()]),
    );

    // The targets key's public key swapped for the root key's.
    let mut swapped = manifest.clone();
    swapped["keys"][targets_at]["public_key_pem"] =
        manifest["keys"][root_at]["public_key_pem"].clone();
    refuse(
        &reencrypt(&swapped, "swapped-public.age"),
        BACKUP_PASSPHRASE,
        "its private key does not match its public key",
    );

    // The targets key's ID edited.
    let mut renamed = manifest.clone();
    let mut other_id = targets_id.clone().into_bytes();
    other_id[0] = if other_id[0] == b'0' { b'1' } else { b'0' };
    renamed["keys"][targets_at]["keyid"] = Value::String(String::from_utf8(other_id).unwrap());
    refuse(
        &reencrypt(&renamed, "renamed.age"),
        BACKUP_PASSPHRASE,
        "its key ID does not match its public key",
    );

    // A key already on host B (the root key's ID) with a different public key: the
    // targets key's public and private halves under the root key's IDs. (A key ID is
    // the hash of its public key, so no honest bundle can hold this.)
    let mut impostor = manifest.clone();
    impostor["keys"] = Value::Array(vec![manifest["keys"][targets_at].clone()]);
    impostor["keys"][0]["keyid"] = manifest["keys"][root_at]["keyid"].clone();
    impostor["keys"][0]["notary_keyid"] = manifest["keys"][root_at]["notary_keyid"].clone();
    impostor["keys"][0]["role"] = Value::String("root".into());
    refuse(
        &reencrypt(&impostor, "impostor.age"),
        BACKUP_PASSPHRASE,
        "its key ID does not match its public key",
    );
    assert_eq!(host_b.show(&root_id), root_on_b, "the present key changed");

    // The intact backup still restores: the new key imported, the present one skipped.
    let restored = restore(&host_b, &both, BACKUP_PASSPHRASE, false);
    assert_restored(
        &restored,
        false,
        &BTreeSet::from([targets_id.clone()]),
        &BTreeSet::from([root_id.clone()]),
    );
    assert_eq!(host_b.show(&root_id), root_on_b);
    host_b.assert_audit_intact();
}

#[test]
fn a_dry_run_accept_leaves_the_receiving_identity_waiting() {
    let host_a = Host::start("keystore passphrase of host A", &[]);
    let host_b = Host::start("keystore passphrase of host B", &[]);
    let keyid = host_a.daemon.generate_keyid(GUN, "targets");
    let recipient = host_b.receive();
    let bundle = host_a.path("transfer.age");
    host_a.send(&recipient, &["--key", &keyid], &bundle);
    let ids = BTreeSet::from([keyid.clone()]);
    let dry = host_b
        .daemon
        .cli_ok(&[
            "--json",
            "transfer",
            "accept",
            bundle.to_str().unwrap(),
            "--dry-run",
        ])
        .json();
    assert_restored(&dry, true, &ids, &BTreeSet::new());
    assert!(host_b.key_ids().is_empty(), "a dry run imported keys");
    // "Open and check everything, import nothing": the one-use identity is not used up.
    let accepted = host_b
        .daemon
        .cli(&["--json", "transfer", "accept", bundle.to_str().unwrap()]);
    assert!(
        accepted.success,
        "the real accept after a dry run failed: {}",
        accepted.stderr
    );
    assert_restored(&accepted.json(), false, &ids, &BTreeSet::new());
    assert_eq!(host_b.key_ids(), ids);
}

#[test]
fn restored_and_transferred_keys_keep_their_creation_time() {
    let host_a = Host::start("keystore passphrase of host A", &[]);
    let host_b = Host::start("keystore passphrase of host B", &[]);
    let host_c = Host::start("keystore passphrase of host C", &[]);
    let keyid = host_a.daemon.generate_keyid(GUN, "root");
    let created_at = host_a.show(&keyid)["created_at"].clone();
    assert!(created_at.is_string(), "{created_at}");
    // Creation times have whole seconds: make "now" differ from them.
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let bundle = host_a.path("root.age");
    backup(&host_a, &["--key", &keyid], &bundle, BACKUP_PASSPHRASE);
    let dry = restore(&host_b, &bundle, BACKUP_PASSPHRASE, true);
    assert_eq!(
        dry["imported"][0]["created_at"], created_at,
        "dry run: {dry}"
    );
    restore(&host_b, &bundle, BACKUP_PASSPHRASE, false);
    assert_eq!(
        host_b.show(&keyid)["created_at"],
        created_at,
        "a restored key's creation time is the restore's"
    );

    let recipient = host_c.receive();
    let transfer = host_a.path("root-transfer.age");
    host_a.send(&recipient, &["--key", &keyid], &transfer);
    host_c
        .daemon
        .cli_ok(&["transfer", "accept", transfer.to_str().unwrap()]);
    assert_eq!(
        host_c.show(&keyid)["created_at"],
        created_at,
        "a transferred key's creation time is the accept's"
    );
}
