//! The YubiKey backend's [`KeyBackend`] implementation: keys are discovered from
//! the cards ([`super::presence`]), generated on a card next to their metadata
//! certificate (imported ones too, [`super::import`]), and sign on the card after
//! the cached PIN is verified — on a spare card holding the same key when the
//! record's own card is not plugged in.

use super::certificate::{self, KeyMetadata};
use super::device::CardResult;
use super::error::YubiKeyError;
use super::pin::{self, PinCache};
use super::{mgmt, on_device, on_device_signing, slots, YubiKeyBackend};
use crate::blocking;
use crate::error::Result;
use crate::keys::{
    Devices, Gun, Import, KeyBackend, KeyRecord, NewKey, Origin, PinPolicy, PivSlot, Placement,
    Role, TouchPolicy, YubiKeyLocation, YubiKeyPlacement, YUBIKEY,
};
use crate::shutdown::Stopping;
use async_trait::async_trait;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::Signature;
use std::collections::BTreeSet;
use tokio::sync::broadcast;
use yubikey::certificate::Certificate;
use yubikey::piv::{self, AlgorithmId};
use yubikey::YubiKey;

#[async_trait]
impl KeyBackend for YubiKeyBackend {
    fn name(&self) -> &'static str {
        YUBIKEY
    }

    /// Every tufkey key seen on a card since the daemon started (pulled cards' too).
    async fn load(&self) -> Result<Vec<KeyRecord>> {
        Ok(self.presence.keys())
    }

    async fn find(&self, id: &str) -> Result<Option<KeyRecord>> {
        Ok(self.presence.key(id))
    }

    async fn generate(&self, new_key: &NewKey) -> Result<KeyRecord> {
        let placement = yubikey_placement(new_key.exportable, &new_key.placement)?;
        let device = self.presence.choose_device(placement.serial)?;
        let serial = device.serial;
        let presence = self.presence.clone();
        let new_key = new_key.clone();
        let record = on_device(device, move |yubikey| {
            generate_on_card(yubikey, serial, &presence.pins, &new_key, &placement)
        })
        .await?;
        self.presence.add_key(record.clone());
        Ok(record)
    }

    /// Signs on the record's own card, or on any present card holding the key.
    async fn sign_digest(&self, key: &KeyRecord, digest: &[u8; 32]) -> Result<Signature> {
        let at = self.presence.signing_copy(&key.keyid, location(key)?)?;
        let device = self.presence.device(at.serial)?;
        if at.touch_policy != TouchPolicy::Never {
            tracing::info!(serial = at.serial, slot = %at.slot, "touch YubiKey {} to sign", at.serial);
        }
        let presence = self.presence.clone();
        let digest_bytes = *digest;
        let der = on_device_signing(device, move |yubikey, known| {
            pin::verify_cached_known(&presence.pins, at.serial, yubikey, known)?;
            let slot = at.slot.into();
            let signature = match piv::sign_data(yubikey, &digest_bytes, AlgorithmId::EccP256, slot)
            {
                // Another program selected PIV between VERIFY and SIGN and the
                // card forgot the (correct) PIN: verify it once more.
                Err(yubikey::Error::AuthenticationError) => {
                    pin::verify_cached_known(&presence.pins, at.serial, yubikey, known)?;
                    piv::sign_data(yubikey, &digest_bytes, AlgorithmId::EccP256, slot)?
                }
                other => other?,
            };
            Ok(signature.to_vec())
        })
        .await?;
        let signature =
            Signature::from_der(&der).map_err(|source| YubiKeyError::MalformedSignature {
                serial: at.serial,
                source,
            })?;
        let signature = signature.normalize_s().unwrap_or(signature);
        p256::ecdsa::VerifyingKey::from(&key.public_key)
            .verify_prehash(digest, &signature)
            .map_err(|_| YubiKeyError::KeyReplaced {
                serial: at.serial,
                slot: at.slot,
                keyid: key.keyid.clone(),
            })?;
        Ok(signature)
    }

    /// Destroys the key on the record's own card (copies on other cards stay):
    /// a throwaway key generated in the slot overwrites the private key — the
    /// `yubikey` library has no DELETE KEY (firmware 5.7), and overwriting works
    /// on every firmware — then the certificate goes, so tufkey no longer sees a
    /// key there and the slot is free. The throwaway key's public half is never
    /// kept: nothing it could sign is trusted anywhere.
    async fn delete(&self, key: &KeyRecord) -> Result<()> {
        let at = location(key)?;
        let device = self.presence.device(at.serial)?;
        let presence = self.presence.clone();
        on_device(device, move |yubikey| {
            pin::verify_cached(&presence.pins, at.serial, yubikey)?;
            mgmt::authenticate(yubikey, at.serial, true)?;
            piv::generate(
                yubikey,
                at.slot.into(),
                AlgorithmId::EccP256,
                yubikey::PinPolicy::Default,
                yubikey::TouchPolicy::Never,
            )?;
            Ok(Certificate::delete(yubikey, at.slot.into())?)
        })
        .await?;
        self.presence.remove_key(&key.keyid, at.serial);
        Ok(())
    }

    /// Whether a card holding the key (the record's own or another) is present.
    fn is_available(&self, key: &KeyRecord) -> bool {
        key.location
            .yubikey()
            .is_some_and(|at| self.presence.signing_copy(&key.keyid, *at).is_ok())
    }

    fn changes(&self) -> Option<broadcast::Receiver<()>> {
        Some(self.presence.subscribe_changes())
    }

    /// Watches readers and expires PINs until the server stops.
    async fn maintain(&self, stopping: Stopping) {
        let watcher = self
            .watcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(watcher) = watcher else {
            return;
        };
        let presence = self.presence.clone();
        let hotplug = super::hotplug::spawn(watcher, stopping.clone(), move |changes| {
            presence.apply(changes)
        });
        let hotplug = match hotplug {
            Ok(thread) => Some(thread),
            Err(error) => {
                tracing::error!(error = %YubiKeyError::HotplugThread(error), "YubiKey insertions and removals will not be seen");
                None
            }
        };
        super::background::expire_pins(&self.presence, stopping).await;
        if let Some(thread) = hotplug {
            let joined = blocking::run(move || {
                // A panic on the hot-plug thread was logged when it happened.
                let _ = thread.join();
                Ok::<_, YubiKeyError>(())
            })
            .await;
            if let Err(error) = joined {
                tracing::warn!(%error, "waiting for the hot-plug thread");
            }
        }
    }

    fn import(&self) -> Option<&dyn Import> {
        Some(self)
    }

    fn devices(&self) -> Option<&dyn Devices> {
        Some(self)
    }
}

