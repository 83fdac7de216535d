//! Docker Content Trust / Notary trust directories, both ways, with the real `notary`
//! client and the real notary-server (tufkeyd as its signer):
//!
//! - keys the `notary` client made for a collection it published come into tufkey with
//!   `tufkey import docker`, with the key IDs root.json publishes, and signatures tufkey
//!   makes with them are what notary-server and a clean `notary` client accept;
//! - keys made in tufkey and written out by `tufkey export docker` (as a trust directory
//!   and as a `notary key import` bundle) are what the `notary` client initialises and
//!   publishes a collection with, which a second, clean client lists;
//! - bad trust directories (wrong passphrase, an RSA key, a renamed key file) import
//!   nothing they should not, the audit log says what happened, and the key files are
//!   never changed.
//!
//! Needs `cargo build --bins` first and the Debian `notary` package
//! (scripts/notary/install.sh).
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tufkey_e2e::daemon::{bin_dir, CliOutput, Daemon, DaemonOptions, Sandbox};
use tufkey_e2e::fixtures;
use tufkey_e2e::notary::{require_notary_binaries, NotaryServer, Pki, TlsDaemon};
use tufkey_e2e::verify::tough_key_id;

/// Every variable a passphrase can come from, for `notary` and for `tufkey`: removed
/// from each child's environment so only what a test sets is seen.
const PASSPHRASE_VARIABLES: [&str; 7] = [
    "NOTARY_ROOT_PASSPHRASE",
    "NOTARY_TARGETS_PASSPHRASE",
    "NOTARY_SNAPSHOT_PASSPHRASE",
    "NOTARY_DELEGATION_PASSPHRASE",
    "NOTARY_TIMESTAMP_PASSPHRASE",
    "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE",
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
];

/// The three roles whose keys a `notary init` keeps in the client's trust directory.
const CLIENT_ROLES: [&str; 3] = ["root", "snapshot", "targets"];

/// One passphrase per Notary role, handed to `notary` and `tufkey` as
/// `NOTARY_<ROLE>_PASSPHRASE`.
struct Passphrases {
    root: String,
    targets: String,
    snapshot: String,
}

impl Passphrases {
    /// A different passphrase for each role.
    fn distinct(tag: &str) -> Self {
        Passphrases {
            root: format!("{tag} root passphrase 1"),
            targets: format!("{tag} targets passphrase 2"),
            snapshot: format!("{tag} snapshot passphrase 3"),
        }
    }

    /// One passphrase for every role. The `notary` client needs this to rotate to a key
    /// file (`notary key rotate -k FILE`): it decrypts every such file with the root
    /// passphrase (cmd/notary `readKey`), then signs the rotation with the root key.
    fn same(passphrase: &str) -> Self {
        Passphrases {
            root: passphrase.into(),
            targets: passphrase.into(),
            snapshot: passphrase.into(),
        }
    }

    fn for_role(&self, role: &str) -> &str {
        match role {
            "root" => &self.root,
            "targets" => &self.targets,
            "snapshot" => &self.snapshot,
            other => panic!("no passphrase for role {other}"),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        CLIENT_ROLES
            .iter()
            .map(|role| {
                (
                    format!("NOTARY_{}_PASSPHRASE", role.to_uppercase()),
                    self.for_role(role).to_owned(),
                )
            })
            .collect()
    }
}

/// The PKI, tufkeyd as notary-server's signer, notary-server, and the user's own
/// tufkeyd (a separate store: the keys a user imports and exports), kept alive together.
struct Stack {
    user: Daemon,
    server: NotaryServer,
    _signer: TlsDaemon,
    pki: Pki,
    sandbox: Sandbox,
}

impl Stack {
    fn start() -> Stack {
        require_notary_binaries();
        let sandbox = Sandbox::new();
        let pki = Pki::make(&sandbox.path("pki"));
        let signer = TlsDaemon::start(&sandbox, &pki, &[]);
        let server = NotaryServer::start(&pki, signer.port);
        let user = user_daemon(&sandbox);
        Stack {
            user,
            server,
            _signer: signer,
            pki,
            sandbox,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.sandbox.path(name)
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.server.port)
    }

    /// The real `notary` client on `trust_dir`, talking to this notary-server.
    fn notary(&self, trust_dir: &Path, passphrases: Option<&Passphrases>) -> NotaryCli {
        NotaryCli {
            trust_dir: trust_dir.to_path_buf(),
            server: Some((self.url(), self.pki.file("ca.crt"))),
            env: passphrases.map(Passphrases::env).unwrap_or_default(),
            home: self.sandbox.path("home"),
        }
    }

    /// `GET /v2/GUN/_trust/tuf/ROLE.json` from notary-server.
    fn published(&self, gun: &str, role: &str) -> Value {
        let output = curl(
            &self.pki,
            &[format!("{}/v2/{gun}/_trust/tuf/{role}.json", self.url())],
        );
        serde_json::from_slice(&output).unwrap()
    }

