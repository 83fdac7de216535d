//! Tests of `super` (kept apart so the module itself reads as one job).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use pkcs8::der::Encode as _;
use pkcs8::DecodePrivateKey as _;

use super::*;
use crate::error::ErrorKind;
use crate::tuf::key_json::notary_keyid;

/// A key file the Debian `notary` 0.7 client wrote (testdata/README.md says how).
struct NotaryFile {
    /// The file name, which is the key's Notary key ID.
    keyid: &'static str,
    bytes: &'static [u8],
    role: &'static str,
    gun: Option<&'static str>,
    passphrase: &'static str,
}

const NOTARY_FILES: [NotaryFile; 4] = [
    NotaryFile {
        keyid: "0667221c16784091369b8462aeebf6f11abe367aedfa96a91eb40b8370cb1d83",
        bytes: include_bytes!(
            "../testdata/0667221c16784091369b8462aeebf6f11abe367aedfa96a91eb40b8370cb1d83.key"
        ),
        role: "targets",
        gun: None,
        passphrase: "targetspass-fixture",
    },
    NotaryFile {
        keyid: "5ce423af9e396c21a0b51d10a12977eb54c1db6206fe968762f37ab9e74ee55c",
        bytes: include_bytes!(
            "../testdata/5ce423af9e396c21a0b51d10a12977eb54c1db6206fe968762f37ab9e74ee55c.key"
        ),
        role: "targets",
        gun: Some("docker.io/acme/app"),
        passphrase: "targetspass-fixture",
    },
    NotaryFile {
        keyid: "e90da66be80a030c1c1ce4d981dc4cce3acfb16c8e18b7aca415a7536416c8f8",
        bytes: include_bytes!(
            "../testdata/e90da66be80a030c1c1ce4d981dc4cce3acfb16c8e18b7aca415a7536416c8f8.key"
        ),
        role: "targets/releases",
        gun: None,
        passphrase: "delegpass-fixture",
    },
    NotaryFile {
        keyid: "ef502376a0824c4c0de6463b9b35b38b975c7cac7d9598f5e9e869db036c8621",
        bytes: include_bytes!(
            "../testdata/ef502376a0824c4c0de6463b9b35b38b975c7cac7d9598f5e9e869db036c8621.key"
        ),
        role: "root",
        gun: None,
        passphrase: "rootpass-fixture",
    },
];
const NOTARY_TARGETS: &[u8] = NOTARY_FILES[0].bytes;
const NOTARY_EXPORT: &[u8] = include_bytes!("../testdata/notary-export.pem");
const PLAIN_SEC1: &str = include_str!("../testdata/plain-sec1.pem");

fn pass(passphrase: &str) -> SecretString {
    SecretString::from(passphrase.to_owned())
}

fn only_block(bytes: &[u8], name: &str) -> NotaryKeyBlock {
    let mut blocks = parse_blocks(bytes, name).unwrap();
    assert_eq!(blocks.len(), 1, "{name}");
    blocks.remove(0)
}

/// The key behind plain-sec1.pem and every file openssl made from it.
fn openssl_fixture_key() -> p256::SecretKey {
    p256::SecretKey::from_sec1_pem(PLAIN_SEC1).unwrap()
}

fn pem_text(label: &str, headers: &[&str], der_bytes: &[u8]) -> String {
    let mut pem = format!("-----BEGIN {label}-----\n");
    for header in headers {
        pem.push_str(header);
        pem.push('\n');
    }
    if !headers.is_empty() {
        pem.push('\n');
    }
    let base64_text = base64::engine::general_purpose::STANDARD.encode(der_bytes);
    for line in base64_text.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// An `ENCRYPTED PRIVATE KEY` block with PBKDF2-HMAC-SHA1 + AES-256-CBC params
/// claiming `iterations`, around `encrypted_data` (encrypted or not: the caller's).
fn pbes2_block(iterations: u32, encrypted_data: &[u8]) -> String {
    let salt = [7u8; 8];
    let iv = [9u8; 16];
    let der_bytes = pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: pbes2_params(iterations, &salt, &iv).into(),
        encrypted_data,
    }
    .to_der()
    .unwrap();
    pem_text(ENCRYPTED_PKCS8_LABEL, &["role: targets"], &der_bytes)
}