/// Where on a YubiKey a new key goes; refuses exportable keys and other
/// backends' placements.
pub(super) fn yubikey_placement(
    exportable: bool,
    placement: &Placement,
) -> Result<YubiKeyPlacement, YubiKeyError> {
    if exportable {
        return Err(YubiKeyError::NeverExportable);
    }
    match placement {
        Placement::YubiKey(placement) => Ok(*placement),
        Placement::Default => Ok(YubiKeyPlacement::default()),
        Placement::Software => Err(YubiKeyError::ForeignPlacement),
    }
}

/// The key's place on a YubiKey.
pub(super) fn location(key: &KeyRecord) -> Result<YubiKeyLocation, YubiKeyError> {
    key.location
        .yubikey()
        .copied()
        .ok_or_else(|| YubiKeyError::NotOnYubiKey {
            keyid: key.keyid.clone(),
        })
}

/// Generates the key and writes its certificate (blocking; on the card's thread).
fn generate_on_card(
    yubikey: &mut YubiKey,
    serial: u32,
    pins: &PinCache,
    new_key: &NewKey,
    placement: &YubiKeyPlacement,
) -> CardResult<KeyRecord> {
    let slot = free_slot(yubikey, serial, &new_key.role, placement.slot)?;
    let metadata = card_metadata(
        &new_key.gun,
        &new_key.role,
        placement,
        slot,
        Origin::GeneratedOnDevice,
    );
    let subject = certificate_subject(serial, &metadata)?;
    let pin = pin::verify_cached(pins, serial, yubikey)?;
    mgmt::authenticate(yubikey, serial, placement.allow_default_mgmt_key)?;
    let (pin_policy, touch_policy) = card_policies(&metadata);
    let spki = piv::generate(
        yubikey,
        slot.into(),
        AlgorithmId::EccP256,
        pin_policy,
        touch_policy,
    )?;
    let public_key = p256::PublicKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
        .map_err(|_| YubiKeyError::NotP256 { serial })?;
    let certificate = write_certificate(yubikey, slot, &metadata, (subject, spki), &pin, None)?;
    Ok(metadata.into_record(
        public_key,
        certificate::created_at(&certificate.cert),
        serial,
        slot,
    ))
}

