//! Signing Notary metadata through tufkeyd: find which of a role's keys tufkeyd
//! holds, get each ready (`card_wait`: insert the card, PIN, touch), sign the
//! canonical bytes (tufkeyd answers Notary's raw r||s in base64) and wrap them
//! into the file to upload, one progress line per role.

use super::super::card_wait::{self, PinSource};
use super::super::output::short_location;
use super::error::DctError;
use super::keys::tufkeyd_id;
use super::metadata::{canonical, envelope_bytes, PublicKey, Signature};
use std::collections::BTreeMap;
use tufkey::{proto, Client};

/// A key of a role that tufkeyd can sign with.
#[derive(Clone, Debug)]
pub struct SigningKey {
    /// The ID the metadata lists (a root certificate's, for root).
    pub metadata_id: String,
    pub key: proto::Key,
}

/// Signs roles through tufkeyd, asking for cards and PINs as needed.
pub struct RoleSigner {
    client: Client,
    pins: PinSource,
}

impl RoleSigner {
    pub fn new(client: Client, pins: PinSource) -> RoleSigner {
        RoleSigner { client, pins }
    }

    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The keys among `keyids` (looked up in `keys`) that tufkeyd holds.
    pub async fn held_keys(
        &mut self,
        keyids: &[String],
        keys: &BTreeMap<String, PublicKey>,
    ) -> Result<Vec<SigningKey>, DctError> {
        let mut held = Vec::new();
        for keyid in keyids {
            let Some(public) = keys.get(keyid) else {
                continue;
            };
            let Ok(id) = tufkeyd_id(public) else {
                continue;
            };
            match self.client.get_key(&id).await {
                Ok(key) => held.push(SigningKey {
                    metadata_id: keyid.clone(),
                    key,
                }),
                Err(tufkey::Error::Rpc(status)) if status.code() == tonic::Code::NotFound => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(held)
    }

    /// Like [`Self::held_keys`], but at least one, else an error naming the role.
    pub async fn signing_keys(
        &mut self,
        gun: &str,
        role: &str,
        keyids: &[String],
        keys: &BTreeMap<String, PublicKey>,
    ) -> Result<Vec<SigningKey>, DctError> {
        let held = self.held_keys(keyids, keys).await?;
        if held.is_empty() {
            return Err(DctError::NoSigningKey {
                gun: gun.to_owned(),
                role: role.to_owned(),
                keyids: keyids.join(", "),
            });
        }
        Ok(held)
    }

    /// Signs raw bytes with `key` once it is ready; `purpose` names the signature
    /// for the user ("root", "targets/releases", "the root certificate").
    pub async fn sign_bytes(
        &mut self,
        key: &proto::Key,
        purpose: &str,
        message: &[u8],
        format: proto::SignatureFormat,
    ) -> Result<String, DctError> {
        card_wait::ready_to_sign(&mut self.client, &key.keyid, purpose, None, &mut self.pins)
            .await?;
        let signed = self
            .client
            .sign_raw(&key.keyid, message.to_vec(), format)
            .await?;
        Ok(signed.signature)
    }

    /// `signed` as an uploadable file of `role`, signed by every key of `signers`.
    pub async fn sign_role<T: serde::Serialize>(
        &mut self,
        role: &str,
        version: u64,
        signed: &T,
        signers: &[SigningKey],
    ) -> Result<Vec<u8>, DctError> {
        let message = canonical(signed)?;
        let mut signatures = Vec::new();
        for signer in signers {
            let sig = self
                .sign_bytes(&signer.key, role, &message, proto::SignatureFormat::Notary)
                .await?;
            signatures.push(Signature {
                keyid: signer.metadata_id.clone(),
                method: "ecdsa".to_owned(),
                sig,
            });
        }
        let by: Vec<String> = signers
            .iter()
            .map(|signer| format!("{} ({})", signer.metadata_id, short_location(&signer.key)))
            .collect();
        eprintln!("{role} v{version} signed by {}", by.join(", "));
        envelope_bytes(&message, &signatures)
    }
}