fn pbes2_params<'a>(iterations: u32, salt: &'a [u8], iv: &'a [u8; 16]) -> pbes2::Parameters<'a> {
    pbes2::Parameters {
        kdf: pbes2::Pbkdf2Params {
            salt,
            iteration_count: iterations,
            key_length: None,
            prf: pbes2::Pbkdf2Prf::HmacWithSha1,
        }
        .into(),
        encryption: pbes2::EncryptionScheme::Aes256Cbc { iv },
    }
}

fn error_of(bytes: &[u8], passphrase: Option<&str>) -> MigrationError {
    let passphrase = passphrase.map(pass);
    only_block(bytes, "test.key")
        .decrypt(passphrase.as_ref())
        .unwrap_err()
}

fn unsupported_type(error: MigrationError) -> String {
    assert_eq!(error.kind(), ErrorKind::Unsupported, "{error}");
    match error {
        MigrationError::NotaryUnsupportedKeyType { key_type, .. } => key_type,
        other => panic!("expected an unsupported key type, got {other}"),
    }
}

#[test]
fn reads_keys_notary_generated_and_their_ids_match_the_file_names() {
    for file in NOTARY_FILES {
        let keyid = file.keyid;
        let block = only_block(file.bytes, keyid);
        assert!(block.is_encrypted(), "{keyid}");
        assert_eq!(block.role(), Some(file.role), "{keyid}");
        assert_eq!(block.gun(), file.gun, "{keyid}");
        assert_eq!(block.path(), None, "{keyid}");
        let secret = block.decrypt(Some(&pass(file.passphrase))).unwrap();
        assert_eq!(notary_keyid(&secret.public_key()), keyid);
    }
}

#[test]
fn notary_writes_pkcs8_version_1_without_public_key_which_strict_parsers_refuse() {
    let block = only_block(NOTARY_TARGETS, "targets.key");
    let plaintext = block.decrypt_pbes2(b"targetspass-fixture").unwrap();
    // SEQUENCE (3 header bytes), then INTEGER 1.
    assert_eq!(plaintext[3..6], [0x02, 0x01, 0x01]);
    assert!(pkcs8::PrivateKeyInfo::try_from(plaintext.as_slice()).is_err());
    let inner = parse_inner_pkcs8(&plaintext).unwrap();
    assert_eq!(inner.algorithm.oid, EC_PUBLIC_KEY_OID);
}

#[test]
fn reads_a_notary_export_bundle_block_by_block() {
    let blocks = parse_blocks(NOTARY_EXPORT, "export.pem").unwrap();
    let expected = [
        (Some("docker.io/acme/app"), "targets", "targetspass-fixture"),
        (None, "root", "rootpass-fixture"),
        (
            Some("docker.io/acme/app"),
            "snapshot",
            "snapshotpass-fixture",
        ),
    ];
    assert_eq!(blocks.len(), expected.len());
    for (index, (block, (gun, role, passphrase))) in blocks.iter().zip(expected).enumerate() {
        assert_eq!(block.gun(), gun);
        assert_eq!(block.role(), Some(role));
        let path = block.path().unwrap();
        assert!(block.name.contains(&format!("block {} of 3", index + 1)));
        assert!(block.name.contains(path));
        let secret = block.decrypt(Some(&pass(passphrase))).unwrap();
        assert_eq!(notary_keyid(&secret.public_key()), path);
    }
    // The bundle's targets key is the one in the trust dir's file of that name.
    let file = only_block(NOTARY_FILES[1].bytes, "file.key");
    let from_file = file.decrypt(Some(&pass("targetspass-fixture"))).unwrap();
    let from_bundle = blocks[0]
        .decrypt(Some(&pass("targetspass-fixture")))
        .unwrap();
    assert_eq!(from_file.to_bytes(), from_bundle.to_bytes());
}

#[test]
fn a_wrong_passphrase_is_reported_as_one_naming_the_file() {
    for bytes in [
        NOTARY_TARGETS,
        include_bytes!("../testdata/legacy-aes256.pem"),
    ] {
        let error = error_of(bytes, Some("not-the-passphrase"));
        assert!(
            matches!(error, MigrationError::NotaryWrongPassphrase { .. }),
            "{error}"
        );
        assert_eq!(error.kind(), ErrorKind::Unauthenticated);
        assert!(
            error
                .to_string()
                .starts_with("wrong passphrase for test.key"),
            "{error}"
        );
    }
}

