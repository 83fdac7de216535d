//! Tests of `super` (kept apart so the module itself reads as one job).

use super::*;
use crate::error::ErrorKind;
use crate::keys::Location;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

/// A cheap scrypt work factor for tests that are not about the work factor.
const TEST_LOG_N: u8 = 10;

fn software_key(gun: &str, role: &str, exportable: bool) -> (KeyRecord, p256::SecretKey) {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let record = KeyRecord::new(
        secret.public_key(),
        gun.parse().unwrap(),
        role.parse().unwrap(),
        Location::Software,
        now_rfc3339(),
        exportable,
    );
    (record, secret)
}

fn bundle_key(gun: &str, role: &str) -> BundleKey {
    let (record, secret) = software_key(gun, role, true);
    BundleKey::new(&record, secret, "software").unwrap()
}

fn copy_of(key: &BundleKey) -> BundleKey {
    BundleKey {
        keyid: key.keyid.clone(),
        notary_keyid: key.notary_keyid.clone(),
        gun: key.gun.clone(),
        role: key.role.clone(),
        created_at: key.created_at.clone(),
        exportable: key.exportable,
        origin: key.origin.clone(),
        public_key: key.public_key,
        secret: key.secret.clone(),
    }
}

fn two_keys() -> Vec<BundleKey> {
    vec![
        bundle_key("docker.io/acme/app", "root"),
        bundle_key("docker.io/acme/app", "targets/releases"),
    ]
}

