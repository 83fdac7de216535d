//! YubiKeys as homes for TUF keys, through the PIV application over PC/SC.
//!
//! Keys are generated on the device (P-256, never exportable) in slot 9c (root by
//! default) or a retired slot 82..95, next to a self-signed certificate that
//! records gun, role and policies ([`certificate`]), so every host rediscovers
//! them from the card alone. Signing verifies the cached PIN right before each
//! signature ([`pin`]); a wrong PIN is never retried. Cards come and go at any
//! time ([`hotplug`]); a pulled card's keys stay listed but unavailable.
//!
//! All PC/SC work blocks, so it runs on tokio's blocking threads (one operation
//! at a time per card, [`device::Device::run`]) or the hot-plug thread, never on
//! the async runtime, and every operation has a deadline.

mod attest;
mod certificate;
mod device;
mod hotplug;
mod mgmt;
mod pin;
mod slots;

pub use pin::Pin;
pub use slots::{name as slot_name, parse as parse_slot};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys::{
    BackendKind, KeyBackend, KeyManager, KeyRecord, NewKey, PinPolicy, TouchPolicy, YubiKeySlot,
};
use async_trait::async_trait;
use certificate::KeyMetadata;
use device::{card_error, CardError, CardResult, Device};
use hotplug::{ReaderChange, Watcher};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::Signature;
use pin::PinCache;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;
use tokio::sync::broadcast;
use yubikey::certificate::Certificate;
use yubikey::piv::{self, AlgorithmId};
use yubikey::YubiKey;

/// The longest any device operation may take (a touch waits up to 15 s).
const OPERATION_DEADLINE: Duration = Duration::from_secs(30);

/// How the YubiKey backend is set up.
#[derive(Clone, Debug)]
pub struct YubiKeyConfig {
    /// How long a PIN stays cached in memory.
    pub pin_cache: Duration,
    /// Whether `--remember` may keep PINs in the OS keyring (and the keyring is read).
    pub use_keyring: bool,
}

/// A card arriving or leaving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceEvent {
    pub inserted: bool,
    pub serial: u32,
    pub reader: String,
}

/// What `device list` shows about one card.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub serial: u32,
    pub firmware: String,
    pub reader: String,
    pub pin_tries_left: u8,
    pub pin_cached: bool,
    /// The tufkey keys on the card, by slot.
    pub keys: Vec<KeyRecord>,
}

/// PINs and PUKs for `device init`; `None` keeps the current one.
pub struct InitSecrets {
    pub pin: Pin,
    pub new_pin: Option<Pin>,
    pub puk: Option<Pin>,
    pub new_puk: Option<Pin>,
}

/// What `device init` changed.
#[derive(Clone, Debug)]
pub struct InitReport {
    pub management_key_algorithm: &'static str,
    pub management_key_storage: &'static str,
    pub pin_changed: bool,
    pub puk_changed: bool,
}

/// A verified attestation chain (DER, leaf first).
#[derive(Clone, Debug)]
pub struct Attestation {
    pub chain: Vec<Vec<u8>>,
    pub root_subject: String,
}

/// The YubiKey backend: the cards present, the tufkey keys seen on them, the PINs.
pub struct YubiKeyBackend {
    devices: RwLock<BTreeMap<u32, Arc<Device>>>,
    keys: RwLock<BTreeMap<String, KeyRecord>>,
    pins: Arc<PinCache>,
    events: broadcast::Sender<DeviceEvent>,
}