#[test]
fn garbage_that_decrypts_with_valid_padding_is_a_wrong_passphrase_too() {
    // What a wrong passphrase gives 1 time in 256: padding fine, no key inside.
    let salt = [7u8; 8];
    let iv = [9u8; 16];
    let garbage = pbes2_params(16, &salt, &iv)
        .encrypt("pw", &[0x55u8; 40])
        .unwrap();
    let error = error_of(pbes2_block(16, &garbage).as_bytes(), Some("pw"));
    assert!(
        matches!(error, MigrationError::NotaryWrongPassphrase { .. }),
        "{error}"
    );
}

#[test]
fn an_encrypted_key_without_a_passphrase_asks_for_one() {
    let error = error_of(NOTARY_TARGETS, None);
    assert!(
        matches!(error, MigrationError::NotaryPassphraseRequired { .. }),
        "{error}"
    );
    let error = error_of(include_bytes!("../testdata/legacy-aes128.pem"), None);
    assert!(
        matches!(error, MigrationError::NotaryPassphraseRequired { .. }),
        "{error}"
    );
}

#[test]
fn reads_unencrypted_legacy_and_openssl_forms_of_the_same_key() {
    let expected = openssl_fixture_key().to_bytes();
    let files: [(&str, &[u8], bool, Option<&str>); 6] = [
        ("plain-sec1.pem", PLAIN_SEC1.as_bytes(), false, None),
        (
            "plain-pkcs8.pem",
            include_bytes!("../testdata/plain-pkcs8.pem"),
            false,
            None,
        ),
        (
            "legacy-aes256.pem",
            include_bytes!("../testdata/legacy-aes256.pem"),
            true,
            None,
        ),
        (
            "legacy-aes128.pem",
            include_bytes!("../testdata/legacy-aes128.pem"),
            true,
            None,
        ),
        (
            "legacy-notary05-root.key",
            include_bytes!("../testdata/legacy-notary05-root.key"),
            true,
            Some("root"),
        ),
        (
            "openssl-pbkdf2-sha256.pem",
            include_bytes!("../testdata/openssl-pbkdf2-sha256.pem"),
            true,
            None,
        ),
    ];
    for (name, bytes, encrypted, role) in files {
        let block = only_block(bytes, name);
        assert_eq!(block.is_encrypted(), encrypted, "{name}");
        assert_eq!(block.role(), role, "{name}");
        let passphrase = if name.starts_with("openssl") {
            pass("openssl-fixture")
        } else {
            pass("legacy-fixture")
        };
        let secret = block.decrypt(Some(&passphrase)).unwrap();
        assert_eq!(secret.to_bytes(), expected, "{name}");
    }
}

#[test]
fn other_key_types_are_refused_by_name() {
    let rsa = error_of(
        include_bytes!("../testdata/rsa-pbkdf2-sha1.pem"),
        Some("openssl-fixture"),
    );
    assert_eq!(unsupported_type(rsa), "RSA");
    let p384 = error_of(
        include_bytes!("../testdata/p384-pbkdf2-sha1.pem"),
        Some("openssl-fixture"),
    );
    assert_eq!(unsupported_type(p384), "ECDSA P-384");

    let notary_ed25519 = pkcs8::PrivateKeyInfo::new(
        AlgorithmIdentifierRef {
            oid: ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11591.15.1"),
            parameters: None,
        },
        &[0x42; 96],
    )
    .to_der()
    .unwrap();
    let pem = pem_text(PKCS8_LABEL, &["role: targets"], &notary_ed25519);
    let error = error_of(pem.as_bytes(), None);
    assert_eq!(unsupported_type(error), "Ed25519 (Notary's encoding)");

    let legacy_rsa = pem_text("RSA PRIVATE KEY", &[], &[0x30, 0x00]);
    assert_eq!(
        unsupported_type(error_of(legacy_rsa.as_bytes(), None)),
        "RSA"
    );
}

