//! Notary's TUF metadata as it travels: the four top-level roles and delegated
//! targets roles, with Notary's spellings (`"_type": "Targets"`, hashes in base64,
//! `method: "ecdsa"` signatures of raw r||s), and the bytes we sign and upload.
//!
//! What a server sends is parsed twice: once as a JSON value, whose canonical form
//! is what the signatures cover, and once into these types. What we send is the
//! canonical form itself, so the bytes the server stores, hashes and hands to
//! every verifier are exactly the bytes that were signed.

use super::error::DctError;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256, Sha512};
use std::collections::BTreeMap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A metadata file: the signed part and its signatures.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub signed: serde_json::Value,
    pub signatures: Vec<Signature>,
}

/// One signature, as Notary writes it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Signature {
    pub keyid: String,
    pub method: String,
    /// Base64 of the raw 64-byte r||s.
    pub sig: String,
}

/// A public key as it appears in root and in delegations. `keyval.public` is base64
/// of a DER SubjectPublicKeyInfo (`ecdsa`) or of a PEM certificate (`ecdsa-x509`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct PublicKey {
    pub keytype: String,
    pub keyval: KeyValue,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct KeyValue {
    pub public: String,
    /// Always null in published metadata (and part of what the key ID hashes).
    pub private: Option<serde_json::Value>,
}

/// The keys of one top-level role, listed in root.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct RoleKeys {
    pub keyids: Vec<String>,
    pub threshold: u32,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Root {
    #[serde(rename = "_type")]
    pub kind: String,
    pub consistent_snapshot: bool,
    pub expires: String,
    pub keys: BTreeMap<String, PublicKey>,
    pub roles: BTreeMap<String, RoleKeys>,
    pub version: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Targets {
    #[serde(rename = "_type")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub delegations: Delegations,
    pub expires: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub targets: BTreeMap<String, FileMeta>,
    pub version: u64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Delegations {
    #[serde(default, deserialize_with = "null_as_default")]
    pub keys: BTreeMap<String, PublicKey>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub roles: Vec<DelegationRole>,
}

/// A delegated role: `targets/releases`, `targets/<signer>`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct DelegationRole {
    pub keyids: Vec<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    pub threshold: u32,
}

/// What a role says about a file: a tag's manifest, or another metadata file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct FileMeta {
    pub length: u64,
    /// Algorithm name to base64 digest.
    pub hashes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<serde_json::Value>,
}

/// Snapshot and timestamp: versions and hashes of other metadata files.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct MetaList {
    #[serde(rename = "_type")]
    pub kind: String,
    pub expires: String,
    pub meta: BTreeMap<String, FileMeta>,
    pub version: u64,
}

/// Go marshals a nil map or slice as `null`.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The `_type` each role's metadata must carry.
pub fn expected_type(role: &str) -> &'static str {
    match role {
        "root" => "Root",
        "snapshot" => "Snapshot",
        "timestamp" => "Timestamp",
        _ => "Targets",
    }
}

/// The canonical JSON form (sorted keys, no whitespace) that signatures cover.
pub fn canonical<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, DctError> {
    let mut bytes = Vec::new();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut bytes, olpc_cjson::CanonicalFormatter::new());
    value.serialize(&mut serializer).map_err(DctError::Encode)?;
    Ok(bytes)
}

/// A metadata file ready to upload: `signed` in canonical form, then signatures.
pub fn envelope_bytes(
    signed_canonical: &[u8],
    signatures: &[Signature],
) -> Result<Vec<u8>, DctError> {
    #[derive(Serialize)]
    struct Outgoing<'a> {
        signed: &'a RawValue,
        signatures: &'a [Signature],
    }
    let text = std::str::from_utf8(signed_canonical).map_err(|_| DctError::NotUtf8)?;
    let signed: &RawValue = serde_json::from_str(text).map_err(DctError::Encode)?;
    serde_json::to_vec(&Outgoing { signed, signatures }).map_err(DctError::Encode)
}

/// Parses a metadata file of `role` from `bytes` as served.
pub fn parse_envelope(role: &str, bytes: &[u8]) -> Result<Envelope, DctError> {
    serde_json::from_slice(bytes).map_err(|source| DctError::Malformed {
        role: role.to_owned(),
        source,
    })
}

