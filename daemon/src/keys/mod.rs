//! The domain: what a key is, who owns it, and the registry that routes each
//! operation to the backend that holds the key. No proto types, no key material.

mod backend;
mod manager;
mod names;
mod record;

pub use backend::{KeyBackend, NewKey, Placement};
pub use manager::KeyManager;
pub use names::{Gun, Role};
pub use record::{now_rfc3339, BackendKind, KeyRecord, PinPolicy, TouchPolicy, YubiKeySlot};
