//! [`KeyRecord`]: everything tufkey knows about one key except its private half.

use super::names::{Gun, Role};
use crate::tuf::key_json;
use p256::PublicKey;
use std::fmt;

/// Where a key's private half lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// The encrypted software keystore.
    Software,
    /// A YubiKey PIV slot.
    YubiKey,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Software => "software",
            BackendKind::YubiKey => "yubikey",
        })
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
    /// The name the CLI and the certificate use.
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
    /// The name the CLI and the certificate use.
    pub fn as_str(self) -> &'static str {
        match self {
            PinPolicy::Once => "once",
            PinPolicy::Always => "always",
        }
    }
}

/// Where on a YubiKey a key lives and what using it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct YubiKeySlot {
    /// The device serial number.
    pub serial: u32,
    /// The PIV slot: 0x9c or a retired slot 0x82..=0x95.
    pub slot: u8,
    pub touch_policy: TouchPolicy,
    pub pin_policy: PinPolicy,
}

/// The public description of a key: IDs, owner, public key and where it lives.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyRecord {
    /// TUF key ID (hex SHA-256 of the canonical TUF key JSON).
    pub keyid: String,
    /// Notary key ID (hex SHA-256 of the canonical Notary key JSON).
    pub notary_keyid: String,
    pub gun: Gun,
    pub role: Role,
    pub public_key: PublicKey,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// Set at creation; can never be turned on later.
    pub exportable: bool,
    pub backend: BackendKind,
    /// Serial, slot and policies of a key on a YubiKey; `None` for other backends.
    pub yubikey: Option<YubiKeySlot>,
}

impl KeyRecord {
    /// Describes a key, computing both key IDs from its public half.
    pub fn new(
        public_key: PublicKey,
        gun: Gun,
        role: Role,
        backend: BackendKind,
        created_at: String,
        exportable: bool,
    ) -> Self {
        KeyRecord {
            keyid: key_json::tuf_keyid(&public_key),
            notary_keyid: key_json::notary_keyid(&public_key),
            gun,
            role,
            public_key,
            created_at,
            exportable,
            backend,
            yubikey: None,
        }
    }

    /// Describes a key held in a YubiKey slot (never exportable).
    pub fn on_yubikey(
        public_key: PublicKey,
        gun: Gun,
        role: Role,
        created_at: String,
        slot: YubiKeySlot,
    ) -> Self {
        KeyRecord {
            yubikey: Some(slot),
            ..KeyRecord::new(
                public_key,
                gun,
                role,
                BackendKind::YubiKey,
                created_at,
                false,
            )
        }
    }
}

/// The current UTC time in RFC 3339 form, to stamp new keys.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}
