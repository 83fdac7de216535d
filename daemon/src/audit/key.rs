//! [`AuditKey`]: the HMAC key of the audit log, derived from the keystore's secret.
//!
//! It is derived with HKDF-SHA256 under its own label, so it is independent of every
//! other use of that secret: knowing it does not help decrypt a key file, and an
//! attacker without the store secret cannot compute a record's MAC.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The HKDF `info` label that separates the audit key from other derived keys.
const LABEL: &[u8] = b"tufkey audit log v1";

/// The audit log's 32-byte HMAC-SHA256 key. Zeroised when the last clone is dropped;
/// never printed.
#[derive(Clone)]
pub struct AuditKey(Arc<Zeroizing<[u8; 32]>>);

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

impl AuditKey {
    /// Derives the key from a keystore's secret (e.g. the software store key).
    pub fn derive(secret: &[u8]) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(None, secret)
            .expand(LABEL, key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        AuditKey(Arc::new(key))
    }

    fn hmac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(self.0.as_slice()).expect("HMAC takes a key of any length")
    }

    /// HMAC-SHA256 of `data`, hex.
    pub fn mac(&self, data: &[u8]) -> String {
        let mut mac = self.hmac();
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `mac_hex` is the MAC of `data` (compared in constant time).
    pub fn verify(&self, data: &[u8], mac_hex: &str) -> bool {
        let Ok(tag) = hex::decode(mac_hex) else {
            return false;
        };
        let mut mac = self.hmac();
        mac.update(data);
        mac.verify_slice(&tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_depends_on_the_secret_and_macs_verify_only_unchanged_data() {
        let key = AuditKey::derive(&[7; 32]);
        let mac = key.mac(b"record");
        assert_eq!(mac.len(), 64);
        assert!(key.verify(b"record", &mac));
        assert!(!key.verify(b"recorD", &mac));
        assert!(!key.verify(b"record", "not hex"));
        assert!(!AuditKey::derive(&[8; 32]).verify(b"record", &mac));
        assert_eq!(format!("{key:?}"), "AuditKey(<redacted>)");
    }

    #[test]
    fn derivation_is_hkdf_sha256_with_the_audit_label() {
        // RFC 5869 HKDF with no salt: the same secret always gives the same key, so
        // a restarted daemon keeps verifying its old records.
        let a = AuditKey::derive(b"store secret");
        let b = AuditKey::derive(b"store secret");
        assert_eq!(a.mac(b"x"), b.mac(b"x"));
        let mut expected = [0u8; 32];
        Hkdf::<Sha256>::new(None, b"store secret")
            .expand(b"tufkey audit log v1", &mut expected)
            .unwrap();
        assert_eq!(a.0.as_slice(), &expected);
    }
}