#[test]
fn scrypt_and_absurd_iteration_counts_are_refused_before_any_work() {
    let scrypt = error_of(
        include_bytes!("../testdata/openssl-scrypt.pem"),
        Some("openssl-fixture"),
    );
    assert!(
        matches!(scrypt, MigrationError::NotaryUnsupportedEncryption { .. }),
        "{scrypt}"
    );
    assert_eq!(scrypt.kind(), ErrorKind::Unsupported);

    let expensive = pbes2_block(MAX_PBKDF2_ITERATIONS + 1, &[0u8; 48]);
    let started = std::time::Instant::now();
    let error = error_of(expensive.as_bytes(), Some("pw"));
    assert!(
        matches!(
            error,
            MigrationError::NotaryKdfTooExpensive { iterations, .. }
                if iterations == MAX_PBKDF2_ITERATIONS + 1
        ),
        "{error}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn non_pem_oversized_and_broken_input_is_refused_clearly() {
    let not_pem = |bytes: &[u8]| parse_blocks(bytes, "f").unwrap_err();
    assert!(matches!(
        not_pem(&[0x30, 0x82, 0xff, 0xfe]),
        MigrationError::NotaryNotPem { .. }
    ));
    assert!(matches!(
        not_pem(b"age-encryption.org/v1\n"),
        MigrationError::NotaryNotPem { .. }
    ));
    let huge = vec![b'A'; MAX_PEM_BYTES + 1];
    assert!(matches!(
        not_pem(&huge),
        MigrationError::NotaryPemTooLarge { .. }
    ));

    let targets = std::str::from_utf8(NOTARY_TARGETS).unwrap();
    let no_end = targets.replace("-----END ENCRYPTED PRIVATE KEY-----", "");
    let error = not_pem(no_end.as_bytes());
    assert!(
        matches!(
            error,
            MigrationError::NotaryMalformedPem { line: Some(1), .. }
        ),
        "{error}"
    );
    let wrong_end = targets.replace("END ENCRYPTED PRIVATE KEY", "END PRIVATE KEY");
    assert!(matches!(
        not_pem(wrong_end.as_bytes()),
        MigrationError::NotaryMalformedPem { .. }
    ));
    let twice = targets.replace("role: targets", "role: targets\nrole: root");
    assert!(matches!(
        not_pem(twice.as_bytes()),
        MigrationError::NotaryMalformedPem { .. }
    ));
    let bad_base64 = targets.replace("MIHu", "M!Hu");
    assert!(matches!(
        not_pem(bad_base64.as_bytes()),
        MigrationError::NotaryPemBase64 { .. }
    ));
    let certificate = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
    let error = not_pem(format!("{targets}{certificate}").as_bytes());
    let MigrationError::NotaryNotAPrivateKey { label, .. } = &error else {
        panic!("expected a refused certificate block, got {error}");
    };
    assert_eq!(label, "CERTIFICATE");
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
}

#[test]
fn crlf_line_ends_and_text_around_blocks_are_tolerated() {
    let targets = std::str::from_utf8(NOTARY_TARGETS).unwrap();
    let windows = format!(
        "a note\r\n{}\r\ntrailing text",
        targets.replace('\n', "\r\n")
    );
    let block = only_block(windows.as_bytes(), "crlf.key");
    assert_eq!(block.role(), Some("targets"));
    let secret = block.decrypt(Some(&pass("targetspass-fixture"))).unwrap();
    assert_eq!(notary_keyid(&secret.public_key()), NOTARY_FILES[0].keyid);
}

#[test]
fn debug_output_never_shows_the_key() {
    let block = only_block(PLAIN_SEC1.as_bytes(), "plain.pem");
    let shown = format!("{block:?}");
    let body_start = &PLAIN_SEC1.lines().nth(1).unwrap()[..16];
    assert!(!shown.contains(body_start), "{shown}");
    assert!(!shown.contains("body"), "{shown}");
}

#[test]
fn encrypt_writes_the_block_notary_writes() {
    let secret = p256::SecretKey::random(&mut OsRng);
    let pem = encrypt_with_iterations(
        &secret,
        "targets",
        Some("localhost:5000/acme/app"),
        Some("abc123"),
        &pass("pw-1"),
        4096,
    )
    .unwrap();
    let lines: Vec<&str> = pem.lines().collect();
    assert_eq!(
        lines[..5],
        [
            "-----BEGIN ENCRYPTED PRIVATE KEY-----",
            "gun: localhost:5000/acme/app",
            "path: abc123",
            "role: targets",
            "",
        ]
    );
    assert!(pem.ends_with("\n-----END ENCRYPTED PRIVATE KEY-----\n"));
    let body = &lines[5..lines.len() - 1];
    assert!(body[..body.len() - 1].iter().all(|line| line.len() == 64));

    let block = only_block(pem.as_bytes(), "ours.key");
    assert_eq!(block.gun(), Some("localhost:5000/acme/app"));
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&block.body).unwrap();
    let params = info.encryption_algorithm.pbes2().unwrap();
    let kdf = params.kdf.pbkdf2().unwrap();
    assert_eq!(kdf.salt.len(), 8);
    assert_eq!(kdf.iteration_count, 4096);
    assert_eq!(kdf.key_length, None);
    assert_eq!(kdf.prf, pbes2::Pbkdf2Prf::HmacWithSha1);
    assert!(matches!(
        params.encryption,
        pbes2::EncryptionScheme::Aes256Cbc { .. }
    ));
    // No PRF field on the wire (Notary would ignore it and derive with SHA-1 anyway).
    let hmac_with_sha1_oid = [0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x07];
    assert!(!block
        .body
        .windows(10)
        .any(|window| window == hmac_with_sha1_oid));

    let plaintext = block.decrypt_pbes2(b"pw-1").unwrap();
    assert_eq!(
        plaintext[3..6],
        [0x02, 0x01, 0x00],
        "PKCS#8 version 0 inside"
    );
    assert!(pkcs8::PrivateKeyInfo::try_from(plaintext.as_slice()).is_ok());
    let decrypted = block.decrypt(Some(&pass("pw-1"))).unwrap();
    assert_eq!(decrypted.to_bytes(), secret.to_bytes());
}

