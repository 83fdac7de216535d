//! Where a key lives ([`Location`]) and where a new one should go ([`Placement`]):
//! one variant per backend, so a key's whereabouts are one value, never a backend
//! tag plus optional fields that may disagree with it.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;
use yubikey::piv::{RetiredSlotId, SlotId};

/// Where a key's private half lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// The encrypted software keystore.
    Software,
    /// A YubiKey PIV slot.
    YubiKey(YubiKeyLocation),
    /// A backend registered from outside this crate (an embedder's or a test's),
    /// known only by its name.
    Other { backend: &'static str },
}

impl Location {
    /// The name of the backend that holds the key (see [`crate::keys::KeyBackend::name`]).
    pub fn backend(&self) -> &'static str {
        match self {
            Location::Software => SOFTWARE,
            Location::YubiKey(_) => YUBIKEY,
            Location::Other { backend } => backend,
        }
    }

    /// The YubiKey slot, for keys on a YubiKey.
    pub fn yubikey(&self) -> Option<&YubiKeyLocation> {
        match self {
            Location::YubiKey(at) => Some(at),
            _ => None,
        }
    }
}

/// The software keystore's backend name.
pub const SOFTWARE: &str = "software";
/// The YubiKey backend's name.
pub const YUBIKEY: &str = "yubikey";

/// Where on a YubiKey a key lives and what using it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct YubiKeyLocation {
    /// The device serial number.
    pub serial: u32,
    pub slot: PivSlot,
    pub touch_policy: TouchPolicy,
    pub pin_policy: PinPolicy,
}

/// Where a new key should be created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    /// The daemon's default backend, with that backend's defaults.
    #[default]
    Default,
    /// The encrypted software keystore.
    Software,
    /// A YubiKey.
    YubiKey(YubiKeyPlacement),
}

impl Placement {
    /// The backend this placement names; `None` for the daemon's default.
    pub fn backend(&self) -> Option<&'static str> {
        match self {
            Placement::Default => None,
            Placement::Software => Some(SOFTWARE),
            Placement::YubiKey(_) => Some(YUBIKEY),
        }
    }

    /// The placement a backend name stands for in settings (e.g. `--notary-backend`),
    /// with that backend's defaults; `serial` picks a YubiKey.
    pub fn from_setting(backend: &str, serial: Option<u32>) -> Result<Self> {
        match (backend, serial) {
            (SOFTWARE, None) => Ok(Placement::Software),
            (YUBIKEY, serial) => Ok(Placement::YubiKey(YubiKeyPlacement {
                serial,
                ..YubiKeyPlacement::default()
            })),
            (SOFTWARE, Some(_)) => Err(Error::invalid(
                "notary_yubikey_serial",
                "a YubiKey serial only applies with --notary-backend yubikey",
            )),
            (other, _) => Err(Error::invalid(
                "notary_backend",
                format!("{other:?}: expected {SOFTWARE} or {YUBIKEY}"),
            )),
        }
    }
}

/// Device placement options for a new YubiKey key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct YubiKeyPlacement {
    /// The device serial; `None` picks the only device present.
    pub serial: Option<u32>,
    /// The slot; `None` picks 9c for root, else the first free retired slot.
    pub slot: Option<PivSlot>,
    /// `None`: ALWAYS for root keys and slot 9c, else NEVER.
    pub touch_policy: Option<TouchPolicy>,
    /// Allow generating on a device that still has the factory management key.
    pub allow_default_mgmt_key: bool,
}

/// A PIV slot tufkey keeps keys in: the digital-signature slot 9c (PIN before every
/// signature) or one of the twenty retired key-management slots 82..95.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PivSlot {
    Signature,
    Retired(RetiredSlotId),
}

impl PivSlot {
    /// Every slot tufkey may use, in scan order: 9c, then 82..95.
    pub fn all() -> impl Iterator<Item = PivSlot> {
        std::iter::once(PivSlot::Signature).chain(
            (0x82..=0x95u8)
                .filter_map(|byte| RetiredSlotId::try_from(byte).ok().map(PivSlot::Retired)),
        )
    }

