//! A TUF metadata document `{"signed": ..., "signatures": [...]}` being signed.

use super::canonical;
use crate::error::{Error, Result};
use serde_json::{json, Map, Value};

/// A parsed metadata document whose `signed` part is ready to be signed.
pub struct MetadataDocument {
    top: Map<String, Value>,
}

impl MetadataDocument {
    /// Parses and checks a document: JSON object, `signed` an object that
    /// canonicalises unambiguously, `signatures` (if present) a list of objects.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|error| Error::invalid("metadata", format!("not valid JSON: {error}")))?;
        let Value::Object(mut top) = value else {
            return Err(Error::invalid(
                "metadata",
                "the document is not a JSON object",
            ));
        };
        match top.get("signed") {
            Some(Value::Object(_)) => {}
            Some(_) => {
                return Err(Error::invalid(
                    "metadata",
                    "\"signed\" is not a JSON object",
                ))
            }
            None => {
                return Err(Error::invalid(
                    "metadata",
                    "the document has no \"signed\" field",
                ))
            }
        }
        match top.entry("signatures").or_insert_with(|| json!([])) {
            Value::Array(signatures) => {
                if let Some(position) = signatures
                    .iter()
                    .position(|s| !s.get("keyid").is_some_and(Value::is_string))
                {
                    return Err(Error::invalid(
                        "metadata",
                        format!("signatures[{position}] has no string \"keyid\""),
                    ));
                }
            }
            _ => {
                return Err(Error::invalid(
                    "metadata",
                    "\"signatures\" is not a JSON array",
                ))
            }
        }
        canonical::check(&top["signed"]).map_err(|error| match error {
            Error::NotCanonicalizable { path, problem } => Error::NotCanonicalizable {
                path: format!("/signed{}", path.trim_end_matches('/')),
                problem,
            },
            other => other,
        })?;
        Ok(MetadataDocument { top })
    }

    /// The canonical bytes of `signed`: what every signature covers.
    pub fn signed_bytes(&self) -> Result<Vec<u8>> {
        canonical::to_canonical_bytes(&self.top["signed"])
    }

    /// Adds a TUF signature, replacing an earlier one by the same key.
    pub fn add_signature(&mut self, keyid: &str, sig_hex: String) {
        let Some(Value::Array(signatures)) = self.top.get_mut("signatures") else {
            unreachable!("parse guarantees a signatures array");
        };
        signatures.retain(|existing| existing["keyid"] != keyid);
        signatures.push(json!({"keyid": keyid, "sig": sig_hex}));
    }

    /// The whole document as compact JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.top).expect("a JSON value always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(input: &str) -> String {
        MetadataDocument::parse(input.as_bytes())
            .err()
            .unwrap()
            .to_string()
    }

    #[test]
    fn malformed_documents_are_named() {
        assert!(error_of("{not json").contains("not valid JSON"));
        assert!(error_of("[]").contains("not a JSON object"));
        assert!(error_of(r#"{"signatures":[]}"#).contains("no \"signed\" field"));
        assert!(error_of(r#"{"signed":1}"#).contains("\"signed\" is not a JSON object"));
        assert!(error_of(r#"{"signed":{},"signatures":{}}"#).contains("not a JSON array"));
        assert!(error_of(r#"{"signed":{},"signatures":[{}]}"#).contains("signatures[0]"));
        assert_eq!(
            error_of(r#"{"signed":{"version":1.0}}"#),
            "cannot canonicalise metadata at /signed/version: the number 1.0 is not an integer (canonical JSON allows integers only)"
        );
    }

    #[test]
    fn signatures_are_appended_and_same_key_replaced() {
        let mut document = MetadataDocument::parse(
            br#"{"signed":{"b":1,"a":2},"signatures":[{"keyid":"other","sig":"00"},{"keyid":"k","sig":"old"}]}"#,
        )
        .unwrap();
        assert_eq!(document.signed_bytes().unwrap(), br#"{"a":2,"b":1}"#);
        document.add_signature("k", "new".into());
        let out: Value = serde_json::from_slice(&document.to_bytes()).unwrap();
        assert_eq!(
            out["signatures"],
            json!([{"keyid":"other","sig":"00"},{"keyid":"k","sig":"new"}])
        );
    }
}
