//! A TUF metadata document `{"signed": ..., "signatures": [...]}` being signed.
//!
//! `signed` is parsed once (borrowing from the request), checked and canonicalised
//! to compute the digest; the document that goes back is the caller's own `signed`
//! text, byte for byte, followed by the updated signature list. Or, when the caller
//! keeps its text, only a [`Splice`]: the new signature list and where it goes; then
//! ([`MetadataDocument::parse_for_splice`]) `signed` is canonicalised during the one
//! pass over the document, since its text is not needed again.

use super::canonical::{write_canonical_stream, CanonicalObject, Json, TopMembers, TopValue};
use crate::error::{Error, Result};
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// The top level of a metadata document.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    signed: Option<&'a RawValue>,
    /// Kept as text so a [`Splice`] can say where it is; `null` is refused below.
    #[serde(borrow, default, deserialize_with = "present")]
    signatures: Option<&'a RawValue>,
}

/// A member that is present, whatever its value (`Option` alone would read `null`
/// as absent).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// The envelope read in one pass with `signed` canonicalised on the way
/// ([`MetadataDocument::parse_for_splice`]). Fails, without saying why, on anything
/// [`MetadataDocument::parse`] would refuse or must look at more closely.
struct OnePassEnvelope<'o> {
    canonical: &'o mut Vec<u8>,
}

/// What the one pass found: `signed`'s top-level members and the signature list.
struct OnePass<'a> {
    signed: TopMembers<'a>,
    signatures: Option<&'a RawValue>,
}

impl<'de> DeserializeSeed<'de> for OnePassEnvelope<'_> {
    type Value = OnePass<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<OnePass<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OnePassEnvelope<'_> {
    type Value = OnePass<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TUF metadata document")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<OnePass<'de>, A::Error> {
        let mut signed = None;
        let mut signatures = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "signed" if signed.is_none() => {
                    signed = Some(map.next_value_seed(CanonicalObject(&mut *self.canonical))?);
                }
                "signatures" if signatures.is_none() => {
                    signatures = Some(map.next_value::<&RawValue>()?);
                }
                _ => return Err(de::Error::custom("left to the two-pass parse")),
            }
        }
        let signed = signed.ok_or_else(|| de::Error::custom("left to the two-pass parse"))?;
        Ok(OnePass { signed, signatures })
    }
}

/// What [`MetadataDocument::one_pass`] learns, all owned.
struct OnePassParts {
    canonical_signed: Vec<u8>,
    summary: MetadataSummary,
    signatures: Vec<Value>,
    signatures_at: Option<Range<usize>>,
    closing_brace: usize,
}

/// How to turn the caller's document into the signed one without sending it back:
/// replace `bytes[range]` with `text`.
#[derive(Debug, PartialEq, Eq)]
pub struct Splice {
    pub range: Range<usize>,
    pub text: Vec<u8>,
}