#[test]
fn encrypt_leaves_out_absent_headers_and_refuses_unusable_ones() {
    let secret = p256::SecretKey::random(&mut OsRng);
    let pem = encrypt_with_iterations(&secret, "root", None, None, &pass("pw"), 16).unwrap();
    let lines: Vec<&str> = pem.lines().take(3).collect();
    assert_eq!(
        lines,
        ["-----BEGIN ENCRYPTED PRIVATE KEY-----", "role: root", ""]
    );

    for (role, gun) in [
        ("root\nrole: x", None),
        (" root", None),
        ("", None),
        ("targets", Some("")),
    ] {
        let error = encrypt_with_iterations(&secret, role, gun, None, &pass("pw"), 16).unwrap_err();
        assert!(
            matches!(error, MigrationError::NotaryBadHeader { .. }),
            "{error}"
        );
    }
    let error = encrypt(&secret, "root", None, None, &pass("")).unwrap_err();
    assert!(matches!(error, MigrationError::NotaryEmptyPassphrase));
}

#[test]
fn openssl_decrypts_what_we_write() {
    let secret = p256::SecretKey::random(&mut OsRng);
    let pem = encrypt(&secret, "root", None, None, &pass("openssl-check")).unwrap();
    let block = only_block(pem.as_bytes(), "ours.key");
    let dir = tempfile::tempdir().unwrap();
    // OpenSSL's PEM reader takes any header for legacy encryption, so it gets the DER
    // and the same PEM without the Notary headers.
    let der_file = dir.path().join("key.der");
    std::fs::write(&der_file, &*block.body).unwrap();
    let pem_file = dir.path().join("key.pem");
    let headerless: String = pem
        .lines()
        .filter(|line| !line.contains(':') && !line.is_empty())
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&pem_file, headerless).unwrap();
    for (form, file) in [("DER", &der_file), ("PEM", &pem_file)] {
        let output = run(Command::new("openssl")
            .args([
                "pkcs8",
                "-inform",
                form,
                "-passin",
                "pass:openssl-check",
                "-in",
            ])
            .arg(file));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let pem = std::str::from_utf8(&output.stdout).unwrap();
        let decrypted = p256::SecretKey::from_pkcs8_pem(pem).unwrap();
        assert_eq!(decrypted.to_bytes(), secret.to_bytes());
    }
    let wrong = run(Command::new("openssl")
        .args(["pkcs8", "-inform", "DER", "-passin", "pass:wrong", "-in"])
        .arg(&der_file));
    assert!(!wrong.status.success());
}

