//! Proto <-> domain conversions shared by the handlers.

use crate::backend::yubikey::slot_name;
use crate::error::{Error, Result};
use crate::keys::{
    BackendKind, Gun, KeyManager, KeyRecord, PinPolicy, Placement, Role, TouchPolicy,
};
use crate::tuf::key_json;
use crate::tuf::signature::SignatureFormat;
use tufkey_proto::v1 as pb;

/// The proto form of a key.
pub fn key_to_proto(keys: &KeyManager, record: &KeyRecord) -> pb::Key {
    pb::Key {
        keyid: record.keyid.clone(),
        notary_keyid: record.notary_keyid.clone(),
        gun: record.gun.to_string(),
        role: record.role.to_string(),
        scheme: key_json::TUF_SCHEME.into(),
        public_pem: key_json::public_key_pem(&record.public_key),
        tuf_key_json: key_json::tuf_key_json(&record.public_key).to_string(),
        backend: backend_to_proto(record.backend) as i32,
        created_at: record.created_at.clone(),
        exportable: record.exportable,
        available: keys.is_available(record),
        serial: record.yubikey.map_or(0, |at| at.serial),
        slot: record
            .yubikey
            .map(|at| slot_name(at.slot))
            .unwrap_or_default(),
        touch_policy: record.yubikey.map_or(pb::TouchPolicy::Unspecified, |at| {
            touch_to_proto(at.touch_policy)
        }) as i32,
        pin_policy: record
            .yubikey
            .map_or(pb::PinPolicy::Unspecified, |at| match at.pin_policy {
                PinPolicy::Once => pb::PinPolicy::Once,
                PinPolicy::Always => pb::PinPolicy::Always,
            }) as i32,
    }
}

fn touch_to_proto(policy: TouchPolicy) -> pb::TouchPolicy {
    match policy {
        TouchPolicy::Never => pb::TouchPolicy::Never,
        TouchPolicy::Cached => pb::TouchPolicy::Cached,
        TouchPolicy::Always => pb::TouchPolicy::Always,
    }
}

/// The device placement options of a GenerateKey request.
pub fn placement_from_proto(request: &pb::GenerateKeyRequest) -> Result<Placement> {
    let touch_policy = match pb::TouchPolicy::try_from(request.touch_policy) {
        Ok(pb::TouchPolicy::Unspecified | pb::TouchPolicy::Never) => TouchPolicy::Never,
        Ok(pb::TouchPolicy::Cached) => TouchPolicy::Cached,
        Ok(pb::TouchPolicy::Always) => TouchPolicy::Always,
        Err(_) => {
            return Err(Error::invalid(
                "touch_policy",
                format!("unknown value {}", request.touch_policy),
            ))
        }
    };
    Ok(Placement {
        serial: (request.serial != 0).then_some(request.serial),
        slot: (!request.slot.is_empty())
            .then(|| crate::backend::yubikey::parse_slot(&request.slot))
            .transpose()?,
        touch_policy,
        allow_default_mgmt_key: request.allow_default_mgmt_key,
    })
}

fn backend_to_proto(kind: BackendKind) -> pb::Backend {
    match kind {
        BackendKind::Software => pb::Backend::Software,
        BackendKind::YubiKey => pb::Backend::Yubikey,
    }
}

/// `None` for "the daemon's default".
pub fn backend_from_proto(value: i32) -> Result<Option<BackendKind>> {
    match pb::Backend::try_from(value) {
        Ok(pb::Backend::Unspecified) => Ok(None),
        Ok(pb::Backend::Software) => Ok(Some(BackendKind::Software)),
        Ok(pb::Backend::Yubikey) => Ok(Some(BackendKind::YubiKey)),
        Err(_) => Err(Error::invalid("backend", format!("unknown value {value}"))),
    }
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
