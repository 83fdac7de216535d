//! YubiKeys as homes for TUF keys, through the PIV application over PC/SC.
//!
//! Keys are generated on the device (P-256, never exportable) in slot 9c (root by
//! default) or a retired slot 82..95, or imported there, next to a self-signed
//! certificate that records gun, role, policies and an imported key's origin
//! ([`certificate`]), so every host rediscovers them from the card alone. Signing verifies the cached PIN right before each
//! signature ([`pin`]); a wrong PIN is never retried. Cards come and go at any
//! time ([`presence`], watched by [`hotplug`]); a pulled card's keys stay listed
//! but unavailable.
//!
//! By job: [`key_backend`] is the `KeyBackend` implementation, [`import`] puts
//! existing keys onto cards (a moved software key; the same key on a spare card),
//! [`admin`] the device
//! operations (list, init, unlock, attest), [`background`] the hot-plug thread and
//! PIN expiry. All PC/SC work blocks, so it runs on blocking threads (one operation
//! at a time per card, [`device::Device::run`]) or the hot-plug thread, never on the
//! async runtime, and every operation has a deadline.

mod admin;
mod attest;
mod background;
mod certificate;
mod device;
mod error;
mod hotplug;
mod identity;
mod import;
mod key_backend;
mod mgmt;
mod pin;
mod presence;
mod slots;

pub use error::YubiKeyError;

use crate::blocking;
use device::{CardResult, Device};
use hotplug::Watcher;
use pin::PinCache;
use presence::Presence;
use std::sync::{Arc, Mutex};
use std::time::Duration;
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

/// The YubiKey backend: a handle on the shared [`Presence`] state, plus the
/// reader watcher until [`crate::keys::KeyBackend::maintain`] runs it.
pub struct YubiKeyBackend {
    presence: Arc<Presence>,
    watcher: Mutex<Option<Watcher>>,
}

impl YubiKeyBackend {
    /// Connects to pcscd and opens every YubiKey present, reading its tufkey keys.
    /// Fails (saying why) when pcscd is not reachable. Insertions and removals are
    /// watched once the server runs the backend's background work.
    pub async fn start(config: &YubiKeyConfig) -> Result<Arc<Self>, YubiKeyError> {
        let presence = Arc::new(Presence::new(PinCache::new(
            config.pin_cache,
            config.use_keyring,
        )));
        let first_scan = presence.clone();
        let watcher = blocking::run(move || {
            let mut watcher = Watcher::connect().map_err(YubiKeyError::NoPcscd)?;
            let changes = watcher
                .poll(Duration::ZERO)
                .map_err(YubiKeyError::NoPcscd)?;
            first_scan.apply(changes);
            Ok::<_, YubiKeyError>(watcher)
        })
        .await?;
        tracing::info!(devices = presence.present().len(), "YubiKey support on");
        Ok(Arc::new(YubiKeyBackend {
            presence,
            watcher: Mutex::new(Some(watcher)),
        }))
    }
}

/// Runs `operation` on the card on a blocking thread, within the deadline.
async fn on_device<T: Send + 'static>(
    device: Arc<Device>,
    operation: impl FnMut(&mut YubiKey) -> CardResult<T> + Send + 'static,
) -> Result<T, YubiKeyError> {
    let serial = device.serial;
    within_deadline(serial, move || device.run(operation)).await
}

/// [`on_device`] for a signature, with what earlier signatures on the same
/// connection learned about the card ([`device::KnownPinState`]).
async fn on_device_signing<T: Send + 'static>(
    device: Arc<Device>,
    operation: impl FnMut(&mut YubiKey, &mut device::KnownPinState) -> CardResult<T> + Send + 'static,
) -> Result<T, YubiKeyError> {
    let serial = device.serial;
    within_deadline(serial, move || device.run_signing(operation)).await
}

/// Runs a card operation on a blocking thread, failing after the deadline.
async fn within_deadline<T: Send + 'static>(
    serial: u32,
    run: impl FnOnce() -> Result<T, YubiKeyError> + Send + 'static,
) -> Result<T, YubiKeyError> {
    tokio::time::timeout(OPERATION_DEADLINE, blocking::run(run))
        .await
        .map_err(|_| YubiKeyError::Timeout {
            serial,
            seconds: OPERATION_DEADLINE.as_secs(),
        })?
}
