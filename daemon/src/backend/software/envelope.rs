//! The keystore's encryption: Argon2id turns the passphrase into a 256-bit key,
//! XChaCha20-Poly1305 seals each secret with its public metadata as associated data.

use super::error::{FileProblem, Result, SoftwareError};
use super::manifest::ManifestKey;
use crate::audit::AuditKey;
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroizing;

const ARGON2ID: &str = "argon2id";

/// The costliest Argon2id parameters read from disk that tufkeyd will run: 1 GiB,
/// 64 passes, 16 lanes, far above what it writes (64 MiB, 3 passes, 1 lane). A
/// file asking for more is damaged or hostile, and deriving from it would tie up
/// the daemon (or exhaust its memory) before the passphrase check could fail.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_ITERATIONS: u32 = 64;
const MAX_PARALLELISM: u32 = 16;
const XCHACHA20POLY1305: &str = "xchacha20poly1305";

/// Argon2id parameters and salt, stored beside everything sealed with the derived key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub algorithm: String,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Base64 of 16 random bytes.
    pub salt: String,
}

impl KdfParams {
    /// Fresh parameters: 64 MiB, 3 passes, 1 lane, a random salt.
    pub fn fresh() -> Self {
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        KdfParams {
            algorithm: ARGON2ID.into(),
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
            salt: BASE64.encode(salt),
        }
    }

    /// Derives the store key from the passphrase (deliberately slow).
    pub fn derive(&self, passphrase: &SecretString) -> Result<StoreKey, FileProblem> {
        if self.algorithm != ARGON2ID {
            return Err(FileProblem::UnsupportedKdf(self.algorithm.clone()));
        }
        self.check_bounds()?;
        let salt = BASE64
            .decode(&self.salt)
            .map_err(|source| FileProblem::NotBase64 {
                what: "KDF salt",
                source,
            })?;
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(FileProblem::KdfParams)?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.expose_secret().as_bytes(), &salt, key.as_mut())
            .map_err(FileProblem::KdfParams)?;
        Ok(StoreKey {
            key,
            params: self.clone(),
        })
    }
}

impl KdfParams {
    /// Refuses parameters above the bounds tufkeyd accepts from disk.
    fn check_bounds(&self) -> Result<(), FileProblem> {
        for (parameter, value, max) in [
            ("memory_kib", self.memory_kib, MAX_MEMORY_KIB),
            ("iterations", self.iterations, MAX_ITERATIONS),
            ("parallelism", self.parallelism, MAX_PARALLELISM),
        ] {
            if value > max {
                return Err(FileProblem::KdfTooCostly {
                    parameter,
                    value,
                    max,
                });
            }
        }
        Ok(())
    }
}

/// A secret sealed with the store key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sealed {
    pub cipher: String,
    /// Base64 of the 24-byte nonce.
    pub nonce: String,
    /// Base64 of ciphertext + tag.
    pub ciphertext: String,
}

/// The key derived from the store passphrase. Zeroised on drop; never printed.
pub struct StoreKey {
    key: Zeroizing<[u8; 32]>,
    params: KdfParams,
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreKey")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl StoreKey {
    /// The parameters this key was derived with.
    pub fn params(&self) -> &KdfParams {
        &self.params
    }

    /// The audit log's HMAC key, derived from this key (HKDF, its own label).
    pub fn audit_key(&self) -> AuditKey {
        AuditKey::derive(self.key.as_ref())
    }

    /// The key manifest's HMAC key, derived from this key (HKDF, its own label).
    pub fn manifest_key(&self) -> ManifestKey {
        ManifestKey::derive(self.key.as_ref())
    }

    /// Encrypts `secret`, binding `associated` (authenticated, not encrypted).
    pub fn seal(&self, secret: &[u8], associated: &[u8]) -> Result<Sealed> {
        let cipher = XChaCha20Poly1305::new(self.key.as_ref().into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: secret,
                    aad: associated,
                },
            )
            .map_err(SoftwareError::Seal)?;
        Ok(Sealed {
            cipher: XCHACHA20POLY1305.into(),
            nonce: BASE64.encode(nonce),
            ciphertext: BASE64.encode(ciphertext),
        })
    }

    /// Decrypts; fails when the key is wrong or anything was altered.
    pub fn open(
        &self,
        sealed: &Sealed,
        associated: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, FileProblem> {
        if sealed.cipher != XCHACHA20POLY1305 {
            return Err(FileProblem::UnsupportedCipher(sealed.cipher.clone()));
        }
        let nonce = BASE64
            .decode(&sealed.nonce)
            .map_err(|source| FileProblem::NotBase64 {
                what: "nonce",
                source,
            })?;
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| FileProblem::NonceLength)?;
        let ciphertext =
            BASE64
                .decode(&sealed.ciphertext)
                .map_err(|source| FileProblem::NotBase64 {
                    what: "ciphertext",
                    source,
                })?;
        let cipher = XChaCha20Poly1305::new(self.key.as_ref().into());
        cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &ciphertext,
                    aad: associated,
                },
            )
            .map(Zeroizing::new)
            .map_err(FileProblem::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap_params() -> KdfParams {
        KdfParams {
            memory_kib: 64,
            iterations: 1,
            ..KdfParams::fresh()
        }
    }

    #[test]
    fn sealed_secrets_open_only_with_the_same_passphrase_and_metadata() {
        let params = cheap_params();
        let key = params.derive(&SecretString::from("correct horse")).unwrap();
        let sealed = key.seal(b"secret", b"meta").unwrap();
        assert_eq!(key.open(&sealed, b"meta").unwrap().as_slice(), b"secret");
        assert!(key.open(&sealed, b"other meta").is_err());
        let wrong = params.derive(&SecretString::from("wrong")).unwrap();
        assert!(wrong.open(&sealed, b"meta").is_err());
    }

    #[test]
    fn absurd_parameters_from_disk_are_refused_before_any_allocation() {
        for (params, parameter) in [
            (
                KdfParams {
                    memory_kib: 64 * 1024 * 1024,
                    ..cheap_params()
                },
                "memory_kib",
            ),
            (
                KdfParams {
                    iterations: u32::MAX,
                    ..cheap_params()
                },
                "iterations",
            ),
            (
                KdfParams {
                    parallelism: 1000,
                    ..cheap_params()
                },
                "parallelism",
            ),
        ] {
            let error = params.derive(&SecretString::from("pw")).unwrap_err();
            assert!(
                matches!(error, FileProblem::KdfTooCostly { parameter: p, .. } if p == parameter),
                "{error}"
            );
            assert!(error.to_string().contains(parameter), "{error}");
            assert!(error.to_string().contains("restore"), "{error}");
        }
        let at_the_bound = KdfParams {
            memory_kib: 64,
            iterations: MAX_ITERATIONS,
            parallelism: 1,
            ..cheap_params()
        };
        assert!(at_the_bound.derive(&SecretString::from("pw")).is_ok());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = cheap_params().derive(&SecretString::from("pw")).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains(&format!("{:?}", key.key.as_ref())));
    }
}