impl YubiKeyBackend {
    /// Connects to pcscd, opens every YubiKey present, reads its tufkey keys and
    /// starts watching for insertions and removals. Fails (with the reason) when
    /// pcscd is not reachable.
    pub async fn start(config: YubiKeyConfig) -> Result<Arc<Self>, String> {
        let backend = Arc::new(YubiKeyBackend {
            devices: RwLock::default(),
            keys: RwLock::default(),
            pins: Arc::new(PinCache::new(config.pin_cache, config.use_keyring)),
            events: broadcast::channel(64).0,
        });
        let first_scan = backend.clone();
        let watcher = tokio::task::spawn_blocking(move || {
            let mut watcher =
                Watcher::connect().map_err(|error| format!("pcscd is not reachable ({error})"))?;
            let changes = watcher
                .poll(Duration::ZERO)
                .map_err(|error| format!("pcscd does not answer ({error})"))?;
            first_scan.apply(changes);
            Ok::<_, String>(watcher)
        })
        .await
        .map_err(|error| format!("starting the YubiKey backend: {error}"))??;
        let weak = Arc::downgrade(&backend);
        hotplug::spawn(watcher, move |changes| match weak.upgrade() {
            Some(backend) => {
                backend.apply(changes);
                true
            }
            None => false,
        })
        .map_err(|error| format!("starting the hot-plug thread: {error}"))?;
        backend.spawn_pin_expiry(Arc::downgrade(&backend), config.pin_cache);
        Ok(backend)
    }

    /// Starts the backend as the daemon's configuration says; `Err` says why
    /// YubiKey support is off (logged: the daemon runs on without it).
    pub async fn start_from_config(config: &Config) -> Result<Arc<Self>, String> {
        if !config.yubikey {
            tracing::info!("YubiKey support off (--no-yubikey)");
            return Err("tufkeyd was started with --no-yubikey".into());
        }
        match Self::start(YubiKeyConfig {
            pin_cache: config.pin_cache,
            use_keyring: config.use_keyring,
        })
        .await
        {
            Ok(backend) => {
                tracing::info!(devices = backend.present().len(), "YubiKey support on");
                Ok(backend)
            }
            Err(reason) => {
                tracing::warn!(%reason, "YubiKey support off: start pcscd and restart tufkeyd to use YubiKeys");
                Err(format!("{reason}; start pcscd and restart tufkeyd"))
            }
        }
    }

