//! Which cards are present and which tufkey keys they hold: the state the hot-plug
//! thread updates and every operation reads. A card that arrives is usable at once
//! and its keys are discovered from its slot certificates; a card that leaves keeps
//! its keys listed but unavailable. Each change is announced to device watchers
//! ([`DeviceEvent`]) and to the key registry (a notice on `changes`).
//!
//! One key may sit on several cards (imported onto a primary and a spare), so the
//! keys are kept per key ID and card: the registry sees one record per key ID (a
//! present card's copy first), and a key signs on any present card that holds it.

use super::certificate::{self, KeyMetadata};
use super::device::{open_in_reader, Device};
use super::error::YubiKeyError;
use super::hotplug::ReaderChange;
use super::pin::PinCache;
use crate::keys::{DeviceEvent, KeyRecord, PivSlot, YubiKeyLocation};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::broadcast;
use yubikey::YubiKey;

/// Each card's copy of one key, by serial.
type Copies = BTreeMap<u32, KeyRecord>;

/// The cards present, the tufkey keys seen on them, the PINs, and who to tell.
pub struct Presence {
    devices: RwLock<BTreeMap<u32, Arc<Device>>>,
    /// By TUF key ID, then card serial.
    keys: RwLock<BTreeMap<String, Copies>>,
    pub pins: PinCache,
    events: broadcast::Sender<DeviceEvent>,
    changes: broadcast::Sender<()>,
}

impl Presence {
    pub fn new(pins: PinCache) -> Self {
        Presence {
            devices: RwLock::default(),
            keys: RwLock::default(),
            pins,
            events: broadcast::channel(64).0,
            changes: broadcast::channel(16).0,
        }
    }

    /// Handles reader changes from the hot-plug watcher (blocking).
    pub fn apply(&self, changes: Vec<ReaderChange>) {
        for change in changes {
            match change {
                ReaderChange::CardPresent(reader) => self.card_inserted(&reader),
                ReaderChange::CardRemoved(reader) => self.card_removed(&reader),
            }
        }
    }

    /// Insertions and removals from now on.
    pub fn subscribe_events(&self) -> broadcast::Receiver<DeviceEvent> {
        self.events.subscribe()
    }

