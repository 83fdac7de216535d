//! The PIV management key, needed to generate keys and write certificates.
//!
//! `tufkey device init` replaces the factory key with a random one kept
//! PIN-protected on the device itself (the "protected management key" of
//! `ykman piv access change-management-key --protect`), so the daemon can use it
//! whenever it has the PIN, on any host, and nobody ever types it. The key is TDES:
//! the `yubikey` 0.8 library cannot set AES management keys, even on firmware
//! (5.4+) that supports them.

use super::device::{CardError, CardResult};
use super::error::YubiKeyError;
use yubikey::{MgmKey, YubiKey};

/// What `device init` reports about the new key.
pub const ALGORITHM: &str = "TDES";
pub const STORAGE: &str = "pin-protected on the device";

/// Which management key opened the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authenticated {
    /// The random key `device init` stored PIN-protected on the device.
    Protected,
    /// The factory default key.
    FactoryDefault,
}

/// Authenticates with the PIN-protected key, else the factory key. The PIN must
/// have been verified in this session (the protected key is only readable then).
/// With `allow_default = false` a device still on the factory key is refused.
pub fn authenticate(
    yubikey: &mut YubiKey,
    serial: u32,
    allow_default: bool,
) -> CardResult<Authenticated> {
    if let Ok(protected) = MgmKey::get_protected(yubikey) {
        yubikey.authenticate(protected)?;
        return Ok(Authenticated::Protected);
    }
    match yubikey.authenticate(MgmKey::default()) {
        Ok(()) if allow_default => Ok(Authenticated::FactoryDefault),
        Ok(()) => Err(YubiKeyError::DefaultManagementKey { serial }.into()),
        Err(yubikey::Error::AuthenticationError) => {
            Err(YubiKeyError::UnknownManagementKey { serial }.into())
        }
        Err(error) => Err(CardError::Card(error)),
    }
}

/// Whether the device still opens with the factory management key. Needs no PIN,
/// and a wrong management key costs no tries (the card keeps no counter for it).
pub fn is_factory_default(yubikey: &mut YubiKey) -> bool {
    yubikey.authenticate(MgmKey::default()).is_ok()
}

/// Replaces the management key (already authenticated) with a random one stored
/// PIN-protected on the device, and checks it can be read back and used.
pub fn replace_with_random_protected(yubikey: &mut YubiKey, pin: &[u8]) -> CardResult<()> {
    let key = MgmKey::generate();
    key.set_protected(yubikey)?;
    yubikey.verify_pin(pin)?;
    let stored = MgmKey::get_protected(yubikey)?;
    yubikey.authenticate(stored)?;
    Ok(())
}
