//! Mutation fuzzing of the migration parsers reachable from outside the daemon:
//! Notary / OpenSSL PEM and PKCS#8 key files (`migration::notary_pem`) and age key
//! bundles with their JSON manifests (`migration::bundle`). The key-file and
//! `store.json` parsers are private to the software backend; their harness is
//! `daemon/src/backend/software/key_file/fuzz.rs`.
//!
//! Properties: no input makes a parser panic; a mutated bundle never opens to keys
//! other than the sealed ones (age authenticates it); a key file whose private key
//! carries its public key never yields any other key; a manifest rewritten and
//! re-encrypted (what an attacker holding the recipient key could do) only ever
//! yields keys consistent with themselves; sealing and opening, encrypting and
//! decrypting round-trip. `TUFKEY_FUZZ_CASES` (default 200) and `TUFKEY_FUZZ_SEED`
//! set the run; `scripts/fuzz.sh` runs it long with a time-based seed.

// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use secrecy::SecretString;
use std::io::{Read, Write};
use tufkey_e2e::verify::workspace_root;
use tufkeyd::keys::{KeyRecord, Location};
use tufkeyd::migration::bundle::{self, BundleKey, Unwrap, Wrap};
use tufkeyd::migration::notary_pem;
use tufkeyd::tuf::key_json::tuf_keyid;

/// One edit of a file's bytes.
#[derive(Clone, Debug)]
enum Mutation {
    Set(prop::sample::Index, u8),
    FlipBit(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index),
    Truncate(prop::sample::Index),
    /// Copies a run of the file over another place.
    Splice(prop::sample::Index, prop::sample::Index, u8),
}

/// Bytes that matter to JSON, PEM and base64, then anything.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(b"\"\\{}[]:,0123456789-+.eE tfn/=AZaz\n-".to_vec()),
        any::<u8>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<prop::sample::Index>(), interesting_byte()).prop_map(|(at, byte)| Mutation::Set(at, byte)),
        3 => (any::<prop::sample::Index>(), 0..8u8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        2 => (any::<prop::sample::Index>(), interesting_byte()).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        2 => any::<prop::sample::Index>().prop_map(Mutation::Remove),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => (any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>())
            .prop_map(|(from, to, length)| Mutation::Splice(from, to, length)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..5)
}

fn apply(bytes: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    for mutation in mutations {
        if bytes.is_empty() {
            break;
        }
        let len = bytes.len();
        match mutation {
            Mutation::Set(at, byte) => bytes[at.index(len)] = *byte,
            Mutation::FlipBit(at, bit) => bytes[at.index(len)] ^= 1 << bit,
            Mutation::Insert(at, byte) => bytes.insert(at.index(len + 1), *byte),
            Mutation::Remove(at) => {
                bytes.remove(at.index(len));
            }
            Mutation::Truncate(at) => bytes.truncate(at.index(len)),
            Mutation::Splice(from, to, length) => {
                let from = from.index(len);
                let run: Vec<u8> = bytes[from..(from + usize::from(*length)).min(len)].to_vec();
                let to = to.index(len);
                let end = (to + run.len()).min(len);
                bytes[to..end].copy_from_slice(&run[..end - to]);
            }
        }
    }
    bytes
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .map(|value| {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{name}={value:?} is not a number"))
        })
        .unwrap_or(default)
}

/// A runner for `TUFKEY_FUZZ_CASES` cases from `TUFKEY_FUZZ_SEED`; `salt` keeps
/// the harnesses' streams apart.
fn runner(what: &str, salt: u8) -> (TestRunner, u32) {
    let cases = env_or("TUFKEY_FUZZ_CASES", 200u32);
    let seed = env_or("TUFKEY_FUZZ_SEED", 0x7475_666b_6579_0010u64);
    eprintln!("{what}: seed {seed} (TUFKEY_FUZZ_SEED to replay), {cases} cases");
    let mut seed_bytes = [salt; 16];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut config = Config::with_cases(cases);
    config.failure_persistence = None;
    let rng = TestRng::from_seed(RngAlgorithm::XorShift, &seed_bytes);
    (TestRunner::new_with_rng(config, rng), cases)
}

// ---------------------------------------------------------------------------
// Notary and OpenSSL key files

struct Fixture {
    file: &'static str,
    passphrase: &'static str,
    public_key: PublicKeyInside,
}

/// Whether the private key carries its public key, which must then match.
#[derive(Clone, Copy)]
enum PublicKeyInside {
    No,
    /// In the clear: the harness can see whether an edit touched it.
    Plaintext,
    /// Under (unauthenticated) legacy PEM encryption.
    Encrypted,
}