/// The typed form of a verified `signed` value, checked to be of `role`'s type.
pub fn typed<T: DeserializeOwned>(role: &str, signed: &serde_json::Value) -> Result<T, DctError> {
    let found = signed.get("_type").and_then(|kind| kind.as_str());
    let wanted = expected_type(role);
    if found != Some(wanted) {
        return Err(DctError::WrongType {
            role: role.to_owned(),
            wanted,
            found: found.unwrap_or("nothing").to_owned(),
        });
    }
    serde_json::from_value(signed.clone()).map_err(|source| DctError::Malformed {
        role: role.to_owned(),
        source,
    })
}

/// The snapshot/timestamp entry describing `bytes` (sha256 and sha512, as Notary
/// records them).
pub fn file_meta(bytes: &[u8]) -> FileMeta {
    let mut hashes = BTreeMap::new();
    hashes.insert("sha256".to_owned(), BASE64.encode(Sha256::digest(bytes)));
    hashes.insert("sha512".to_owned(), BASE64.encode(Sha512::digest(bytes)));
    FileMeta {
        length: bytes.len() as u64,
        hashes,
        custom: None,
    }
}

/// Whether `bytes` are what `meta` describes: the length and every hash Notary
/// uses that `meta` lists (sha256 at least).
pub fn matches(meta: &FileMeta, bytes: &[u8]) -> bool {
    if meta.length != bytes.len() as u64 || !meta.hashes.contains_key("sha256") {
        return false;
    }
    let ours = file_meta(bytes);
    meta.hashes
        .iter()
        .filter(|(algorithm, _)| ours.hashes.contains_key(*algorithm))
        .all(|(algorithm, digest)| ours.hashes.get(algorithm) == Some(digest))
}

/// `expires` as a time; Go writes RFC 3339 with optional fractions.
pub fn expiry(role: &str, expires: &str) -> Result<OffsetDateTime, DctError> {
    OffsetDateTime::parse(expires, &Rfc3339).map_err(|_| DctError::BadExpiry {
        role: role.to_owned(),
        expires: expires.to_owned(),
    })
}

/// `now + days`, whole seconds, in the form Notary writes.
pub fn expires_in(days: u32) -> Result<String, DctError> {
    let at = OffsetDateTime::now_utc() + time::Duration::days(i64::from(days));
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&Rfc3339).map_err(|_| DctError::Clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_maps_and_lists_from_go_read_as_empty() {
        let signed: serde_json::Value = serde_json::from_str(
            r#"{"_type":"Targets","delegations":{"keys":null,"roles":null},"expires":"2030-01-01T00:00:00.5Z","targets":null,"version":2}"#,
        )
        .unwrap();
        let targets: Targets = typed("targets/releases", &signed).unwrap();
        assert!(targets.targets.is_empty() && targets.delegations.roles.is_empty());
        assert_eq!(targets.version, 2);
        assert!(typed::<Targets>("snapshot", &signed).is_err());
    }

    #[test]
    fn canonical_form_sorts_keys_and_drops_whitespace() {
        let value: serde_json::Value =
            serde_json::from_str(r#"{ "b": 1, "a": [true, null] }"#).unwrap();
        assert_eq!(canonical(&value).unwrap(), br#"{"a":[true,null],"b":1}"#);
    }

    #[test]
    fn file_meta_matches_only_the_same_bytes() {
        let meta = file_meta(b"abc");
        assert!(matches(&meta, b"abc"));
        assert!(!matches(&meta, b"abd"));
        let mut only_sha256 = meta.clone();
        only_sha256.hashes.remove("sha512");
        assert!(matches(&only_sha256, b"abc"));
        only_sha256.hashes.clear();
        assert!(
            !matches(&only_sha256, b"abc"),
            "no sha256: nothing to check against"
        );
    }

    #[test]
    fn envelope_keeps_the_signed_bytes() {
        let signed = br#"{"_type":"Targets","version":1}"#;
        let signature = Signature {
            keyid: "ab".into(),
            method: "ecdsa".into(),
            sig: "c2ln".into(),
        };
        let bytes = envelope_bytes(signed, &[signature]).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with(r#"{"signed":{"_type":"Targets","version":1},"signatures":"#));
    }

    #[test]
    fn expiry_reads_go_times() {
        assert!(expiry("timestamp", "2026-12-12T10:00:00.123456789Z").is_ok());
        assert!(expiry("timestamp", "tomorrow").is_err());
    }
}
