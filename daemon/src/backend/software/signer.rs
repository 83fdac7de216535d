//! Signing with a decrypted software key, as fast as the hot path needs.
//!
//! AWS-LC's P-256 (precomputed tables, assembly, constant time) signs a digest
//! several times faster than the pure-Rust `p256` crate on the 2-core machines this
//! project is measured on (`tufkey bench`, `scripts/bench-notary.sh`). Keys are
//! still generated, sealed and checked with `p256`; only signing goes through AWS-LC.
//! AWS-LC cleanses key memory when the key pair is freed.

use super::error::{Result, SoftwareError};
use aws_lc_rs::digest::{Digest, SHA256};
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use p256::ecdsa::{Signature, SigningKey};
use std::fmt;
use zeroize::Zeroize;

/// A decrypted private key, ready to sign SHA-256 digests.
pub struct DigestSigner {
    key_pair: EcdsaKeyPair,
}

impl fmt::Debug for DigestSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DigestSigner(<private key>)")
    }
}

impl DigestSigner {
    /// Loads `key` into AWS-LC.
    pub fn new(key: &SigningKey) -> Result<Self> {
        let mut scalar = key.to_bytes();
        let public = key.verifying_key().to_encoded_point(false);
        let key_pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &scalar,
            public.as_bytes(),
        );
        scalar.zeroize();
        let key_pair = key_pair.map_err(SoftwareError::SignerKey)?;
        Ok(DigestSigner { key_pair })
    }

    /// Signs a SHA-256 digest (ECDSA, DER result parsed into a `p256` signature).
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<Signature> {
        let digest = Digest::import_less_safe(digest, &SHA256).map_err(SoftwareError::Sign)?;
        let der = self
            .key_pair
            .sign_digest(&digest)
            .map_err(SoftwareError::Sign)?;
        Signature::from_der(der.as_ref()).map_err(SoftwareError::MalformedSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use sha2::{Digest as _, Sha256};

    #[test]
    fn signatures_verify_with_the_p256_public_key() {
        let key = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let signer = DigestSigner::new(&key).unwrap();
        let digest: [u8; 32] = Sha256::digest(b"message").into();
        let signature = signer.sign_digest(&digest).unwrap();
        key.verifying_key()
            .verify_prehash(&digest, &signature)
            .unwrap();
        assert_eq!(format!("{signer:?}"), "DigestSigner(<private key>)");
    }
}