/// Whether a plaintext PEM's DER still holds `public` as the SEC1 `publicKey [1]`
/// field, byte for byte. An undecodable body counts as intact (and so cannot excuse
/// another key coming out).
fn still_carries(pem: &[u8], public: &p256::PublicKey) -> bool {
    use base64::Engine;
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let text = String::from_utf8_lossy(pem);
    let body: String = text
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .filter(|line| !line.contains(':'))
        .collect();
    let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body.trim()) else {
        return true;
    };
    let mut field = vec![0xa1, 0x44, 0x03, 0x42, 0x00];
    field.extend_from_slice(public.to_encoded_point(false).as_bytes());
    der.windows(field.len()).any(|window| window == field)
}

const FIXTURES: &[Fixture] = &[
    Fixture {
        file: "plain-sec1.pem",
        passphrase: "unused",
        public_key: PublicKeyInside::Plaintext,
    },
    Fixture {
        file: "plain-pkcs8.pem",
        passphrase: "unused",
        public_key: PublicKeyInside::Plaintext,
    },
    Fixture {
        file: "legacy-aes128.pem",
        passphrase: "legacy-fixture",
        public_key: PublicKeyInside::Encrypted,
    },
    Fixture {
        file: "legacy-aes256.pem",
        passphrase: "legacy-fixture",
        public_key: PublicKeyInside::Encrypted,
    },
    Fixture {
        file: "0667221c16784091369b8462aeebf6f11abe367aedfa96a91eb40b8370cb1d83.key",
        passphrase: "targetspass-fixture",
        public_key: PublicKeyInside::No,
    },
    Fixture {
        file: "notary-export.pem",
        passphrase: "targetspass-fixture",
        public_key: PublicKeyInside::No,
    },
];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        workspace_root()
            .join("daemon/src/migration/testdata")
            .join(name),
    )
    .unwrap()
}

/// Every key the blocks of `bytes` decrypt to (failures are fine; panics are not).
fn decrypt_all(bytes: &[u8], passphrase: &SecretString) -> Vec<p256::SecretKey> {
    let Ok(blocks) = notary_pem::parse_blocks(bytes, "fuzz.pem") else {
        return Vec::new();
    };
    blocks
        .iter()
        .filter_map(|block| {
            let _ = (
                block.path(),
                block.role(),
                block.gun(),
                block.is_encrypted(),
            );
            block.decrypt(Some(passphrase)).ok()
        })
        .collect()
}

