//! A TUF metadata document `{"signed": ..., "signatures": [...]}` being signed.
//!
//! `signed` is parsed once (borrowing from the request), checked and canonicalised
//! to compute the digest; the document that goes back is the caller's own `signed`
//! text, byte for byte, followed by the updated signature list.

use super::canonical::Json;
use crate::error::{Error, Result};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::ops::Range;

/// The top level of a metadata document.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    signed: Option<&'a RawValue>,
    #[serde(default)]
    signatures: Vec<Value>,
}

/// A parsed metadata document whose `signed` part is ready to be signed.
pub struct MetadataDocument {
    bytes: Vec<u8>,
    /// Where the text of `signed` is inside `bytes`.
    signed: Range<usize>,
    signatures: Vec<Value>,
    canonical_signed: Vec<u8>,
    summary: MetadataSummary,
}

/// What the audit log says about a signed document: `signed._type`, `.version` and
/// `.expires`, each when present with the expected JSON type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataSummary {
    pub metadata_type: Option<String>,
    pub version: Option<u64>,
    pub expires: Option<String>,
}

impl MetadataSummary {
    fn of(signed: &Json<'_>) -> Self {
        let mut summary = MetadataSummary::default();
        if let Json::Object(members) = signed {
            for (name, value) in members {
                match (name.as_ref(), value) {
                    ("_type", Json::String(text)) => summary.metadata_type = Some(text.to_string()),
                    ("version", Json::Unsigned(version)) => summary.version = Some(*version),
                    ("expires", Json::String(text)) => summary.expires = Some(text.to_string()),
                    _ => {}
                }
            }
        }
        summary
    }
}

impl MetadataDocument {
    /// Parses and checks a document: a JSON object with an object `signed` that
    /// canonicalises unambiguously and (optionally) a `signatures` list of objects
    /// with a string `keyid`.
    pub fn parse(bytes: Vec<u8>) -> Result<Self> {
        let text = std::str::from_utf8(&bytes).map_err(|error| {
            Error::invalid("metadata", format!("not valid JSON: not UTF-8 ({error})"))
        })?;
        let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|error| {
            let reason = match error.classify() {
                serde_json::error::Category::Data => {
                    format!("not a TUF metadata document: {error}")
                }
                _ => format!("not valid JSON: {error}"),
            };
            Error::invalid("metadata", reason)
        })?;
        let signed = envelope
            .signed
            .ok_or_else(|| Error::invalid("metadata", "the document has no \"signed\" field"))?;
        if let Some(position) = envelope
            .signatures
            .iter()
            .position(|s| !s.get("keyid").is_some_and(Value::is_string))
        {
            return Err(Error::invalid(
                "metadata",
                format!("signatures[{position}] has no string \"keyid\""),
            ));
        }
        let mut tree = Json::parse(signed.get())
            .map_err(|error| Error::invalid("metadata", format!("not valid JSON: {error}")))?;
        if !matches!(tree, Json::Object(_)) {
            return Err(Error::invalid(
                "metadata",
                "\"signed\" is not a JSON object",
            ));
        }
        tree.canonicalize().map_err(|error| match error {
            Error::NotCanonicalizable { path, problem } => Error::NotCanonicalizable {
                path: format!("/signed{path}"),
                problem,
            },
            other => other,
        })?;
        let mut canonical_signed = Vec::with_capacity(signed.get().len());
        tree.write_canonical(&mut canonical_signed);
        let summary = MetadataSummary::of(&tree);
        let start = signed.get().as_ptr() as usize - text.as_ptr() as usize;
        let signed = start..start + signed.get().len();
        let signatures = envelope.signatures;
        Ok(MetadataDocument {
            bytes,
            signed,
            signatures,
            canonical_signed,
            summary,
        })
    }

    /// `_type`, `version` and `expires` of `signed`, for the audit log.
    pub fn summary(&self) -> &MetadataSummary {
        &self.summary
    }

    /// The canonical bytes of `signed`: what every signature covers.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.canonical_signed
    }

    /// Adds a TUF signature, replacing an earlier one by the same key.
    pub fn add_signature(&mut self, keyid: &str, sig_hex: String) {
        self.signatures
            .retain(|existing| existing["keyid"] != keyid);
        self.signatures
            .push(json!({"keyid": keyid, "sig": sig_hex}));
    }

    /// The whole document: the caller's `signed` text and the signatures.
    pub fn into_bytes(self) -> Vec<u8> {
        let signatures =
            serde_json::to_vec(&self.signatures).expect("JSON values always serialise");
        let signed = &self.bytes[self.signed];
        let mut out = Vec::with_capacity(signed.len() + signatures.len() + 32);
        out.extend_from_slice(b"{\"signed\":");
        out.extend_from_slice(signed);
        out.extend_from_slice(b",\"signatures\":");
        out.extend_from_slice(&signatures);
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(input: &str) -> String {
        MetadataDocument::parse(input.as_bytes().to_vec())
            .err()
            .unwrap()
            .to_string()
    }

    #[test]
    fn malformed_documents_are_named() {
        assert!(error_of("{not json").contains("not valid JSON"));
        assert!(error_of("[]").contains("not a TUF metadata document"));
        assert!(error_of(r#"{"signatures":[]}"#).contains("no \"signed\" field"));
        assert!(error_of(r#"{"signed":1}"#).contains("\"signed\" is not a JSON object"));
        assert!(
            error_of(r#"{"signed":{},"signatures":{}}"#).contains("not a TUF metadata document")
        );
        assert!(error_of(r#"{"signed":{},"signatures":[{}]}"#).contains("signatures[0]"));
        assert!(error_of(r#"{"signed":{},"extra":1}"#).contains("unknown field `extra`"));
        assert_eq!(
            error_of(r#"{"signed":{"version":1.0}}"#),
            "cannot canonicalise metadata at /signed/version: the number 1.0 is not an integer (canonical JSON allows integers only)"
        );
    }

    #[test]
    fn signatures_are_appended_same_key_replaced_and_signed_kept_verbatim() {
        let input = br#"{"signatures":[{"keyid":"other","sig":"00"},{"keyid":"k","sig":"old"}], "signed": {"b": 1, "a": "<&>"}}"#;
        let mut document = MetadataDocument::parse(input.to_vec()).unwrap();
        assert_eq!(document.signed_bytes(), br#"{"a":"<&>","b":1}"#);
        assert_eq!(document.summary(), &MetadataSummary::default());
        document.add_signature("k", "new".into());
        let out = document.into_bytes();
        assert!(out.starts_with(br#"{"signed":{"b": 1, "a": "<&>"},"signatures":"#));
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            out["signatures"],
            json!([{"keyid":"other","sig":"00"},{"keyid":"k","sig":"new"}])
        );
    }

    #[test]
    fn the_summary_names_type_version_and_expiry() {
        let document = MetadataDocument::parse(
            br#"{"signed":{"_type":"targets","version":7,"expires":"2030-01-01T00:00:00Z","targets":{}}}"#
                .to_vec(),
        )
        .unwrap();
        assert_eq!(
            document.summary(),
            &MetadataSummary {
                metadata_type: Some("targets".into()),
                version: Some(7),
                expires: Some("2030-01-01T00:00:00Z".into()),
            }
        );
    }
}