    /// An atomic update of the collection, as the `notary` client sends it: a multipart
    /// POST with one file part per role, the file name being the role.
    fn upload(&self, gun: &str, files: &[(&str, &Path)]) {
        let mut args = Vec::new();
        for (role, path) in files {
            args.push("-F".to_owned());
            args.push(format!("files=@{};filename={role}", path.display()));
        }
        args.push(format!("{}/v2/{gun}/_trust/tuf/", self.url()));
        curl(&self.pki, &args);
    }
}

fn user_daemon(sandbox: &Sandbox) -> Daemon {
    Daemon::start(
        &sandbox.path("user.sock"),
        &sandbox.path("user-store"),
        &DaemonOptions::default(),
    )
}

/// `curl -fsS --cacert ca.crt ARGS`, insisting on a 2xx answer; returns the body.
fn curl(pki: &Pki, args: &[String]) -> Vec<u8> {
    let output = Command::new("curl")
        .args(["-fsS", "--cacert"])
        .arg(pki.file("ca.crt"))
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The real `notary` client: `notary [-s URL --tlscacert CA] -d TRUST_DIR ARGS`, with
/// only the given passphrase variables and a private HOME (no ~/.notary/config.json).
struct NotaryCli {
    trust_dir: PathBuf,
    server: Option<(String, PathBuf)>,
    env: Vec<(String, String)>,
    home: PathBuf,
}

impl NotaryCli {
    /// An offline client (key generation and import need no server).
    fn offline(trust_dir: &Path, passphrases: &Passphrases, home: &Path) -> NotaryCli {
        NotaryCli {
            trust_dir: trust_dir.to_path_buf(),
            server: None,
            env: passphrases.env(),
            home: home.to_path_buf(),
        }
    }

    fn output(&self, args: &[&str]) -> Output {
        std::fs::create_dir_all(&self.home).unwrap();
        let mut command = Command::new("notary");
        if let Some((url, ca)) = &self.server {
            command.arg("-s").arg(url).arg("--tlscacert").arg(ca);
        }
        command.arg("-d").arg(&self.trust_dir).args(args);
        for variable in PASSPHRASE_VARIABLES {
            command.env_remove(variable);
        }
        command
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .env("HOME", &self.home)
            .stdin(Stdio::null())
            .output()
            .expect("run notary")
    }

    /// Runs `notary ARGS` and insists it succeeds; returns stdout.
    fn run(&self, args: &[&str]) -> String {
        let output = self.output(args);
        assert!(
            output.status.success(),
            "notary {args:?} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `notary list GUN` as `(name, sha256 hex, size, role)` rows.
    fn list(&self, gun: &str) -> Vec<(String, String, u64, String)> {
        let table = self.run(&["list", gun]);
        table
            .lines()
            .skip(2)
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let columns: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(columns.len(), 4, "unexpected `notary list` row: {table}");
                (
                    columns[0].to_owned(),
                    columns[1].to_owned(),
                    columns[2].parse().unwrap(),
                    columns[3].to_owned(),
                )
            })
            .collect()
    }

    /// `private/<key ID>.key` in this trust directory.
    fn key_file(&self, notary_keyid: &str) -> PathBuf {
        self.trust_dir
            .join("private")
            .join(format!("{notary_keyid}.key"))
    }
}

/// `tufkey --socket SOCK ARGS` with only the given passphrase variables set, and
/// optionally `stdin`.
fn tufkey(daemon: &Daemon, args: &[&str], env: &[(String, String)], stdin: &[u8]) -> CliOutput {
    let mut command = Command::new(bin_dir().join("tufkey"));
    command.arg("--socket").arg(&daemon.socket).args(args);
    for variable in PASSPHRASE_VARIABLES {
        command.env_remove(variable);
    }
    let mut child = command
        .envs(env.iter().map(|(name, value)| (name, value)))
        .env_remove("DOCKER_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tufkey (run `cargo build --bins` first)");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    CliOutput {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// [`tufkey`], insisting it succeeds; stdout as JSON.
fn tufkey_json(daemon: &Daemon, args: &[&str], env: &[(String, String)], stdin: &[u8]) -> Value {
    let output = tufkey(daemon, args, env, stdin);
    assert!(
        output.success,
        "tufkey {args:?} failed: {}\n(tufkeyd log: {})",
        output.stderr,
        daemon.log_text()
    );
    output.json()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

fn key_list(daemon: &Daemon) -> Vec<Value> {
    daemon
        .cli_ok(&["--json", "key", "list"])
        .json()
        .as_array()
        .unwrap()
        .clone()
}

/// `(file, already_present)` of each key an import reported, sorted.
fn files_and_presence(reply: &Value) -> Vec<(String, bool)> {
    let mut found: Vec<(String, bool)> = reply["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["file"].as_str().unwrap().to_owned(),
                entry["already_present"].as_bool().unwrap(),
            )
        })
        .collect();
    found.sort_unstable();
    found
}

/// The headers of a one-block PEM file (`role: targets` ...).
fn pem_headers(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .map(|line| {
            let (name, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("{}: bad PEM header {line:?}", path.display()));
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// The trust directory's `private/*.key` files: Notary key ID (the file name) -> role.
fn key_files_by_role(trust_dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(trust_dir.join("private"))
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let keyid = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let role = pem_headers(&path)["role"].clone();
            (keyid, role)
        })
        .collect()
}

/// OLPC canonical JSON (what Notary and TUF sign).
fn canonical(value: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut bytes, olpc_cjson::CanonicalFormatter::new());
    serde::Serialize::serialize(value, &mut serializer).unwrap();
    bytes
}

/// The public key of a key in Notary metadata: `ecdsa` is base64 DER SPKI;
/// `ecdsa-x509` (root keys) is base64 of a PEM certificate, read with openssl.
fn published_public_key(key: &Value) -> p256::PublicKey {
    let public = BASE64
        .decode(key["keyval"]["public"].as_str().unwrap())
        .unwrap();
    match key["keytype"].as_str().unwrap() {
        "ecdsa" => p256::PublicKey::from_public_key_der(&public).unwrap(),
        "ecdsa-x509" => {
            let mut openssl = Command::new("openssl")
                .args(["x509", "-noout", "-pubkey"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            openssl.stdin.take().unwrap().write_all(&public).unwrap();
            let output = openssl.wait_with_output().unwrap();
            assert!(output.status.success(), "openssl x509 cannot read {key}");
            p256::PublicKey::from_public_key_pem(std::str::from_utf8(&output.stdout).unwrap())
                .unwrap()
        }
        other => panic!("unexpected key type {other} in {key}"),
    }
}

/// The key a role of `root` (the `signed` part of a root.json) lists, with its ID.
fn role_key<'a>(root: &'a Value, role: &str) -> (String, &'a Value) {
    let keyids = root["roles"][role]["keyids"].as_array().unwrap();
    assert_eq!(keyids.len(), 1, "{role} has one key: {root}");
    let keyid = keyids[0].as_str().unwrap().to_owned();
    let key = &root["keys"][&keyid];
    assert!(key.is_object(), "root.json lists {keyid} without its key");
    (keyid, key)
}

/// Notary's key ID of the bare `ecdsa` form of a public key (what key files are named).
fn notary_keyid_of(public: &p256::PublicKey) -> String {
    let der = public.to_public_key_der().unwrap();
    let key = json!({
        "keytype": "ecdsa",
        "keyval": {"private": null, "public": BASE64.encode(der.as_bytes())},
    });
    hex::encode(Sha256::digest(canonical(&key)))
}

/// The TUF key ID of a public key, as tough computes it from the TUF key JSON.
fn tuf_keyid_of(public: &p256::PublicKey) -> String {
    let pem = public.to_public_key_pem(LineEnding::LF).unwrap();
    tough_key_id(&json!({
        "keytype": "ecdsa",
        "scheme": "ecdsa-sha2-nistp256",
        "keyval": {"public": pem},
    }))
}

fn public_key_of(key: &Value) -> p256::PublicKey {
    p256::PublicKey::from_public_key_pem(key["public_pem"].as_str().unwrap()).unwrap()
}

/// `{"length", "hashes": {"sha256", "sha512"}}` as Notary writes file meta (base64).
fn file_meta(bytes: &[u8]) -> Value {
    json!({
        "length": bytes.len(),
        "hashes": {
            "sha256": BASE64.encode(Sha256::digest(bytes)),
            "sha512": BASE64.encode(Sha512::digest(bytes)),
        },
    })
}

fn bump_version(signed: &mut Value) {
    signed["version"] = json!(signed["version"].as_u64().unwrap() + 1);
}

/// Signs the canonical form of `signed` with `tufkey sign-raw --format notary` and lays
/// the file out as the `notary` client uploads it: Go's field order, `signed` first.
/// (notary-server hashes snapshot.json as Go re-serialises it for timestamp.json, then
/// looks the snapshot up by that hash among the bytes it stored: with another order
/// the collection is left without a timestamp — measured with notary-server 0.7.)
fn notary_signed_file(stack: &Stack, key: &Value, signed: &Value, name: &str) -> PathBuf {
    let payload = stack.path(&format!("{name}.signed"));
    std::fs::write(&payload, canonical(signed)).unwrap();
    let signature = stack
        .user
        .cli_ok(&[
            "sign-raw",
            "--key",
            key["keyid"].as_str().unwrap(),
            "--format",
            "notary",
            path_str(&payload),
        ])
        .stdout
        .trim()
        .to_owned();
    let file = stack.path(&format!("{name}.json"));
    let body = format!(
        r#"{{"signed":{},"signatures":[{{"keyid":"{}","method":"ecdsa","sig":"{signature}"}}]}}"#,
        String::from_utf8(canonical(signed)).unwrap(),
        key["notary_keyid"].as_str().unwrap(),
    );
    std::fs::write(&file, body).unwrap();
    file
}

fn by_role(keys: &[Value]) -> BTreeMap<String, Value> {
    keys.iter()
        .map(|key| (key["role"].as_str().unwrap().to_owned(), key.clone()))
        .collect()
}

/// Checks the collection's published root.json names exactly `keys` (by role) for
/// root, targets and snapshot: the same public keys; for targets and snapshot the same
/// Notary key IDs (root is published as an x509 certificate with an ID of its own).
fn assert_root_json_lists(root: &Value, keys: &BTreeMap<String, Value>) {
    for role in CLIENT_ROLES {
        let key = &keys[role];
        let (published_id, published) = role_key(root, role);
        let public = published_public_key(published);
        assert_eq!(public, public_key_of(key), "{role} public key");
        assert_eq!(notary_keyid_of(&public), key["notary_keyid"], "{role}");
        assert_eq!(tuf_keyid_of(&public), key["keyid"], "{role} TUF key ID");
        if role == "root" {
            assert_eq!(published["keytype"], "ecdsa-x509", "{published}");
            assert_ne!(published_id, key["notary_keyid"].as_str().unwrap());
        } else {
            assert_eq!(published["keytype"], "ecdsa", "{published}");
            assert_eq!(
                published_id,
                key["notary_keyid"].as_str().unwrap(),
                "{role}"
            );
        }
    }
}

#[test]
fn keys_of_a_notary_client_import_into_tufkey_and_sign_what_notary_server_accepts() {
    let stack = Stack::start();
    let gun = "example.com/tufkey/from-docker";
    let trust = stack.path("docker-trust");
    let passphrases = Passphrases::distinct("docker");
    let notary = stack.notary(&trust, Some(&passphrases));
    notary.run(&["init", gun]);
    notary.run(&["publish", gun]);

    let files = key_files_by_role(&trust);
    let mut roles: Vec<&str> = files.values().map(String::as_str).collect();
    roles.sort_unstable();
    assert_eq!(roles, CLIENT_ROLES, "notary init made {files:?}");
    let before = fixtures::snapshot(&trust);

    let import_args = [
        "--json",
        "import",
        "docker",
        "--trust-dir",
        path_str(&trust),
        "--gun",
        gun,
    ];
    let imported = tufkey_json(&stack.user, &import_args, &passphrases.env(), b"");
    assert_eq!(imported["skipped"], json!([]), "{imported}");
    let entries = imported["keys"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{imported}");
    for entry in entries {
        let key = &entry["key"];
        let notary_keyid = key["notary_keyid"].as_str().unwrap();
        assert_eq!(
            entry["file"],
            format!("private/{notary_keyid}.key"),
            "{entry}"
        );
        assert_eq!(entry["already_present"], false);
        assert_eq!(key["role"], files[notary_keyid].as_str(), "{entry}");
        assert_eq!(key["gun"], gun);
        assert_eq!(key["origin"], "imported");
    }
    let keys = by_role(
        &entries
            .iter()
            .map(|entry| entry["key"].clone())
            .collect::<Vec<_>>(),
    );
    let mut listed: Vec<String> = key_list(&stack.user)
        .iter()
        .map(|key| key["keyid"].as_str().unwrap().to_owned())
        .collect();
    listed.sort_unstable();
    let mut wanted: Vec<String> = keys
        .values()
        .map(|key| key["keyid"].as_str().unwrap().to_owned())
        .collect();
    wanted.sort_unstable();
    assert_eq!(listed, wanted);

    // The key IDs agree with what notary-server publishes (and the client cached).
    let root = stack.published(gun, "root");
    assert_root_json_lists(&root["signed"], &keys);
    let cached: Value = serde_json::from_slice(
        &std::fs::read(trust.join(format!("tuf/{gun}/metadata/root.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(cached["signed"], root["signed"]);

    // `tufkey sign` over the published targets.json: its signature verifies against
    // the targets key root.json publishes, over the same bytes Notary's own signature
    // covers (which checks this test's canonical form too).
    let (_, published_targets_key) = role_key(&root["signed"], "targets");
    let targets_public = published_public_key(published_targets_key);
    let verifier = VerifyingKey::from(&targets_public);
    let targets = stack.published(gun, "targets");
    let signed_bytes = canonical(&targets["signed"]);
    let notary_signature = BASE64
        .decode(targets["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    verifier
        .verify(
            &signed_bytes,
            &Signature::from_slice(&notary_signature).unwrap(),
        )
        .expect("the notary client's own signature verifies over the canonical bytes");
    let copy = stack.path("targets-copy.json");
    std::fs::write(&copy, serde_json::to_vec(&targets).unwrap()).unwrap();
    let targets_keyid = keys["targets"]["keyid"].as_str().unwrap();
    stack
        .user
        .cli_ok(&["sign", "--key", targets_keyid, path_str(&copy)]);
    let signed_copy: Value = serde_json::from_slice(&std::fs::read(&copy).unwrap()).unwrap();
    assert_eq!(signed_copy["signed"], targets["signed"]);
    let ours = signed_copy["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|signature| signature["keyid"] == targets_keyid)
        .unwrap_or_else(|| panic!("no signature by {targets_keyid}: {signed_copy}"));
    let der = hex::decode(ours["sig"].as_str().unwrap()).unwrap();
    verifier
        .verify(&signed_bytes, &Signature::from_der(&der).unwrap())
        .expect("tufkey's signature verifies against the published targets key");

    // And the real thing: a new targets.json + snapshot.json signed only by tufkey with
    // the imported keys, accepted by notary-server and listed by a clean notary client.
    let content = b"signed by tufkey with keys from a Docker trust dir\n";
    let mut new_targets = targets["signed"].clone();
    new_targets["targets"]["from-tufkey"] = file_meta(content);
    bump_version(&mut new_targets);
    let targets_file = notary_signed_file(&stack, &keys["targets"], &new_targets, "targets");
    let mut new_snapshot = stack.published(gun, "snapshot")["signed"].clone();
    new_snapshot["meta"]["targets"] = file_meta(&std::fs::read(&targets_file).unwrap());
    bump_version(&mut new_snapshot);
    let snapshot_file = notary_signed_file(&stack, &keys["snapshot"], &new_snapshot, "snapshot");
    stack.upload(
        gun,
        &[("targets", &targets_file), ("snapshot", &snapshot_file)],
    );
    let clean = stack.notary(&stack.path("clean-trust"), None);
    assert_eq!(
        clean.list(gun),
        [(
            "from-tufkey".to_owned(),
            hex::encode(Sha256::digest(content)),
            content.len() as u64,
            "targets".to_owned(),
        )]
    );

    assert_eq!(
        fixtures::snapshot(&trust),
        before,
        "the trust directory changed"
    );
}

/// Generates root, targets and snapshot keys for `gun` in tufkey.
fn generate_collection_keys(daemon: &Daemon, gun: &str) -> BTreeMap<String, Value> {
    by_role(
        &CLIENT_ROLES
            .iter()
            .map(|role| daemon.generate(gun, role))
            .collect::<Vec<_>>(),
    )
}

/// With tufkey's keys in `notary`'s trust directory: `init` (which takes the root key
/// it finds there, but makes new targets and snapshot keys), publish, rotate targets
/// and snapshot to tufkey's keys (`key rotate -k FILE`), add a target and publish. A
/// clean client then lists it, and root.json lists exactly tufkey's keys.
fn publish_with_exported_keys(
    stack: &Stack,
    notary: &NotaryCli,
    gun: &str,
    keys: &BTreeMap<String, Value>,
) {
    let root_id = keys["root"]["notary_keyid"].as_str().unwrap();
    let init = notary.run(&["init", gun]);
    assert!(
        init.contains(&format!("Root key found, using: {root_id}")),
        "notary init did not take tufkey's root key: {init}"
    );
    notary.run(&["publish", gun]);
    for role in ["targets", "snapshot"] {
        let file = notary.key_file(keys[role]["notary_keyid"].as_str().unwrap());
        notary.run(&["key", "rotate", gun, role, "-k", path_str(&file)]);
    }
    let content = format!("published with tufkey's keys for {gun}\n");
    let target = stack.path(&format!("target-{}", gun.replace('/', "_")));
    std::fs::write(&target, &content).unwrap();
    notary.run(&["add", gun, "release", path_str(&target)]);
    notary.run(&["publish", gun]);

    let clean = stack.notary(
        &stack.path(&format!("clean-{}", gun.replace('/', "_"))),
        None,
    );
    assert_eq!(
        clean.list(gun),
        [(
            "release".to_owned(),
            hex::encode(Sha256::digest(content.as_bytes())),
            content.len() as u64,
            "targets".to_owned(),
        )]
    );
    assert_root_json_lists(&stack.published(gun, "root")["signed"], keys);
    let targets = stack.published(gun, "targets");
    assert_eq!(
        targets["signatures"][0]["keyid"], keys["targets"]["notary_keyid"],
        "{targets}"
    );
}

/// Whether openssl decrypts the PKCS#8 key of a Notary key file with `passphrase`. The
/// `role:`/`gun:` headers are dropped first (openssl refuses headers on PKCS#8 PEM).
fn openssl_decrypts(file: &Path, passphrase: &str, scratch: &Path) -> bool {
    let text = std::fs::read_to_string(file).unwrap();
    let without_headers: String = text
        .lines()
        .filter(|line| !line.contains(": ") && !line.is_empty())
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(scratch, without_headers).unwrap();
    Command::new("openssl")
        .args(["pkcs8", "-in"])
        .arg(scratch)
        .arg("-passin")
        .arg(format!("pass:{passphrase}"))
        .args(["-out", "/dev/null"])
        .output()
        .unwrap()
        .status
        .success()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn keys_made_in_tufkey_export_to_docker_and_the_notary_client_publishes_with_them() {
    let stack = Stack::start();

    // A trust directory, passphrases from NOTARY_<ROLE>_PASSPHRASE.
    let gun = "example.com/tufkey/to-docker";
    let keys = generate_collection_keys(&stack.user, gun);
    let trust = stack.path("exported-trust");
    let passphrases = Passphrases::same("exported through the environment");
    let exported = tufkey_json(
        &stack.user,
        &[
            "--json",
            "export",
            "docker",
            "--gun",
            gun,
            "--trust-dir",
            path_str(&trust),
        ],
        &passphrases.env(),
        b"",
    );
    let mut files: Vec<PathBuf> = exported["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| PathBuf::from(file.as_str().unwrap()))
        .collect();
    files.sort_unstable();
    let mut wanted: Vec<PathBuf> = keys
        .values()
        .map(|key| {
            trust
                .join("private")
                .join(format!("{}.key", key["notary_keyid"].as_str().unwrap()))
        })
        .collect();
    wanted.sort_unstable();
    assert_eq!(files, wanted, "{exported}");
    assert_eq!(mode(&trust.join("private")), 0o700);
    for (role, key) in &keys {
        let file = trust
            .join("private")
            .join(format!("{}.key", key["notary_keyid"].as_str().unwrap()));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
        let headers = pem_headers(&file);
        assert_eq!(headers.get("role"), Some(role), "{}", file.display());
        let gun_header = (role != "root").then(|| gun.to_owned());
        assert_eq!(
            headers.get("gun"),
            gun_header.as_ref(),
            "{}",
            file.display()
        );
    }
    let notary = stack.notary(&trust, Some(&passphrases));
    publish_with_exported_keys(&stack, &notary, gun, &keys);

    // A passphrase per role: NOTARY_<ROLE>_PASSPHRASE first, then Docker's variable
    // (snapshot here falls back to DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE).
    let per_role = stack.path("per-role-trust");
    let env = [
        ("NOTARY_ROOT_PASSPHRASE", "root only"),
        (
            "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE",
            "docker root, not used",
        ),
        ("NOTARY_TARGETS_PASSPHRASE", "targets only"),
        (
            "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
            "docker repository",
        ),
    ]
    .map(|(name, value)| (name.to_owned(), value.to_owned()));
    tufkey_json(
        &stack.user,
        &[
            "--json",
            "export",
            "docker",
            "--gun",
            gun,
            "--trust-dir",
            path_str(&per_role),
        ],
        &env,
        b"",
    );
    let role_passphrases = [
        ("root", "root only"),
        ("targets", "targets only"),
        ("snapshot", "docker repository"),
    ];
    for (role, passphrase) in role_passphrases {
        let file = per_role.join(format!(
            "private/{}.key",
            keys[role]["notary_keyid"].as_str().unwrap()
        ));
        for (_, other) in role_passphrases {
            assert_eq!(
                openssl_decrypts(&file, other, &stack.path("openssl-scratch.pem")),
                other == passphrase,
                "{role} key file and passphrase {other:?}"
            );
        }
    }

    // The bundle form, passphrase on stdin, through `notary key import`.
    let gun = "example.com/tufkey/to-docker-bundle";
    let keys = generate_collection_keys(&stack.user, gun);
    let bundle = stack.path("bundle.pem");
    let passphrase = "exported through stdin";
    let exported = tufkey_json(
        &stack.user,
        &[
            "--json",
            "export",
            "docker",
            "--gun",
            gun,
            "--out",
            path_str(&bundle),
            "--passphrase-stdin",
        ],
        &[],
        format!("{passphrase}\n").as_bytes(),
    );
    assert_eq!(exported["files"], json!([path_str(&bundle)]), "{exported}");
    assert_eq!(mode(&bundle), 0o600);
    let bundle_text = std::fs::read_to_string(&bundle).unwrap();
    for key in keys.values() {
        let path = format!("path: {}", key["notary_keyid"].as_str().unwrap());
        assert!(bundle_text.contains(&path), "no `{path}` in {bundle_text}");
    }
    let trust = stack.path("bundle-trust");
    let notary = stack.notary(&trust, Some(&Passphrases::same(passphrase)));
    notary.run(&["key", "import", path_str(&bundle)]);
    let mut imported: Vec<(String, String)> = key_files_by_role(&trust).into_iter().collect();
    imported.sort_unstable();
    let mut wanted: Vec<(String, String)> = keys
        .iter()
        .map(|(role, key)| {
            (
                key["notary_keyid"].as_str().unwrap().to_owned(),
                role.clone(),
            )
        })
        .collect();
    wanted.sort_unstable();
    assert_eq!(imported, wanted, "notary key import wrote other files");
    publish_with_exported_keys(&stack, &notary, gun, &keys);
}

/// Writes a P-256 or RSA private key with openssl into `path` (unencrypted PKCS#8).
fn openssl_key(path: &Path, algorithm: &str) {
    let mut command = Command::new("openssl");
    command.args(["genpkey", "-algorithm", algorithm]);
    if algorithm == "EC" {
        command.args(["-pkeyopt", "ec_paramgen_curve:P-256"]);
    } else {
        command.args(["-pkeyopt", "rsa_keygen_bits:2048"]);
    }
    let output = command.arg("-out").arg(path).output().unwrap();
    assert!(
        output.status.success(),
        "openssl genpkey {algorithm} failed"
    );
}

/// A trust directory the real `notary` client writes offline: a root key from
/// `notary key generate`, targets and snapshot keys through `notary key import --role R
/// --gun G` of openssl keys, each encrypted with its role's passphrase. Returns the
/// Notary key IDs by role.
fn notary_made_trust_dir(
    sandbox: &Sandbox,
    dir: &Path,
    gun: &str,
    passphrases: &Passphrases,
) -> BTreeMap<String, String> {
    let notary = NotaryCli::offline(dir, passphrases, &sandbox.path("home"));
    notary.run(&["key", "generate", "ecdsa"]);
    for role in ["targets", "snapshot"] {
        notary_import_key(sandbox, dir, passphrases, "EC", role, gun);
    }
    let ids: BTreeMap<String, String> = key_files_by_role(dir)
        .into_iter()
        .map(|(keyid, role)| (role, keyid))
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    ids
}

/// `notary key import` of a new openssl key (`EC` P-256 or `RSA`) into `dir` as `role`
/// of `gun`; returns the Notary key ID of the file it wrote.
fn notary_import_key(
    sandbox: &Sandbox,
    dir: &Path,
    passphrases: &Passphrases,
    algorithm: &str,
    role: &str,
    gun: &str,
) -> String {
    let before = if dir.join("private").is_dir() {
        key_files_by_role(dir)
    } else {
        BTreeMap::new()
    };
    let pem = sandbox.path(&format!("openssl-{algorithm}-{}.pem", before.len()));
    openssl_key(&pem, algorithm);
    let notary = NotaryCli::offline(dir, passphrases, &sandbox.path("home"));
    notary.run(&[
        "key",
        "import",
        path_str(&pem),
        "--role",
        role,
        "--gun",
        gun,
    ]);
    let new: Vec<String> = key_files_by_role(dir)
        .into_keys()
        .filter(|keyid| !before.contains_key(keyid))
        .collect();
    assert_eq!(new.len(), 1, "notary key import wrote {new:?}");
    assert_eq!(
        pem_headers(&dir.join(format!("private/{}.key", new[0])))["role"],
        role
    );
    new[0].clone()
}

/// The new audit records since `seen` records.
fn new_records(daemon: &Daemon, seen: &mut usize) -> Vec<Value> {
    let records = daemon.audit_records();
    let new = records[*seen..].to_vec();
    *seen = records.len();
    new
}

/// Checks a refused import: one line on stderr naming `file` and `reason`, no key in
/// the store, and the audit log recording the refusal (naming the file) and no key.
fn assert_import_refused(
    daemon: &Daemon,
    output: &CliOutput,
    file: &str,
    reason: &str,
    seen: &mut usize,
) {
    output.assert_fails_with(file);
    assert!(output.stderr.contains(reason), "{}", output.stderr);
    assert_eq!(key_list(daemon), Vec::<Value>::new(), "a key was imported");
    let records = new_records(daemon, seen);
    let refused: Vec<&Value> = records
        .iter()
        .filter(|record| record["result"] != "ok")
        .collect();
    assert_eq!(refused.len(), 1, "{records:#?}");
    assert_eq!(
        refused[0]["rpc"], "tufkey.v1.Migration/ImportNotaryKeys",
        "{records:#?}"
    );
    assert!(
        refused[0]["error"].as_str().unwrap().contains(file),
        "{records:#?}"
    );
    assert!(
        records.iter().all(|record| record.get("keyid").is_none()),
        "the audit log records a key: {records:#?}"
    );
}

#[test]
fn bad_trust_directories_import_nothing_they_should_not_and_never_change_a_file() {
    require_notary_binaries();
    let sandbox = Sandbox::new();
    let daemon = user_daemon(&sandbox);
    let gun = "example.com/tufkey/bad-input";
    let passphrases = Passphrases::distinct("offline");
    let good = sandbox.path("good-trust");
    let ids = notary_made_trust_dir(&sandbox, &good, gun, &passphrases);
    let file_of = |keyid: &str| format!("private/{keyid}.key");

    // The same keys plus an RSA targets key the notary client imported (the targets
    // passphrase, as Notary keeps one per role).
    let with_rsa = sandbox.path("rsa-trust");
    fixtures::copy_private_tree(&good.join("private"), &with_rsa.join("private"));
    let rsa_id = notary_import_key(&sandbox, &with_rsa, &passphrases, "RSA", "targets", gun);
    // A targets key file renamed to another key's ID, next to the good root key.
    let renamed = sandbox.path("renamed-trust");
    fixtures::copy_private_tree(&good.join("private"), &renamed.join("private"));
    std::fs::rename(
        renamed.join(file_of(&ids["targets"])),
        renamed.join(file_of(&ids["snapshot"])),
    )
    .unwrap();

    let trust_dirs = [&good, &with_rsa, &renamed];
    let before: Vec<_> = trust_dirs
        .iter()
        .map(|dir| fixtures::snapshot(dir))
        .collect();
    let mut seen = daemon.audit_records().len();
    let import = |dir: &Path, extra: &[&str], env: &[(String, String)], stdin: &[u8]| {
        let mut args = vec![
            "--json",
            "import",
            "docker",
            "--trust-dir",
            path_str(dir),
            "--gun",
            gun,
        ];
        args.extend_from_slice(extra);
        tufkey(&daemon, &args, env, stdin)
    };

    // --dry-run decrypts nothing, imports nothing, and says which passphrases it needs.
    let dry = import(&good, &["--dry-run"], &[], b"");
    assert!(dry.success, "{}", dry.stderr);
    let dry = dry.json();
    assert_eq!(dry["dry_run"], true);
    let mut planned: Vec<(String, String)> = dry["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| {
            assert_eq!(key["encrypted"], true, "{key}");
            assert_eq!(key["gun"], gun, "{key}");
            (
                key["file"].as_str().unwrap().to_owned(),
                key["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    planned.sort_unstable();
    let mut wanted: Vec<(String, String)> = ids
        .iter()
        .map(|(role, keyid)| (file_of(keyid), role.clone()))
        .collect();
    wanted.sort_unstable();
    assert_eq!(planned, wanted, "{dry}");
    let needed: Vec<String> = dry["passphrases_needed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|role| role.as_str().unwrap().to_owned())
        .collect();
    let mut needed_sorted = needed.clone();
    needed_sorted.sort_unstable();
    assert_eq!(needed_sorted, CLIENT_ROLES, "{dry}");
    assert_eq!(key_list(&daemon), Vec::<Value>::new());
    assert!(
        new_records(&daemon, &mut seen)
            .iter()
            .all(|record| record.get("keyid").is_none()),
        "a dry run recorded a key"
    );

    // A wrong Notary passphrase for one role: refused, nothing imported.
    let wrong = Passphrases {
        targets: "not the targets passphrase".into(),
        ..Passphrases::distinct("offline")
    };
    let refused = import(&good, &[], &wrong.env(), b"");
    assert_import_refused(
        &daemon,
        &refused,
        &file_of(&ids["targets"]),
        "wrong passphrase",
        &mut seen,
    );

    // A key file renamed to another key's ID: refused, nothing imported.
    let refused = import(&renamed, &[], &passphrases.env(), b"");
    assert_import_refused(
        &daemon,
        &refused,
        &file_of(&ids["snapshot"]),
        &ids["targets"],
        &mut seen,
    );

    // An RSA key among them: listed as skipped by file, the others imported.
    let imported = import(&with_rsa, &[], &passphrases.env(), b"");
    assert!(imported.success, "{}", imported.stderr);
    let imported = imported.json();
    let skipped = imported["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{imported}");
    assert_eq!(skipped[0]["file"], file_of(&rsa_id), "{imported}");
    assert!(
        skipped[0]["reason"].as_str().unwrap().contains("RSA"),
        "{imported}"
    );
    let imported_files = files_and_presence(&imported);
    let mut wanted: Vec<(String, bool)> =
        ids.values().map(|keyid| (file_of(keyid), false)).collect();
    wanted.sort_unstable();
    assert_eq!(imported_files, wanted, "{imported}");
    assert_eq!(key_list(&daemon).len(), 3);
    let records = new_records(&daemon, &mut seen);
    let recorded_keys = records
        .iter()
        .filter(|record| record.get("keyid").is_some())
        .count();
    assert_eq!(recorded_keys, 3, "{records:#?}");

    // The good directory again, passphrases on stdin in the order --dry-run listed:
    // every key is already present, none added.
    let stdin: String = needed
        .iter()
        .map(|role| format!("{}\n", passphrases.for_role(role)))
        .collect();
    let again = import(&good, &["--passphrase-stdin"], &[], stdin.as_bytes());
    assert!(again.success, "{}", again.stderr);
    let again = again.json();
    let present = files_and_presence(&again);
    let mut wanted: Vec<(String, bool)> =
        ids.values().map(|keyid| (file_of(keyid), true)).collect();
    wanted.sort_unstable();
    assert_eq!(present, wanted, "{again}");
    assert_eq!(key_list(&daemon).len(), 3);

    let after: Vec<_> = trust_dirs
        .iter()
        .map(|dir| fixtures::snapshot(dir))
        .collect();
    assert_eq!(after, before, "a trust directory changed");
    daemon.cli_ok(&["audit", "verify"]);
}
