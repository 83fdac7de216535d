//! Canonicalising and signing a large targets.json (10k and 100k targets), the way
//! `SignMetadata` does it, against a baseline measured in the same run: the common
//! approach of parsing into `serde_json::Value` and canonicalising with `olpc-cjson`
//! (what tough does), then re-serialising the document.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::hint::black_box;
use tufkeyd::tuf::metadata::MetadataDocument;
use tufkeyd::tuf::signature::{encode, SignatureFormat};

/// A deterministic unsigned targets.json with `count` targets (~150 bytes each).
fn targets_document(count: usize) -> Vec<u8> {
    let mut targets = serde_json::Map::new();
    for n in 0..count {
        targets.insert(
            format!("pkg/file-{n:06}.tar.gz"),
            json!({
                "length": 1000 + n,
                "hashes": {"sha256": hex::encode(Sha256::digest(n.to_le_bytes()))},
                "custom": {"build": n, "arch": "amd64"},
            }),
        );
    }
    serde_json::to_vec(&json!({
        "signed": {"_type": "targets", "spec_version": "1.0.31", "version": 1,
                   "expires": "2099-01-01T00:00:00Z", "targets": targets},
        "signatures": [],
    }))
    .unwrap()
}

fn sign(key: &SigningKey, canonical: &[u8]) -> String {
    let digest: [u8; 32] = Sha256::digest(canonical).into();
    let signature: Signature = key.sign_prehash(&digest).unwrap();
    encode(&signature, SignatureFormat::Tuf)
}

fn tufkey_path(key: &SigningKey, input: &[u8]) -> Vec<u8> {
    let mut document = MetadataDocument::parse(input.to_vec()).unwrap();
    let sig = sign(key, document.signed_bytes());
    document.add_signature("bench", sig);
    document.into_bytes()
}

fn baseline_value_and_olpc_cjson(key: &SigningKey, input: &[u8]) -> Vec<u8> {
    let mut document: Value = serde_json::from_slice(input).unwrap();
    let mut canonical = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(
        &mut canonical,
        olpc_cjson::CanonicalFormatter::new(),
    );
    document["signed"].serialize(&mut serializer).unwrap();
    let sig = sign(key, &canonical);
    document["signatures"]
        .as_array_mut()
        .unwrap()
        .push(json!({"keyid": "bench", "sig": sig}));
    serde_json::to_vec(&document).unwrap()
}

fn bench(c: &mut Criterion) {
    let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
    let mut group = c.benchmark_group("sign_targets_json");
    group.sample_size(10);
    for count in [10_000usize, 100_000] {
        let input = targets_document(count);
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::new("tufkey", count), &input, |b, input| {
            b.iter(|| black_box(tufkey_path(&key, input)))
        });
        group.bench_with_input(
            BenchmarkId::new("baseline_value_olpc_cjson", count),
            &input,
            |b, input| b.iter(|| black_box(baseline_value_and_olpc_cjson(&key, input))),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
