//! Which physical card answers, beyond the serial it reports: a look-alike (a
//! smart card, or a program behind a virtual reader) can report any serial, and
//! a cached PIN sent to it is a PIN given away. A card is known by its attestation
//! certificate (slot f9), which Yubico writes at the factory and which differs
//! between any two YubiKeys. The cached PIN is bound to that certificate when the
//! card accepts it ([`super::pin::PinCache::store`]) and is sent only to a card
//! that shows the same certificate ([`super::pin::verify_cached`]).
//!
//! The certificate is public (readable without the PIN): a look-alike built by
//! someone who read it off the genuine card can show it too. The binding stops a
//! card that merely reports the serial; pulling a card forgets its PIN outright
//! ([`super::presence`]).

use super::device::CardResult;
use sha2::{Digest, Sha256};
use yubikey::YubiKey;

/// The PIV data object of the attestation certificate (slot f9).
const ATTESTATION_OBJECT: u32 = 0x005f_ff01;

/// What tells one card from another.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CardIdentity {
    /// The SHA-256 of the card's attestation-certificate object.
    Attested([u8; 32]),
    /// The card has no attestation certificate (firmware before 4.3, or erased):
    /// it cannot be told from a look-alike with the same serial.
    Unattested,
}

impl std::fmt::Debug for CardIdentity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CardIdentity::Attested(digest) => {
                write!(formatter, "Attested({})", hex::encode(&digest[..8]))
            }
            CardIdentity::Unattested => formatter.write_str("Unattested"),
        }
    }
}

impl CardIdentity {
    /// The text kept next to a PIN remembered in the OS keyring.
    pub fn to_text(self) -> String {
        match self {
            CardIdentity::Attested(digest) => hex::encode(digest),
            CardIdentity::Unattested => "unattested".to_owned(),
        }
    }

    /// Reads [`CardIdentity::to_text`] back.
    pub fn from_text(text: &str) -> Option<Self> {
        if text == "unattested" {
            return Some(CardIdentity::Unattested);
        }
        let mut digest = [0u8; 32];
        hex::decode_to_slice(text, &mut digest).ok()?;
        Some(CardIdentity::Attested(digest))
    }
}

/// Reads the identity of the card in front of us (no PIN needed).
pub fn read(yubikey: &mut YubiKey) -> CardResult<CardIdentity> {
    match yubikey.fetch_object(ATTESTATION_OBJECT) {
        Ok(object) if !object.is_empty() => {
            Ok(CardIdentity::Attested(Sha256::digest(&object).into()))
        }
        Ok(_) | Err(yubikey::Error::NotFound) => Ok(CardIdentity::Unattested),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_survive_the_keyring_text_and_debug_shows_a_prefix_only() {
        let attested = CardIdentity::Attested([7; 32]);
        for identity in [attested, CardIdentity::Unattested] {
            assert_eq!(CardIdentity::from_text(&identity.to_text()), Some(identity));
        }
        assert_eq!(CardIdentity::from_text("not hex"), None);
        assert_ne!(attested, CardIdentity::Attested([8; 32]));
        assert_eq!(format!("{attested:?}"), "Attested(0707070707070707)");
    }
}
