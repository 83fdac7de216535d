//! Notary's public keys: their IDs, the P-256 key inside (a bare `ecdsa` key, or
//! the subject key of an `ecdsa-x509` certificate), checking a signature, and
//! finding the tufkeyd key that can make one.
//!
//! A key ID is the SHA-256 of the key's canonical JSON, so a root certificate and
//! the bare key inside it have different IDs: metadata names the certificate's,
//! tufkeyd knows the bare key's (its Notary key ID).

use super::error::DctError;
use super::metadata::{canonical, KeyValue, PublicKey, Signature};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, DecodePem, Encode};
use x509_cert::Certificate;

pub const ECDSA: &str = "ecdsa";
pub const ECDSA_X509: &str = "ecdsa-x509";

/// Notary's key ID of `key`.
pub fn key_id(key: &PublicKey) -> Result<String, DctError> {
    let normal = PublicKey {
        keytype: key.keytype.clone(),
        keyval: KeyValue {
            public: key.keyval.public.clone(),
            private: None,
        },
    };
    Ok(hex::encode(Sha256::digest(canonical(&normal)?)))
}

/// The bare `ecdsa` key for a DER SubjectPublicKeyInfo.
pub fn ecdsa_key(spki_der: &[u8]) -> PublicKey {
    PublicKey {
        keytype: ECDSA.to_owned(),
        keyval: KeyValue {
            public: BASE64.encode(spki_der),
            private: None,
        },
    }
}

/// The `ecdsa-x509` key for a PEM certificate.
pub fn certificate_key(certificate_pem: &str) -> PublicKey {
    PublicKey {
        keytype: ECDSA_X509.to_owned(),
        keyval: KeyValue {
            public: BASE64.encode(certificate_pem.as_bytes()),
            private: None,
        },
    }
}

/// The DER SubjectPublicKeyInfo inside `key`.
pub fn subject_key_der(key: &PublicKey) -> Result<Vec<u8>, DctError> {
    let bad = |why: &'static str| DctError::BadKey {
        keytype: key.keytype.clone(),
        why,
    };
    let public = BASE64
        .decode(&key.keyval.public)
        .map_err(|_| bad("its public part is not base64"))?;
    match key.keytype.as_str() {
        ECDSA => Ok(public),
        ECDSA_X509 => {
            let certificate = Certificate::from_pem(&public)
                .or_else(|_| Certificate::from_der(&public))
                .map_err(|_| bad("its certificate does not parse"))?;
            certificate
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .map_err(|_| bad("its certificate's public key does not encode"))
        }
        _ => Err(bad(
            "tufkey only speaks ECDSA P-256 keys (ecdsa, ecdsa-x509)",
        )),
    }
}

/// The ID tufkeyd knows `key` by: the bare `ecdsa` form's Notary key ID.
pub fn tufkeyd_id(key: &PublicKey) -> Result<String, DctError> {
    key_id(&ecdsa_key(&subject_key_der(key)?))
}

/// The certificate's common name and validity end, for `ecdsa-x509` keys.
pub fn certificate_facts(key: &PublicKey) -> Option<(String, time::OffsetDateTime)> {
    let public = BASE64.decode(&key.keyval.public).ok()?;
    let certificate = Certificate::from_pem(&public).ok()?;
    let tbs = &certificate.tbs_certificate;
    let common_name = tbs
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find_map(|attribute| {
            (attribute.oid == x509_cert::der::oid::db::rfc4519::CN)
                .then(|| common_name_text(&attribute.value))
                .flatten()
        })?;
    let not_after = tbs.validity.not_after.to_unix_duration();
    let not_after = time::OffsetDateTime::from_unix_timestamp(not_after.as_secs() as i64).ok()?;
    Some((common_name, not_after))
}

fn common_name_text(value: &x509_cert::der::Any) -> Option<String> {
    use x509_cert::der::asn1::{PrintableStringRef, Utf8StringRef};
    value
        .decode_as::<Utf8StringRef<'_>>()
        .map(|text| text.as_str().to_owned())
        .or_else(|_| {
            value
                .decode_as::<PrintableStringRef<'_>>()
                .map(|text| text.as_str().to_owned())
        })
        .ok()
}

/// Whether `signature` by `key` covers `message`.
pub fn verifies(key: &PublicKey, signature: &Signature, message: &[u8]) -> bool {
    let Ok(der) = subject_key_der(key) else {
        return false;
    };
    let Ok(verifying) = VerifyingKey::from_public_key_der(&der) else {
        return false;
    };
    let Ok(raw) = BASE64.decode(&signature.sig) else {
        return false;
    };
    let Ok(signature) = p256::ecdsa::Signature::from_slice(&raw) else {
        return false;
    };
    verifying.verify(message, &signature).is_ok()
}

/// The DER SubjectPublicKeyInfo of a tufkeyd key (its `public_pem`).
pub fn spki_of(key: &tufkey::proto::Key) -> Result<Vec<u8>, DctError> {
    let verifying =
        VerifyingKey::from_public_key_pem(&key.public_pem).map_err(|_| DctError::BadKey {
            keytype: "tufkeyd".into(),
            why: "its public_pem is not a P-256 public key",
        })?;
    verifying
        .to_public_key_der()
        .map(|der| der.as_bytes().to_vec())
        .map_err(|_| DctError::BadKey {
            keytype: "tufkeyd".into(),
            why: "its public key does not encode",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The text of a key's public part; any base64 will do, the ID hashes the text.
    const SPKI: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEhjdIAGOSgGiNN0wDJOEgY5A1E8ZYNWlmGLTSYbS1WJvDzpRaKkBOGRKxHmwyRlBTOPHEUa7Q1l6Eypgl4cG8Aw==";

    #[test]
    fn ecdsa_key_ids_hash_the_canonical_key_with_a_null_private_part() {
        let key = PublicKey {
            keytype: ECDSA.into(),
            keyval: KeyValue {
                public: SPKI.into(),
                private: None,
            },
        };
        let expected = hex::encode(Sha256::digest(format!(
            r#"{{"keytype":"ecdsa","keyval":{{"private":null,"public":"{SPKI}"}}}}"#
        )));
        assert_eq!(key_id(&key).unwrap(), expected);
        assert_eq!(tufkeyd_id(&key).unwrap(), expected);
    }

    #[test]
    fn other_key_types_are_refused_by_name() {
        let key = PublicKey {
            keytype: "rsa".into(),
            keyval: KeyValue {
                public: "AAAA".into(),
                private: None,
            },
        };
        let error = subject_key_der(&key).unwrap_err().to_string();
        assert!(error.contains("rsa"), "{error}");
    }
}