#[test]
fn mutated_notary_and_openssl_key_files_never_panic_or_yield_another_key() {
    for fixture_file in FIXTURES {
        let bytes = fixture(fixture_file.file);
        let passphrase = SecretString::from(fixture_file.passphrase);
        let originals = decrypt_all(&bytes, &passphrase);
        assert!(
            !originals.is_empty(),
            "{} does not decrypt",
            fixture_file.file
        );
        let (mut runner, _) = runner(fixture_file.file, 3);
        runner
            .run(&mutations(), |mutations| {
                let mutated = apply(&bytes, &mutations);
                for key in decrypt_all(&mutated, &passphrase) {
                    let original = originals.contains(&key);
                    match fixture_file.public_key {
                        PublicKeyInside::No => {}
                        PublicKeyInside::Encrypted => prop_assert!(
                            original,
                            "{} yielded a key it does not hold",
                            fixture_file.file
                        ),
                        // Plaintext is not authenticated: an edit may change the scalar
                        // and also re-tag or break the public key field (the `der`
                        // crate then skips it as an unknown lower context tag), but
                        // never yield another key while that field is intact.
                        PublicKeyInside::Plaintext => prop_assert!(
                            original || !still_carries(&mutated, &originals[0].public_key()),
                            "{} yielded another key with its public key field intact",
                            fixture_file.file
                        ),
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}

/// What tufkey writes for `notary key import` reads back to the same key and headers
/// (one round trip: it costs Notary's 600,000 PBKDF2 iterations).
#[test]
fn notary_export_round_trips() {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let passphrase = SecretString::from("round-trip");
    let pem = notary_pem::encrypt(
        &secret,
        "targets",
        Some("example.com/app"),
        Some("abc"),
        &passphrase,
    )
    .unwrap();
    let blocks = notary_pem::parse_blocks(pem.as_bytes(), "export.pem").unwrap();
    assert_eq!(blocks.len(), 1);
    assert_eq!(
        (blocks[0].role(), blocks[0].gun(), blocks[0].path()),
        (Some("targets"), Some("example.com/app"), Some("abc"))
    );
    assert_eq!(blocks[0].decrypt(Some(&passphrase)).unwrap(), secret);
}

// ---------------------------------------------------------------------------
// Age bundles

fn bundle_keys() -> Vec<BundleKey> {
    ["targets", "snapshot"]
        .iter()
        .map(|role| {
            let secret = p256::SecretKey::random(&mut rand_core::OsRng);
            let record = KeyRecord::new(
                secret.public_key(),
                "example.com/app".parse().unwrap(),
                role.parse().unwrap(),
                Location::Software,
                "2026-01-01T00:00:00Z".into(),
                true,
            );
            BundleKey::new(&record, secret, "software").unwrap()
        })
        .collect()
}

fn same_keys(opened: &[BundleKey], sealed: &[BundleKey]) -> bool {
    opened.len() == sealed.len()
        && opened.iter().zip(sealed).all(|(a, b)| {
            (
                &a.keyid,
                &a.notary_keyid,
                &a.gun,
                &a.role,
                &a.created_at,
                a.exportable,
                &a.origin,
            ) == (
                &b.keyid,
                &b.notary_keyid,
                &b.gun,
                &b.role,
                &b.created_at,
                b.exportable,
                &b.origin,
            ) && a.public_key == b.public_key
                && a.secret == b.secret
        })
}

#[test]
fn mutated_bundles_never_panic_and_never_open_to_other_keys() {
    let identity = age::x25519::Identity::generate();
    let keys = bundle_keys();
    let sealed = bundle::seal(&keys, Wrap::Recipient(identity.to_public())).unwrap();
    assert!(same_keys(
        &bundle::open(&sealed, Unwrap::Identity(&identity)).unwrap(),
        &keys
    ));

    let (mut runner, _) = runner("bundle", 4);
    runner
        .run(&mutations(), |mutations| {
            let mutated = apply(&sealed, &mutations);
            if let Ok(opened) = bundle::open(&mutated, Unwrap::Identity(&identity)) {
                prop_assert!(
                    same_keys(&opened, &keys),
                    "a mutated bundle opened to other keys"
                );
            }
            Ok(())
        })
        .unwrap();
}

/// Encrypts `manifest` to `identity` as tufkey does, padded so the file length is a
/// multiple of bundle.rs's 509-byte quantum (otherwise every case stops at the length
/// check).
fn encrypt_padded(manifest: &[u8], identity: &age::x25519::Identity) -> Vec<u8> {
    let recipient = identity.to_public();
    let encrypt = |plaintext: &[u8]| {
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                .unwrap();
        let mut out = Vec::new();
        let mut writer = encryptor.wrap_output(&mut out).unwrap();
        writer.write_all(plaintext).unwrap();
        writer.finish().unwrap();
        out
    };
    let unpadded = encrypt(manifest).len();
    let mut padded = manifest.to_vec();
    padded.resize(manifest.len() + (509 - unpadded % 509) % 509, b' ');
    encrypt(&padded)
}

#[test]
fn rewritten_manifests_never_panic_and_yield_only_consistent_keys() {
    let identity = age::x25519::Identity::generate();
    let keys = bundle_keys();
    let sealed = bundle::seal(&keys, Wrap::Recipient(identity.to_public())).unwrap();
    let decryptor = age::Decryptor::new_buffered(&sealed[..]).unwrap();
    let mut manifest = Vec::new();
    decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut manifest)
        .unwrap();
    let manifest = manifest.trim_ascii_end().to_vec();
    // The re-encryption itself is faithful: unchanged, it opens to the sealed keys.
    let reencrypted = encrypt_padded(&manifest, &identity);
    assert!(same_keys(
        &bundle::open(&reencrypted, Unwrap::Identity(&identity)).unwrap(),
        &keys
    ));

    let (mut runner, _) = runner("bundle manifest", 5);
    runner
        .run(&mutations(), |mutations| {
            let rewritten = encrypt_padded(&apply(&manifest, &mutations), &identity);
            if let Ok(opened) = bundle::open(&rewritten, Unwrap::Identity(&identity)) {
                for key in &opened {
                    prop_assert_eq!(key.secret.public_key(), key.public_key);
                    prop_assert_eq!(&key.keyid, &tuf_keyid(&key.public_key));
                }
            }
            Ok(())
        })
        .unwrap();
}
