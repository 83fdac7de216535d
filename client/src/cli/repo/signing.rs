//! Signing one role through tufkeyd: for each of the role's keys, get it ready
//! (`card_wait::ready_to_sign`: wait for its YubiKey, PIN, touch), sign with tough's
//! `SignedRole` through [`tufkey::TufkeyKeySource`], then print one progress line,
//! e.g. "targets v3 signed by KEYID (YubiKey 1002 slot 82)".

use super::super::card_wait::{self, PinSource};
use super::super::output::short_location as location;
use super::error::RepoError;
use std::collections::{BTreeMap, HashMap};
use tough::editor::signed::SignedRole;
use tough::key_source::KeySource;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::Key;
use tough::schema::{KeyHolder, Role};
use tufkey::{proto, Client, TufkeyKeySource};

/// Signs roles, one progress line each.
pub struct Signer {
    client: Client,
    pins: PinSource,
    labels: BTreeMap<u32, String>,
    rng: aws_lc_rs::rand::SystemRandom,
}

impl Signer {
    pub fn new(client: Client, pins: PinSource, labels: BTreeMap<u32, String>) -> Self {
        Signer {
            client,
            pins,
            labels,
            rng: aws_lc_rs::rand::SystemRandom::new(),
        }
    }

    /// Names for YubiKeys (by serial), used when asking for a card.
    pub fn label_cards(&mut self, labels: BTreeMap<u32, String>) {
        self.labels = labels;
    }

    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// A key of `role` as tufkeyd holds it; a missing key names the role and the fix.
    pub async fn key(&mut self, keyid: &str, role: &str) -> Result<proto::Key, RepoError> {
        lookup_key(&mut self.client, keyid, role).await
    }

    /// The TUF keys of `keyids` (checked against tough's key IDs), for metadata.
    pub async fn tuf_keys(
        &mut self,
        keyids: &[String],
        role: &str,
    ) -> Result<HashMap<Decoded<Hex>, Key>, RepoError> {
        let mut keys = HashMap::new();
        for keyid in keyids {
            self.key(keyid, role).await?;
            let (_, tuf_key) = TufkeyKeySource::new(self.client.clone(), keyid)
                .tuf_key()
                .await?;
            let id = tuf_key
                .key_id()
                .map_err(RepoError::schema(format!("compute the key ID of {keyid}")))?;
            keys.insert(id, tuf_key);
        }
        Ok(keys)
    }

    /// Signs `role` (named `name` for people) with every key in `keyids`; `holder` is
    /// the metadata that lists the role's keys (root, or the delegating targets).
    pub async fn sign<T: Role + serde::Serialize>(
        &mut self,
        name: &str,
        role: T,
        holder: &KeyHolder,
        keyids: &[String],
    ) -> Result<SignedRole<T>, RepoError> {
        let version = role.version();
        let mut sources: Vec<Box<dyn KeySource>> = Vec::new();
        let mut signers = Vec::new();
        for keyid in keyids {
            let key = self.key(keyid, name).await?;
            let label = yubikey_serial(&key).and_then(|serial| self.labels.get(&serial));
            card_wait::ready_to_sign(
                &mut self.client,
                keyid,
                name,
                label.map(String::as_str),
                &mut self.pins,
            )
            .await?;
            sources.push(Box::new(TufkeyKeySource::new(self.client.clone(), keyid)));
            signers.push(format!("{keyid} ({})", location(&key)));
        }
        let signed = SignedRole::new(role, holder, &sources, &self.rng)
            .await
            .map_err(RepoError::tough(format!("sign {name} v{version}")))?;
        eprintln!("{name} v{version} signed by {}", signers.join(", "));
        Ok(signed)
    }
}

/// A key of `role` as tufkeyd holds it; a missing key names the role and the fix.
pub async fn lookup_key(
    client: &mut Client,
    keyid: &str,
    role: &str,
) -> Result<proto::Key, RepoError> {
    client
        .get_key(keyid)
        .await
        .map_err(|source| RepoError::UnknownKey {
            keyid: keyid.to_owned(),
            role: role.to_owned(),
            source: Box::new(source),
        })
}

/// The serial of the YubiKey holding `key`, if it is on one.
pub fn yubikey_serial(key: &proto::Key) -> Option<u32> {
    match &key.location {
        Some(proto::key::Location::Yubikey(at)) => Some(at.serial),
        _ => None,
    }
}
