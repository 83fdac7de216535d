//! Scans bytes for leaked secrets without decrypting anything: a passphrase in any
//! common encoding, and any P-256 private scalar whose public key is known.
//!
//! A private scalar is recognised by what it does, not by knowing it: every 32-byte
//! candidate (raw windows, hex runs, base64 runs, decimal byte lists as `Debug`
//! prints them) is tried as a scalar, and a hit is a candidate whose public key is
//! one of the keys under test.
//!
//! Trying a candidate costs a scalar multiplication, so raw windows made only of
//! printable text are skipped: a uniformly random scalar is all printable with
//! probability (98/256)^32, about 5e-14, so a raw scalar written into a text log
//! always shows up among the windows tried, and a megabyte of trace log is scanned
//! in seconds rather than minutes. Its hex, base64 and decimal forms are text and
//! are tried by their own decoders.

use base64::Engine;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use std::collections::HashSet;

/// Public keys (SEC1 uncompressed) whose private halves must not appear.
pub struct ScalarDetector {
    public_keys: HashSet<Vec<u8>>,
}

impl ScalarDetector {
    pub fn new(public_keys: impl IntoIterator<Item = p256::PublicKey>) -> Self {
        ScalarDetector {
            public_keys: public_keys
                .into_iter()
                .map(|key| key.to_encoded_point(false).as_bytes().to_vec())
                .collect(),
        }
    }

    /// Whether any encoding of a private scalar of a known key occurs in `haystack`.
    pub fn finds_private_key_in(&self, haystack: &[u8]) -> bool {
        let mut candidates: Vec<Vec<u8>> = haystack
            .windows(32)
            .filter(|window| !window.iter().all(|byte| is_text(*byte)))
            .map(<[u8]>::to_vec)
            .collect();
        candidates.extend(hex_candidates(haystack));
        candidates.extend(base64_candidates(haystack));
        candidates.extend(decimal_list_candidates(haystack));
        // Logs repeat themselves (key IDs, certificates): try each candidate once.
        let distinct: HashSet<Vec<u8>> = candidates.into_iter().collect();
        distinct
            .iter()
            .any(|candidate| self.is_private_key(candidate))
    }

    fn is_private_key(&self, candidate: &[u8]) -> bool {
        p256::SecretKey::from_slice(candidate).is_ok_and(|secret| {
            self.public_keys
                .contains(secret.public_key().to_encoded_point(false).as_bytes())
        })
    }
}

/// Every encoding of `secret` a careless program might print.
pub fn encodings_of(secret: &str) -> Vec<String> {
    vec![
        secret.to_owned(),
        hex::encode(secret),
        base64::engine::general_purpose::STANDARD.encode(secret),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(secret),
        format!("{:?}", secret.as_bytes()),
    ]
}

/// Printable ASCII, tab, newline, carriage return, and ESC (terminal colours).
fn is_text(byte: u8) -> bool {
    matches!(byte, 0x20..=0x7e | b'\t' | b'\n' | b'\r' | 0x1b)
}

fn raw_windows(haystack: &[u8]) -> Vec<Vec<u8>> {
    haystack.windows(32).map(<[u8]>::to_vec).collect()
}

fn runs(haystack: &[u8], member: impl Fn(u8) -> bool, min_len: usize) -> Vec<&[u8]> {
    haystack
        .split(|byte| !member(*byte))
        .filter(|run| run.len() >= min_len)
        .collect()
}

fn hex_candidates(haystack: &[u8]) -> Vec<Vec<u8>> {
    runs(haystack, |b| b.is_ascii_hexdigit(), 64)
        .into_iter()
        .flat_map(|run| run.windows(64).filter_map(|w| hex::decode(w).ok()))
        .collect()
}

fn base64_candidates(haystack: &[u8]) -> Vec<Vec<u8>> {
    use base64::engine::{
        general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig,
    };
    let lenient = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let engines = [
        GeneralPurpose::new(&base64::alphabet::STANDARD, lenient),
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient),
    ];
    let is_base64 = |b: u8| b.is_ascii_alphanumeric() || b"+/-_".contains(&b);
    let mut candidates = Vec::new();
    for run in runs(haystack, is_base64, 43) {
        // The secret may start at any of the four positions of a base64 quantum.
        for start in 0..4 {
            let aligned = &run[start..];
            let usable = if aligned.len() % 4 == 1 {
                aligned.len() - 1
            } else {
                aligned.len()
            };
            for engine in &engines {
                if let Ok(decoded) = engine.decode(&aligned[..usable]) {
                    candidates.extend(raw_windows(&decoded));
                }
            }
        }
    }
    candidates
}

fn decimal_list_candidates(haystack: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(haystack);
    let mut candidates = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for token in text.split(|c: char| !c.is_ascii_digit()) {
        match token.parse::<u8>() {
            Ok(byte) if !token.is_empty() => current.push(byte),
            _ => {
                if !token.is_empty() {
                    candidates.extend(raw_windows(&current));
                    current.clear();
                }
            }
        }
    }
    candidates.extend(raw_windows(&current));
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_scalar_in_every_encoding_and_nothing_in_clean_text() {
        let secret = p256::SecretKey::from_slice(&[0x9c; 32]).unwrap();
        let detector = ScalarDetector::new([secret.public_key()]);
        let scalar = secret.to_bytes().to_vec();
        let wrapped = |inner: &[u8]| [b"log line: ".as_slice(), inner, b" end"].concat();
        assert!(detector.finds_private_key_in(&wrapped(&scalar)));
        assert!(detector
            .finds_private_key_in(&wrapped(format!("x{}y", hex::encode(&scalar)).as_bytes())));
        assert!(detector.finds_private_key_in(&wrapped(
            base64::engine::general_purpose::STANDARD
                .encode(&scalar)
                .as_bytes()
        )));
        assert!(detector.finds_private_key_in(&wrapped(format!("{scalar:?}").as_bytes())));
        assert!(!detector.finds_private_key_in(b"nothing secret here, just a key id 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    }
}
