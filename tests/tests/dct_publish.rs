//! Docker Content Trust publishing through tufkeyd (`tufkey dct`), proven with the
//! real stack: notary-server and notary-signer (Debian `notary`), the real `notary`
//! client and Docker CLI as verifiers, Debian's `docker-registry` with images copied
//! in by skopeo, and virtual YubiKeys through pcscd.
//!
//! - A collection whose root is on one card and whose signer `alice` is on another:
//!   tags listed by a fresh notary client and shown by `docker trust inspect`
//!   (tags, repository and root keys, alice as signer); alice removed and her next
//!   signature refused; a rotation started while the root card is out waits for it.
//! - A tag read from the registry is signed with the manifest's real digest and
//!   size; a digest that disagrees with the registry is refused.
//! - Keys imported from a publisher's notary trust dir keep signing the collection
//!   the publisher's own notary client still reads; its root then moves onto a card.
//! - Bad input: a root that does not chain from the pin, metadata signed by another
//!   key, an expired timestamp: refused with a clear message, nothing published.
//!
//! Needs `cargo build --bins`, scripts/notary/install.sh and scripts/dct/install.sh.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tufkey_e2e::daemon::{bin_dir, CliOutput, Daemon, DaemonOptions, Sandbox};
use tufkey_e2e::dct::{
    copy_collection, docker_trust_inspect, faketime_command, inspected_admin_keys, inspected_tags,
    notary, notary_list, notary_publisher, push_image, sha256_digest, FakeNotaryServer,
    NotaryStack, Registry, PUBLISHER_PASSPHRASE,
};
use tufkey_e2e::running::Running;
use tufkey_e2e::vcard::{self, daemon_on_cards, generate_on_card, PIN};

/// Runs `tufkey dct` for one publisher: its own pins, no Docker trust dir of the
/// machine's, and the stack's server and CA unless told otherwise.
struct Publisher<'a> {
    daemon: &'a Daemon,
    trust_dir: PathBuf,
    notary_trust_dir: PathBuf,
    server: String,
    ca: PathBuf,
}

