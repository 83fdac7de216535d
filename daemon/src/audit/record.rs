//! One audit record, its canonical form, its MAC and its place in the hash chain.
//!
//! A record is written as one line of canonical JSON: object keys sorted by their
//! UTF-8 bytes, no whitespace, serde_json's escaping, integers only. The MAC covers
//! the canonical form of the record without its `mac` field; `prev` is the SHA-256
//! of the previous record's line, so removing, reordering or editing any record
//! breaks the chain at that point.

use super::key::AuditKey;
use crate::error::{Error, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// `prev` of the very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What `result` says for a call that succeeded.
pub const OK: &str = "ok";

/// One line of the audit log. The fields are declared in the byte order of their
/// JSON names, so serialising a record (with a sorted `caller`) gives its canonical
/// form directly, without building and sorting a `Value` (a test holds this).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// A signed metadata document's `_type`.
    #[serde(rename = "_type", default, skip_serializing_if = "Option::is_none")]
    pub metadata_type: Option<String>,
    /// Who asked (`crate::access::Caller`, serialised).
    pub caller: Value,
    /// The error's message, when `result` is not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A signed metadata document's `expires`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gun: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyid: Option<String>,
    /// Hex HMAC-SHA256 of the canonical record without `mac`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// Hex SHA-256 of what was signed (for metadata: the canonical `signed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_sha256: Option<String>,
    /// Hex SHA-256 of the previous record's line ([`GENESIS`] for the first).
    pub prev: String,
    /// `ok`, or the error's kind (`permission_denied`, `failed_precondition`, ...).
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The gRPC method, e.g. `tufkey.v1.Signing/SignRaw`.
    pub rpc: String,
    /// 1, 2, 3... across every file of the log.
    pub seq: u64,
    /// The device a device call was about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u32>,
    /// When it was written (RFC 3339, UTC).
    pub time: String,
    /// A signed metadata document's `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl Record {
    /// Sets `result` (and `error`) from an operation's outcome.
    pub fn set_result<T>(&mut self, result: &Result<T, Error>) {
        match result {
            Ok(_) => {
                self.result = OK.into();
                self.error = None;
            }
            Err(error) => {
                self.result = kind_name(error.kind()).into();
                self.error = Some(error.to_string());
            }
        }
    }

    /// Fills in the chain fields and the MAC, and returns the line to write
    /// (without its newline).
    pub fn seal(&mut self, seq: u64, time: String, prev: String, key: &AuditKey) -> String {
        self.seq = seq;
        self.time = time;
        self.prev = prev;
        self.caller = sorted(&self.caller);
        self.mac = String::new();
        self.mac = key.mac(&serde_json::to_vec(self).expect("a record is plain JSON data"));
        serde_json::to_string(self).expect("a record is plain JSON data")
    }
}

/// Hex SHA-256 of a record's line: the next record's `prev`.
pub fn line_hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

/// The canonical form: keys sorted by their UTF-8 bytes, compact.
pub fn canonical(value: &Value) -> Vec<u8> {
    serde_json::to_vec(&sorted(value)).expect("JSON values always serialise")
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(members) => {
            let mut keys: Vec<&String> = members.keys().collect();
            keys.sort();
            let mut out = Map::with_capacity(members.len());
            for key in keys {
                out.insert(key.clone(), sorted(&members[key]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The name an error kind has in the log.
pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "invalid_input",
        ErrorKind::NotFound => "not_found",
        ErrorKind::FailedPrecondition => "failed_precondition",
        ErrorKind::Unauthenticated => "unauthenticated",
        ErrorKind::PermissionDenied => "permission_denied",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::DataLoss => "data_loss",
        ErrorKind::Internal => "internal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_line_is_canonical_and_its_mac_covers_everything_but_the_mac() {
        let key = AuditKey::derive(b"secret");
        let mut record = Record {
            caller: serde_json::json!({"kind": "unix", "uid": 1000, "gid": 1000}),
            rpc: "tufkey.v1.Signing/SignRaw".into(),
            keyid: Some("ab".repeat(32)),
            ..Record::default()
        };
        record.set_result(&Ok::<(), Error>(()));
        let line = record.seal(1, "2026-01-01T00:00:00Z".into(), GENESIS.into(), &key);
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(canonical(&value), line.as_bytes(), "the line is canonical");
        assert!(line.starts_with(r#"{"caller":{"gid":1000,"kind":"unix","uid":1000},"keyid":"#));

        // Every field set: the declaration order is the canonical order.
        let mut full = Record {
            metadata_type: Some("targets".into()),
            gun: Some("docker.io/acme/app".into()),
            role: Some("targets".into()),
            payload_sha256: Some("cd".repeat(32)),
            version: Some(7),
            expires: Some("2030-01-01T00:00:00Z".into()),
            serial: Some(1001),
            ..record.clone()
        };
        full.set_result(&Err::<(), _>(Error::KeyNotFound("feed".into())));
        let full_line = full.seal(
            2,
            "2026-01-01T00:00:01Z".into(),
            line_hash(line.as_bytes()),
            &key,
        );
        let full_value: Value = serde_json::from_str(&full_line).unwrap();
        assert_eq!(full_value.as_object().unwrap().len(), 16, "{full_line}");
        assert_eq!(canonical(&full_value), full_line.as_bytes(), "{full_line}");
        let mut without_mac = value.clone();
        let mac = without_mac.as_object_mut().unwrap().remove("mac").unwrap();
        assert!(key.verify(&canonical(&without_mac), mac.as_str().unwrap()));
        assert_eq!(serde_json::from_value::<Record>(value).unwrap(), record);
    }

    #[test]
    fn a_failure_records_its_kind_and_message() {
        let mut record = Record::default();
        record.set_result(&Err::<(), _>(Error::KeyNotFound("feed".into())));
        assert_eq!(record.result, "not_found");
        assert_eq!(record.error.as_deref(), Some("no key with ID feed"));
    }
}
