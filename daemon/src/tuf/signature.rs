//! Signature encodings: TUF wants hex of DER, Notary wants base64 of raw r||s.

use base64::Engine;
use p256::ecdsa::Signature;

/// How a signature is written out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureFormat {
    /// Lowercase hex of the DER-encoded signature.
    Tuf,
    /// Standard base64 of the 64-byte r||s.
    Notary,
}

/// Encodes `signature` as `format` requires.
pub fn encode(signature: &Signature, format: SignatureFormat) -> String {
    match format {
        SignatureFormat::Tuf => hex::encode(signature.to_der().as_bytes()),
        SignatureFormat::Notary => {
            base64::engine::general_purpose::STANDARD.encode(signature.to_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::{Signer, Verifier};
    use p256::ecdsa::{SigningKey, VerifyingKey};

    #[test]
    fn both_encodings_decode_to_a_valid_signature() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let signature: Signature = key.sign(b"payload");
        let verifying = VerifyingKey::from(&key);

        let der = hex::decode(encode(&signature, SignatureFormat::Tuf)).unwrap();
        verifying
            .verify(b"payload", &Signature::from_der(&der).unwrap())
            .unwrap();

        let raw = base64::engine::general_purpose::STANDARD
            .decode(encode(&signature, SignatureFormat::Notary))
            .unwrap();
        assert_eq!(raw.len(), 64);
        verifying
            .verify(b"payload", &Signature::from_slice(&raw).unwrap())
            .unwrap();
    }
}
