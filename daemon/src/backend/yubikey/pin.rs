//! PINs the daemon holds: per device serial, in zeroising memory, for a limited
//! time (`--pin-cache-secs`), and optionally remembered in the OS keyring so a
//! restarted daemon finds them. Never logged, never in an error message.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

const KEYRING_SERVICE: &str = "tufkey";

/// A PIN as the card wants it: 6 to 8 bytes.
pub type Pin = Zeroizing<Vec<u8>>;

struct Cached {
    pin: Pin,
    expires: Instant,
}

/// The PIN cache.
pub struct PinCache {
    ttl: Duration,
    use_keyring: bool,
    pins: Mutex<HashMap<u32, Cached>>,
}

/// Checks a PIN or PUK typed by a user: 6 to 8 characters (PIV), no content shown.
pub fn validate(what: &'static str, pin: &[u8]) -> Result<()> {
    if (6..=8).contains(&pin.len()) {
        Ok(())
    } else {
        Err(Error::invalid(what, "must be 6 to 8 characters"))
    }
}

impl PinCache {
    pub fn new(ttl: Duration, use_keyring: bool) -> Self {
        PinCache {
            ttl,
            use_keyring,
            pins: Mutex::default(),
        }
    }

    /// How long a PIN stays in memory.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The PIN for `serial`: from memory if still fresh, else from the keyring.
    pub fn get(&self, serial: u32) -> Option<Pin> {
        let mut pins = self.lock();
        match pins.get(&serial) {
            Some(cached) if cached.expires > Instant::now() => return Some(cached.pin.clone()),
            Some(_) => {
                pins.remove(&serial);
            }
            None => {}
        }
        drop(pins);
        let remembered = self.keyring_entry(serial)?.get_password().ok()?;
        let pin = Zeroizing::new(Zeroizing::new(remembered).as_bytes().to_vec());
        self.store(serial, pin.clone());
        Some(pin)
    }

    /// Whether a fresh PIN is in memory (the keyring is not consulted).
    pub fn is_cached(&self, serial: u32) -> bool {
        self.lock()
            .get(&serial)
            .is_some_and(|cached| cached.expires > Instant::now())
    }

    /// Keeps a PIN that the device just accepted.
    pub fn store(&self, serial: u32, pin: Pin) {
        let expires = Instant::now() + self.ttl;
        self.lock().insert(serial, Cached { pin, expires });
    }

    /// Saves the PIN in the OS keyring too.
    pub fn remember(&self, serial: u32, pin: &[u8]) -> Result<()> {
        let entry = self.keyring_entry(serial).ok_or_else(|| {
            Error::Keyring("remembering a PIN needs the OS keyring, but tufkeyd runs with --no-keyring (or has no keyring)".into())
        })?;
        let text = Zeroizing::new(
            String::from_utf8(pin.to_vec())
                .map_err(|_| Error::invalid("pin", "must be text to be remembered"))?,
        );
        entry
            .set_password(&text)
            .map_err(|error| Error::Keyring(format!("saving the PIN of YubiKey {serial}: {error}")))
    }

    /// Drops the PIN from memory and the keyring (after a wrong PIN).
    pub fn forget(&self, serial: u32) {
        self.lock().remove(&serial);
        if let Some(entry) = self.keyring_entry(serial) {
            match entry.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => {}
                Err(error) => {
                    tracing::warn!(serial, %error, "could not remove a remembered PIN from the OS keyring")
                }
            }
        }
    }

    /// Drops PINs whose time is up; returns their serials.
    pub fn expire(&self) -> Vec<u32> {
        let now = Instant::now();
        let mut pins = self.lock();
        let expired: Vec<u32> = pins
            .iter()
            .filter(|(_, cached)| cached.expires <= now)
            .map(|(serial, _)| *serial)
            .collect();
        for serial in &expired {
            pins.remove(serial);
        }
        expired
    }

    fn keyring_entry(&self, serial: u32) -> Option<keyring::Entry> {
        if !self.use_keyring {
            return None;
        }
        keyring::Entry::new(KEYRING_SERVICE, &format!("yubikey-pin:{serial}"))
            .map_err(|error| tracing::warn!(%error, "OS keyring unavailable"))
            .ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Cached>> {
        self.pins.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_expire_after_the_ttl_and_can_be_forgotten() {
        let cache = PinCache::new(Duration::from_millis(50), false);
        cache.store(1, Zeroizing::new(b"123456".to_vec()));
        cache.store(2, Zeroizing::new(b"654321".to_vec()));
        assert_eq!(cache.get(1).unwrap().as_slice(), b"123456");
        cache.forget(2);
        assert!(cache.get(2).is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(!cache.is_cached(1));
        assert_eq!(cache.expire(), vec![1]);
        assert!(cache.get(1).is_none());
    }

    #[test]
    fn pins_must_have_piv_length_and_errors_do_not_show_them() {
        assert!(validate("pin", b"123456").is_ok());
        let error = validate("pin", b"12345").unwrap_err().to_string();
        assert!(!error.contains("12345"), "{error}");
        assert!(validate("pin", b"123456789").is_err());
    }

    #[test]
    fn remembering_without_a_keyring_names_the_reason() {
        let cache = PinCache::new(Duration::from_secs(1), false);
        let error = cache.remember(1, b"123456").unwrap_err().to_string();
        assert!(error.contains("--no-keyring"), "{error}");
    }
}