    /// A notice whenever the set of keys changed.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<()> {
        self.changes.subscribe()
    }

    /// The cards present now: (serial, reader).
    pub fn present(&self) -> Vec<(u32, String)> {
        self.read_devices()
            .values()
            .map(|device| (device.serial, device.reader.clone()))
            .collect()
    }

    /// Every present card.
    pub fn devices(&self) -> Vec<Arc<Device>> {
        self.read_devices().values().cloned().collect()
    }

    /// The card `serial`, if present.
    pub fn device(&self, serial: u32) -> Result<Arc<Device>, YubiKeyError> {
        self.read_devices()
            .get(&serial)
            .cloned()
            .ok_or(YubiKeyError::Absent { serial })
    }

    /// The card `serial`, or the only card present when `serial` is `None`.
    pub fn choose_device(&self, serial: Option<u32>) -> Result<Arc<Device>, YubiKeyError> {
        if let Some(serial) = serial {
            return self.device(serial);
        }
        let devices = self.read_devices();
        let mut present = devices.values();
        match (present.next(), present.next()) {
            (Some(only), None) => Ok(only.clone()),
            (None, _) => Err(YubiKeyError::NoneInserted),
            (Some(_), Some(_)) => Err(YubiKeyError::SeveralInserted {
                serials: devices
                    .keys()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Every tufkey key seen on a card since the daemon started (pulled cards'
    /// too), one record per key ID: a present card's copy if there is one.
    pub fn keys(&self) -> Vec<KeyRecord> {
        let present = self.present_serials();
        self.read_keys()
            .values()
            .filter_map(|copies| preferred_copy(copies, &present))
            .collect()
    }

    /// A known key by TUF or Notary key ID (a present card's copy if there is one).
    pub fn key(&self, id: &str) -> Option<KeyRecord> {
        let present = self.present_serials();
        let keys = self.read_keys();
        let copies = keys.get(id).or_else(|| {
            keys.values()
                .find(|copies| copies.values().any(|key| key.notary_keyid == id))
        })?;
        preferred_copy(copies, &present)
    }

    /// The keys on card `serial`, by slot.
    pub fn keys_on(&self, serial: u32) -> Vec<KeyRecord> {
        let mut keys: Vec<KeyRecord> = self
            .read_keys()
            .values()
            .filter_map(|copies| copies.get(&serial))
            .cloned()
            .collect();
        keys.sort_by_key(|key| key.location.yubikey().map(|at| at.slot));
        keys
    }

    /// Where on card `serial` the key `keyid` sits, if that card holds a copy.
    pub fn copy_on(&self, keyid: &str, serial: u32) -> Option<YubiKeyLocation> {
        self.read_keys()
            .get(keyid)
            .and_then(|copies| copies.get(&serial))
            .and_then(|key| key.location.yubikey().copied())
    }

    /// The copy of key `keyid` to sign with: the one at `own` (the record's own
    /// card) if that card is present, else one on any present card that holds the
    /// key. When none is present the error names every card that holds it.
    pub fn signing_copy(
        &self,
        keyid: &str,
        own: YubiKeyLocation,
    ) -> Result<YubiKeyLocation, YubiKeyError> {
        let present = self.present_serials();
        let holders: Vec<YubiKeyLocation> = self
            .read_keys()
            .get(keyid)
            .map(|copies| {
                copies
                    .values()
                    .filter_map(|key| key.location.yubikey().copied())
                    .collect()
            })
            .unwrap_or_default();
        pick_signing_copy(keyid, own, &holders, &present)
    }

    /// Records a key this daemon just put on a card (generated or imported).
    pub fn add_key(&self, record: KeyRecord) {
        let Some(serial) = record.location.yubikey().map(|at| at.serial) else {
            return;
        };
        self.write_keys()
            .entry(record.keyid.clone())
            .or_default()
            .insert(serial, record);
    }

    /// Forgets the copy of key `keyid` on card `serial`, which this daemon just
    /// deleted; copies on other cards stay.
    pub fn remove_key(&self, keyid: &str, serial: u32) {
        let mut keys = self.write_keys();
        if let Some(copies) = keys.get_mut(keyid) {
            copies.remove(&serial);
            if copies.is_empty() {
                keys.remove(keyid);
            }
        }
    }

    fn present_serials(&self) -> BTreeSet<u32> {
        self.read_devices().keys().copied().collect()
    }

    /// Makes a card usable at once, then reads its tufkey keys over a second
    /// connection (21 certificate reads take a while), so signing with keys already
    /// known does not wait for the scan.
    fn card_inserted(&self, reader: &str) {
        let (device, mut scanner) = match open_in_reader(reader).and_then(|device| {
            let scanner = open_in_reader(reader)?;
            Ok((device, scanner))
        }) {
            Ok(connections) => connections,
            Err(error) => {
                tracing::debug!(reader, %error, "card is not a usable YubiKey; ignoring it");
                return;
            }
        };
        let device = Arc::new(Device::new(device));
        let serial = device.serial;
        if let Some(other) = self.write_devices().insert(serial, device.clone()) {
            if other.reader != reader {
                tracing::warn!(
                    serial,
                    reader,
                    other_reader = %other.reader,
                    "two cards report the same serial: at most one is genuine; the new one is used, and a cached PIN only ever goes to the card that accepted it"
                );
            }
        }
        let keys = discover_keys(&mut scanner, serial);
        // Leave the card as it is: a reset would log the daemon's connection out.
        let _ = scanner.disconnect(pcsc::Disposition::LeaveCard);
        tracing::info!(serial, reader, firmware = %device.firmware, keys = keys.len(), "YubiKey inserted");
        {
            let mut known = self.write_keys();
            known.retain(|_, copies| {
                copies.remove(&serial);
                !copies.is_empty()
            });
            for key in keys {
                known
                    .entry(key.keyid.clone())
                    .or_default()
                    .insert(serial, key);
            }
        }
        self.announce(DeviceEvent {
            inserted: true,
            serial,
            reader: reader.to_owned(),
        });
    }

    fn card_removed(&self, reader: &str) {
        let removed: Vec<u32> = self
            .read_devices()
            .values()
            .filter(|device| device.reader == reader)
            .map(|device| device.serial)
            .collect();
        for serial in removed {
            self.write_devices().remove(&serial);
            // Whatever comes back into a reader must be unlocked again: the
            // card that returns may not be the one the PIN was typed for.
            self.pins.forget_in_memory(serial);
            tracing::info!(
                serial,
                reader,
                "YubiKey removed: its keys are unavailable until it is back"
            );
            self.announce(DeviceEvent {
                inserted: false,
                serial,
                reader: reader.to_owned(),
            });
        }
    }

    fn announce(&self, event: DeviceEvent) {
        // Nobody listening is fine: both channels only inform.
        let _ = self.events.send(event);
        let _ = self.changes.send(());
    }

    fn read_devices(&self) -> RwLockReadGuard<'_, BTreeMap<u32, Arc<Device>>> {
        self.devices.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_devices(&self) -> RwLockWriteGuard<'_, BTreeMap<u32, Arc<Device>>> {
        self.devices.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read_keys(&self) -> RwLockReadGuard<'_, BTreeMap<String, Copies>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_keys(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Copies>> {
        self.keys.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// `own` if its card is present, else the first of `holders` whose card is.
fn pick_signing_copy(
    keyid: &str,
    own: YubiKeyLocation,
    holders: &[YubiKeyLocation],
    present: &BTreeSet<u32>,
) -> Result<YubiKeyLocation, YubiKeyError> {
    if let Some(at) = std::iter::once(&own)
        .chain(holders)
        .find(|at| present.contains(&at.serial))
    {
        return Ok(*at);
    }
    let serials: BTreeSet<u32> = holders
        .iter()
        .map(|at| at.serial)
        .chain([own.serial])
        .collect();
    Err(match serials.len() {
        1 => YubiKeyError::Absent { serial: own.serial },
        _ => YubiKeyError::NoCopyPresent {
            keyid: keyid.to_owned(),
            serials: serials
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        },
    })
}

/// The copy the registry is shown: the first on a present card, else the first.
fn preferred_copy(copies: &Copies, present: &BTreeSet<u32>) -> Option<KeyRecord> {
    copies
        .iter()
        .find(|(serial, _)| present.contains(serial))
        .or_else(|| copies.iter().next())
        .map(|(_, key)| key.clone())
}

/// Reads every tufkey key from the card's certificates (no PIN needed).
fn discover_keys(yubikey: &mut YubiKey, serial: u32) -> Vec<KeyRecord> {
    let mut keys = Vec::new();
    for slot in PivSlot::all() {
        let Some(certificate) = certificate::read(yubikey, slot.byte()) else {
            continue;
        };
        let metadata = match KeyMetadata::from_certificate(&certificate) {
            None => continue,
            Some(Ok(metadata)) => metadata,
            Some(Err(reason)) => {
                tracing::warn!(serial, %slot, %reason, "skipping a damaged tufkey certificate");
                continue;
            }
        };
        let Ok(public_key) = p256::PublicKey::from_sec1_bytes(
            certificate
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes(),
        ) else {
            tracing::warn!(serial, %slot, "skipping a tufkey certificate without a P-256 key");
            continue;
        };
        keys.push(metadata.into_record(
            public_key,
            certificate::created_at(&certificate),
            serial,
            slot,
        ));
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Origin, PinPolicy, TouchPolicy};
    use std::time::Duration;

    fn at(serial: u32, slot: &str) -> YubiKeyLocation {
        YubiKeyLocation {
            serial,
            slot: slot.parse().unwrap(),
            touch_policy: TouchPolicy::Never,
            pin_policy: PinPolicy::Once,
        }
    }

    /// The same key's copy in `slot` of card `serial`.
    fn copy(secret: &p256::SecretKey, serial: u32, slot: &str) -> KeyRecord {
        KeyRecord::on_yubikey(
            secret.public_key(),
            "example.com/app".parse().unwrap(),
            "root".parse().unwrap(),
            "2026-01-01T00:00:00Z".into(),
            at(serial, slot),
        )
        .imported()
    }

    fn serials(list: &[u32]) -> BTreeSet<u32> {
        list.iter().copied().collect()
    }

    #[test]
    fn the_own_card_signs_when_present_else_any_present_card_holding_the_key() {
        let own = at(1001, "9c");
        let holders = [at(1001, "9c"), at(1002, "82"), at(1003, "9c")];
        let pick = |present: &[u32]| pick_signing_copy("k", own, &holders, &serials(present));
        assert_eq!(pick(&[1001, 1002, 1003]).unwrap(), own);
        // The spare's own slot, not the record's.
        assert_eq!(pick(&[1002, 1004]).unwrap(), at(1002, "82"));
        assert_eq!(pick(&[1003]).unwrap(), at(1003, "9c"));
        let none = pick(&[1004]).unwrap_err();
        assert!(
            none.to_string()
                .contains("key k is on YubiKeys 1001, 1002, 1003, none of them present"),
            "{none}"
        );
        // A key on one card only: the usual "insert YubiKey N".
        let single = pick_signing_copy("k", own, &[own], &serials(&[1002])).unwrap_err();
        assert_eq!(
            single.to_string(),
            "YubiKey 1001 is not present: insert YubiKey 1001"
        );
    }

    #[test]
    fn copies_on_several_cards_are_one_key_for_the_registry_and_one_per_card_in_listings() {
        let presence = Presence::new(PinCache::new(Duration::from_secs(60), false));
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let (first, spare) = (copy(&secret, 1002, "9c"), copy(&secret, 1001, "83"));
        presence.add_key(first.clone());
        presence.add_key(spare.clone());
        let other = copy(&p256::SecretKey::random(&mut rand_core::OsRng), 1001, "9c");
        presence.add_key(other.clone());

        let keys = presence.keys();
        assert_eq!(keys.len(), 2, "{keys:?}");
        // No card present: the lowest serial's copy stands for the key.
        assert!(keys.contains(&spare) && keys.contains(&other), "{keys:?}");
        assert_eq!(presence.key(&first.notary_keyid), Some(spare.clone()));
        assert_eq!(presence.keys_on(1001), [other.clone(), spare.clone()]);
        assert_eq!(presence.keys_on(1002), std::slice::from_ref(&first));
        assert_eq!(
            presence.copy_on(&first.keyid, 1002),
            first.location.yubikey().copied()
        );
        assert_eq!(presence.copy_on(&first.keyid, 1003), None);
        assert_eq!(keys[0].origin, Origin::Imported);
        assert_eq!(
            presence
                .signing_copy(&first.keyid, *first.location.yubikey().unwrap())
                .unwrap_err()
                .to_string(),
            format!(
                "key {} is on YubiKeys 1001, 1002, none of them present: insert one of them",
                first.keyid
            )
        );

        // Deleting one card's copy leaves the other.
        presence.remove_key(&first.keyid, 1001);
        assert_eq!(presence.key(&first.keyid), Some(first.clone()));
        assert_eq!(presence.keys_on(1001), std::slice::from_ref(&other));
        presence.remove_key(&first.keyid, 1002);
        assert_eq!(presence.key(&first.keyid), None);
        assert_eq!(presence.keys(), [other]);
    }

    #[test]
    fn the_registry_is_shown_a_present_cards_copy_first() {
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let copies: Copies = [1001, 1002, 1003]
            .into_iter()
            .map(|serial| (serial, copy(&secret, serial, "9c")))
            .collect();
        let shown = |present: &[u32]| {
            preferred_copy(&copies, &serials(present))
                .unwrap()
                .location
                .yubikey()
                .unwrap()
                .serial
        };
        assert_eq!(shown(&[]), 1001);
        assert_eq!(shown(&[1003]), 1003);
        assert_eq!(shown(&[1002, 1003]), 1002);
        assert!(preferred_copy(&Copies::new(), &serials(&[1001])).is_none());
    }
}
