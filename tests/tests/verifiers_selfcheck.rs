//! Proves the verifier harness is honest without the daemon: a repository signed
//! in-process with P-256 keys must be accepted by python-tuf and tough, and rejected
//! by both once a signature is tampered with; tough's key IDs must be
//! sha256(canonical key JSON).
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use p256::ecdsa::{signature::Signer, DerSignature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use tufkey_e2e::tuf_repo::{self, BuiltRepo, RepoBuilder, RepoKeys, RoleKey, RoleKeys};
use tufkey_e2e::verify::{tough_key_id, verify_with_python_tuf, verify_with_tough};

/// Test-only canonical JSON (olpc-cjson, as tough uses).
fn canonical(v: &Value) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut buf, olpc_cjson::CanonicalFormatter::new());
    v.serialize(&mut ser).expect("canonical JSON");
    buf
}

struct TestKeys {
    signers: HashMap<String, SigningKey>,
    role_keys: Vec<RoleKey>,
}

impl TestKeys {
    fn generate(n: usize) -> Self {
        let mut signers = HashMap::new();
        let mut role_keys = Vec::new();
        for _ in 0..n {
            let sk = SigningKey::random(&mut rand_core::OsRng);
            let pem = sk
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("PEM");
            let key = json!({
                "keytype": "ecdsa",
                "scheme": "ecdsa-sha2-nistp256",
                "keyval": { "public": pem },
            });
            let keyid = hex::encode(Sha256::digest(canonical(&key)));
            signers.insert(keyid.clone(), sk);
            role_keys.push(RoleKey::new(keyid, key));
        }
        Self { signers, role_keys }
    }

    /// Root: two keys, threshold 2; the other roles one key each.
    fn repo_keys(&self) -> RepoKeys {
        let k = &self.role_keys;
        RepoKeys {
            root: RoleKeys::new(vec![k[0].clone(), k[1].clone()], 2),
            targets: RoleKeys::single(k[2].clone()),
            snapshot: RoleKeys::single(k[3].clone()),
            timestamp: RoleKeys::single(k[4].clone()),
        }
    }

    /// The in-process stand-in for `tufkey sign --key ID IN --out OUT`: canonicalise
    /// `signed`, append one `{"keyid","sig": hex(DER)}`.
    fn sign_one(&self, input: &Path, output: &Path, keyid: &str) -> Result<(), tuf_repo::Error> {
        let mut doc = tuf_repo::read_json(input)?;
        let msg = canonical(&doc["signed"]);
        let sk = self
            .signers
            .get(keyid)
            .ok_or_else(|| format!("unknown key {keyid}"))?;
        let sig: DerSignature = sk.sign(&msg);
        doc["signatures"]
            .as_array_mut()
            .ok_or("signatures is not an array")?
            .push(json!({ "keyid": keyid, "sig": hex::encode(sig.as_bytes()) }));
        std::fs::write(output, serde_json::to_vec_pretty(&doc)?)?;
        Ok(())
    }
}

fn build(keys: &TestKeys, dir: &Path, meta_hashes: bool) -> BuiltRepo {
    RepoBuilder::new(keys.repo_keys())
        .meta_hashes(meta_hashes)
        .target("hello.txt", b"hello, tuf\n".to_vec())
        .target_with_custom(
            "pkg/app-1.0.tar.gz",
            (0..5000u32)
                .map(|i| (i * 7 % 251) as u8)
                .collect::<Vec<u8>>(),
            json!({ "arch": "amd64", "release": 1 }),
        )
        .target("pkg/empty", Vec::new())
        .build(
            dir,
            &mut tuf_repo::per_key(|i, o, id| keys.sign_one(i, o, id)),
        )
        .expect("build repo")
}

