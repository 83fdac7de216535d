//! [`KeyBackend`]: the one seam every home for private keys plugs into.
//!
//! The software keystore and the YubiKey implement it; the key manager and the gRPC
//! service above only ever see [`KeyRecord`]s and signatures.

use super::names::{Gun, Role};
use super::record::{BackendKind, KeyRecord, TouchPolicy};
use crate::error::Result;
use async_trait::async_trait;
use p256::ecdsa::Signature;

/// What the caller asks for when creating a key.
#[derive(Clone, Debug)]
pub struct NewKey {
    pub gun: Gun,
    pub role: Role,
    /// Whether the key may ever leave its backend as an encrypted bundle.
    pub exportable: bool,
    /// Where on a device to put the key; ignored by the software keystore.
    pub placement: Placement,
}

/// Device placement options for a new key (YubiKey backend).
#[derive(Clone, Debug, Default)]
pub struct Placement {
    /// The device serial; `None` picks the only device present.
    pub serial: Option<u32>,
    /// The PIV slot; `None` picks 9c for root, else the first free retired slot.
    pub slot: Option<u8>,
    pub touch_policy: TouchPolicy,
    /// Allow generating on a device that still has the factory management key.
    pub allow_default_mgmt_key: bool,
}

/// A place that holds private keys and signs with them.
#[async_trait]
pub trait KeyBackend: Send + Sync {
    /// Which kind of backend this is.
    fn kind(&self) -> BackendKind;

    /// Discovers the keys this backend holds (their public descriptions).
    async fn load(&self) -> Result<Vec<KeyRecord>>;

    /// Creates a key and returns its description.
    async fn generate(&self, new_key: &NewKey) -> Result<KeyRecord>;

    /// Signs a SHA-256 digest with the key's private half.
    async fn sign_digest(&self, key: &KeyRecord, digest: &[u8; 32]) -> Result<Signature>;

    /// Destroys the key's private half.
    async fn delete(&self, key: &KeyRecord) -> Result<()>;

    /// Whether the key can sign right now.
    fn is_available(&self, _key: &KeyRecord) -> bool {
        true
    }
}
