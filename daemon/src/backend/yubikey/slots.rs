//! The PIV slots tufkey uses — 9c (root by default) and the retired slots 82..95 —
//! written as two hex digits, and the choice of a slot for a new key.

use crate::error::{Error, Result};
use crate::keys::{PinPolicy, Role};
use std::collections::BTreeSet;
use yubikey::piv::{RetiredSlotId, SlotId};

/// The digital-signature slot: PIN verified right before every signature.
pub const SIGNATURE: u8 = 0x9c;
/// The device's attestation key (not for tufkey keys).
pub const ATTESTATION: u8 = 0xf9;
/// The retired key-management slots, usable for any key.
pub const RETIRED: std::ops::RangeInclusive<u8> = 0x82..=0x95;

/// Every slot tufkey may put a key in, in the order it scans them.
pub fn all() -> impl Iterator<Item = u8> {
    std::iter::once(SIGNATURE).chain(RETIRED)
}

/// Parses "9c" or "82".."95" (any case).
pub fn parse(text: &str) -> Result<u8> {
    u8::from_str_radix(text, 16)
        .ok()
        .filter(|slot| text.len() == 2 && (*slot == SIGNATURE || RETIRED.contains(slot)))
        .ok_or_else(|| Error::invalid("slot", format!("{text:?}: expected 9c or 82..95")))
}

/// The slot as tufkey prints it: "9c", "82", ...
pub fn name(slot: u8) -> String {
    format!("{slot:02x}")
}

/// The `yubikey` crate's name for a slot from [`all`].
pub fn slot_id(slot: u8) -> SlotId {
    match RetiredSlotId::try_from(slot) {
        Ok(retired) => SlotId::Retired(retired),
        Err(_) => SlotId::Signature,
    }
}

/// The PIN policy tufkey generates with: ALWAYS in 9c (as the PIV standard has
/// it), ONCE in retired slots. tufkey verifies the PIN before every signature anyway.
pub fn pin_policy(slot: u8) -> PinPolicy {
    if slot == SIGNATURE {
        PinPolicy::Always
    } else {
        PinPolicy::Once
    }
}

/// Picks the slot for a new `role` key: the requested one if it is free, else 9c
/// for root and the first free retired slot for any other role. `occupied` holds
/// the slots that already have a certificate.
pub fn choose(
    serial: u32,
    role: &Role,
    requested: Option<u8>,
    occupied: &BTreeSet<u8>,
) -> Result<u8> {
    let slot = match requested {
        Some(slot) => slot,
        None if *role == Role::Root => SIGNATURE,
        None => RETIRED
            .clone()
            .find(|slot| !occupied.contains(slot))
            .ok_or_else(|| Error::Device {
                serial,
                reason: "every retired slot 82..95 holds a certificate: delete a key or choose a slot with --slot".into(),
            })?,
    };
    if occupied.contains(&slot) {
        return Err(Error::Device {
            serial,
            reason: format!(
                "slot {} already holds a certificate (see `tufkey device list`): delete that key or choose another --slot",
                name(slot)
            ),
        });
    }
    Ok(slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_parse_and_print_back() {
        for text in ["9c", "82", "8f", "95"] {
            assert_eq!(name(parse(text).unwrap()), text);
        }
        assert_eq!(parse("9C").unwrap(), 0x9c);
        for bad in ["", "9a", "81", "96", "f9", "082", "x"] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(slot_id(0x9c), SlotId::Signature);
        assert_eq!(slot_id(0x82), SlotId::Retired(RetiredSlotId::R1));
        assert_eq!(all().count(), 21);
    }

    #[test]
    fn root_goes_to_9c_and_other_roles_to_the_first_free_retired_slot() {
        let occupied = BTreeSet::from([0x82, 0x83]);
        assert_eq!(choose(1, &Role::Root, None, &occupied).unwrap(), 0x9c);
        assert_eq!(choose(1, &Role::Targets, None, &occupied).unwrap(), 0x84);
        assert_eq!(
            choose(1, &Role::Targets, Some(0x9c), &occupied).unwrap(),
            0x9c
        );
    }

    #[test]
    fn occupied_or_exhausted_slots_are_refused_with_the_fix() {
        let occupied: BTreeSet<u8> = all().collect();
        let taken = choose(7, &Role::Root, None, &occupied).unwrap_err();
        assert!(
            taken.to_string().contains("slot 9c already holds"),
            "{taken}"
        );
        let full = choose(7, &Role::Snapshot, None, &occupied).unwrap_err();
        assert!(full.to_string().contains("--slot"), "{full}");
    }
}