#[test]
fn both_verifiers_accept_a_good_repo() {
    let keys = TestKeys::generate(5);
    for meta_hashes in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let repo = build(&keys, dir.path(), meta_hashes);
        assert_eq!(repo.target_names.len(), 3);
        let summary = verify_with_python_tuf(dir.path()).expect("python-tuf accepts");
        assert!(summary.contains("3 targets"), "{summary}");
        verify_with_tough(dir.path()).expect("tough accepts");
    }
}

/// Tampers `file` in a fresh repo and checks both verifiers reject it, with an error
/// that mentions `expect` (case-insensitive) in each.
fn assert_rejected(keys: &TestKeys, meta_hashes: bool, file: &str, expect: (&str, &str)) {
    let dir = tempfile::tempdir().unwrap();
    let repo = build(keys, dir.path(), meta_hashes);
    verify_with_tough(dir.path()).expect("untampered repo verifies");
    let (old, new) = tuf_repo::tamper_signature(&repo.metadata(file)).unwrap();
    assert_ne!(old, new);
    assert_eq!(old.len(), new.len());

    let py = verify_with_python_tuf(dir.path())
        .expect_err(&format!("python-tuf must reject tampered {file}"));
    let tough =
        verify_with_tough(dir.path()).expect_err(&format!("tough must reject tampered {file}"));
    eprintln!("tampered {file} (meta_hashes={meta_hashes}):\n  python-tuf: {py}\n  tough: {tough}");
    assert!(
        py.to_lowercase().contains(expect.0),
        "python-tuf error for {file}: {py}"
    );
    assert!(
        tough.to_lowercase().contains(expect.1),
        "tough error for {file}: {tough}"
    );
}

const SIG: (&str, &str) = ("signed by", "signature threshold");

#[test]
fn both_verifiers_reject_a_tampered_root() {
    // The trusted root's self-signature: the first of two root signatures (threshold 2).
    assert_rejected(&TestKeys::generate(5), true, "1.root.json", SIG);
}

#[test]
fn both_verifiers_reject_a_tampered_timestamp() {
    assert_rejected(&TestKeys::generate(5), true, "timestamp.json", SIG);
}

#[test]
fn both_verifiers_reject_tampered_snapshot_and_targets_signatures() {
    let keys = TestKeys::generate(5);
    // Without meta hashes, the signature check is what catches it.
    assert_rejected(&keys, false, "snapshot.json", SIG);
    assert_rejected(&keys, false, "targets.json", SIG);
    // With them, the hash check (which comes first) does.
    assert_rejected(&keys, true, "targets.json", ("hash", "hash"));
}

#[test]
fn both_verifiers_reject_a_modified_target_file() {
    let keys = TestKeys::generate(5);
    let dir = tempfile::tempdir().unwrap();
    let repo = build(&keys, dir.path(), true);
    std::fs::write(repo.targets_dir.join("hello.txt"), b"hello, tuF\n").unwrap();
    let py =
        verify_with_python_tuf(dir.path()).expect_err("python-tuf must reject a modified target");
    let tough = verify_with_tough(dir.path()).expect_err("tough must reject a modified target");
    assert!(py.to_lowercase().contains("hash"), "{py}");
    assert!(tough.to_lowercase().contains("hash"), "{tough}");
}

#[test]
fn tough_key_id_is_sha256_of_canonical_key_json() {
    let keys = TestKeys::generate(3);
    for k in &keys.role_keys {
        let expected = hex::encode(Sha256::digest(canonical(&k.key)));
        assert_eq!(tough_key_id(&k.key), expected);
        assert_eq!(k.keyid, expected);
        // OLPC canonical JSON leaves the PEM's newlines as raw LF bytes (a plain JSON
        // serializer would write `\n` escapes and give another, wrong, key ID).
        let c = canonical(&k.key);
        assert!(c.contains(&b'\n') && !c.windows(2).any(|w| w == b"\\n"));
        // Field order in the input does not matter.
        let reordered = json!({ "keyval": k.key["keyval"], "scheme": "ecdsa-sha2-nistp256", "keytype": "ecdsa" });
        assert_eq!(tough_key_id(&reordered), expected);
    }
}
