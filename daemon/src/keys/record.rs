//! [`KeyRecord`]: everything tufkey knows about one key except its private half.

use super::location::{Location, YubiKeyLocation};
use super::names::{Gun, Role};
use crate::tuf::key_json;
use p256::PublicKey;

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
    /// Where the private half lives (and so which backend holds it).
    pub location: Location,
}

impl KeyRecord {
    /// Describes a key, computing both key IDs from its public half.
    pub fn new(
        public_key: PublicKey,
        gun: Gun,
        role: Role,
        location: Location,
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
            location,
        }
    }

    /// Describes a key held in a YubiKey slot (never exportable).
    pub fn on_yubikey(
        public_key: PublicKey,
        gun: Gun,
        role: Role,
        created_at: String,
        at: YubiKeyLocation,
    ) -> Self {
        KeyRecord::new(
            public_key,
            gun,
            role,
            Location::YubiKey(at),
            created_at,
            false,
        )
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