fn passphrase(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

fn seal_to_passphrase(keys: &[BundleKey], text: &str) -> Vec<u8> {
    seal_with_work_factor(keys, Wrap::Passphrase(passphrase(text)), TEST_LOG_N).unwrap()
}

fn seal_to(keys: &[BundleKey], identity: &age::x25519::Identity) -> Vec<u8> {
    seal(keys, Wrap::Recipient(identity.to_public())).unwrap()
}

fn assert_same_keys(opened: &[BundleKey], sealed: &[BundleKey]) {
    assert_eq!(opened.len(), sealed.len());
    for (got, want) in opened.iter().zip(sealed) {
        assert_eq!(got.keyid, want.keyid);
        assert_eq!(got.notary_keyid, want.notary_keyid);
        assert_eq!(got.gun, want.gun);
        assert_eq!(got.role, want.role);
        assert_eq!(got.created_at, want.created_at);
        assert_eq!(got.exportable, want.exportable);
        assert_eq!(got.origin, want.origin);
        assert_eq!(got.public_key, want.public_key);
        assert_eq!(got.secret.to_bytes(), want.secret.to_bytes());
    }
}

/// The decrypted manifest of a bundle wrapped to `identity`.
fn manifest_json(bundle: &[u8], identity: &age::x25519::Identity) -> Value {
    let plaintext = decrypt(bundle, Unwrap::Identity(identity)).unwrap();
    serde_json::from_slice(&plaintext).unwrap()
}

/// An age file wrapped to `identity` holding `manifest`, as someone holding the
/// recipient (not the identity) could make it.
fn encrypt_json(manifest: &Value, identity: &age::x25519::Identity) -> Vec<u8> {
    let recipient = identity.to_public();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .unwrap();
    let mut out = Vec::new();
    let mut stream = encryptor.wrap_output(&mut out).unwrap();
    stream
        .write_all(&serde_json::to_vec(manifest).unwrap())
        .unwrap();
    stream.finish().unwrap();
    out
}

/// Opens a bundle re-encrypted after `edit` changed its manifest.
fn open_edited(edit: impl FnOnce(&mut Value)) -> MigrationError {
    let identity = age::x25519::Identity::generate();
    let mut manifest = manifest_json(&seal_to(&two_keys(), &identity), &identity);
    edit(&mut manifest);
    open(
        &encrypt_json(&manifest, &identity),
        Unwrap::Identity(&identity),
    )
    .unwrap_err()
}

fn assert_manifest_invalid(error: MigrationError, expected: &str) {
    match &error {
        MigrationError::BundleManifestInvalid { problem, .. } => {
            assert!(problem.contains(expected), "{problem:?} lacks {expected:?}")
        }
        other => panic!("expected an invalid manifest ({expected}), got {other:?}"),
    }
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
}

// ---- round trips ----

#[test]
fn recipient_bundle_round_trips() {
    let keys = two_keys();
    let identity = age::x25519::Identity::generate();
    let bundle = seal_to(&keys, &identity);
    assert!(bundle.starts_with(b"age-encryption.org/v1\n-> X25519 "));
    let opened = open(&bundle, Unwrap::Identity(&identity)).unwrap();
    assert_same_keys(&opened, &keys);
}

#[test]
fn passphrase_bundle_round_trips() {
    let keys = two_keys();
    let bundle = seal_to_passphrase(&keys, "correct horse battery staple");
    assert!(bundle.starts_with(b"age-encryption.org/v1\n-> scrypt "));
    let opened = open(
        &bundle,
        Unwrap::Passphrase(passphrase("correct horse battery staple")),
    )
    .unwrap();
    assert_same_keys(&opened, &keys);
}

#[test]
fn bundles_are_padded_to_the_length_quantum() {
    let identity = age::x25519::Identity::generate();
    for count in 1..=4 {
        let keys: Vec<_> = (0..count)
            .map(|_| bundle_key("example.com/app", "snapshot"))
            .collect();
        assert_eq!(seal_to(&keys, &identity).len() % LENGTH_QUANTUM, 0);
    }
    assert_eq!(
        seal_to_passphrase(&two_keys(), "pw").len() % LENGTH_QUANTUM,
        0
    );
}

#[test]
fn padding_reaches_the_quantum_across_chunk_boundaries() {
    for header_len in [100, 173, 240, 508, 509] {
        for manifest_len in (0..1200).chain(AGE_CHUNK - 600..AGE_CHUNK + 600) {
            let plaintext = manifest_len + padding_len(header_len, manifest_len);
            let chunks = plaintext.div_ceil(AGE_CHUNK).max(1);
            let file_len = header_len + plaintext + chunks * AGE_TAG;
            assert_eq!(file_len % LENGTH_QUANTUM, 0, "{header_len} {manifest_len}");
        }
    }
}

#[test]
fn manifest_is_versioned_and_private_keys_are_pkcs8_v0() {
    let keys = two_keys();
    let identity = age::x25519::Identity::generate();
    let manifest = manifest_json(&seal_to(&keys, &identity), &identity);
    assert_eq!(manifest["format"], "tufkey-key-bundle");
    assert_eq!(manifest["version"], 1);
    let entry = &manifest["keys"][1];
    assert_eq!(entry["keyid"], keys[1].keyid.as_str());
    assert_eq!(entry["role"], "targets/releases");
    assert_eq!(entry["origin"], "software");
    let b64 = entry["private_key_pkcs8_b64"].as_str().unwrap();
    let der = BASE64.decode(b64).unwrap();
    let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice()).unwrap();
    assert_eq!(
        info.version(),
        pkcs8::Version::V1,
        "RFC 5208 v1 is version 0"
    );
    assert!(info.public_key.is_none());
}

#[test]
fn debug_does_not_show_the_private_key() {
    let key = bundle_key("example.com/app", "root");
    let shown = format!("{key:?}");
    let secret_hex = hex::encode(key.secret.to_bytes());
    assert!(shown.contains(&key.keyid));
    assert!(!shown.to_lowercase().contains(&secret_hex));
    assert!(shown.contains("<redacted>"));
}

// ---- refusals when sealing ----