    /// The retired slots, in order.
    pub fn retired() -> impl Iterator<Item = PivSlot> {
        Self::all().skip(1)
    }

    /// The slot's byte as PIV names it (0x9c, 0x82..0x95).
    pub fn byte(self) -> u8 {
        SlotId::from(self).into()
    }
}

impl From<PivSlot> for SlotId {
    fn from(slot: PivSlot) -> SlotId {
        match slot {
            PivSlot::Signature => SlotId::Signature,
            PivSlot::Retired(retired) => SlotId::Retired(retired),
        }
    }
}

impl fmt::Display for PivSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}", self.byte())
    }
}

impl FromStr for PivSlot {
    type Err = Error;

    /// "9c" or "82".."95", any case.
    fn from_str(text: &str) -> Result<Self> {
        let lower = text.to_ascii_lowercase();
        match lower.parse::<SlotId>() {
            Ok(SlotId::Signature) => Ok(PivSlot::Signature),
            Ok(SlotId::Retired(retired)) => Ok(PivSlot::Retired(retired)),
            _ => Err(Error::invalid(
                "slot",
                format!("{text:?}: expected 9c or 82..95"),
            )),
        }
    }
}

/// Whether a YubiKey key needs a touch for each signature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TouchPolicy {
    /// No touch.
    #[default]
    Never,
    /// One touch covers signatures for 15 seconds.
    Cached,
    /// A touch for every signature.
    Always,
}

impl TouchPolicy {
    /// The name the CLI and logs use.
    pub fn as_str(self) -> &'static str {
        match self {
            TouchPolicy::Never => "never",
            TouchPolicy::Cached => "cached",
            TouchPolicy::Always => "always",
        }
    }
}

/// When a YubiKey key needs the PIN verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinPolicy {
    /// Once per card session (retired slots).
    Once,
    /// Right before every signature (slot 9c).
    Always,
}

impl PinPolicy {
    /// The name the CLI and logs use.
    pub fn as_str(self) -> &'static str {
        match self {
            PinPolicy::Once => "once",
            PinPolicy::Always => "always",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_parse_and_print_back() {
        for text in ["9c", "82", "8f", "95"] {
            assert_eq!(text.parse::<PivSlot>().unwrap().to_string(), text);
        }
        assert_eq!("9C".parse::<PivSlot>().unwrap(), PivSlot::Signature);
        for bad in ["", "9a", "81", "96", "f9", "082", "x"] {
            let error = bad.parse::<PivSlot>().unwrap_err().to_string();
            assert!(error.contains("expected 9c or 82..95"), "{bad:?}: {error}");
        }
        assert_eq!(SlotId::from(PivSlot::Signature), SlotId::Signature);
        assert_eq!(
            SlotId::from("82".parse::<PivSlot>().unwrap()),
            SlotId::Retired(RetiredSlotId::R1)
        );
        assert_eq!(PivSlot::all().count(), 21);
        assert_eq!(PivSlot::retired().next().unwrap().byte(), 0x82);
    }

    #[test]
    fn placements_from_settings_name_the_backend() {
        assert_eq!(
            Placement::from_setting("software", None).unwrap(),
            Placement::Software
        );
        let on_card = Placement::from_setting("yubikey", Some(7)).unwrap();
        assert_eq!(on_card.backend(), Some(YUBIKEY));
        let unknown = Placement::from_setting("hsm", None)
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("\"hsm\""), "{unknown}");
        assert!(Placement::from_setting("software", Some(7)).is_err());
        assert_eq!(
            Location::YubiKey(YubiKeyLocation {
                serial: 1,
                slot: PivSlot::Signature,
                touch_policy: TouchPolicy::Never,
                pin_policy: PinPolicy::Always,
            })
            .backend(),
            YUBIKEY
        );
    }
}
