//! Public key forms and key IDs: TUF key JSON, Notary key JSON, PEM and DER.

use super::canonical;
use base64::Engine;
use p256::pkcs8::{EncodePublicKey, LineEnding};
use p256::PublicKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The TUF signature scheme of every tufkey key.
pub const TUF_SCHEME: &str = "ecdsa-sha2-nistp256";

/// SubjectPublicKeyInfo PEM with LF line endings and a trailing newline.
pub fn public_key_pem(key: &PublicKey) -> String {
    key.to_public_key_pem(LineEnding::LF)
        .expect("a valid P-256 public key always encodes as PEM")
}

/// SubjectPublicKeyInfo DER.
pub fn public_key_der(key: &PublicKey) -> Vec<u8> {
    key.to_public_key_der()
        .expect("a valid P-256 public key always encodes as DER")
        .into_vec()
}

/// The TUF key object: `{"keytype":"ecdsa","scheme":"ecdsa-sha2-nistp256","keyval":{"public":PEM}}`.
pub fn tuf_key_json(key: &PublicKey) -> Value {
    json!({
        "keytype": "ecdsa",
        "scheme": TUF_SCHEME,
        "keyval": {"public": public_key_pem(key)},
    })
}

/// The TUF key ID: hex SHA-256 of the canonical TUF key JSON.
pub fn tuf_keyid(key: &PublicKey) -> String {
    hash_canonical(&tuf_key_json(key))
}

/// The Notary key ID: hex SHA-256 of the canonical
/// `{"keytype":"ecdsa","keyval":{"private":null,"public":base64(DER SPKI)}}`.
pub fn notary_keyid(key: &PublicKey) -> String {
    let public = base64::engine::general_purpose::STANDARD.encode(public_key_der(key));
    hash_canonical(&json!({
        "keytype": "ecdsa",
        "keyval": {"private": null, "public": public},
    }))
}

fn hash_canonical(value: &Value) -> String {
    let bytes = canonical::canonical_bytes_of(value).expect("key JSON holds only ASCII strings");
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::DecodePublicKey;

    // A fixed public key (the P-256 generator point) so IDs can be checked by hand.
    const PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaxfR8uEsQkf4vOblY6RA8ncDfYEt\n6zOg9KE5RdiYwpZP40Li/hp/m47n60p8D54WK84zV2sxXs7LtkBoN79R9Q==\n-----END PUBLIC KEY-----\n";

    fn key() -> PublicKey {
        PublicKey::from_public_key_pem(PEM).unwrap()
    }

    #[test]
    fn pem_round_trips_with_lf_and_trailing_newline() {
        assert_eq!(public_key_pem(&key()), PEM);
    }

    #[test]
    fn tuf_keyid_hashes_the_canonical_key_json() {
        let canonical = format!(
            "{{\"keytype\":\"ecdsa\",\"keyval\":{{\"public\":\"{}\"}},\"scheme\":\"ecdsa-sha2-nistp256\"}}",
            PEM
        );
        let ours = canonical::canonical_bytes_of(&tuf_key_json(&key())).unwrap();
        assert_eq!(String::from_utf8(ours).unwrap(), canonical);
        assert_eq!(
            tuf_keyid(&key()),
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
    }

    #[test]
    fn notary_keyid_hashes_the_notary_key_json() {
        let der = base64::engine::general_purpose::STANDARD.encode(public_key_der(&key()));
        let canonical = format!(
            "{{\"keytype\":\"ecdsa\",\"keyval\":{{\"private\":null,\"public\":\"{der}\"}}}}"
        );
        assert_eq!(
            notary_keyid(&key()),
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
    }
}
