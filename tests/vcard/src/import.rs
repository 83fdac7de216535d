//! Yubico's IMPORT ASYMMETRIC KEY (INS `FE`) for P-256, which piv-authenticator
//! 0.7 lacks (it imports RSA only). The adapter turns the import into the PIV
//! GENERATE the application does support, and the trussed dispatch answers that
//! generation's key request by injecting the imported scalar instead
//! ([`Injection::take`]), so the application stores the imported key in the slot
//! exactly as it stores a generated one, after the same management-key check.
//!
//! Test-only, like the whole card: the scalar passes through plain memory.

use std::sync::{Arc, Mutex};

/// Yubico's algorithm byte for P-256 (IMPORT's P1, GENERATE's `80` tag).
pub const P256: u8 = 0x11;
/// Yubico's IMPORT tag for an EC private scalar.
const SCALAR_TAG: u8 = 0x06;

/// The scalar of an import in progress, shared by the adapter (which sets it)
/// and the trussed dispatch (which uses it for the next P-256 key generation).
#[derive(Clone, Default)]
pub struct Injection(Arc<Mutex<Option<Vec<u8>>>>);

impl Injection {
    pub fn set(&self, scalar: Vec<u8>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(scalar);
    }

    /// The pending scalar, once.
    pub fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// The 32-byte scalar in an IMPORT command's data (`06 20 <scalar>`, then the
/// optional `AA` PIN and `AB` touch policies, which the card ignores like it
/// does at generation).
pub fn scalar(data: &[u8]) -> Option<Vec<u8>> {
    match data {
        [SCALAR_TAG, 0x20, rest @ ..] if rest.len() >= 32 => Some(rest[..32].to_vec()),
        _ => None,
    }
}

/// The GENERATE ASYMMETRIC KEY PAIR data for P-256 (`AC 03 80 01 11`).
pub const GENERATE_P256: [u8; 5] = [0xAC, 0x03, 0x80, 0x01, P256];
