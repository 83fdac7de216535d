//! The [`Devices`] capability: backends whose keys live on removable devices
//! (YubiKeys today) let callers list, watch, initialise and unlock them, and attest
//! keys. The types here are what the service layer sees; no card handles, no PINs
//! outside zeroising buffers.

use super::record::KeyRecord;
use crate::error::Result;
use async_trait::async_trait;
use tokio::sync::broadcast;
use zeroize::Zeroizing;

/// A PIN or PUK as typed: zeroised when dropped, never printed.
pub type Pin = Zeroizing<Vec<u8>>;

/// A device arriving or leaving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceEvent {
    pub inserted: bool,
    pub serial: u32,
    pub reader: String,
}

/// What `device list` shows about one device.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub serial: u32,
    pub firmware: String,
    pub reader: String,
    pub pin_tries_left: u8,
    pub pin_cached: bool,
    /// Whether the device still opens with the factory management key.
    pub default_management_key: bool,
    /// The tufkey keys on the device, by slot.
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

/// What a PIN unlock left behind.
#[derive(Clone, Copy, Debug)]
pub struct PinUnlocked {
    pub tries_left: u8,
    /// How long the daemon keeps the PIN in memory.
    pub cache_seconds: u64,
}

/// A verified attestation chain (DER, leaf first).
#[derive(Clone, Debug)]
pub struct Attestation {
    pub chain: Vec<Vec<u8>>,
    pub root_subject: String,
}

/// Capability: keys on removable devices.
#[async_trait]
pub trait Devices: Send + Sync {
    /// The devices present now: (serial, reader).
    fn present(&self) -> Vec<(u32, String)>;

    /// Insertions and removals from now on.
    fn subscribe(&self) -> broadcast::Receiver<DeviceEvent>;

    /// Every device present, with its PIN tries and tufkey keys.
    async fn list(&self) -> Result<Vec<DeviceInfo>>;

    /// Verifies `pin` on device `serial` and caches it (and keeps it in the OS keyring
    /// with `remember`). A wrong PIN is reported with the tries left, never retried.
    /// With one try left the PIN is refused untried unless `force` (a wrong one would
    /// block the device).
    async fn unlock(
        &self,
        serial: u32,
        pin: Pin,
        remember: bool,
        force: bool,
    ) -> Result<PinUnlocked>;

    /// Makes the device ready for tufkey (e.g. a random management key).
    async fn init(&self, serial: u32, secrets: InitSecrets) -> Result<InitReport>;

    /// The key's attestation chain, verified.
    async fn attest(&self, key: &KeyRecord) -> Result<Attestation>;
}
