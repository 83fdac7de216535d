//! PINs the daemon holds — per device serial, in zeroising memory, for a limited
//! time (`--pin-cache-secs`), optionally remembered in the OS keyring so a restarted
//! daemon finds them — and how they are verified on a card: never retried after a
//! refusal, never used from the cache with one try left, never sent to a card other
//! than the one that accepted it ([`identity`]), and a typed PIN tried at one try
//! left only when the caller says `force` (a wrong one would block the card).
//! Never logged, never in an error message.

use super::device::{card_error, CardResult, KnownPinState};
use super::error::YubiKeyError;
use super::identity::{self, CardIdentity};
use crate::keys::Pin;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

const KEYRING_SERVICE: &str = "tufkey";

struct Cached {
    pin: Pin,
    /// The card that accepted the PIN: the only one it is sent to.
    card: CardIdentity,
    expires: Instant,
}

/// The PIN cache.
pub struct PinCache {
    ttl: Duration,
    use_keyring: bool,
    pins: Mutex<HashMap<u32, Cached>>,
}

/// Checks a PIN or PUK typed by a user: 6 to 8 characters (PIV), no content shown.
pub fn validate(what: &'static str, pin: &[u8]) -> Result<(), YubiKeyError> {
    if (6..=8).contains(&pin.len()) {
        Ok(())
    } else {
        Err(YubiKeyError::BadPinLength { what })
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

    /// The PIN for `serial` and the card it belongs to: from memory if still
    /// fresh, else from the keyring (a PIN remembered without its card is not used).
    pub fn get(&self, serial: u32) -> Option<(Pin, CardIdentity)> {
        let mut pins = self.lock();
        match pins.get(&serial) {
            Some(cached) if cached.expires > Instant::now() => {
                return Some((cached.pin.clone(), cached.card))
            }
            Some(_) => {
                pins.remove(&serial);
            }
            None => {}
        }
        drop(pins);
        let remembered = self.keyring_entry(serial)?.get_password().ok()?;
        let card = self
            .keyring_card_entry(serial)?
            .get_password()
            .ok()
            .and_then(|text| CardIdentity::from_text(&text))?;
        let pin = Zeroizing::new(Zeroizing::new(remembered).as_bytes().to_vec());
        self.store(serial, pin.clone(), card);
        Some((pin, card))
    }

    /// Whether a fresh PIN is in memory (the keyring is not consulted).
    pub fn is_cached(&self, serial: u32) -> bool {
        self.lock()
            .get(&serial)
            .is_some_and(|cached| cached.expires > Instant::now())
    }

    /// Keeps a PIN that the device `card` just accepted.
    pub fn store(&self, serial: u32, pin: Pin, card: CardIdentity) {
        let expires = Instant::now() + self.ttl;
        self.lock().insert(serial, Cached { pin, card, expires });
    }

    /// Saves the PIN, and the card it belongs to, in the OS keyring too.
    pub fn remember(
        &self,
        serial: u32,
        pin: &[u8],
        card: CardIdentity,
    ) -> Result<(), YubiKeyError> {
        let entry = self.keyring_entry(serial).ok_or(YubiKeyError::NoKeyring)?;
        let card_entry = self
            .keyring_card_entry(serial)
            .ok_or(YubiKeyError::NoKeyring)?;
        let text =
            Zeroizing::new(String::from_utf8(pin.to_vec()).map_err(|_| YubiKeyError::PinNotText)?);
        let saving = |source| YubiKeyError::Keyring {
            action: "saving a YubiKey PIN",
            source,
        };
        card_entry.set_password(&card.to_text()).map_err(saving)?;
        entry.set_password(&text).map_err(saving)
    }

    /// Drops the PIN from memory and the keyring (after a wrong PIN).
    pub fn forget(&self, serial: u32) {
        self.lock().remove(&serial);
        let entries = [self.keyring_entry(serial), self.keyring_card_entry(serial)];
        for entry in entries.into_iter().flatten() {
            match entry.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => {}
                Err(error) => {
                    tracing::warn!(serial, %error, "could not remove a remembered PIN from the OS keyring")
                }
            }
        }
    }

    /// Drops the PIN from memory only (its card was removed); a PIN the user
    /// asked to remember in the OS keyring stays there.
    pub fn forget_in_memory(&self, serial: u32) {
        self.lock().remove(&serial);
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
        self.keyring(&format!("yubikey-pin:{serial}"))
    }

    /// Where the identity of the card a remembered PIN belongs to is kept.
    fn keyring_card_entry(&self, serial: u32) -> Option<keyring::Entry> {
        self.keyring(&format!("yubikey-card:{serial}"))
    }

    fn keyring(&self, user: &str) -> Option<keyring::Entry> {
        if !self.use_keyring {
            return None;
        }
        keyring::Entry::new(KEYRING_SERVICE, user)
            .map_err(|error| tracing::warn!(%error, "OS keyring unavailable"))
            .ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Cached>> {
        self.pins.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Verifies the cached PIN, unless there is none, the card in front of us is not
/// the one that accepted it (then nothing at all is sent), the PIN is blocked, or
/// one try is left (a cached PIN might be stale; the user should type it). A wrong
/// PIN clears the cache and is not retried. Returns the PIN for a second VERIFY.
pub fn verify_cached(
    pins: &PinCache,
    serial: u32,
    yubikey: &mut yubikey::YubiKey,
) -> CardResult<Pin> {
    verify_cached_known(pins, serial, yubikey, &mut KnownPinState::default())
}

/// [`verify_cached`] for signatures on one open connection: what `known` says was
/// learned on it is not asked of the card again. Once this connection read the
/// card's identity, that is not read again; once the card accepted the cached PIN
/// (which fills its counter), the tries are not read before the next VERIFY of the
/// same PIN. So back-to-back signatures cost VERIFY + SIGN, what the slot's PIN
/// policy needs. A refused PIN still clears the cache and is never retried, and
/// `known` is reset before every VERIFY and set again only when the card accepts.
/// (Another program could spend PIN tries on a shared card in between; the cached
/// PIN is one this card accepted, so sending it again resets the counter rather
/// than spending a try, unless the PIN was changed meanwhile.)
pub fn verify_cached_known(
    pins: &PinCache,
    serial: u32,
    yubikey: &mut yubikey::YubiKey,
    known: &mut KnownPinState,
) -> CardResult<Pin> {
    let (pin, bound) = pins
        .get(serial)
        .ok_or(YubiKeyError::PinRequired { serial })?;
    let card = match known.card {
        Some(card) => card,
        None => identity::read(yubikey)?,
    };
    known.card = Some(card);
    if card != bound {
        tracing::warn!(
            serial,
            ?bound,
            ?card,
            "a card reporting this serial is not the card its PIN was given for; PIN not sent"
        );
        return Err(YubiKeyError::NotTheSameCard { serial }.into());
    }
    if !known.pin_accepted {
        match tries_left(yubikey)? {
            Some(0) => return Err(YubiKeyError::PinBlocked { serial }.into()),
            Some(1) => return Err(YubiKeyError::LastPinTry { serial }.into()),
            _ => {}
        }
    }
    known.pin_accepted = false;
    verify_typed(pins, serial, yubikey, &pin)?;
    known.pin_accepted = true;
    Ok(pin)
}

/// Verifies a PIN a caller typed, once. At one try left it is tried only with
/// `force`: a wrong PIN then blocks the card, so a mistyped PIN (or a caller guessing
/// through the API) must not spend the last try by default.
pub fn verify_typed_guarded(
    pins: &PinCache,
    serial: u32,
    yubikey: &mut yubikey::YubiKey,
    pin: &[u8],
    force: bool,
) -> CardResult<()> {
    match tries_left(yubikey)? {
        Some(0) => return Err(YubiKeyError::PinBlocked { serial }.into()),
        Some(1) if !force => return Err(YubiKeyError::LastTypedPinTry { serial }.into()),
        _ => {}
    }
    verify_typed(pins, serial, yubikey, pin)
}

/// The PIN tries left, from an empty VERIFY that spends none; `None` when the PIN is
/// verified already in this card session (the counter is full then).
fn tries_left(yubikey: &mut yubikey::YubiKey) -> CardResult<Option<u8>> {
    match yubikey.verify_pin(&[]) {
        Ok(()) => Ok(None),
        Err(yubikey::Error::WrongPin { tries }) => Ok(Some(tries)),
        Err(yubikey::Error::PinLocked) => Ok(Some(0)),
        Err(error) => Err(error.into()),
    }
}

/// Verifies a PIN once; a refusal clears the cache and reports the tries left.
pub fn verify_typed(
    pins: &PinCache,
    serial: u32,
    yubikey: &mut yubikey::YubiKey,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_expire_after_the_ttl_and_can_be_forgotten() {
        let cache = PinCache::new(Duration::from_millis(50), false);
        let card = CardIdentity::Attested([1; 32]);
        cache.store(1, Zeroizing::new(b"123456".to_vec()), card);
        cache.store(2, Zeroizing::new(b"654321".to_vec()), card);
        cache.store(3, Zeroizing::new(b"111111".to_vec()), card);
        let (pin, bound) = cache.get(1).unwrap();
        assert_eq!((pin.as_slice(), bound), (&b"123456"[..], card));
        cache.forget(2);
        assert!(cache.get(2).is_none());
        cache.forget_in_memory(3);
        assert!(cache.get(3).is_none());
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
        let error = cache
            .remember(1, b"123456", CardIdentity::Unattested)
            .unwrap_err()
            .to_string();
        assert!(error.contains("--no-keyring"), "{error}");
    }
}
