//! The YubiKey backend's [`Devices`] capability: list cards, watch them come and
//! go, verify and cache PINs, initialise a card for tufkey, attest keys.

use super::device::{CardError, Device};
use super::error::YubiKeyError;
use super::key_backend::location;
use super::{attest, identity, mgmt, on_device, pin, YubiKeyBackend};
use crate::error::Result;
use crate::keys::{
    Attestation, DeviceEvent, DeviceInfo, Devices, InitReport, InitSecrets, KeyRecord, Origin, Pin,
    PinUnlocked,
};
use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::broadcast;

#[async_trait]
impl Devices for YubiKeyBackend {
    fn present(&self) -> Vec<(u32, String)> {
        self.presence.present()
    }

    fn subscribe(&self) -> broadcast::Receiver<DeviceEvent> {
        self.presence.subscribe_events()
    }

    async fn list(&self) -> Result<Vec<DeviceInfo>> {
        let mut infos = Vec::new();
        for device in self.presence.devices() {
            let probed = on_device(device.clone(), |yubikey| {
                let tries = yubikey.get_pin_retries()?;
                Ok((tries, mgmt::is_factory_default(yubikey)))
            })
            .await;
            let (tries, default_management_key) = match probed {
                Ok(probed) => probed,
                // Pulled while listing: no longer present.
                Err(YubiKeyError::Absent { .. }) => continue,
                Err(error) => return Err(error.into()),
            };
            infos.push(describe(&device, tries, default_management_key, self));
        }
        Ok(infos)
    }

    async fn unlock(
        &self,
        serial: u32,
        pin: Pin,
        remember: bool,
        force: bool,
    ) -> Result<PinUnlocked> {
        pin::validate("pin", &pin)?;
        let device = self.presence.device(serial)?;
        let presence = self.presence.clone();
        let typed = pin.clone();
        let (tries_left, card) = on_device(device, move |yubikey| {
            // The card the PIN goes to is the one it is bound to.
            let card = identity::read(yubikey)?;
            pin::verify_typed_guarded(&presence.pins, serial, yubikey, &typed, force)?;
            Ok((yubikey.get_pin_retries()?, card))
        })
        .await?;
        warn_if_unattested(serial, card);
        if remember {
            self.presence.pins.remember(serial, &pin, card)?;
        }
        self.presence.pins.store(serial, pin, card);
        tracing::info!(serial, remember, force, "YubiKey unlocked");
        Ok(PinUnlocked {
            tries_left,
            cache_seconds: self.presence.pins.ttl().as_secs(),
        })
    }

    /// Replaces the management key with a random PIN-protected one; changes the
    /// PUK and PIN when asked.
    async fn init(&self, serial: u32, secrets: InitSecrets) -> Result<InitReport> {
        pin::validate("pin", &secrets.pin)?;
        for (what, value) in [("new_pin", &secrets.new_pin), ("new_puk", &secrets.new_puk)] {
            if let Some(value) = value {
                pin::validate(what, value)?;
            }
        }
        if secrets.new_puk.is_some() && secrets.puk.is_none() {
            return Err(crate::error::Error::invalid(
                "puk",
                "the current PUK is needed to set a new one",
            ));
        }
        let device = self.presence.device(serial)?;
        let presence = self.presence.clone();
        let current = secrets
            .new_pin
            .clone()
            .unwrap_or_else(|| secrets.pin.clone());
        let (report, card) = on_device(device, move |yubikey| {
            let card = identity::read(yubikey)?;
            // No `force` here: at one try left, `tufkey unlock --force` comes first.
            pin::verify_typed_guarded(&presence.pins, serial, yubikey, &secrets.pin, false)?;
            mgmt::authenticate(yubikey, serial, true)?;
            mgmt::replace_with_random_protected(yubikey, &secrets.pin)?;
            if let (Some(puk), Some(new_puk)) = (&secrets.puk, &secrets.new_puk) {
                yubikey
                    .change_puk(puk, new_puk)
                    .map_err(|error| match error {
                        yubikey::Error::WrongPin { tries } => {
                            CardError::Decided(YubiKeyError::WrongPuk { serial, tries })
                        }
                        error => CardError::Card(error),
                    })?;
            }
            if let Some(new_pin) = &secrets.new_pin {
                yubikey.change_pin(&secrets.pin, new_pin)?;
            }
            let report = InitReport {
                management_key_algorithm: mgmt::ALGORITHM,
                management_key_storage: mgmt::STORAGE,
                pin_changed: secrets.new_pin.is_some(),
                puk_changed: secrets.new_puk.is_some(),
            };
            Ok((report, card))
        })
        .await?;
        self.presence.pins.store(serial, current, card);
        tracing::info!(
            serial,
            pin_changed = report.pin_changed,
            puk_changed = report.puk_changed,
            "YubiKey initialised: random management key, PIN-protected on the device"
        );
        Ok(report)
    }

    /// The key's attestation chain, verified up to the pinned Yubico root. An
    /// imported key has none: attestation proves generation on the device.
    async fn attest(&self, key: &KeyRecord) -> Result<Attestation> {
        let at = location(key)?;
        if key.origin == Origin::Imported {
            return Err(YubiKeyError::NotAttestable {
                serial: at.serial,
                keyid: key.keyid.clone(),
            }
            .into());
        }
        let device = self.presence.device(at.serial)?;
        let chain = on_device(device, move |yubikey| {
            attest::fetch_chain(yubikey, at.serial, at.slot)
        })
        .await?;
        let expected = attest::Expected {
            serial: at.serial,
            pin_policy: at.pin_policy,
            touch_policy: at.touch_policy,
        };
        let root_subject =
            attest::verify_chain(&chain, &attest::yubico(), &key.public_key, &expected).map_err(
                |reason| YubiKeyError::Attestation {
                    serial: at.serial,
                    slot: at.slot,
                    reason,
                },
            )?;
        Ok(Attestation {
            chain,
            root_subject,
        })
    }
}

/// A card without an attestation certificate cannot be told from a look-alike.
fn warn_if_unattested(serial: u32, card: identity::CardIdentity) {
    if card == identity::CardIdentity::Unattested {
        tracing::warn!(
            serial,
            "YubiKey has no attestation certificate (slot f9): tufkey cannot tell it from a look-alike reporting the same serial"
        );
    }
}

fn describe(
    device: &Arc<Device>,
    tries: u8,
    default_management_key: bool,
    backend: &YubiKeyBackend,
) -> DeviceInfo {
    DeviceInfo {
        serial: device.serial,
        firmware: device.firmware.clone(),
        reader: device.reader.clone(),
        pin_tries_left: tries,
        pin_cached: backend.presence.pins.is_cached(device.serial),
        default_management_key,
        keys: backend.presence.keys_on(device.serial),
    }
}
