//! Who is calling ([`Caller`]), what they ask to do ([`Permission`]), and the seam
//! that decides ([`Authorize`]). The transport puts a [`Caller`] into every request's
//! extensions before any handler runs; handlers ask an [`Authorize`] before they act
//! and record the outcome in the audit log. Nothing else decides.

use crate::error::Result;
use crate::keys::KeyRecord;
use serde::Serialize;
use std::path::PathBuf;

/// The identity behind a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Caller {
    /// A process on the Unix socket (SO_PEERCRED, plus its executable from /proc).
    Unix {
        uid: u32,
        gid: u32,
        pid: Option<i32>,
        exe: Option<PathBuf>,
    },
    /// A TLS client, by its verified certificate.
    Tls {
        common_name: Option<String>,
        /// DNS and URI subject alternative names.
        sans: Vec<String>,
        /// Hex SHA-256 of the certificate's SubjectPublicKeyInfo.
        spki_sha256: String,
    },
}

/// What a request wants to do; policies grant these to callers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Sign with a key (SignRaw, SignMetadata).
    Sign,
    /// Read key descriptions (ListKeys, GetKey).
    KeysRead,
    /// Create and delete keys.
    KeysAdmin,
    /// Unlock, lock, status of the keystore.
    Session,
    /// List, watch, initialise and unlock devices; attest keys.
    DevicesAdmin,
    /// Move private keys in or out (import, export, backup, restore).
    Transfer,
    /// The Notary signer API (KeyManagement, Signer).
    Notary,
}

impl Permission {
    /// The name policies and errors use.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Sign => "sign",
            Permission::KeysRead => "keys_read",
            Permission::KeysAdmin => "keys_admin",
            Permission::Session => "session",
            Permission::DevicesAdmin => "devices_admin",
            Permission::Transfer => "transfer",
            Permission::Notary => "notary",
        }
    }
}

/// Decides whether `caller` may do `permission` (to `key`, when the request names
/// one). A refusal is an error of kind PermissionDenied that names the permission.
pub trait Authorize: Send + Sync {
    fn authorize(
        &self,
        caller: &Caller,
        permission: Permission,
        key: Option<&KeyRecord>,
    ) -> Result<()>;
}
