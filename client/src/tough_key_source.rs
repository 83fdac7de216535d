//! [`TufkeyKeySource`]: tough's `KeySource` backed by tufkeyd, so tough-based tools
//! (tough's `RepositoryEditor`, tuftool, `tufkey repo`) sign with keys that never
//! leave the daemon.
//!
//! `as_sign` looks the key up (GetKey) and hands tough the key's TUF key JSON, after
//! checking that tough computes the same key ID as tufkeyd (tough rejects signatures
//! whose key ID does not match the key). `sign` asks tufkeyd for a TUF signature
//! (SignRaw, DER ECDSA in hex) and returns the DER bytes tough expects.

use crate::{proto, Client};
use async_trait::async_trait;
use aws_lc_rs::rand::SecureRandom;
use tough::key_source::KeySource;
use tough::schema::key::Key;
use tough::sign::Sign;

/// What can go wrong signing for tough through tufkeyd.
#[derive(Debug, thiserror::Error)]
pub enum KeySourceError {
    /// The daemon does not have the key, or could not be asked.
    #[error("looking up key {keyid} in tufkeyd (list the keys with `tufkey key list`)")]
    GetKey {
        keyid: String,
        #[source]
        source: crate::Error,
    },
    /// The daemon's key JSON is not a key tough understands.
    #[error("tough cannot parse tufkeyd's TUF key JSON for key {keyid}")]
    KeyJson {
        keyid: String,
        #[source]
        source: serde_json::Error,
    },
    /// tough could not compute the key's ID.
    #[error("tough cannot compute the key ID of key {keyid}")]
    KeyId {
        keyid: String,
        #[source]
        source: tough::schema::Error,
    },
    /// tough and tufkeyd disagree on the key ID: tough would reject every signature.
    #[error("key ID mismatch: tufkeyd calls the key {tufkeyd}, tough computes {tough}; tough would reject its signatures (report this as a tufkey bug)")]
    KeyIdMismatch { tufkeyd: String, tough: String },
    /// The daemon refused or failed to sign.
    #[error("signing with key {keyid} in tufkeyd")]
    Sign {
        keyid: String,
        #[source]
        source: crate::Error,
    },
    /// The daemon's signature is not hex.
    #[error("tufkeyd returned a signature for key {keyid} that is not hex")]
    SignatureHex {
        keyid: String,
        #[source]
        source: hex::FromHexError,
    },
    /// tough asked to store a private key; tufkeyd never takes keys that way.
    #[error("tufkeyd does not accept private keys from tough (key {keyid}): generate the key in tufkeyd (`tufkey key generate`) or import it with `tufkey import`")]
    WriteRefused { keyid: String },
}

/// A tough `KeySource` for one key held by tufkeyd (by TUF or Notary key ID).
#[derive(Clone)]
pub struct TufkeyKeySource {
    client: Client,
    keyid: String,
}

impl TufkeyKeySource {
    /// The key `keyid` in the daemon `client` talks to.
    pub fn new(client: Client, keyid: impl Into<String>) -> Self {
        TufkeyKeySource {
            client,
            keyid: keyid.into(),
        }
    }

    /// The key ID this source was made for.
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// The key's TUF form, checked against tough's own key ID computation.
    pub async fn tuf_key(&self) -> Result<(proto::Key, Key), KeySourceError> {
        let key = self
            .client
            .clone()
            .get_key(&self.keyid)
            .await
            .map_err(|source| KeySourceError::GetKey {
                keyid: self.keyid.clone(),
                source,
            })?;
        let tuf_key: Key =
            serde_json::from_str(&key.tuf_key_json).map_err(|source| KeySourceError::KeyJson {
                keyid: key.keyid.clone(),
                source,
            })?;
        let tough_id = tuf_key.key_id().map_err(|source| KeySourceError::KeyId {
            keyid: key.keyid.clone(),
            source,
        })?;
        let tough_id = hex::encode(&*tough_id);
        if tough_id != key.keyid {
            return Err(KeySourceError::KeyIdMismatch {
                tufkeyd: key.keyid,
                tough: tough_id,
            });
        }
        Ok((key, tuf_key))
    }
}

impl std::fmt::Debug for TufkeyKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TufkeyKeySource")
            .field("keyid", &self.keyid)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl KeySource for TufkeyKeySource {
    async fn as_sign(
        &self,
    ) -> Result<Box<dyn Sign>, Box<dyn std::error::Error + Send + Sync + 'static>> {
        let (key, tuf_key) = self.tuf_key().await?;
        Ok(Box::new(TufkeySigner {
            client: self.client.clone(),
            keyid: key.keyid,
            tuf_key,
        }))
    }

    async fn write(
        &self,
        _value: &str,
        _key_id_hex: &str,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        Err(Box::new(KeySourceError::WriteRefused {
            keyid: self.keyid.clone(),
        }))
    }
}

/// One key, ready to sign: its TUF key for tough, signatures from tufkeyd.
struct TufkeySigner {
    client: Client,
    keyid: String,
    tuf_key: Key,
}

#[async_trait]
impl Sign for TufkeySigner {
    fn tuf_key(&self) -> Key {
        self.tuf_key.clone()
    }

    async fn sign(
        &self,
        msg: &[u8],
        _rng: &(dyn SecureRandom + Sync),
    ) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync + 'static>> {
        let reply = self
            .client
            .clone()
            .sign_raw(&self.keyid, msg.to_vec(), proto::SignatureFormat::Tuf)
            .await
            .map_err(|source| KeySourceError::Sign {
                keyid: self.keyid.clone(),
                source,
            })?;
        let der = hex::decode(&reply.signature).map_err(|source| KeySourceError::SignatureHex {
            keyid: self.keyid.clone(),
            source,
        })?;
        Ok(der)
    }
}
