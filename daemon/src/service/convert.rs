//! Proto <-> domain conversions shared by the handlers.

use crate::error::{Error, Result};
use crate::keys::{BackendKind, Gun, KeyManager, KeyRecord, Role};
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
    }
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