impl<'a> Publisher<'a> {
    fn new(daemon: &'a Daemon, sandbox: &Sandbox, stack: &NotaryStack) -> Publisher<'a> {
        let notary_trust_dir = sandbox.path("no-docker-trust");
        std::fs::create_dir_all(&notary_trust_dir).unwrap();
        Publisher {
            daemon,
            trust_dir: sandbox.path("dct-pins"),
            notary_trust_dir,
            server: stack.url(),
            ca: stack.ca(),
        }
    }

    fn args(&self, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = ["--json", "dct"]
            .iter()
            .chain(args)
            .map(|arg| (*arg).to_owned())
            .collect();
        for (flag, value) in [
            ("--trust-dir", self.trust_dir.to_str().unwrap()),
            ("--server", &self.server),
            ("--server-ca", self.ca.to_str().unwrap()),
        ] {
            if !args.contains(&flag) {
                all.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        if !args.contains(&"--notary-trust-dir") {
            all.extend([
                "--notary-trust-dir".to_owned(),
                self.notary_trust_dir.to_str().unwrap().to_owned(),
            ]);
        }
        all
    }

    fn dct(&self, args: &[&str]) -> CliOutput {
        self.dct_with_stdin(args, "")
    }

    fn dct_with_stdin(&self, args: &[&str], stdin: &str) -> CliOutput {
        let all = self.args(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        self.daemon.cli_with_stdin(&all, stdin.as_bytes())
    }

    fn dct_ok(&self, args: &[&str], stdin: &str) -> Value {
        let output = self.dct_with_stdin(args, stdin);
        assert!(
            output.success,
            "tufkey dct {args:?} failed: {}\n{}",
            output.stderr, output.stdout
        );
        output.json()
    }

    /// Starts `tufkey dct ARGS` in the background.
    fn start(&self, args: &[&str], stdin: &str) -> Running {
        let all = self.args(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        Running::start(self.daemon, &all, stdin)
    }
}

/// `sha256:` and the hex digest of `content`, and its length, as `--digest`/`--size`.
fn manifest_of(content: &str) -> (String, String) {
    (sha256_digest(content.as_bytes()), content.len().to_string())
}

fn sign_args<'a>(reference: &'a str, digest: &'a (String, String)) -> Vec<&'a str> {
    vec![
        "sign", reference, "--digest", &digest.0, "--size", &digest.1,
    ]
}

/// The rows of `notary list` as (tag, hex digest, size) for roles `targets` or
/// `targets/releases`, sorted.
fn listed(stack: &NotaryStack, trust_dir: &Path, gun: &str) -> Vec<(String, String, u64)> {
    let mut rows: Vec<_> = notary_list(stack, trust_dir, gun)
        .into_iter()
        .map(|(tag, digest, size, _)| (tag, digest, size))
        .collect();
    rows.sort();
    rows
}

fn fresh_dir(sandbox: &Sandbox, name: &str) -> PathBuf {
    let dir = sandbox.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn row(tag: &str, digest: &(String, String)) -> (String, String, u64) {
    (
        tag.to_owned(),
        digest.0.trim_start_matches("sha256:").to_owned(),
        digest.1.parse().unwrap(),
    )
}

/// The current timestamp version of `gun` on the server (what any publish bumps).
fn timestamp_version(server: &str, ca: &Path, gun: &str) -> u64 {
    let output = Command::new("curl")
        .args(["-sf", "--cacert"])
        .arg(ca)
        .arg(format!("{server}/v2/{gun}/_trust/tuf/timestamp.json"))
        .output()
        .unwrap();
    assert!(output.status.success(), "curl timestamp.json of {gun}");
    let timestamp: Value = serde_json::from_slice(&output.stdout).unwrap();
    timestamp["signed"]["version"].as_u64().unwrap()
}

#[test]
fn a_collection_with_root_on_a_yubikey_and_a_signer_on_another_is_accepted_by_notary_and_docker() {
    const GUN: &str = "registry.example/acme/app";
    let cards = vcard::cards();
    let (root_card, alice_card) = (cards.serial(0), cards.serial(1));
    let sandbox = Sandbox::new();
    let stack = NotaryStack::start(&sandbox.path("notary"));
    let daemon = daemon_on_cards(&sandbox, &[root_card, alice_card]);
    let publisher = Publisher::new(&daemon, &sandbox, &stack);

    // init: root generated in slot 9c of the first card, repository key in software.
    let root_serial = root_card.to_string();
    let init = publisher.dct_ok(
        &[
            "init",
            GUN,
            "--root-on-yubikey",
            &root_serial,
            "--allow-default-mgmt-key",
            "--pin-stdin",
        ],
        "",
    );
    assert_eq!(
        init["root"]["location"],
        format!("YubiKey {root_card} slot 9c")
    );
    assert_eq!(init["targets"]["location"], "software");
    assert_eq!(init["snapshot"]["server_managed"], true);
    let (root_id, targets_id) = (
        init["root"]["keyid"].as_str().unwrap(),
        init["targets"]["keyid"].as_str().unwrap(),
    );

    let (v1, v2) = (
        manifest_of("manifest one"),
        manifest_of("manifest two, longer"),
    );
    publisher.dct_ok(&sign_args(&format!("{GUN}:v1"), &v1), "");
    publisher.dct_ok(&sign_args(&format!("{GUN}:v2"), &v2), "");

    // The real notary client, with an empty trust dir and only the CA.
    let empty = fresh_dir(&sandbox, "notary-empty");
    assert_eq!(
        listed(&stack, &empty, GUN),
        vec![row("v1", &v1), row("v2", &v2)]
    );

    // The real Docker CLI: the tags, the repository key and the root key.
    let home = fresh_dir(&sandbox, "docker-home");
    let inspected = docker_trust_inspect(&stack, &home, GUN);
    let repo = &inspected[0];
    let hex = |digest: &(String, String)| digest.0.trim_start_matches("sha256:").to_owned();
    assert_eq!(
        inspected_tags(repo),
        vec![("v1".to_owned(), hex(&v1)), ("v2".to_owned(), hex(&v2))]
    );
    assert_eq!(inspected_admin_keys(repo, "Root"), vec![root_id.to_owned()]);
    assert_eq!(
        inspected_admin_keys(repo, "Repository"),
        vec![targets_id.to_owned()]
    );

    // Signer alice, her key generated on the second card.
    let alice = generate_on_card(
        &daemon,
        alice_card,
        GUN,
        "targets/alice",
        &["--allow-default-mgmt-key"],
    );
    let alice_keyid = alice["keyid"].as_str().unwrap();
    let added = publisher.dct_ok(&["signer", "add", "alice", "--key", alice_keyid, GUN], "");
    let alice_notary_id = added[0]["keyids"][0].as_str().unwrap().to_owned();
    assert_eq!(alice_notary_id, alice["notary_keyid"].as_str().unwrap());
    // Her card forgets its PIN (pulled and put back): the signature asks for it.
    cards.pull(alice_card);
    cards.insert(alice_card);
    let v3 = manifest_of("manifest three");
    let v3_name = format!("{GUN}:v3");
    let mut as_alice = sign_args(&v3_name, &v3);
    as_alice.extend(["--signer", "alice", "--pin-stdin"]);
    let signed = publisher.dct_ok(&as_alice, &format!("{PIN}\n"));
    assert_eq!(
        signed["roles"],
        serde_json::json!(["targets/releases", "targets/alice"])
    );

    let inspected = docker_trust_inspect(&stack, &fresh_dir(&sandbox, "docker-home-2"), GUN);
    let repo = &inspected[0];
    let v3_row = repo["SignedTags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tag| tag["SignedTag"] == "v3")
        .unwrap();
    assert_eq!(v3_row["Signers"], serde_json::json!(["alice"]));
    assert_eq!(repo["Signers"][0]["Name"], "alice");
    assert_eq!(
        repo["Signers"][0]["Keys"][0]["ID"],
        alice_notary_id.as_str()
    );
    assert!(listed(&stack, &fresh_dir(&sandbox, "notary-empty-2"), GUN).contains(&row("v3", &v3)));

    // tufkey's own view: what is signed, by whom, and where each key lives.
    let ours = publisher.dct_ok(&["inspect", &format!("{GUN}:v3")], "");
    assert_eq!(ours["tags"][0]["tag"], "v3");
    assert_eq!(ours["tags"][0]["digest"], v3.0.as_str());
    assert_eq!(ours["tags"][0]["signers"], serde_json::json!(["alice"]));
    let alice_role = ours["signers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|role| role["name"] == "alice")
        .unwrap();
    assert_eq!(
        alice_role["keys"][0]["location"],
        format!(
            "YubiKey {alice_card} slot {}",
            alice["slot"].as_str().unwrap()
        )
    );
    let admin = |role: &str| {
        ours["administrative_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["role"] == role)
            .unwrap()["keys"][0]
            .clone()
    };
    assert_eq!(
        admin("root")["location"],
        format!("YubiKey {root_card} slot 9c")
    );
    assert_eq!(admin("root")["certificate"]["common_name"], GUN);
    assert_eq!(admin("targets")["location"], "software");
    assert_eq!(admin("timestamp")["location"], "the server");

    // alice removed: her next signature is refused by tufkey, and one forged past
    // tufkey (targets/releases signed by her card key) by the notary server, and the
    // notary client no longer lists what she signed.
    publisher.dct_ok(&["signer", "remove", "alice", GUN], "");
    let before = timestamp_version(&stack.url(), &stack.ca(), GUN);
    let v4 = manifest_of("manifest four");
    let v4_name = format!("{GUN}:v4");
    let mut as_alice = sign_args(&v4_name, &v4);
    as_alice.extend(["--signer", "alice"]);
    publisher
        .dct(&as_alice)
        .assert_fails_with("has no signer alice");
    let forged = forge_releases(&daemon, &sandbox, alice_keyid, &alice_notary_id, "v4", &v4);
    let refused = post_role(&stack, GUN, "targets/releases", &forged);
    assert!(
        refused.starts_with('4'),
        "notary-server accepted a removed signer's role: HTTP {refused}"
    );
    assert_eq!(
        timestamp_version(&stack.url(), &stack.ca(), GUN),
        before,
        "something was published"
    );
    let now_listed = listed(&stack, &fresh_dir(&sandbox, "notary-empty-3"), GUN);
    assert_eq!(now_listed, vec![row("v1", &v1), row("v2", &v2)]);

    // Plug in to sign: a rotation of the repository key needs root; started while the
    // root card is out, it says which card to insert, waits, and then asks its PIN.
    cards.pull(root_card);
    let mut rotation = publisher.start(
        &["key", "rotate", GUN, "targets", "--pin-stdin"],
        &format!("{PIN}\n"),
    );
    rotation.wait_for_stderr(
        &format!("insert YubiKey {root_card}"),
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        rotation.still_running(),
        "the rotation did not wait for the root card"
    );
    cards.insert(root_card);
    let finished = rotation.finish(Duration::from_secs(60));
    assert!(finished.success, "rotation failed: {}", finished.stderr);
    let rotated: Value = serde_json::from_str(&finished.stdout).unwrap();
    assert_eq!(rotated["root_version"], 2);
    assert!(
        finished.stderr.contains(&format!(
            "root v2 signed by {root_id} (YubiKey {root_card} slot 9c)"
        )),
        "{}",
        finished.stderr
    );
    // Clients that trusted root v1 follow the rotation.
    assert_eq!(
        listed(&stack, &empty, GUN),
        vec![row("v1", &v1), row("v2", &v2)]
    );
    let inspected = docker_trust_inspect(&stack, &home, GUN);
    assert_eq!(
        inspected_admin_keys(&inspected[0], "Repository"),
        vec![rotated["keyid"].as_str().unwrap().to_owned()]
    );
    daemon.assert_audit_intact();
}

/// A `targets/releases` v2 listing `tag`, signed by `keyid` through `tufkey sign-raw
/// --format notary` as if alice still could: what a client bypassing tufkey's check
/// would upload.
fn forge_releases(
    daemon: &Daemon,
    sandbox: &Sandbox,
    keyid: &str,
    notary_id: &str,
    tag: &str,
    digest: &(String, String),
) -> Vec<u8> {
    use base64::Engine;
    let hex_digest = digest.0.trim_start_matches("sha256:");
    let hash = base64::engine::general_purpose::STANDARD.encode(hex::decode(hex_digest).unwrap());
    let signed = format!(
        r#"{{"_type":"Targets","delegations":{{"keys":{{}},"roles":[]}},"expires":"2030-01-01T00:00:00Z","targets":{{"{tag}":{{"hashes":{{"sha256":"{hash}"}},"length":{}}}}},"version":2}}"#,
        digest.1
    );
    let payload = sandbox.path("forged-releases.bin");
    std::fs::write(&payload, &signed).unwrap();
    let signature = daemon.cli_ok(&[
        "sign-raw",
        "--key",
        keyid,
        "--format",
        "notary",
        payload.to_str().unwrap(),
    ]);
    format!(
        r#"{{"signed":{signed},"signatures":[{{"keyid":"{notary_id}","method":"ecdsa","sig":"{}"}}]}}"#,
        signature.stdout.trim()
    )
    .into_bytes()
}

/// The (certificate) key ID that root.json of `gun` lists for root.
fn rotated_root_id(stack: &NotaryStack, gun: &str) -> String {
    let output = Command::new("curl")
        .args(["-sf", "--cacert"])
        .arg(stack.ca())
        .arg(format!("{}/v2/{gun}/_trust/tuf/root.json", stack.url()))
        .output()
        .unwrap();
    let root: Value = serde_json::from_slice(&output.stdout).unwrap();
    root["signed"]["roles"]["root"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_owned()
}

/// POSTs one role file to notary-server as the notary client does; the HTTP status.
fn post_role(stack: &NotaryStack, gun: &str, role: &str, bytes: &[u8]) -> String {
    let file = std::env::temp_dir().join(format!("tufkey-forged-{}.json", std::process::id()));
    std::fs::write(&file, bytes).unwrap();
    let output = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(stack.ca())
        .arg("-F")
        .arg(format!("files=@{};filename={role}", file.display()))
        .arg(format!("{}/v2/{gun}/_trust/tuf/", stack.url()))
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_tag_read_from_the_registry_is_signed_with_its_manifests_digest_and_size_and_a_disagreeing_digest_is_refused(
) {
    let sandbox = Sandbox::new();
    let stack = NotaryStack::start(&sandbox.path("notary"));
    let registry = Registry::start(&sandbox.path("registry"));
    let pushed = push_image(&registry, "acme/app", "v1", "first image");
    let gun = format!("{}/acme/app", registry.host());
    let daemon = sandbox.start(&DaemonOptions::default());
    let publisher = Publisher::new(&daemon, &sandbox, &stack);
    publisher.dct_ok(&["init", &gun], "");

    let signed = publisher.dct_ok(&["sign", &format!("{gun}:v1")], "");
    assert_eq!(signed["digest"], pushed.digest.as_str());
    assert_eq!(signed["size"], pushed.size);
    let lookup = notary(
        &stack,
        &fresh_dir(&sandbox, "notary-empty"),
        &["lookup", &gun, "v1"],
        "",
    );
    assert!(
        lookup.status.success(),
        "{}",
        String::from_utf8_lossy(&lookup.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&lookup.stdout).trim(),
        format!("v1 {} {}", pushed.digest, pushed.size),
        "notary lookup disagrees with the registry"
    );

    // A digest the registry does not serve for the tag: refused, nothing published.
    let second = push_image(&registry, "acme/app", "v2", "second image");
    assert_ne!(second.digest, pushed.digest);
    let before = timestamp_version(&stack.url(), &stack.ca(), &gun);
    let size = pushed.size.to_string();
    let registry_url = registry.url();
    publisher
        .dct(&[
            "sign",
            &format!("{gun}:v2"),
            "--digest",
            &pushed.digest,
            "--size",
            &size,
            "--registry",
            &registry_url,
        ])
        .assert_fails_with(&format!(
            "the registry serves {gun}:v2 with digest {}",
            second.digest
        ));
    assert_eq!(timestamp_version(&stack.url(), &stack.ca(), &gun), before);
    // A tag the registry does not have at all.
    publisher
        .dct(&["sign", &format!("{gun}:missing")])
        .assert_fails_with("missing");
    let rows = listed(&stack, &fresh_dir(&sandbox, "notary-empty-2"), &gun);
    assert_eq!(
        rows,
        vec![("v1".to_owned(), pushed.hex().to_owned(), pushed.size)]
    );

    // The server's snapshot key rotated, then v1 revoked: clients that trusted the
    // first root follow, and no longer see v1.
    let rotated = publisher.dct_ok(&["key", "rotate", &gun, "snapshot", "--server-managed"], "");
    assert_eq!(rotated["location"], "the server");
    assert_eq!(rotated["root_version"], 2);
    publisher.dct_ok(&["revoke", &format!("{gun}:v1")], "");
    assert!(listed(&stack, &fresh_dir(&sandbox, "notary-empty"), &gun).is_empty());
    publisher
        .dct(&["revoke", &format!("{gun}:v1")])
        .assert_fails_with("is not signed");
}

#[test]
fn keys_imported_from_a_notary_publishers_trust_dir_keep_signing_the_collection_and_its_root_moves_onto_a_yubikey(
) {
    const GUN: &str = "docker.io/acme/legacy";
    let cards = vcard::cards();
    let (primary, spare) = (cards.serial(2), cards.serial(3));
    let sandbox = Sandbox::new();
    let stack = NotaryStack::start(&sandbox.path("notary"));
    let publisher_dir = fresh_dir(&sandbox, "publisher-trust");
    notary_publisher(&stack, &publisher_dir, GUN, &[("v1", b"the first release")]);

    let daemon = daemon_on_cards(&sandbox, &[primary, spare]);
    let import = Command::new(bin_dir().join("tufkey"))
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["--json", "import", "docker", "--trust-dir"])
        .arg(&publisher_dir)
        .args(["--gun", GUN])
        .env("NOTARY_ROOT_PASSPHRASE", PUBLISHER_PASSPHRASE)
        .env("NOTARY_TARGETS_PASSPHRASE", PUBLISHER_PASSPHRASE)
        .env("NOTARY_SNAPSHOT_PASSPHRASE", PUBLISHER_PASSPHRASE)
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );

    // dct pins the root the publisher's trust dir trusts, and signs with the
    // imported repository key.
    let publisher = Publisher::new(&daemon, &sandbox, &stack);
    let v2 = manifest_of("the second release");
    let trust = publisher_dir.to_str().unwrap();
    let v2_name = format!("{GUN}:v2");
    let mut args = sign_args(&v2_name, &v2);
    args.extend(["--notary-trust-dir", trust]);
    let signed = publisher.dct_with_stdin(&args, "");
    assert!(signed.success, "{}", signed.stderr);
    assert!(
        signed
            .stderr
            .contains("pinned the root of docker.io/acme/legacy that"),
        "{}",
        signed.stderr
    );

    // The publisher's own notary client, not re-initialised, accepts the new tag.
    let rows = listed(&stack, &publisher_dir, GUN);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].0, "v1");
    assert_eq!(rows[1], row("v2", &v2));

    // The imported root moves onto a YubiKey and a spare; the next root signature
    // (a repository key rotation) is made on the card.
    let keys = daemon
        .cli_ok(&["--json", "key", "list", "--gun", GUN, "--role", "root"])
        .json();
    let root_keyid = keys[0]["keyid"].as_str().unwrap().to_owned();
    let (primary_text, spare_text) = (primary.to_string(), spare.to_string());
    // What an operator does once per card: replace the factory management key.
    for serial in [&primary_text, &spare_text] {
        let init = daemon.cli_with_stdin(
            &["device", "init", "--serial", serial, "--pin-stdin"],
            format!("{PIN}\n").as_bytes(),
        );
        assert!(init.success, "device init {serial}: {}", init.stderr);
        assert!(vcard::unlock(&daemon, serial.parse().unwrap(), PIN).success);
    }
    daemon.cli_ok(&[
        "key",
        "move",
        &root_keyid,
        "--to-yubikey",
        "--serial",
        &primary_text,
        "--also-serial",
        &spare_text,
        "--no-backup-needed",
    ]);
    let rotated = publisher.dct_with_stdin(&["key", "rotate", GUN, "targets"], "");
    assert!(rotated.success, "{}", rotated.stderr);
    // The key is on both cards now; either may sign.
    let on_a_card = [primary, spare].iter().any(|serial| {
        rotated.stderr.contains(&format!(
            "root v3 signed by {} (YubiKey {serial} slot 9c)",
            rotated_root_id(&stack, GUN)
        ))
    });
    assert!(
        on_a_card,
        "root was not signed on a card: {}",
        rotated.stderr
    );
    assert_eq!(listed(&stack, &publisher_dir, GUN).len(), 2);
}

#[test]
fn a_root_that_does_not_chain_from_the_pin_metadata_signed_by_another_key_and_an_expired_timestamp_are_refused_and_nothing_is_published(
) {
    const GUN: &str = "registry.example/acme/guarded";
    const OTHER: &str = "registry.example/acme/other";
    let sandbox = Sandbox::new();
    let mut stack = NotaryStack::start(&sandbox.path("notary"));
    let daemon = sandbox.start(&DaemonOptions::default());
    let publisher = Publisher::new(&daemon, &sandbox, &stack);
    publisher.dct_ok(&["init", GUN], "");
    let v1 = manifest_of("guarded one");
    publisher.dct_ok(&sign_args(&format!("{GUN}:v1"), &v1), "");
    let late = manifest_of("signed too late");

    // Bad names and digests never reach the server.
    publisher
        .dct(&[
            "sign",
            &format!("{GUN}:-bad"),
            "--digest",
            &v1.0,
            "--size",
            "1",
        ])
        .assert_fails_with("is not a tag");
    publisher
        .dct(&[
            "sign",
            &format!("{GUN}:ok"),
            "--digest",
            "sha256:xyz",
            "--size",
            "1",
        ])
        .assert_fails_with("is not a manifest digest");
    publisher
        .dct(&[
            "sign",
            "Registry.Example/App:v1",
            "--digest",
            &v1.0,
            "--size",
            "1",
        ])
        .assert_fails_with("is not a repository name");

    // The timestamp (14 days, the server's) has expired 15 days from now.
    let before = timestamp_version(&stack.url(), &stack.ca(), GUN);
    let mut late_args = vec![
        "--socket".to_owned(),
        daemon.socket.to_str().unwrap().to_owned(),
    ];
    late_args.extend(publisher.args(&sign_args(&format!("{GUN}:late"), &late)));
    let expired = faketime_command("+15d", &bin_dir().join("tufkey"))
        .args(&late_args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&expired.stderr);
    assert!(
        !expired.status.success(),
        "signed with an expired timestamp"
    );
    assert!(
        stderr.contains(&format!("timestamp.json of {GUN} expired")),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was published"), "{stderr}");
    assert_eq!(timestamp_version(&stack.url(), &stack.ca(), GUN), before);

    // A server serving the pinned root but timestamp, snapshot and targets of another
    // collection (signed by its keys).
    publisher.dct_ok(&["init", OTHER], "");
    let files = fresh_dir(&sandbox, "fake-files");
    copy_collection(&stack, GUN, &[], &files);
    let other = fresh_dir(&sandbox, "other-files");
    copy_collection(&stack, OTHER, &[], &other);
    for role in ["timestamp", "snapshot", "targets"] {
        std::fs::copy(
            other.join(OTHER).join(format!("{role}.json")),
            files.join(GUN).join(format!("{role}.json")),
        )
        .unwrap();
    }
    let fake = FakeNotaryServer::start(&stack.pki, &files);
    let fake_url = fake.url();
    let late_name = format!("{GUN}:late");
    let mut args = sign_args(&late_name, &late);
    args.extend(["--server", &fake_url]);
    publisher
        .dct(&args)
        .assert_fails_with(&format!("timestamp.json of {GUN} has 0 valid signature(s)"));
    // Consistent files whose targets alone is another collection's: caught there.
    std::fs::copy(
        files.join(GUN).join("targets.json"),
        sandbox.path("foreign-targets.json"),
    )
    .unwrap();
    copy_collection(&stack, GUN, &[], &files);
    let snapshot_listing = std::fs::read(files.join(GUN).join("snapshot.json")).unwrap();
    std::fs::copy(
        sandbox.path("foreign-targets.json"),
        files.join(GUN).join("targets.json"),
    )
    .unwrap();
    publisher.dct(&args).assert_fails_with(&format!(
        "targets.json of {GUN} does not match the hashes snapshot lists"
    ));
    assert!(!snapshot_listing.is_empty());
    assert_eq!(fake.posts(), 0, "something was posted to the fake server");

    // The server loses the collection (memory store) and someone else creates one
    // under the same name: its root does not chain from the pin.
    stack.restart_server();
    let intruder = fresh_dir(&sandbox, "intruder-trust");
    notary_publisher(&stack, &intruder, GUN, &[("evil", b"not ours")]);
    let restarted = stack.url();
    let late_name_again = format!("{GUN}:late");
    let mut args = sign_args(&late_name_again, &late);
    args.extend(["--server", &restarted]);
    publisher
        .dct(&args)
        .assert_fails_with("is not signed by the root keys pinned for it");
    let rows = listed(&stack, &intruder, GUN);
    assert_eq!(
        rows.iter().map(|row| row.0.as_str()).collect::<Vec<_>>(),
        vec!["evil"]
    );
}
