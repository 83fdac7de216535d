//! The domain: what a key is, who owns it, where it lives, and the registry that
//! routes each operation to the backend that holds the key. No proto types, no key
//! material.

mod backend;
mod devices;
mod location;
mod manager;
mod names;
mod record;

pub use backend::{Export, Import, ImportedKey, KeyBackend, LockState, NewKey, Unlock};
pub use devices::{
    Attestation, DeviceEvent, DeviceInfo, Devices, InitReport, InitSecrets, Pin, PinUnlocked,
};
pub use location::{
    Location, PinPolicy, PivSlot, Placement, TouchPolicy, YubiKeyLocation, YubiKeyPlacement,
    SOFTWARE, YUBIKEY,
};
pub use manager::{Backends, KeyManager};
pub use names::{Gun, Role};
pub use record::{now_rfc3339, KeyRecord, Origin};