#[test]
fn seal_refuses_non_exportable_keys() {
    let (record, secret) = software_key("example.com/app", "root", false);
    let key = BundleKey::new(&record, secret, "software").unwrap();
    let identity = age::x25519::Identity::generate();
    let error = seal(&[key], Wrap::Recipient(identity.to_public())).unwrap_err();
    assert!(
        matches!(&error, MigrationError::BundleKeyNotExportable { keyid } if *keyid == record.keyid),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
}

#[test]
fn new_refuses_a_secret_of_another_key() {
    let (record, _) = software_key("example.com/app", "root", true);
    let other = p256::SecretKey::random(&mut rand_core::OsRng);
    let error = BundleKey::new(&record, other, "software").unwrap_err();
    assert!(matches!(error, MigrationError::BundleKeyMismatch { .. }));
    assert_eq!(error.kind(), ErrorKind::DataLoss);
}

#[test]
fn seal_refuses_empty_selections_and_passphrases() {
    let identity = age::x25519::Identity::generate();
    let error = seal(&[], Wrap::Recipient(identity.to_public())).unwrap_err();
    assert!(matches!(error, MigrationError::BundleEmpty), "{error:?}");
    let error = seal(&two_keys(), Wrap::Passphrase(passphrase(""))).unwrap_err();
    assert!(
        matches!(error, MigrationError::BundlePassphraseEmpty),
        "{error:?}"
    );
}

#[test]
fn seal_refuses_inconsistent_or_repeated_keys() {
    let identity = age::x25519::Identity::generate();
    let seal_one =
        |keys: &[BundleKey]| seal(keys, Wrap::Recipient(identity.to_public())).unwrap_err();
    let mut wrong_id = bundle_key("example.com/app", "root");
    wrong_id.keyid = "0".repeat(64);
    let mut wrong_secret = bundle_key("example.com/app", "root");
    wrong_secret.secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let mut bad_origin = bundle_key("example.com/app", "root");
    bad_origin.origin = "Soft Ware".to_owned();
    let mut bad_time = bundle_key("example.com/app", "root");
    bad_time.created_at = "yesterday".to_owned();
    for (key, expected) in [
        (wrong_id, "key ID does not match"),
        (wrong_secret, "private key does not match"),
        (bad_origin, "origin"),
        (bad_time, "RFC 3339"),
    ] {
        match seal_one(&[key]) {
            MigrationError::BundleKeyInconsistent { problem, .. } => {
                assert!(problem.contains(expected), "{problem}")
            }
            other => panic!("{other:?}"),
        }
    }
    let key = bundle_key("example.com/app", "root");
    let again = copy_of(&key);
    let error = seal_one(&[key, again]);
    assert!(
        matches!(&error, MigrationError::BundleKeyInconsistent { problem, .. } if problem == "selected twice"),
        "{error:?}"
    );
}

#[test]
fn max_keys_with_the_longest_guns_fit_in_a_bundle() {
    let longest_gun = format!("{}/app", "\"".repeat(251));
    let keys: Vec<_> = (0..MAX_KEYS)
        .map(|_| bundle_key(&longest_gun, "targets/releases"))
        .collect();
    let identity = age::x25519::Identity::generate();
    let bundle = seal_to(&keys, &identity);
    assert!(bundle.len() <= MAX_BUNDLE_BYTES);
    assert_eq!(
        open(&bundle, Unwrap::Identity(&identity)).unwrap().len(),
        MAX_KEYS
    );
}

#[test]
fn seal_refuses_more_than_max_keys() {
    let key = bundle_key("example.com/app", "root");
    let many: Vec<_> = (0..=MAX_KEYS).map(|_| copy_of(&key)).collect();
    let identity = age::x25519::Identity::generate();
    let error = seal(&many, Wrap::Recipient(identity.to_public())).unwrap_err();
    assert!(
        matches!(error, MigrationError::BundleTooManyKeys { count, max } if count == MAX_KEYS + 1 && max == MAX_KEYS),
        "{error:?}"
    );
}

// ---- refusals when opening: the wrong key ----

#[test]
fn wrong_passphrase_is_refused() {
    let bundle = seal_to_passphrase(&two_keys(), "right");
    let error = open(&bundle, Unwrap::Passphrase(passphrase("wrong"))).unwrap_err();
    assert!(
        matches!(error, MigrationError::BundleWrongPassphrase),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Unauthenticated);
}

#[test]
fn bundle_for_another_recipient_is_refused() {
    let intended = age::x25519::Identity::generate();
    let other = age::x25519::Identity::generate();
    let bundle = seal_to(&two_keys(), &intended);
    let error = open(&bundle, Unwrap::Identity(&other)).unwrap_err();
    assert!(
        matches!(error, MigrationError::BundleWrongRecipient),
        "{error:?}"
    );
}

#[test]
fn wrong_kind_of_unwrap_is_named() {
    let identity = age::x25519::Identity::generate();
    let to_recipient = seal_to(&two_keys(), &identity);
    let error = open(&to_recipient, Unwrap::Passphrase(passphrase("pw"))).unwrap_err();
    assert!(
        matches!(error, MigrationError::BundleNeedsIdentity),
        "{error:?}"
    );
    let to_passphrase = seal_to_passphrase(&two_keys(), "pw");
    let error = open(&to_passphrase, Unwrap::Identity(&identity)).unwrap_err();
    assert!(
        matches!(error, MigrationError::BundleNeedsPassphrase),
        "{error:?}"
    );
}

#[test]
fn excessive_scrypt_work_is_refused_before_doing_it() {
    let bundle = seal_to_passphrase(&two_keys(), "pw");
    let header_line = format!(" {TEST_LOG_N}\n");
    let at = bundle
        .windows(header_line.len())
        .position(|window| window == header_line.as_bytes())
        .unwrap();
    let mut edited = bundle.clone();
    edited[at + 1..at + 3].copy_from_slice(b"40");
    let error = open(&edited, Unwrap::Passphrase(passphrase("pw"))).unwrap_err();
    assert!(
        matches!(error, MigrationError::BundleWorkFactorTooHigh { log_n: 40, max } if max == MAX_SCRYPT_LOG_N),
        "{error:?}"
    );
}

// ---- refusals when opening: damaged files ----

#[test]
fn every_truncation_is_refused_as_truncated() {
    let identity = age::x25519::Identity::generate();
    let bundle = seal_to(&two_keys(), &identity);
    let payload_start = header_len(&bundle);
    for cut in 0..bundle.len() {
        let error = open(&bundle[..cut], Unwrap::Identity(&identity)).unwrap_err();
        if cut >= payload_start && cut.is_multiple_of(LENGTH_QUANTUM) {
            // The one blind spot: a cut that leaves a length we could have written
            // reads as an edit (the advice is the same).
            assert!(
                matches!(error, MigrationError::BundleDamaged { .. }),
                "cut at {cut}: {error:?}"
            );
        } else {
            assert!(
                matches!(error, MigrationError::BundleTruncated),
                "cut at {cut}: {error:?}"
            );
        }
    }
}

/// Where the age header (up to and including the MAC line) ends.
fn header_len(bundle: &[u8]) -> usize {
    let mac = bundle.windows(5).position(|w| w == b"\n--- ").unwrap() + 1;
    mac + bundle[mac..].iter().position(|&b| b == b'\n').unwrap() + 1
}

#[test]
fn every_flipped_byte_is_refused_and_payload_edits_say_modified() {
    let identity = age::x25519::Identity::generate();
    let bundle = seal_to(&[bundle_key("example.com/app", "root")], &identity);
    let payload_start = header_len(&bundle);
    for at in 0..bundle.len() {
        let mut edited = bundle.clone();
        edited[at] ^= 0x01;
        let error = open(&edited, Unwrap::Identity(&identity)).unwrap_err();
        if at >= payload_start {
            assert!(
                matches!(error, MigrationError::BundleDamaged { .. }),
                "flip at {at}: {error:?}"
            );
        }
    }
    // A MAC character replaced by another base64 character (flipping a bit could
    // make it a character base64 does not have, which age refuses as not age at all;
    // the MAC is random, so that happened in about one run in thirty).
    let mac_at = bundle.windows(4).position(|w| w == b"--- ").unwrap() + 10;
    let mut edited = bundle.clone();
    edited[mac_at] = if edited[mac_at] == b'A' { b'B' } else { b'A' };
    let error = open(&edited, Unwrap::Identity(&identity)).unwrap_err();
    assert!(
        matches!(error, MigrationError::BundleHeaderTampered),
        "{error:?}"
    );
}

#[test]
fn non_bundles_are_refused() {
    let identity = age::x25519::Identity::generate();
    let error = open(
        b"-----BEGIN PRIVATE KEY-----\n",
        Unwrap::Identity(&identity),
    )
    .unwrap_err();
    assert!(
        matches!(error, MigrationError::BundleNotAge { .. }),
        "{error:?}"
    );
    let huge = vec![b'a'; MAX_BUNDLE_BYTES + 1];
    let error = open(&huge, Unwrap::Identity(&identity)).unwrap_err();
    assert!(
        matches!(error, MigrationError::BundleTooLarge { size, .. } if size == MAX_BUNDLE_BYTES + 1),
        "{error:?}"
    );
    let not_json = encrypt_json(&Value::String("hello".into()), &identity);
    assert_manifest_invalid(
        open(&not_json, Unwrap::Identity(&identity)).unwrap_err(),
        "not a tufkey manifest",
    );
}

// ---- refusals when opening: tampered manifests ----

#[test]
fn swapped_public_key_is_refused() {
    let stranger = p256::SecretKey::random(&mut rand_core::OsRng).public_key();
    let error = open_edited(|manifest| {
        let entry = &mut manifest["keys"][0];
        entry["public_key_pem"] = public_key_pem(&stranger).into();
        entry["keyid"] = tuf_keyid(&stranger).into();
        entry["notary_keyid"] = notary_keyid(&stranger).into();
    });
    assert_manifest_invalid(error, "private key does not match its public key");
}

#[test]
fn edited_key_ids_are_refused() {
    let other_id = "ab".repeat(32);
    let id = other_id.clone();
    assert_manifest_invalid(
        open_edited(move |m| m["keys"][1]["keyid"] = id.into()),
        "key ID does not match",
    );
    assert_manifest_invalid(
        open_edited(move |m| m["keys"][0]["notary_keyid"] = other_id.into()),
        "Notary key ID does not match",
    );
}

#[test]
fn invalid_names_flags_and_times_are_refused() {
    assert_manifest_invalid(
        open_edited(|m| m["keys"][0]["gun"] = "../escape".into()),
        "invalid GUN",
    );
    assert_manifest_invalid(
        open_edited(|m| m["keys"][0]["role"] = "admin".into()),
        "invalid role",
    );
    let long_gun = "a/".repeat(200);
    assert_manifest_invalid(
        open_edited(move |m| m["keys"][0]["gun"] = long_gun.into()),
        "invalid GUN (400 bytes long)",
    );
    assert_manifest_invalid(
        open_edited(|m| m["keys"][0]["exportable"] = false.into()),
        "non-exportable",
    );
    assert_manifest_invalid(
        open_edited(|m| m["keys"][0]["created_at"] = "soon".into()),
        "RFC 3339",
    );
    assert_manifest_invalid(
        open_edited(|m| m["created_at"] = "soon".into()),
        "creation time",
    );
    assert_manifest_invalid(
        open_edited(|m| m["keys"][0]["origin"] = "".into()),
        "origin",
    );
    assert_manifest_invalid(
        open_edited(|m| m["keys"][0]["private_key_pkcs8_b64"] = "garbage!".into()),
        "not base64",
    );
    assert_manifest_invalid(
        open_edited(|m| m["keys"][0]["private_key_pkcs8_b64"] = "AAAA".into()),
        "not a P-256 PKCS#8 key",
    );
}

#[test]
fn structural_edits_are_refused() {
    assert_manifest_invalid(
        open_edited(|m| m["format"] = "something-else".into()),
        "format",
    );
    assert_manifest_invalid(
        open_edited(|m| m["keys"][0]["note"] = "extra".into()),
        "does not match format version 1",
    );
    assert_manifest_invalid(open_edited(|m| m["keys"] = Value::Array(vec![])), "no keys");
    assert_manifest_invalid(
        open_edited(|m| {
            let first = m["keys"][0].clone();
            m["keys"][1] = first;
        }),
        "appears twice",
    );
    let error = open_edited(|m| {
        let first = m["keys"][0].clone();
        m["keys"] = Value::Array(vec![first; MAX_KEYS + 1]);
    });
    assert!(
        matches!(error, MigrationError::BundleTooManyKeys { .. }),
        "{error:?}"
    );
    let error = open_edited(|m| m["version"] = 2.into());
    assert!(
        matches!(
            error,
            MigrationError::BundleVersionUnsupported {
                version: 2,
                supported: 1
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Unsupported);
}

#[test]
fn manifest_errors_never_quote_key_material() {
    let error = open_edited(|m| m["keys"][0]["private_key_pkcs8_b64"] = 12345.into());
    let text = format!("{error} {error:?}");
    assert!(!text.contains("12345"), "{text}");
    assert_manifest_invalid(error, "line 1");
}

// ---- the real `age` tool ----

fn age_tool() -> &'static str {
    let found = Command::new("age")
        .arg("--version")
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "the `age` tool is missing: apt-get install -y age (scripts/install-deps.sh)"
    );
    "age"
}

fn key_from_tool_output(plaintext: &[u8], keyid: &str) -> p256::SecretKey {
    let manifest: Value = serde_json::from_slice(plaintext).unwrap();
    let entry = manifest["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["keyid"] == keyid)
        .unwrap();
    let der = BASE64
        .decode(entry["private_key_pkcs8_b64"].as_str().unwrap())
        .unwrap();
    p256::SecretKey::from_pkcs8_der(&der).unwrap()
}

#[test]
fn age_tool_opens_a_recipient_bundle_and_we_open_its_files() {
    let tool = age_tool();
    let dir = tempfile::tempdir().unwrap();
    let identity = age::x25519::Identity::generate();
    let identity_file = dir.path().join("identity.txt");
    std::fs::write(
        &identity_file,
        format!("{}\n", identity.to_string().expose_secret()),
    )
    .unwrap();
    let keys = two_keys();
    let bundle_file = dir.path().join("transfer.age");
    std::fs::write(&bundle_file, seal_to(&keys, &identity)).unwrap();

    let out = Command::new(tool)
        .arg("-d")
        .arg("-i")
        .arg(&identity_file)
        .arg(&bundle_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = key_from_tool_output(&out.stdout, &keys[1].keyid);
    assert_eq!(secret.to_bytes(), keys[1].secret.to_bytes());

    // The other way round: the tool encrypts our manifest, unpadded; we open it.
    let plain_file = dir.path().join("manifest.json");
    std::fs::write(&plain_file, &out.stdout).unwrap();
    let reencrypted = dir.path().join("by-tool.age");
    let status = Command::new(tool)
        .arg("-r")
        .arg(identity.to_public().to_string())
        .arg("-o")
        .arg(&reencrypted)
        .arg(&plain_file)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&reencrypted).unwrap();
    let opened = open(&bytes, Unwrap::Identity(&identity)).unwrap();
    assert_same_keys(&opened, &keys);
}

/// Runs `age -d` under a pseudo-terminal (age reads passphrases only from a TTY),
/// typing `passphrase`; returns whether it succeeded and the decrypted output file.
fn age_decrypt_with_passphrase(dir: &Path, bundle: &Path, passphrase: &str) -> (bool, Vec<u8>) {
    let out_file = dir.join("out.json");
    let _ = std::fs::remove_file(&out_file);
    let command = format!(
        "{} -d -o '{}' '{}'",
        age_tool(),
        out_file.display(),
        bundle.display()
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("`script` (util-linux) runs age under a pseudo-terminal");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{passphrase}\n").as_bytes())
        .unwrap();
    drop(stdin);
    let ok = child.wait().unwrap().success();
    (ok, std::fs::read(&out_file).unwrap_or_default())
}

#[test]
fn age_tool_opens_a_passphrase_bundle_sealed_with_the_real_work_factor() {
    let dir = tempfile::tempdir().unwrap();
    let keys = two_keys();
    let bundle = seal(&keys, Wrap::Passphrase(passphrase("tr0ub4dor & 3"))).unwrap();
    let stanza_at = bundle.windows(10).position(|w| w == b"-> scrypt ").unwrap();
    let stanza = &bundle[stanza_at..];
    let line_end = stanza.iter().position(|&b| b == b'\n').unwrap();
    assert!(stanza[..line_end].ends_with(format!(" {SCRYPT_LOG_N}").as_bytes()));
    let opened = open(&bundle, Unwrap::Passphrase(passphrase("tr0ub4dor & 3"))).unwrap();
    assert_same_keys(&opened, &keys);

    let bundle_file = dir.path().join("backup.age");
    std::fs::write(&bundle_file, &bundle).unwrap();
    let (ok, plaintext) = age_decrypt_with_passphrase(dir.path(), &bundle_file, "tr0ub4dor & 3");
    assert!(ok, "age -d refused the right passphrase");
    let secret = key_from_tool_output(&plaintext, &keys[0].keyid);
    assert_eq!(secret.to_bytes(), keys[0].secret.to_bytes());

    let (ok, plaintext) = age_decrypt_with_passphrase(dir.path(), &bundle_file, "wrong");
    assert!(
        !ok && plaintext.is_empty(),
        "age -d accepted a wrong passphrase"
    );
}
