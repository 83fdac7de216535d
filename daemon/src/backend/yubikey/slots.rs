//! Which PIV slot a key goes in — 9c for root by default, else the first free
//! retired slot 82..95 — the policies a new key gets there, and the slot bytes
//! the certificate objects are named by.

use super::error::YubiKeyError;
use crate::keys::{PinPolicy, PivSlot, Role, TouchPolicy};
use std::collections::BTreeSet;

/// The digital-signature slot's byte.
pub const SIGNATURE: u8 = 0x9c;
/// The device's attestation key (not for tufkey keys).
pub const ATTESTATION: u8 = 0xf9;
/// The retired key-management slots' bytes.
pub const RETIRED: std::ops::RangeInclusive<u8> = 0x82..=0x95;

/// The PIN policy tufkey generates with: ALWAYS in 9c (as the PIV standard has
/// it), ONCE in retired slots. tufkey verifies the PIN before every signature anyway.
pub fn pin_policy(slot: PivSlot) -> PinPolicy {
    match slot {
        PivSlot::Signature => PinPolicy::Always,
        PivSlot::Retired(_) => PinPolicy::Once,
    }
}

/// The touch policy a new key gets unless the caller chose one: ALWAYS for root
/// keys and for slot 9c (a root key signs rarely, and a touch proves a person
/// approved it: malware holding the cached PIN cannot sign a new root alone),
/// NEVER elsewhere (online roles sign unattended).
pub fn touch_policy(role: &Role, slot: PivSlot) -> TouchPolicy {
    if *role == Role::Root || slot == PivSlot::Signature {
        TouchPolicy::Always
    } else {
        TouchPolicy::Never
    }
}

/// Picks the slot for a new `role` key: the requested one if it is free, else 9c
/// for root and the first free retired slot for any other role. `occupied` holds
/// the slots that already have a certificate.
pub fn choose(
    serial: u32,
    role: &Role,
    requested: Option<PivSlot>,
    occupied: &BTreeSet<PivSlot>,
) -> Result<PivSlot, YubiKeyError> {
    let slot = match requested {
        Some(slot) => slot,
        None if *role == Role::Root => PivSlot::Signature,
        None => PivSlot::retired()
            .find(|slot| !occupied.contains(slot))
            .ok_or(YubiKeyError::SlotsFull { serial })?,
    };
    if occupied.contains(&slot) {
        return Err(YubiKeyError::SlotTaken { serial, slot });
    }
    Ok(slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(text: &str) -> PivSlot {
        text.parse().unwrap()
    }

    #[test]
    fn root_goes_to_9c_and_other_roles_to_the_first_free_retired_slot() {
        let occupied = BTreeSet::from([slot("82"), slot("83")]);
        assert_eq!(choose(1, &Role::Root, None, &occupied).unwrap(), slot("9c"));
        assert_eq!(
            choose(1, &Role::Targets, None, &occupied).unwrap(),
            slot("84")
        );
        assert_eq!(
            choose(1, &Role::Targets, Some(slot("9c")), &occupied).unwrap(),
            slot("9c")
        );
        assert_eq!(pin_policy(slot("9c")), PinPolicy::Always);
        assert_eq!(touch_policy(&Role::Root, slot("9c")), TouchPolicy::Always);
        assert_eq!(touch_policy(&Role::Root, slot("82")), TouchPolicy::Always);
        assert_eq!(
            touch_policy(&Role::Targets, slot("9c")),
            TouchPolicy::Always
        );
        assert_eq!(touch_policy(&Role::Targets, slot("82")), TouchPolicy::Never);
        assert_eq!(pin_policy(slot("95")), PinPolicy::Once);
        assert_eq!(slot("9c").byte(), SIGNATURE);
        assert!(PivSlot::retired().all(|slot| RETIRED.contains(&slot.byte())));
    }

    #[test]
    fn occupied_or_exhausted_slots_are_refused_with_the_fix() {
        let occupied: BTreeSet<PivSlot> = PivSlot::all().collect();
        let taken = choose(7, &Role::Root, None, &occupied).unwrap_err();
        assert!(
            taken.to_string().contains("slot 9c already holds"),
            "{taken}"
        );
        let full = choose(7, &Role::Snapshot, None, &occupied).unwrap_err();
        assert!(full.to_string().contains("--slot"), "{full}");
    }
}