    /// Keeps `keys` in step with the cards: keys on a newly inserted card appear.
    pub fn keep_registry_in_sync(&self, keys: Arc<KeyManager>) {
        let mut events = self.events.subscribe();
        tokio::spawn(async move {
            while let Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) = events.recv().await {
                if let Err(error) = keys.reload_backend(BackendKind::YubiKey).await {
                    tracing::warn!(%error, "refreshing YubiKey keys");
                }
            }
        });
    }

    /// How long PINs stay cached.
    pub fn pin_cache_ttl(&self) -> Duration {
        self.pins.ttl()
    }

    /// Insertions and removals from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DeviceEvent> {
        self.events.subscribe()
    }

    /// The cards present now: (serial, reader).
    pub fn present(&self) -> Vec<(u32, String)> {
        self.read_devices()
            .values()
            .map(|device| (device.serial, device.reader.clone()))
            .collect()
    }

    /// Every card present, with its PIN tries and tufkey keys.
    pub async fn list_devices(&self) -> Result<Vec<DeviceInfo>> {
        let devices: Vec<Arc<Device>> = self.read_devices().values().cloned().collect();
        let mut infos = Vec::with_capacity(devices.len());
        for device in devices {
            let tries = match self
                .on_device(device.clone(), |yubikey| Ok(yubikey.get_pin_retries()?))
                .await
            {
                Ok(tries) => tries,
                // Pulled while listing: no longer present.
                Err(Error::DeviceAbsent { .. }) => continue,
                Err(error) => return Err(error),
            };
            let mut keys: Vec<KeyRecord> = self
                .read_keys()
                .values()
                .filter(|key| key.yubikey.is_some_and(|at| at.serial == device.serial))
                .cloned()
                .collect();
            keys.sort_by_key(|key| key.yubikey.map(|at| at.slot));
            infos.push(DeviceInfo {
                serial: device.serial,
                firmware: device.firmware.clone(),
                reader: device.reader.clone(),
                pin_tries_left: tries,
                pin_cached: self.pins.is_cached(device.serial),
                keys,
            });
        }
        Ok(infos)
    }

    /// Verifies `pin` on the card and caches it (and keeps it in the keyring with
    /// `remember`). Returns the PIN tries left. A wrong PIN clears the cache.
    pub async fn unlock(&self, serial: u32, pin: Pin, remember: bool) -> Result<u8> {
        pin::validate("pin", &pin)?;
        let device = self.device(serial)?;
        let pins = self.pins.clone();
        let typed = pin.clone();
        let tries = self
            .on_device(device, move |yubikey| {
                verify_typed_pin(&pins, serial, yubikey, &typed)?;
                Ok(yubikey.get_pin_retries()?)
            })
            .await?;
        if remember {
            self.pins.remember(serial, &pin)?;
        }
        self.pins.store(serial, pin);
        tracing::info!(serial, remember, "YubiKey unlocked");
        Ok(tries)
    }

    /// Replaces the management key with a random PIN-protected one; changes the
    /// PUK and PIN when asked.
    pub async fn init_device(&self, serial: u32, secrets: InitSecrets) -> Result<InitReport> {
        pin::validate("pin", &secrets.pin)?;
        for (what, value) in [("new_pin", &secrets.new_pin), ("new_puk", &secrets.new_puk)] {
            if let Some(value) = value {
                pin::validate(what, value)?;
            }
        }
        if secrets.new_puk.is_some() && secrets.puk.is_none() {
            return Err(Error::invalid(
                "puk",
                "the current PUK is needed to set a new one",
            ));
        }
        let device = self.device(serial)?;
        let pins = self.pins.clone();
        let current = secrets
            .new_pin
            .clone()
            .unwrap_or_else(|| secrets.pin.clone());
        let report = self
            .on_device(device, move |yubikey| {
                verify_typed_pin(&pins, serial, yubikey, &secrets.pin)?;
                mgmt::authenticate(yubikey, serial, true)?;
                mgmt::replace_with_random_protected(yubikey, &secrets.pin)?;
                if let (Some(puk), Some(new_puk)) = (&secrets.puk, &secrets.new_puk) {
                    yubikey.change_puk(puk, new_puk).map_err(|error| match error {
                        yubikey::Error::WrongPin { tries } => CardError::Daemon(Error::Device {
                            serial,
                            reason: format!("wrong PUK: {tries} tries left; nothing else was changed after the management key"),
                        }),
                        error => CardError::Card(error),
                    })?;
                }
                if let Some(new_pin) = &secrets.new_pin {
                    yubikey.change_pin(&secrets.pin, new_pin)?;
                }
                Ok(InitReport {
                    management_key_algorithm: mgmt::ALGORITHM,
                    management_key_storage: mgmt::STORAGE,
                    pin_changed: secrets.new_pin.is_some(),
                    puk_changed: secrets.new_puk.is_some(),
                })
            })
            .await?;
        self.pins.store(serial, current);
        tracing::info!(
            serial,
            pin_changed = report.pin_changed,
            puk_changed = report.puk_changed,
            "YubiKey initialised: random management key, PIN-protected on the device"
        );
        Ok(report)
    }

    /// The key's attestation chain, verified up to the pinned Yubico root.
    pub async fn attest(&self, key: &KeyRecord) -> Result<Attestation> {
        let at = placement(key)?;
        let device = self.device(at.serial)?;
        let chain = self
            .on_device(device, move |yubikey| {
                attest::fetch_chain(yubikey, at.serial, at.slot)
            })
            .await?;
        let root_subject = attest::verify_chain(&chain, &attest::yubico_roots(), &key.public_key)
            .map_err(|reason| Error::Device {
            serial: at.serial,
            reason: format!(
                "the attestation of slot {} does not verify: {reason}",
                slots::name(at.slot)
            ),
        })?;
        Ok(Attestation {
            chain,
            root_subject,
        })
    }

    /// Handles reader changes from the hot-plug watcher (blocking).
    fn apply(&self, changes: Vec<ReaderChange>) {
        for change in changes {
            match change {
                ReaderChange::CardPresent(reader) => self.card_inserted(&reader),
                ReaderChange::CardRemoved(reader) => self.card_removed(&reader),
            }
        }
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
            known.retain(|_, key| key.yubikey.is_none_or(|at| at.serial != serial));
            known.extend(keys.into_iter().map(|key| (key.keyid.clone(), key)));
        }
        let _ = self.events.send(DeviceEvent {
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
            let _ = self.events.send(DeviceEvent {
                inserted: false,
                serial,
                reader: reader.to_owned(),
            });
        }
    }

    /// Drops expired PINs and logs those cards out, until the backend is gone.
    fn spawn_pin_expiry(&self, backend: Weak<Self>, ttl: Duration) {
        let period = (ttl / 4).clamp(Duration::from_millis(250), Duration::from_secs(30));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            loop {
                ticker.tick().await;
                let Some(backend) = backend.upgrade() else {
                    break;
                };
                for serial in backend.pins.expire() {
                    tracing::info!(serial, "YubiKey PIN cache expired");
                    if let Ok(device) = backend.device(serial) {
                        let _ = tokio::task::spawn_blocking(move || device.log_out()).await;
                    }
                }
            }
        });
    }

    /// The card `serial`, or the only card present when `serial` is `None`.
    fn choose_device(&self, serial: Option<u32>) -> Result<Arc<Device>> {
        if let Some(serial) = serial {
            return self.device(serial);
        }
        let devices = self.read_devices();
        let mut present = devices.values();
        match (present.next(), present.next()) {
            (Some(only), None) => Ok(only.clone()),
            (None, _) => Err(Error::DeviceChoice(
                "no YubiKey is plugged in: insert one (`tufkey device list` shows what tufkeyd sees)".into(),
            )),
            (Some(_), Some(_)) => Err(Error::DeviceChoice(format!(
                "several YubiKeys are plugged in ({}): choose one with --serial",
                devices.keys().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    fn device(&self, serial: u32) -> Result<Arc<Device>> {
        self.read_devices()
            .get(&serial)
            .cloned()
            .ok_or(Error::DeviceAbsent { serial })
    }

    /// Runs `operation` on the card on a blocking thread, within the deadline.
    async fn on_device<T: Send + 'static>(
        &self,
        device: Arc<Device>,
        operation: impl FnMut(&mut YubiKey) -> CardResult<T> + Send + 'static,
    ) -> Result<T> {
        let serial = device.serial;
        tokio::time::timeout(
            OPERATION_DEADLINE,
            run_blocking(move || device.run(operation)),
        )
        .await
        .map_err(|_| Error::Device {
            serial,
            reason: format!(
                "no answer within {} s; pull and re-insert it",
                OPERATION_DEADLINE.as_secs()
            ),
        })?
    }

    fn read_devices(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u32, Arc<Device>>> {
        self.devices.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_devices(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u32, Arc<Device>>> {
        self.devices.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, KeyRecord>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_keys(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, KeyRecord>> {
        self.keys.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl KeyBackend for YubiKeyBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::YubiKey
    }

    /// Every tufkey key seen on a card since the daemon started (pulled cards' too).
    async fn load(&self) -> Result<Vec<KeyRecord>> {
        Ok(self.read_keys().values().cloned().collect())
    }

    async fn generate(&self, new_key: &NewKey) -> Result<KeyRecord> {
        if new_key.exportable {
            return Err(Error::invalid(
                "exportable",
                "YubiKey keys never leave the device: generate without --exportable",
            ));
        }
        let placement = &new_key.placement;
        let device = self.choose_device(placement.serial)?;
        let serial = device.serial;
        let pins = self.pins.clone();
        let new_key = new_key.clone();
        let record = self
            .on_device(device, move |yubikey| {
                generate_on_card(yubikey, serial, &pins, &new_key)
            })
            .await?;
        self.write_keys()
            .insert(record.keyid.clone(), record.clone());
        Ok(record)
    }

    async fn sign_digest(&self, key: &KeyRecord, digest: &[u8; 32]) -> Result<Signature> {
        let at = placement(key)?;
        let device = self.device(at.serial)?;
        if at.touch_policy != TouchPolicy::Never {
            tracing::info!(serial = at.serial, slot = %slots::name(at.slot), "touch YubiKey {} to sign", at.serial);
        }
        let pins = self.pins.clone();
        let digest_bytes = *digest;
        let der = self
            .on_device(device, move |yubikey| {
                verify_cached_pin(&pins, at.serial, yubikey)?;
                let slot = slots::slot_id(at.slot);
                let signature =
                    match piv::sign_data(yubikey, &digest_bytes, AlgorithmId::EccP256, slot) {
                        // Another program selected PIV between VERIFY and SIGN and the
                        // card forgot the (correct) PIN: verify it once more.
                        Err(yubikey::Error::AuthenticationError) => {
                            verify_cached_pin(&pins, at.serial, yubikey)?;
                            piv::sign_data(yubikey, &digest_bytes, AlgorithmId::EccP256, slot)?
                        }
                        other => other?,
                    };
                Ok(signature.to_vec())
            })
            .await?;
        let signature = Signature::from_der(&der).map_err(|error| Error::Device {
            serial: at.serial,
            reason: format!("returned a malformed signature ({error})"),
        })?;
        let signature = signature.normalize_s().unwrap_or(signature);
        p256::ecdsa::VerifyingKey::from(&key.public_key)
            .verify_prehash(digest, &signature)
            .map_err(|_| Error::Device {
                serial: at.serial,
                reason: format!(
                    "the key in slot {} no longer matches key {}: it was replaced outside tufkey",
                    slots::name(at.slot),
                    key.keyid
                ),
            })?;
        Ok(signature)
    }

    /// Removes the key's certificate, so tufkey no longer sees the key and the
    /// slot is free. The `yubikey` library cannot erase the private key itself; the
    /// next key generated in the slot overwrites it.
    async fn delete(&self, key: &KeyRecord) -> Result<()> {
        let at = placement(key)?;
        let device = self.device(at.serial)?;
        let pins = self.pins.clone();
        self.on_device(device, move |yubikey| {
            verify_cached_pin(&pins, at.serial, yubikey)?;
            mgmt::authenticate(yubikey, at.serial, true)?;
            Ok(Certificate::delete(yubikey, slots::slot_id(at.slot))?)
        })
        .await?;
        self.write_keys().remove(&key.keyid);
        Ok(())
    }

    fn is_available(&self, key: &KeyRecord) -> bool {
        key.yubikey
            .is_some_and(|at| self.read_devices().contains_key(&at.serial))
    }
}

/// Generates the key and writes its certificate (blocking; on the card's thread).
fn generate_on_card(
    yubikey: &mut YubiKey,
    serial: u32,
    pins: &PinCache,
    new_key: &NewKey,
) -> CardResult<KeyRecord> {
    let placement = &new_key.placement;
    let occupied: BTreeSet<u8> = slots::all()
        .filter(|slot| certificate::read(yubikey, *slot).is_some())
        .collect();
    let slot = slots::choose(serial, &new_key.role, placement.slot, &occupied)?;
    let slot_id = slots::slot_id(slot);
    let metadata = KeyMetadata {
        gun: new_key.gun.clone(),
        role: new_key.role.clone(),
        touch_policy: placement.touch_policy,
        pin_policy: slots::pin_policy(slot),
    };
    let subject = metadata.subject().map_err(|reason| Error::Device {
        serial,
        reason: format!("cannot describe the key in a certificate: {reason}"),
    })?;
    let pin = verify_cached_pin(pins, serial, yubikey)?;
    mgmt::authenticate(yubikey, serial, placement.allow_default_mgmt_key)?;
    let spki = piv::generate(
        yubikey,
        slot_id,
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
        .map_err(|_| Error::Device {
            serial,
            reason: "generated a key that is not a P-256 point".into(),
        })?;
    // The certificate is signed by the new key: slot 9c wants the PIN right before.
    yubikey.verify_pin(&pin)?;
    let certificate = Certificate::generate_self_signed::<_, p256::NistP256>(
        yubikey,
        slot_id,
        x509_cert::serial_number::SerialNumber::from(
            rand_core::RngCore::next_u32(&mut rand_core::OsRng) >> 1,
        ),
        x509_cert::time::Validity::from_now(certificate::VALIDITY)
            .map_err(|error| Error::Crypto(error.to_string()))?,
        subject,
        spki,
        |_| Ok(()),
    )?;
    Ok(KeyRecord::on_yubikey(
        public_key,
        metadata.gun,
        metadata.role,
        certificate::created_at(&certificate.cert),
        YubiKeySlot {
            serial,
            slot,
            touch_policy: metadata.touch_policy,
            pin_policy: metadata.pin_policy,
        },
    ))
}

/// Opens whatever YubiKey is in `reader`.
fn open_in_reader(reader: &str) -> yubikey::Result<YubiKey> {
    let mut context = yubikey::reader::Context::open()?;
    let found = context
        .iter()?
        .find(|candidate| candidate.name() == reader)
        .ok_or(yubikey::Error::NotFound)?;
    found.open()
}

/// Reads every tufkey key from the card's certificates (no PIN needed).
fn discover_keys(yubikey: &mut YubiKey, serial: u32) -> Vec<KeyRecord> {
    let mut keys = Vec::new();
    for slot in slots::all() {
        let Some(certificate) = certificate::read(yubikey, slot) else {
            continue;
        };
        let metadata = match KeyMetadata::from_subject(&certificate.tbs_certificate.subject) {
            None => continue,
            Some(Ok(metadata)) => metadata,
            Some(Err(reason)) => {
                tracing::warn!(serial, slot = %slots::name(slot), %reason, "skipping a damaged tufkey certificate");
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
            tracing::warn!(serial, slot = %slots::name(slot), "skipping a tufkey certificate without a P-256 key");
            continue;
        };
        keys.push(KeyRecord::on_yubikey(
            public_key,
            metadata.gun,
            metadata.role,
            certificate::created_at(&certificate),
            YubiKeySlot {
                serial,
                slot,
                touch_policy: metadata.touch_policy,
                pin_policy: metadata.pin_policy,
            },
        ));
    }
    keys
}

/// Verifies the cached PIN, unless there is none, the PIN is blocked, or one try
/// is left (a cached PIN might be stale; the user should type it). A wrong PIN
/// clears the cache and is not retried. Returns the PIN for a second VERIFY.
fn verify_cached_pin(pins: &PinCache, serial: u32, yubikey: &mut YubiKey) -> CardResult<Pin> {
    let pin = pins.get(serial).ok_or(Error::PinRequired { serial })?;
    // An empty VERIFY answers the tries left without spending one (or success when
    // the PIN is verified already, i.e. the counter is full).
    match yubikey.verify_pin(&[]) {
        Ok(()) => {}
        Err(yubikey::Error::WrongPin { tries: 0 }) => {
            return Err(Error::PinBlocked { serial }.into())
        }
        Err(yubikey::Error::WrongPin { tries: 1 }) => {
            return Err(Error::LastPinTry { serial }.into())
        }
        Err(yubikey::Error::WrongPin { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    verify_typed_pin(pins, serial, yubikey, &pin)?;
    Ok(pin)
}

/// Verifies a PIN once; a refusal clears the cache and reports the tries left.
fn verify_typed_pin(
    pins: &PinCache,
    serial: u32,
    yubikey: &mut YubiKey,
    pin: &[u8],
) -> CardResult<()> {
    match yubikey.verify_pin(pin) {
        Ok(()) => Ok(()),
        Err(error @ (yubikey::Error::WrongPin { .. } | yubikey::Error::PinLocked)) => {
            pins.forget(serial);
            let error = card_error(serial, error);
            tracing::warn!(%error, "PIN refused; cached PIN cleared");
            Err(error.into())
        }
        Err(error) => Err(error.into()),
    }
}

fn placement(key: &KeyRecord) -> Result<YubiKeySlot> {
    key.yubikey
        .ok_or_else(|| Error::invalid("keyid", format!("key {} is not on a YubiKey", key.keyid)))
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| Error::Crypto(format!("device task failed: {error}")))?
}