/// A parsed metadata document whose `signed` part is ready to be signed.
pub struct MetadataDocument {
    bytes: Vec<u8>,
    /// Where the text of `signed` is inside `bytes`.
    /// Where the text of `signed` is inside `bytes`; `None` when parsed for a splice.
    signed: Option<Range<usize>>,
    /// Where the `signatures` array is inside `bytes`; `None` if there is none.
    signatures_at: Option<Range<usize>>,
    /// Where the closing brace of the document is inside `bytes`.
    closing_brace: usize,
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
    fn of_members(members: TopMembers<'_>) -> Self {
        let mut summary = MetadataSummary::default();
        for (name, value) in members {
            match (name.as_ref(), value) {
                ("_type", TopValue::String(text)) => {
                    summary.metadata_type = Some(text.into_owned())
                }
                ("version", TopValue::Unsigned(version)) => summary.version = Some(version),
                ("expires", TopValue::String(text)) => summary.expires = Some(text.into_owned()),
                _ => {}
            }
        }
        summary
    }

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

/// Where the envelope's closing brace is: serde_json accepted `text`, so it ends
/// with that `}` and JSON whitespace.
fn closing_brace_of(text: &str) -> usize {
    text.trim_end_matches([' ', '\t', '\n', '\r'])
        .len()
        .saturating_sub(1)
}

/// The general path: parse `signed` into a tree, sort it and write it canonically,
/// naming what cannot be canonicalised (documents not already in canonical order,
/// and every refusal, come here).
fn canonicalize_tree(signed: &str, out: &mut Vec<u8>) -> Result<MetadataSummary> {
    let mut tree = Json::parse(signed)
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
    tree.write_canonical(out);
    Ok(MetadataSummary::of(&tree))
}

impl MetadataDocument {
    /// Parses and checks a document: a JSON object with an object `signed` that
    /// canonicalises unambiguously and (optionally) a `signatures` list of objects
    /// with a string `keyid`.
    pub fn parse(bytes: Vec<u8>) -> Result<Self> {
        let text = std::str::from_utf8(&bytes).map_err(|error| {
            Error::invalid("metadata", format!("not valid JSON: not UTF-8 ({error})"))
        })?;
        let not_metadata = |error: serde_json::Error| {
            let reason = match error.classify() {
                serde_json::error::Category::Data => {
                    format!("not a TUF metadata document: {error}")
                }
                _ => format!("not valid JSON: {error}"),
            };
            Error::invalid("metadata", reason)
        };
        let envelope: Envelope<'_> = serde_json::from_str(text).map_err(not_metadata)?;
        let signed = envelope
            .signed
            .ok_or_else(|| Error::invalid("metadata", "the document has no \"signed\" field"))?;
        let signatures: Vec<Value> = match envelope.signatures {
            Some(raw) => serde_json::from_str(raw.get()).map_err(not_metadata)?,
            None => Vec::new(),
        };
        let offset_of = |raw: &RawValue| raw.get().as_ptr() as usize - text.as_ptr() as usize;
        let signatures_at = envelope.signatures.map(|raw| {
            let start = offset_of(raw);
            start..start + raw.get().len()
        });
        let closing_brace = closing_brace_of(text);
        if let Some(position) = signatures
            .iter()
            .position(|s| !s.get("keyid").is_some_and(Value::is_string))
        {
            return Err(Error::invalid(
                "metadata",
                format!("signatures[{position}] has no string \"keyid\""),
            ));
        }
        let mut canonical_signed = Vec::with_capacity(signed.get().len());
        let summary = match write_canonical_stream(signed.get(), &mut canonical_signed) {
            Some(members) => MetadataSummary::of_members(members),
            None => {
                canonical_signed.clear();
                canonicalize_tree(signed.get(), &mut canonical_signed)?
            }
        };
        let start = offset_of(signed);
        let signed = Some(start..start + signed.get().len());
        Ok(MetadataDocument {
            bytes,
            signed,
            signatures_at,
            closing_brace,
            signatures,
            canonical_signed,
            summary,
        })
    }

    /// [`MetadataDocument::parse`] for a caller that gets only a [`Splice`] back: the
    /// same checks and the same canonical bytes, but `signed` is canonicalised while
    /// the document is read, in one pass. Anything unusual (an error, a duplicate or
    /// unknown member, a value the streaming canonicaliser leaves to the tree) goes
    /// through [`MetadataDocument::parse`], which decides and names the problem.
    pub fn parse_for_splice(bytes: Vec<u8>) -> Result<Self> {
        let Some(parts) = Self::one_pass(&bytes) else {
            return Self::parse(bytes);
        };
        Ok(MetadataDocument {
            bytes,
            signed: None,
            signatures_at: parts.signatures_at,
            closing_brace: parts.closing_brace,
            signatures: parts.signatures,
            canonical_signed: parts.canonical_signed,
            summary: parts.summary,
        })
    }

