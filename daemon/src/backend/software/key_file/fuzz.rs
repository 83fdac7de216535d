//! Mutation fuzzing of the key-file and `store.json` parsers (they are private to the
//! software backend, so the harness lives here rather than in `tests/`).
//!
//! Properties: parsing never panics; a mutated key file either fails to parse, fails
//! to unseal, or unseals to exactly the original key under exactly the original
//! record (authenticated data cannot be changed unnoticed); a mutated `store.json`
//! that still accepts the store key says exactly what the original said; sealing and
//! parsing round-trip. `TUFKEY_FUZZ_CASES` (default 300) and `TUFKEY_FUZZ_SEED` set
//! the run; `scripts/fuzz.sh` runs it long with a time-based seed.

use super::*;
use crate::keys::KeyRecord;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use secrecy::SecretString;

/// One edit of a file's bytes.
#[derive(Clone, Debug)]
enum Mutation {
    Set(prop::sample::Index, u8),
    FlipBit(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index),
    Truncate(prop::sample::Index),
    /// Copies a run of the file over another place (moves fields and values around).
    Splice(prop::sample::Index, prop::sample::Index, u8),
}

/// Bytes that matter to JSON and base64, then anything.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(b"\"\\{}[]:,0123456789-+.eE tfn/=AZaz".to_vec()),
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
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn runner(salt: u8) -> (TestRunner, u32) {
    let cases = env_or("TUFKEY_FUZZ_CASES", 300u32);
    let seed = env_or("TUFKEY_FUZZ_SEED", 0x7475_666b_6579_0010u64);
    eprintln!("key-file fuzz: seed {seed} (TUFKEY_FUZZ_SEED to replay), {cases} cases");
    let mut seed_bytes = [salt; 16];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut config = Config::with_cases(cases);
    config.failure_persistence = None;
    let rng = TestRng::from_seed(RngAlgorithm::XorShift, &seed_bytes);
    (TestRunner::new_with_rng(config, rng), cases)
}

fn store_key() -> StoreKey {
    let params = KdfParams {
        memory_kib: 64,
        iterations: 1,
        ..KdfParams::fresh()
    };
    params.derive(&SecretString::from("store")).unwrap()
}

fn record(signing_key: &SigningKey) -> KeyRecord {
    KeyRecord::new(
        (*signing_key.verifying_key()).into(),
        "example.com/app".parse().unwrap(),
        "targets".parse().unwrap(),
        Location::Software,
        "2026-01-01T00:00:00Z".into(),
        false,
    )
    .imported()
}

#[test]
fn mutated_key_files_never_panic_and_never_unseal_to_anything_else() {
    let store_key = store_key();
    let signing_key = SigningKey::random(&mut rand_core::OsRng);
    let record = record(&signing_key);
    let (_, bytes) = StoredKey::seal(&record, &signing_key, &store_key).unwrap();

    // Round trip: parse and unseal the file as written, and write it again alike.
    let stored = StoredKey::parse(&bytes, &record.keyid).unwrap();
    assert_eq!(stored.record, record);
    assert_eq!(stored.unseal(&store_key).unwrap(), signing_key);
    assert_eq!(serde_json::to_vec_pretty(&stored.file).unwrap(), bytes);

    let (mut runner, cases) = runner(1);
    let opened = std::cell::Cell::new(0u32);
    runner
        .run(&prop::collection::vec(mutation(), 1..5), |mutations| {
            let mutated = apply(&bytes, &mutations);
            if let Ok(stored) = StoredKey::parse(&mutated, &record.keyid) {
                if let Ok(key) = stored.unseal(&store_key) {
                    prop_assert_eq!(&key, &signing_key);
                    prop_assert_eq!(&stored.record, &record);
                    prop_assert_eq!(
                        associated_data(&stored.file.public),
                        associated_data(
                            &StoredKey::parse(&bytes, &record.keyid).unwrap().file.public
                        )
                    );
                    opened.set(opened.get() + 1);
                }
            }
            Ok(())
        })
        .unwrap();
    let opened = opened.get();
    eprintln!(
        "key-file fuzz: {cases} mutated key files, {opened} still opened (unchanged meaning)"
    );
}

#[test]
fn mutated_store_files_never_panic_and_accept_only_what_was_written() {
    let store_key = store_key();
    let (original, bytes) = StoreFile::create(&store_key).unwrap();
    let parsed = StoreFile::parse(&bytes).unwrap();
    assert!(parsed.accepts(&store_key));
    let meaning = serde_json::to_value(&original).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), meaning);

    let (mut runner, _) = runner(2);
    runner
        .run(&prop::collection::vec(mutation(), 1..5), |mutations| {
            let mutated = apply(&bytes, &mutations);
            if let Ok(file) = StoreFile::parse(&mutated) {
                if file.accepts(&store_key) {
                    prop_assert_eq!(
                        &serde_json::to_value(&file.check).unwrap(),
                        &meaning["check"]
                    );
                }
            }
            Ok(())
        })
        .unwrap();
}
