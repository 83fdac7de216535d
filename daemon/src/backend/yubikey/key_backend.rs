//! The YubiKey backend's [`KeyBackend`] implementation: keys are discovered from
//! the cards ([`super::presence`]), generated on a card next to their metadata
//! certificate, and sign on the card after the cached PIN is verified.

use super::certificate::{self, KeyMetadata};
use super::device::CardResult;
use super::error::YubiKeyError;
use super::pin::{self, PinCache};
use super::{mgmt, on_device, slots, YubiKeyBackend};
use crate::blocking;
use crate::error::Result;
use crate::keys::{
    Devices, KeyBackend, KeyRecord, NewKey, PinPolicy, PivSlot, Placement, TouchPolicy,
    YubiKeyLocation, YubiKeyPlacement, YUBIKEY,
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
        if new_key.exportable {
            return Err(YubiKeyError::NeverExportable.into());
        }
        let placement = match &new_key.placement {
            Placement::YubiKey(placement) => *placement,
            Placement::Default => YubiKeyPlacement::default(),
            Placement::Software => return Err(YubiKeyError::ForeignPlacement.into()),
        };
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

    async fn sign_digest(&self, key: &KeyRecord, digest: &[u8; 32]) -> Result<Signature> {
        let at = location(key)?;
        let device = self.presence.device(at.serial)?;
        if at.touch_policy != TouchPolicy::Never {
            tracing::info!(serial = at.serial, slot = %at.slot, "touch YubiKey {} to sign", at.serial);
        }
        let presence = self.presence.clone();
        let digest_bytes = *digest;
        let der = on_device(device, move |yubikey| {
            pin::verify_cached(&presence.pins, at.serial, yubikey)?;
            let slot = at.slot.into();
            let signature = match piv::sign_data(yubikey, &digest_bytes, AlgorithmId::EccP256, slot)
            {
                // Another program selected PIV between VERIFY and SIGN and the
                // card forgot the (correct) PIN: verify it once more.
                Err(yubikey::Error::AuthenticationError) => {
                    pin::verify_cached(&presence.pins, at.serial, yubikey)?;
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

    /// Removes the key's certificate, so tufkey no longer sees the key and the
    /// slot is free. The `yubikey` library cannot erase the private key itself; the
    /// next key generated in the slot overwrites it.
    async fn delete(&self, key: &KeyRecord) -> Result<()> {
        let at = location(key)?;
        let device = self.presence.device(at.serial)?;
        let presence = self.presence.clone();
        on_device(device, move |yubikey| {
            pin::verify_cached(&presence.pins, at.serial, yubikey)?;
            mgmt::authenticate(yubikey, at.serial, true)?;
            Ok(Certificate::delete(yubikey, at.slot.into())?)
        })
        .await?;
        self.presence.remove_key(&key.keyid);
        Ok(())
    }

    fn is_available(&self, key: &KeyRecord) -> bool {
        key.location
            .yubikey()
            .is_some_and(|at| self.presence.is_present(at.serial))
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

    fn devices(&self) -> Option<&dyn Devices> {
        Some(self)
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
    let occupied: BTreeSet<PivSlot> = PivSlot::all()
        .filter(|slot| certificate::read(yubikey, slot.byte()).is_some())
        .collect();
    let slot = slots::choose(serial, &new_key.role, placement.slot, &occupied)?;
    let metadata = KeyMetadata {
        gun: new_key.gun.clone(),
        role: new_key.role.clone(),
        touch_policy: placement.touch_policy,
        pin_policy: slots::pin_policy(slot),
    };
    let subject = metadata
        .subject()
        .map_err(|reason| YubiKeyError::Metadata { serial, reason })?;
    let pin = pin::verify_cached(pins, serial, yubikey)?;
    mgmt::authenticate(yubikey, serial, placement.allow_default_mgmt_key)?;
    let spki = piv::generate(
        yubikey,
        slot.into(),
        AlgorithmId::EccP256,
        match metadata.pin_policy {
            PinPolicy::Once => yubikey::PinPolicy::Once,
            PinPolicy::Always => yubikey::PinPolicy::Always,
        },
        match metadata.touch_policy {
            TouchPolicy::Never => yubikey::TouchPolicy::Never,
            TouchPolicy::Cached => yubikey::TouchPolicy::Cached,
            TouchPolicy::Always => yubikey::TouchPolicy::Always,
        },
    )?;
    let public_key = p256::PublicKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
        .map_err(|_| YubiKeyError::NotP256 { serial })?;
    let validity =
        x509_cert::time::Validity::from_now(certificate::VALIDITY).map_err(|source| {
            YubiKeyError::Certificate {
                serial,
                what: "certificate validity",
                source,
            }
        })?;
    // The certificate is signed by the new key: slot 9c wants the PIN right before.
    yubikey.verify_pin(&pin)?;
    let certificate = Certificate::generate_self_signed::<_, p256::NistP256>(
        yubikey,
        slot.into(),
        x509_cert::serial_number::SerialNumber::from(
            rand_core::RngCore::next_u32(&mut rand_core::OsRng) >> 1,
        ),
        validity,
        subject,
        spki,
        |builder| metadata.add_policy_extension(builder),
    )?;
    Ok(KeyRecord::on_yubikey(
        public_key,
        metadata.gun,
        metadata.role,
        certificate::created_at(&certificate.cert),
        YubiKeyLocation {
            serial,
            slot,
            touch_policy: metadata.touch_policy,
            pin_policy: metadata.pin_policy,
        },
    ))
}