    /// The one pass of [`MetadataDocument::parse_for_splice`]; `None`: leave it to
    /// [`MetadataDocument::parse`].
    fn one_pass(bytes: &[u8]) -> Option<OnePassParts> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut canonical = Vec::with_capacity(bytes.len());
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let pass = OnePassEnvelope {
            canonical: &mut canonical,
        }
        .deserialize(&mut deserializer)
        .ok()?;
        deserializer.end().ok()?;
        let signatures: Vec<Value> = match pass.signatures {
            Some(raw) => serde_json::from_str(raw.get()).ok()?,
            None => Vec::new(),
        };
        if !signatures
            .iter()
            .all(|s| s.get("keyid").is_some_and(Value::is_string))
        {
            return None;
        }
        let signatures_at = pass.signatures.map(|raw| {
            let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
            start..start + raw.get().len()
        });
        Some(OnePassParts {
            canonical_signed: canonical,
            summary: MetadataSummary::of_members(pass.signed),
            signatures,
            signatures_at,
            closing_brace: closing_brace_of(text),
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

    /// The edit that turns the caller's document into the signed one: its
    /// `signatures` array replaced by the updated list, or, without one, the list
    /// inserted as the last member. Everything else stays as the caller wrote it.
    pub fn into_splice(self) -> Splice {
        self.splice()
    }

    fn splice(&self) -> Splice {
        let signatures =
            serde_json::to_vec(&self.signatures).expect("JSON values always serialise");
        match self.signatures_at.clone() {
            Some(range) => Splice {
                range,
                text: signatures,
            },
            None => {
                let mut text = Vec::with_capacity(signatures.len() + 16);
                text.extend_from_slice(b",\"signatures\":");
                text.extend_from_slice(&signatures);
                Splice {
                    range: self.closing_brace..self.closing_brace,
                    text,
                }
            }
        }
    }

    /// The whole document: the caller's `signed` text and the signatures (parsed
    /// for a splice: the caller's text with the splice applied).
    pub fn into_bytes(self) -> Vec<u8> {
        let Some(signed) = self.signed.clone() else {
            let splice = self.splice();
            let mut out = self.bytes;
            out.splice(splice.range, splice.text);
            return out;
        };
        let signatures =
            serde_json::to_vec(&self.signatures).expect("JSON values always serialise");
        let signed = &self.bytes[signed];
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

    fn spliced(input: &[u8], keyid: &str) -> Vec<u8> {
        let mut document = MetadataDocument::parse(input.to_vec()).unwrap();
        document.add_signature(keyid, "new".into());
        let splice = document.into_splice();
        let mut out = input[..splice.range.start].to_vec();
        out.extend_from_slice(&splice.text);
        out.extend_from_slice(&input[splice.range.end..]);
        out
    }

    #[test]
    fn a_splice_replaces_only_the_signature_list() {
        let input = b"{\n \"signatures\": [{\"keyid\": \"other\", \"sig\": \"00\"}, {\"keyid\": \"k\", \"sig\": \"old\"}],\n \"signed\": {\"b\": 1}\n}\n";
        assert_eq!(
            String::from_utf8(spliced(input, "k")).unwrap(),
            "{\n \"signatures\": [{\"keyid\":\"other\",\"sig\":\"00\"},{\"keyid\":\"k\",\"sig\":\"new\"}],\n \"signed\": {\"b\": 1}\n}\n"
        );
    }

    #[test]
    fn a_splice_adds_a_missing_signature_list_before_the_closing_brace() {
        let input = b"{ \"signed\": {\"b\": 1} }\r\n\t ";
        assert_eq!(
            String::from_utf8(spliced(input, "k")).unwrap(),
            "{ \"signed\": {\"b\": 1} ,\"signatures\":[{\"keyid\":\"k\",\"sig\":\"new\"}]}\r\n\t "
        );
    }

    #[test]
    fn the_one_pass_parse_agrees_with_the_two_pass_parse() {
        let sig = r#"{"keyid":"other","sig":"00"}"#;
        for input in [
            format!(
                r#"{{"signatures":[{sig}],"signed":{{"version":2,"_type":"root","x":{{"b":[1,{{"d":1,"c":2}}],"a":null}}}}}}"#
            ),
            format!(
                r#" {{ "signed" : {{"expires":"2030","ab":"é"}} , "signatures" : [ {sig} ] }} "#
            ),
            r#"{"signed":{}}"#.to_owned(),
        ] {
            let two = MetadataDocument::parse(input.as_bytes().to_vec()).unwrap();
            let one = MetadataDocument::parse_for_splice(input.as_bytes().to_vec()).unwrap();
            assert!(one.signed.is_none(), "{input}: took the one-pass path");
            assert_eq!(one.signed_bytes(), two.signed_bytes(), "{input}");
            assert_eq!(one.summary(), two.summary(), "{input}");
            assert_eq!(one.into_splice(), two.into_splice(), "{input}");
        }
    }

    #[test]
    fn the_one_pass_parse_leaves_refusals_to_the_two_pass_parse() {
        for input in [
            r#"{"signed":{"version":1.0}}"#,
            r#"{"signed":{},"signed":{}}"#,
            r#"{"signed":{},"extra":1}"#,
            r#"{"signatures":[]}"#,
            r#"{"signed":[]}"#,
            r#"{"signed":{},"signatures":[{}]}"#,
            r#"{"signed":{},"signatures":null}"#,
            r#"{"signed":{"a":1,"a":2}}"#,
            r#"{"signed":{}} trailing"#,
        ] {
            let one = MetadataDocument::parse_for_splice(input.as_bytes().to_vec())
                .err()
                .unwrap()
                .to_string();
            assert_eq!(one, error_of(input), "{input}");
        }
        // Members out of order are reordered on the one pass, not refused.
        let input = br#"{"signed":{"b":1,"a":2},"signatures":[]}"#;
        let document = MetadataDocument::parse_for_splice(input.to_vec()).unwrap();
        assert!(document.signed.is_none());
        assert_eq!(document.signed_bytes(), br#"{"a":2,"b":1}"#);
    }

    #[test]
    fn a_null_signature_list_is_refused() {
        assert!(
            error_of(r#"{"signed":{},"signatures":null}"#).contains("not a TUF metadata document")
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