/// The requested slot, or the default one for `role`, if free on this card.
pub(super) fn free_slot(
    yubikey: &mut YubiKey,
    serial: u32,
    role: &Role,
    requested: Option<PivSlot>,
) -> CardResult<PivSlot> {
    let occupied: BTreeSet<PivSlot> = PivSlot::all()
        .filter(|slot| certificate::read(yubikey, slot.byte()).is_some())
        .collect();
    Ok(slots::choose(serial, role, requested, &occupied)?)
}

/// What the certificate of a key going into `slot` records.
pub(super) fn card_metadata(
    gun: &Gun,
    role: &Role,
    placement: &YubiKeyPlacement,
    slot: PivSlot,
    origin: Origin,
) -> KeyMetadata {
    KeyMetadata {
        gun: gun.clone(),
        role: role.clone(),
        touch_policy: placement
            .touch_policy
            .unwrap_or_else(|| slots::touch_policy(role, slot)),
        pin_policy: slots::pin_policy(slot),
        origin,
    }
}

/// The metadata's policies, as the card takes them.
pub(super) fn card_policies(metadata: &KeyMetadata) -> (yubikey::PinPolicy, yubikey::TouchPolicy) {
    (
        match metadata.pin_policy {
            PinPolicy::Once => yubikey::PinPolicy::Once,
            PinPolicy::Always => yubikey::PinPolicy::Always,
        },
        match metadata.touch_policy {
            TouchPolicy::Never => yubikey::TouchPolicy::Never,
            TouchPolicy::Cached => yubikey::TouchPolicy::Cached,
            TouchPolicy::Always => yubikey::TouchPolicy::Always,
        },
    )
}

/// The certificate subject for `metadata`, made before the card is touched.
pub(super) fn certificate_subject(
    serial: u32,
    metadata: &KeyMetadata,
) -> Result<x509_cert::name::Name, YubiKeyError> {
    metadata
        .subject()
        .map_err(|reason| YubiKeyError::Metadata { serial, reason })
}

/// Writes the metadata certificate into `slot`, self-signed by the slot's key
/// (the card is authenticated already; the PIN is verified again right before).
/// Its validity starts at `since` (the key's creation, which an imported key keeps:
/// the card's copy reports it from there), else now.
pub(super) fn write_certificate(
    yubikey: &mut YubiKey,
    slot: PivSlot,
    metadata: &KeyMetadata,
    (subject, spki): (
        x509_cert::name::Name,
        x509_cert::spki::SubjectPublicKeyInfoOwned,
    ),
    pin: &[u8],
    since: Option<std::time::SystemTime>,
) -> CardResult<Certificate> {
    let serial = yubikey.serial().0;
    let start = since.unwrap_or_else(std::time::SystemTime::now);
    let validity = start
        .checked_add(certificate::VALIDITY)
        .ok_or(x509_cert::der::ErrorKind::DateTime.into())
        .and_then(|end| {
            Ok(x509_cert::time::Validity {
                not_before: x509_cert::time::Time::try_from(start)?,
                not_after: x509_cert::time::Time::try_from(end)?,
            })
        })
        .map_err(|source| YubiKeyError::Certificate {
            serial,
            what: "certificate validity",
            source,
        })?;
    // The certificate is signed by the slot's key: slot 9c wants the PIN right before.
    yubikey.verify_pin(pin)?;
    Ok(Certificate::generate_self_signed::<_, p256::NistP256>(
        yubikey,
        slot.into(),
        x509_cert::serial_number::SerialNumber::from(
            rand_core::RngCore::next_u32(&mut rand_core::OsRng) >> 1,
        ),
        validity,
        subject,
        spki,
        |builder| metadata.add_policy_extension(builder),
    )?)
}