#[test]
fn notary_imports_our_bundle_form_and_uses_the_key() {
    let home = tempfile::tempdir().unwrap();
    let secret = p256::SecretKey::random(&mut OsRng);
    let keyid = notary_keyid(&secret.public_key());
    let gun = "docker.io/acme/app";
    let pem = encrypt(
        &secret,
        "targets",
        Some(gun),
        Some(&keyid),
        &pass("notary-check"),
    )
    .unwrap();
    let bundle = home.path().join("export.pem");
    std::fs::write(&bundle, &pem).unwrap();
    let passphrases = [("TARGETS", "notary-check")];

    let imported = notary(home.path(), &["key", "import"], &[&bundle], &passphrases);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let listed = notary(home.path(), &["key", "list"], &[], &[]);
    let listing = String::from_utf8_lossy(&listed.stdout);
    let row = listing.lines().find(|line| line.contains(&keyid)).unwrap();
    assert!(row.starts_with("targets") && row.contains(gun), "{listing}");

    // Notary stored the block without `path`: the key file form, which we read.
    let key_file = home
        .path()
        .join("trust/private")
        .join(format!("{keyid}.key"));
    let stored = std::fs::read(&key_file).unwrap();
    let block = only_block(&stored, "stored.key");
    assert_eq!((block.path(), block.gun()), (None, Some(gun)));

    // `key passwd` decrypts the key with the role's passphrase and re-encrypts it.
    let changed = notary(home.path(), &["key", "passwd", &keyid], &[], &passphrases);
    let said = String::from_utf8_lossy(&changed.stdout);
    assert!(said.contains("Successfully updated passphrase"), "{said}");
    let rewritten = std::fs::read(&key_file).unwrap();
    assert_ne!(
        rewritten, stored,
        "notary re-encrypted the key in its own format"
    );
    let block = only_block(&rewritten, "rewritten.key");
    let decrypted = block.decrypt(Some(&pass("notary-check"))).unwrap();
    assert_eq!(decrypted.to_bytes(), secret.to_bytes());
}

#[test]
fn notary_uses_our_key_file_form_in_its_trust_dir() {
    let home = tempfile::tempdir().unwrap();
    let secret = p256::SecretKey::random(&mut OsRng);
    let keyid = notary_keyid(&secret.public_key());
    let pem = encrypt(&secret, "root", None, None, &pass("root-check")).unwrap();
    let private = home.path().join("trust/private");
    std::fs::create_dir_all(&private).unwrap();
    std::fs::write(private.join(format!("{keyid}.key")), &pem).unwrap();

    let wrong = notary(
        home.path(),
        &["key", "passwd", &keyid],
        &[],
        &[("ROOT", "wrong")],
    );
    assert!(!wrong.status.success());
    let right = notary(
        home.path(),
        &["key", "passwd", &keyid],
        &[],
        &[("ROOT", "root-check")],
    );
    let said = String::from_utf8_lossy(&right.stdout);
    assert!(said.contains("Successfully updated passphrase"), "{said}");
}

fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run {command:?}: {error} (scripts/install-deps.sh installs it)")
        })
}

/// Runs the Debian `notary` client on `HOME/trust`, offline, with only the given
/// `NOTARY_<ROLE>_PASSPHRASE` variables.
fn notary(home: &Path, args: &[&str], files: &[&Path], passphrases: &[(&str, &str)]) -> Output {
    let mut command = Command::new("notary");
    command
        .arg("-d")
        .arg(home.join("trust"))
        .args(args)
        .args(files)
        .env("HOME", home);
    for role in ["ROOT", "TARGETS", "SNAPSHOT", "DELEGATION"] {
        command.env_remove(format!("NOTARY_{role}_PASSPHRASE"));
    }
    for (role, passphrase) in passphrases {
        command.env(format!("NOTARY_{role}_PASSPHRASE"), passphrase);
    }
    run(&mut command)
}

#[test]
fn a_sec1_key_whose_public_key_field_was_retagged_is_refused_not_read_as_another_key() {
    // Found by scripts/fuzz.sh: der skips context fields it is not asked for, so a
    // public key re-tagged [1] -> [0] went unchecked and a changed scalar imported.
    let der_text: String = PLAIN_SEC1
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let mut der_bytes = base64::engine::general_purpose::STANDARD
        .decode(der_text)
        .unwrap();
    // SEQUENCE { INTEGER 1, OCTET STRING (32), [0] curve (12), [1] public key }
    let public_key_tag = 2 + 3 + 34 + 12;
    assert_eq!(der_bytes[public_key_tag], 0xa1);
    der_bytes[public_key_tag] = 0xa0;
    der_bytes[10] ^= 0x01; // inside the private scalar
    let pem = pem_text("EC PRIVATE KEY", &[], &der_bytes);
    let error = error_of(pem.as_bytes(), None);
    assert!(error.to_string().contains("SEC1"), "{error}");
}
