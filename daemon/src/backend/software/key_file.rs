//! The on-disk formats: one `<keyid>.key` file per key, and `store.json` that lets
//! the daemon tell a wrong passphrase from a damaged key file.
//!
//! A key file holds the key's public description in the clear (so keys can be
//! listed while the store is locked) and the private scalar sealed with the store
//! key, the public description bound in as associated data.

use super::envelope::{KdfParams, Sealed, StoreKey};
use super::error::{FileProblem, Result, SoftwareError};
use crate::keys::{KeyRecord, Location, Origin};
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
    /// `imported` for a key brought in from elsewhere; absent for one generated here
    /// (and in files written before origins were recorded, so their associated data
    /// is unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin: Option<String>,
}

/// What [`PublicPart::origin`] says for an imported key.
const IMPORTED: &str = "imported";

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
            origin: (record.origin == Origin::Imported).then(|| IMPORTED.to_owned()),
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
        let record = match file.public.origin.as_deref() {
            None => record,
            Some(IMPORTED) => record.imported(),
            Some(other) => return Err(FileProblem::UnsupportedFormat(format!("origin {other:?}"))),
        };
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

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyRecord;
    use secrecy::SecretString;

    fn store_key() -> StoreKey {
        let params = KdfParams {
            memory_kib: 64,
            iterations: 1,
            ..KdfParams::fresh()
        };
        params.derive(&SecretString::from("store")).unwrap()
    }

    /// Rewrites one field of the public part in a sealed key file's JSON.
    fn edit(
        bytes: &[u8],
        edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) -> Vec<u8> {
        let mut file: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        edit(file["public"].as_object_mut().unwrap());
        serde_json::to_vec(&file).unwrap()
    }

    #[test]
    fn flipping_exportable_or_origin_on_disk_makes_the_key_unreadable() {
        let store_key = store_key();
        let signing_key = SigningKey::random(&mut rand_core::OsRng);
        let record = KeyRecord::new(
            (*signing_key.verifying_key()).into(),
            "example.com/app".parse().unwrap(),
            "root".parse().unwrap(),
            Location::Software,
            "2026-01-01T00:00:00Z".into(),
            false,
        )
        .imported();
        let (_, bytes) = StoredKey::seal(&record, &signing_key, &store_key).unwrap();
        let stored = StoredKey::parse(&bytes, &record.keyid).unwrap();
        assert_eq!(stored.record.origin, Origin::Imported);
        assert!(!stored.record.exportable);
        assert!(stored.unseal(&store_key).is_ok());

        let exportable = edit(&bytes, |public| {
            public.insert("exportable".into(), true.into());
        });
        let flipped = StoredKey::parse(&exportable, &record.keyid).unwrap();
        assert!(
            flipped.record.exportable,
            "the edit is what the file now says"
        );
        assert!(
            flipped.unseal(&store_key).is_err(),
            "an exportable flag turned on by hand must not open the key"
        );

        let generated = edit(&bytes, |public| {
            public.remove("origin");
        });
        let claimed = StoredKey::parse(&generated, &record.keyid).unwrap();
        assert_eq!(claimed.record.origin, Origin::Generated);
        assert!(claimed.unseal(&store_key).is_err());
    }
}
