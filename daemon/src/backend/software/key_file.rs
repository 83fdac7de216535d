//! The on-disk formats: one `<keyid>.key` file per key, and `store.json` that lets
//! the daemon tell a wrong passphrase from a damaged key file.
//!
//! A key file holds the key's public description in the clear (so keys can be
//! listed while the store is locked) and the private scalar sealed with the store
//! key, the public description bound in as associated data.

use super::envelope::{KdfParams, Sealed, StoreKey};
use super::error::{FileProblem, Result, SoftwareError};
use crate::keys::{KeyRecord, Location};
use p256::ecdsa::SigningKey;
use p256::pkcs8::DecodePublicKey;
use p256::PublicKey;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

const KEY_FORMAT: &str = "tufkey-software-key/1";
const STORE_FORMAT: &str = "tufkey-store/1";
const STORE_CHECK_CONTEXT: &[u8] = b"tufkey store passphrase check";

/// The public part of a key file.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PublicPart {
    keyid: String,
    notary_keyid: String,
    gun: String,
    role: String,
    public_pem: String,
    created_at: String,
    exportable: bool,
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    format: String,
    public: PublicPart,
    kdf: KdfParams,
    sealed: Sealed,
}

/// A key file, parsed and checked against its own public key.
pub struct StoredKey {
    pub record: KeyRecord,
    file: KeyFile,
}

impl StoredKey {
    /// Seals a new key into file bytes.
    pub fn seal(
        record: &KeyRecord,
        signing_key: &SigningKey,
        store_key: &StoreKey,
    ) -> Result<(Self, Vec<u8>)> {
        let public = PublicPart {
            keyid: record.keyid.clone(),
            notary_keyid: record.notary_keyid.clone(),
            gun: record.gun.to_string(),
            role: record.role.to_string(),
            public_pem: crate::tuf::key_json::public_key_pem(&record.public_key),
            created_at: record.created_at.clone(),
            exportable: record.exportable,
        };
        let mut scalar = signing_key.to_bytes();
        let secret = Zeroizing::new(scalar.to_vec());
        scalar.zeroize();
        let sealed = store_key.seal(&secret, &associated_data(&public))?;
        let file = KeyFile {
            format: KEY_FORMAT.into(),
            public,
            kdf: store_key.params().clone(),
            sealed,
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(SoftwareError::Encode)?;
        Ok((
            StoredKey {
                record: record.clone(),
                file,
            },
            bytes,
        ))
    }

    /// Parses a key file; `expected_keyid` comes from its file name.
    pub fn parse(bytes: &[u8], expected_keyid: &str) -> Result<Self, FileProblem> {
        let file: KeyFile =
            serde_json::from_slice(bytes).map_err(|source| FileProblem::NotJson {
                what: "key file",
                source,
            })?;
        if file.format != KEY_FORMAT {
            return Err(FileProblem::UnsupportedFormat(file.format));
        }
        let public_key = PublicKey::from_public_key_pem(&file.public.public_pem)
            .map_err(FileProblem::PublicKey)?;
        let record = KeyRecord::new(
            public_key,
            file.public.gun.parse().map_err(FileProblem::Name)?,
            file.public.role.parse().map_err(FileProblem::Name)?,
            Location::Software,
            file.public.created_at.clone(),
            file.public.exportable,
        );
        if record.keyid != file.public.keyid || record.keyid != expected_keyid {
            return Err(FileProblem::KeyIdMismatch);
        }
        Ok(StoredKey { record, file })
    }

    /// The KDF parameters this file was sealed under.
    pub fn kdf(&self) -> &KdfParams {
        &self.file.kdf
    }

    /// Decrypts the private key and checks it matches the public key.
    pub fn unseal(&self, store_key: &StoreKey) -> Result<SigningKey, FileProblem> {
        if self.kdf() != store_key.params() {
            return Err(FileProblem::OtherPassphrase);
        }
        let secret = store_key.open(&self.file.sealed, &associated_data(&self.file.public))?;
        let signing_key = SigningKey::from_slice(&secret).map_err(|_| FileProblem::NotAScalar)?;
        if PublicKey::from(signing_key.verifying_key()) != self.record.public_key {
            return Err(FileProblem::KeyMismatch);
        }
        Ok(signing_key)
    }
}

fn associated_data(public: &PublicPart) -> Vec<u8> {
    serde_json::to_vec(public).expect("plain strings and bools serialise")
}

/// `store.json`: the KDF parameters and a sealed check value.
#[derive(Serialize, Deserialize)]
pub struct StoreFile {
    format: String,
    pub kdf: KdfParams,
    check: Sealed,
}

impl StoreFile {
    /// A new store file for a freshly derived key.
    pub fn create(store_key: &StoreKey) -> Result<(Self, Vec<u8>)> {
        let check = store_key.seal(STORE_CHECK_CONTEXT, STORE_CHECK_CONTEXT)?;
        let file = StoreFile {
            format: STORE_FORMAT.into(),
            kdf: store_key.params().clone(),
            check,
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(SoftwareError::Encode)?;
        Ok((file, bytes))
    }

    /// Parses `store.json`.
    pub fn parse(bytes: &[u8]) -> Result<Self, FileProblem> {
        let file: StoreFile =
            serde_json::from_slice(bytes).map_err(|source| FileProblem::NotJson {
                what: "store file",
                source,
            })?;
        if file.format != STORE_FORMAT {
            return Err(FileProblem::UnsupportedFormat(file.format));
        }
        Ok(file)
    }

    /// Whether `store_key` is the key this store was created with.
    pub fn accepts(&self, store_key: &StoreKey) -> bool {
        store_key
            .open(&self.check, STORE_CHECK_CONTEXT)
            .is_ok_and(|value| value.as_slice() == STORE_CHECK_CONTEXT)
    }
}
