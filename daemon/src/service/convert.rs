//! Proto <-> domain conversions shared by the handlers.

use crate::error::{Error, Result};
use crate::keys::{
    Gun, KeyManager, KeyRecord, Location, PinPolicy, Placement, Role, TouchPolicy, YubiKeyLocation,
    YubiKeyPlacement,
};
use crate::migration::Migrator;
use crate::tuf::key_json;
use crate::tuf::signature::SignatureFormat;
use tufkey_proto::v1 as pb;

/// The proto form of a key. The deprecated flat fields stay filled for clients
/// built before `location` existed.
#[allow(deprecated)]
pub fn key_to_proto(keys: &KeyManager, record: &KeyRecord) -> pb::Key {
    let yubikey = record.location.yubikey();
    pb::Key {
        keyid: record.keyid.clone(),
        notary_keyid: record.notary_keyid.clone(),
        gun: record.gun.to_string(),
        role: record.role.to_string(),
        scheme: key_json::TUF_SCHEME.into(),
        public_pem: key_json::public_key_pem(&record.public_key),
        tuf_key_json: key_json::tuf_key_json(&record.public_key).to_string(),
        backend: match &record.location {
            Location::Software => pb::Backend::Software,
            Location::YubiKey(_) => pb::Backend::Yubikey,
            Location::Other { .. } => pb::Backend::Unspecified,
        } as i32,
        created_at: record.created_at.clone(),
        exportable: record.exportable,
        available: keys.is_available(record),
        serial: yubikey.map_or(0, |at| at.serial),
        slot: yubikey.map(|at| at.slot.to_string()).unwrap_or_default(),
        touch_policy: yubikey.map_or(pb::TouchPolicy::Unspecified, |at| {
            touch_to_proto(at.touch_policy)
        }) as i32,
        pin_policy: yubikey.map_or(pb::PinPolicy::Unspecified, |at| pin_to_proto(at.pin_policy))
            as i32,
        location: Some(location_to_proto(&record.location)),
        last_backup: String::new(),
        origin: record.origin.as_str().into(),
    }
}

fn location_to_proto(location: &Location) -> pb::key::Location {
    match location {
        Location::Software => pb::key::Location::Software(pb::SoftwareLocation {}),
        Location::YubiKey(at) => pb::key::Location::Yubikey(yubikey_to_proto(at)),
        Location::Other { backend } => pb::key::Location::Other(pb::OtherLocation {
            backend: (*backend).to_owned(),
        }),
    }
}

/// A YubiKey key's place, as `Key.location.yubikey` carries it.
pub fn yubikey_to_proto(at: &YubiKeyLocation) -> pb::YubiKeyLocation {
    pb::YubiKeyLocation {
        serial: at.serial,
        slot: at.slot.to_string(),
        touch_policy: touch_to_proto(at.touch_policy) as i32,
        pin_policy: pin_to_proto(at.pin_policy) as i32,
    }
}

fn touch_to_proto(policy: TouchPolicy) -> pb::TouchPolicy {
    match policy {
        TouchPolicy::Never => pb::TouchPolicy::Never,
        TouchPolicy::Cached => pb::TouchPolicy::Cached,
        TouchPolicy::Always => pb::TouchPolicy::Always,
    }
}

fn pin_to_proto(policy: PinPolicy) -> pb::PinPolicy {
    match policy {
        PinPolicy::Once => pb::PinPolicy::Once,
        PinPolicy::Always => pb::PinPolicy::Always,
    }
}

/// Where a GenerateKey request wants its key: `placement`, else the deprecated
/// flat fields of older clients.
#[allow(deprecated)]
pub fn placement_from_proto(request: &pb::GenerateKeyRequest) -> Result<Placement> {
    use pb::generate_key_request::Placement as Requested;
    match &request.placement {
        Some(Requested::Software(_)) => Ok(Placement::Software),
        Some(Requested::Yubikey(yubikey)) => Ok(Placement::YubiKey(yubikey_placement(
            yubikey.serial,
            &yubikey.slot,
            yubikey.touch_policy,
            yubikey.allow_default_mgmt_key,
        )?)),
        None => match pb::Backend::try_from(request.backend) {
            Ok(pb::Backend::Unspecified) => Ok(Placement::Default),
            Ok(pb::Backend::Software) => Ok(Placement::Software),
            Ok(pb::Backend::Yubikey) => Ok(Placement::YubiKey(yubikey_placement(
                request.serial,
                &request.slot,
                request.touch_policy,
                request.allow_default_mgmt_key,
            )?)),
            Err(_) => Err(Error::invalid(
                "backend",
                format!("unknown value {}", request.backend),
            )),
        },
    }
}

/// The proto form of a key, with when a backup last covered it.
pub fn key_with_backup(keys: &KeyManager, migrator: &Migrator, record: &KeyRecord) -> pb::Key {
    let mut key = key_to_proto(keys, record);
    key.last_backup = migrator.last_backup(&record.keyid).unwrap_or_default();
    key
}

/// A YubiKey placement from its proto fields (0 / "" = unset).
pub fn yubikey_placement(
    serial: u32,
    slot: &str,
    touch_policy: i32,
    allow_default_mgmt_key: bool,
) -> Result<YubiKeyPlacement> {
    let touch_policy = match pb::TouchPolicy::try_from(touch_policy) {
        // Unspecified: the backend's default for the role and slot.
        Ok(pb::TouchPolicy::Unspecified) => None,
        Ok(pb::TouchPolicy::Never) => Some(TouchPolicy::Never),
        Ok(pb::TouchPolicy::Cached) => Some(TouchPolicy::Cached),
        Ok(pb::TouchPolicy::Always) => Some(TouchPolicy::Always),
        Err(_) => {
            return Err(Error::invalid(
                "touch_policy",
                format!("unknown value {touch_policy}"),
            ))
        }
    };
    Ok(YubiKeyPlacement {
        serial: (serial != 0).then_some(serial),
        slot: (!slot.is_empty()).then(|| slot.parse()).transpose()?,
        touch_policy,
        allow_default_mgmt_key,
    })
}

pub fn format_from_proto(value: i32) -> Result<SignatureFormat> {
    match pb::SignatureFormat::try_from(value) {
        Ok(pb::SignatureFormat::Unspecified | pb::SignatureFormat::Tuf) => Ok(SignatureFormat::Tuf),
        Ok(pb::SignatureFormat::Notary) => Ok(SignatureFormat::Notary),
        Err(_) => Err(Error::invalid("format", format!("unknown value {value}"))),
    }
}

pub fn format_to_proto(format: SignatureFormat) -> pb::SignatureFormat {
    match format {
        SignatureFormat::Tuf => pb::SignatureFormat::Tuf,
        SignatureFormat::Notary => pb::SignatureFormat::Notary,
    }
}

/// Empty means "no filter".
pub fn optional_gun(text: &str) -> Result<Option<Gun>> {
    (!text.is_empty()).then(|| text.parse()).transpose()
}

/// Empty means "no filter".
pub fn optional_role(text: &str) -> Result<Option<Role>> {
    (!text.is_empty()).then(|| text.parse()).transpose()
}

/// A key ID field must be present.
pub fn required_keyid(text: &str) -> Result<&str> {
    if text.is_empty() {
        Err(Error::invalid("keyid", "must not be empty"))
    } else {
        Ok(text)
    }
}
