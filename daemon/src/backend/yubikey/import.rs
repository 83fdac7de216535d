//! The YubiKey backend's [`Import`] capability: an existing P-256 key (a software
//! key being moved, a backup) goes into a PIV slot with the card's ECC import,
//! next to the same metadata certificate a generated key gets, marked imported
//! ([`super::certificate`]) so every host reports its origin. Importing the same
//! key onto a second card makes a spare: the backend signs on whichever card
//! holding it is present ([`super::presence`]).

use super::attest;
use super::certificate;
use super::device::{CardError, CardResult};
use super::error::YubiKeyError;
use super::key_backend::{
    card_metadata, card_policies, certificate_subject, free_slot, write_certificate,
    yubikey_placement,
};
use super::pin::{self, PinCache};
use super::{mgmt, on_device, YubiKeyBackend};
use crate::error::Result;
use crate::keys::{Import, ImportedKey, KeyRecord, Origin, PivSlot, YubiKeyPlacement};
use crate::tuf::key_json;
use async_trait::async_trait;
use yubikey::certificate::Certificate;
use yubikey::piv::{self, AlgorithmId};
use yubikey::YubiKey;
use zeroize::Zeroizing;

#[async_trait]
impl Import for YubiKeyBackend {
    /// Puts the key on the card `key.placement` names (or the only one present),
    /// in the requested slot or the role's default. Never exportable; a card that
    /// already holds the key is refused.
    async fn import(&self, key: ImportedKey) -> Result<KeyRecord> {
        let placement = yubikey_placement(key.exportable, &key.placement)?;
        let device = self.presence.choose_device(placement.serial)?;
        let serial = device.serial;
        let keyid = key_json::tuf_keyid(&key.secret.public_key());
        if let Some(at) = self.presence.copy_on(&keyid, serial) {
            return Err(YubiKeyError::AlreadyOnCard {
                serial,
                slot: at.slot,
                keyid,
            }
            .into());
        }
        let presence = self.presence.clone();
        let record = on_device(device, move |yubikey| {
            import_onto_card(yubikey, serial, &presence.pins, &key, &placement)
        })
        .await?;
        self.presence.add_key(record.clone());
        Ok(record)
    }
}

/// Imports the key and writes its certificate (blocking; on the card's thread).
fn import_onto_card(
    yubikey: &mut YubiKey,
    serial: u32,
    pins: &PinCache,
    key: &ImportedKey,
    placement: &YubiKeyPlacement,
) -> CardResult<KeyRecord> {
    let slot = free_slot(yubikey, serial, &key.role, placement.slot)?;
    let metadata = card_metadata(&key.gun, &key.role, placement, slot, Origin::Imported);
    let subject = certificate_subject(serial, &metadata)?;
    let public_key = key.secret.public_key();
    let spki =
        x509_cert::spki::SubjectPublicKeyInfoOwned::from_key(public_key).map_err(|error| {
            YubiKeyError::Metadata {
                serial,
                reason: format!("encoding the public key: {error}"),
            }
        })?;
    let pin = pin::verify_cached(pins, serial, yubikey)?;
    mgmt::authenticate(yubikey, serial, placement.allow_default_mgmt_key)?;
    let (pin_policy, touch_policy) = card_policies(&metadata);
    let scalar = Zeroizing::new(key.secret.to_bytes());
    piv::import_ecc_key(
        yubikey,
        slot.into(),
        AlgorithmId::EccP256,
        &scalar[..],
        touch_policy,
        pin_policy,
    )
    .map_err(|error| refused_import(serial, error))?;
    let created = key
        .created_at
        .as_deref()
        .and_then(|at| {
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(std::time::SystemTime::from);
    let certificate = write_certificate(yubikey, slot, &metadata, (subject, spki), &pin, created)?;
    confirm_imported(yubikey, serial, slot, &public_key, &certificate)?;
    Ok(metadata.into_record(
        public_key,
        certificate::created_at(&certificate.cert),
        serial,
        slot,
    ))
}

/// The card's answer to a well-formed import of a valid key in a valid slot,
/// when it is not "done" or "authenticate first", means it cannot import.
fn refused_import(serial: u32, error: yubikey::Error) -> CardError {
    match error {
        yubikey::Error::GenericError => YubiKeyError::NotSupported {
            serial,
            what: "importing a P-256 key",
        }
        .into(),
        other => other.into(),
    }
}

/// Checks that the card signed the slot's certificate with the imported key (the
/// certificate carries the imported public key), so the slot really holds it. If
/// not, the certificate goes again, so no host mistakes the slot for the key.
fn confirm_imported(
    yubikey: &mut YubiKey,
    serial: u32,
    slot: PivSlot,
    public_key: &p256::PublicKey,
    certificate: &Certificate,
) -> CardResult<()> {
    let Err(reason) = attest::verify_signed_by(&certificate.cert, &certificate.cert) else {
        return Ok(());
    };
    Certificate::delete(yubikey, slot.into())?;
    Err(YubiKeyError::ImportUnverified {
        serial,
        slot,
        keyid: key_json::tuf_keyid(public_key),
        reason,
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_that_refuses_the_import_says_it_cannot_import_and_other_errors_stay_the_cards() {
        let CardError::Decided(refused) = refused_import(7, yubikey::Error::GenericError) else {
            panic!("a refused import is the daemon's own error");
        };
        assert_eq!(
            refused.to_string(),
            "importing a P-256 key is not supported by this device (YubiKey 7)"
        );
        assert!(matches!(
            refused_import(7, yubikey::Error::AuthenticationError),
            CardError::Card(yubikey::Error::AuthenticationError)
        ));
    }
}
