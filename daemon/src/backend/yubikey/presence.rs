//! Which cards are present and which tufkey keys they hold: the state the hot-plug
//! thread updates and every operation reads. A card that arrives is usable at once
//! and its keys are discovered from its slot certificates; a card that leaves keeps
//! its keys listed but unavailable. Each change is announced to device watchers
//! ([`DeviceEvent`]) and to the key registry (a notice on `changes`).

use super::certificate::{self, KeyMetadata};
use super::device::{open_in_reader, Device};
use super::error::YubiKeyError;
use super::hotplug::ReaderChange;
use super::pin::PinCache;
use crate::keys::{DeviceEvent, KeyRecord, PivSlot, YubiKeyLocation};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::broadcast;
use yubikey::YubiKey;

/// The cards present, the tufkey keys seen on them, the PINs, and who to tell.
pub struct Presence {
    devices: RwLock<BTreeMap<u32, Arc<Device>>>,
    keys: RwLock<BTreeMap<String, KeyRecord>>,
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

    /// Whether the card `serial` is present.
    pub fn is_present(&self, serial: u32) -> bool {
        self.read_devices().contains_key(&serial)
    }

    /// Every tufkey key seen on a card since the daemon started (pulled cards' too).
    pub fn keys(&self) -> Vec<KeyRecord> {
        self.read_keys().values().cloned().collect()
    }

    /// A known key by TUF or Notary key ID.
    pub fn key(&self, id: &str) -> Option<KeyRecord> {
        let keys = self.read_keys();
        keys.get(id)
            .or_else(|| keys.values().find(|key| key.notary_keyid == id))
            .cloned()
    }

    /// The keys on card `serial`, by slot.
    pub fn keys_on(&self, serial: u32) -> Vec<KeyRecord> {
        let mut keys: Vec<KeyRecord> = self
            .read_keys()
            .values()
            .filter(|key| key.location.yubikey().is_some_and(|at| at.serial == serial))
            .cloned()
            .collect();
        keys.sort_by_key(|key| key.location.yubikey().map(|at| at.slot));
        keys
    }

    /// Records a key this daemon just generated.
    pub fn add_key(&self, record: KeyRecord) {
        self.write_keys().insert(record.keyid.clone(), record);
    }

    /// Forgets a key this daemon just deleted.
    pub fn remove_key(&self, keyid: &str) {
        self.write_keys().remove(keyid);
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
        self.write_devices().insert(serial, device.clone());
        let keys = discover_keys(&mut scanner, serial);
        // Leave the card as it is: a reset would log the daemon's connection out.
        let _ = scanner.disconnect(pcsc::Disposition::LeaveCard);
        tracing::info!(serial, reader, firmware = %device.firmware, keys = keys.len(), "YubiKey inserted");
        {
            let mut known = self.write_keys();
            known.retain(|_, key| key.location.yubikey().is_none_or(|at| at.serial != serial));
            known.extend(keys.into_iter().map(|key| (key.keyid.clone(), key)));
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

    fn read_keys(&self) -> RwLockReadGuard<'_, BTreeMap<String, KeyRecord>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_keys(&self) -> RwLockWriteGuard<'_, BTreeMap<String, KeyRecord>> {
        self.keys.write().unwrap_or_else(|p| p.into_inner())
    }
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
        keys.push(KeyRecord::on_yubikey(
            public_key,
            metadata.gun,
            metadata.role,
            certificate::created_at(&certificate),
            YubiKeyLocation {
                serial,
                slot,
                touch_policy: metadata.touch_policy,
                pin_policy: metadata.pin_policy,
            },
        ));
    }
    keys
}
