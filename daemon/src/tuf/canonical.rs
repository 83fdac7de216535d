//! Canonical JSON (OLPC) as TUF signs it, fast enough for a 100k-target
//! targets.json, and the checks that keep it unambiguous.
//!
//! The two verifiers we must satisfy canonicalise slightly differently: tough's
//! `olpc-cjson` NFC-normalises strings and sorts object keys by their escaped,
//! quoted form; python-tuf's securesystemslib does neither. They agree on every
//! document except those with floats (neither allows them), non-NFC strings, or an
//! object where one key is a prefix of another that continues with a character below
//! `"` (0x22). [`Json::canonicalize`] rejects exactly those (and duplicate keys),
//! naming the JSON Pointer of the first offending value, so one signature is valid
//! for both.
//!
//! Why not serialise a `serde_json::Value` through `olpc-cjson`: its formatter
//! buffers and re-sorts every object on the way out, copying nested data once per
//! level, which dominates the cost of signing a large targets.json (see the
//! `sign_targets` benchmark). Here the document is parsed once into a tree that
//! borrows from the input, members are sorted in place, and serde_json writes it
//! out with [`CanonicalEscapes`]; the unit tests hold the output to `olpc-cjson`'s.

use crate::error::{Error, Result};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::io;
use unicode_normalization::is_nfc;

/// A JSON value that borrows its strings from the input where it can.
#[derive(Debug, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    /// Kept only so [`Json::canonicalize`] can name where it is.
    Float(f64),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// Parses JSON text, borrowing unescaped strings from `input`. Nesting deeper
    /// than serde_json's limit (128) is refused rather than risking the stack.
    pub fn parse(input: &'a str) -> serde_json::Result<Self> {
        let mut deserializer = serde_json::Deserializer::from_str(input);
        let value = Json::deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }

    /// Sorts every object's members into canonical order and rejects what cannot be
    /// canonicalised unambiguously.
    pub fn canonicalize(&mut self) -> Result<()> {
        let mut path = Vec::new();
        canonicalize_at(self, &mut path)
    }

    /// Writes canonical JSON. Call [`Json::canonicalize`] first.
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        let mut serializer = serde_json::Serializer::with_formatter(out, CanonicalEscapes);
        self.serialize(&mut serializer)
            .expect("writing to a Vec cannot fail and canonicalize rejected floats");
    }
}

/// Canonical JSON of a `serde_json::Value` (for small, trusted values such as key JSON).
pub fn canonical_bytes_of(value: &serde_json::Value) -> Result<Vec<u8>> {
    let text = value.to_string();
    let mut tree = Json::parse(&text).map_err(|error| Error::invalid("json", error.to_string()))?;
    tree.canonicalize()?;
    let mut out = Vec::with_capacity(text.len());
    tree.write_canonical(&mut out);
    Ok(out)
}

/// serde_json's compact output, except that only `"` and `\` are escaped: OLPC
/// canonical JSON writes every other character, control characters included, as is.
pub struct CanonicalEscapes;

impl serde_json::ser::Formatter for CanonicalEscapes {
    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> io::Result<()> {
        use serde_json::ser::CharEscape;
        let raw: u8 = match escape {
            CharEscape::Quote => return writer.write_all(b"\\\""),
            CharEscape::ReverseSolidus => return writer.write_all(b"\\\\"),
            CharEscape::Solidus => b'/',
            CharEscape::Backspace => 0x08,
            CharEscape::FormFeed => 0x0c,
            CharEscape::LineFeed => b'\n',
            CharEscape::CarriageReturn => b'\r',
            CharEscape::Tab => b'\t',
            CharEscape::AsciiControl(byte) => byte,
        };
        writer.write_all(&[raw])
    }
}

/// One step of the path from the document root to a value.
#[derive(Clone, Copy)]
enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

fn canonicalize_at<'p>(value: &'p mut Json<'_>, path: &mut Vec<Segment<'p>>) -> Result<()> {
    match value {
        Json::Float(number) => Err(problem(
            path,
            format!(
                "the number {number:?} is not an integer (canonical JSON allows integers only)"
            ),
        )),
        Json::String(text) if !is_nfc_fast(text) => Err(problem(
            path,
            "string is not in Unicode normalisation form NFC".into(),
        )),
        Json::Array(items) => {
            for (position, item) in items.iter_mut().enumerate() {
                path.push(Segment::Index(position));
                canonicalize_at(item, path)?;
                path.pop();
            }
            Ok(())
        }
        Json::Object(members) => {
            members.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            check_member_names(members, path)?;
            for (key, item) in members.iter_mut() {
                path.push(Segment::Key(key));
                canonicalize_at(item, path)?;
                path.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Names must be NFC and unique, and no name may be a prefix of the next one followed
/// by a byte below `"`: such a pair sorts one way raw and the other way escaped and
/// quoted. `members` is sorted, so checking neighbours suffices.
fn check_member_names(members: &[(Cow<'_, str>, Json<'_>)], path: &[Segment<'_>]) -> Result<()> {
    let at = |key: &str| {
        let mut at = path.to_vec();
        at.push(Segment::Key(key));
        json_pointer(&at)
    };
    for (key, _) in members {
        if !is_nfc_fast(key) {
            return Err(Error::NotCanonicalizable {
                path: at(key),
                problem: "object key is not in Unicode normalisation form NFC".into(),
            });
        }
    }
    for pair in members.windows(2) {
        let (shorter, longer) = (&pair[0].0, &pair[1].0);
        if shorter == longer {
            return Err(Error::NotCanonicalizable {
                path: at(longer),
                problem: "duplicate object key".into(),
            });
        }
        if longer.starts_with(shorter.as_ref()) && longer.as_bytes()[shorter.len()] < b'"' {
            return Err(Error::NotCanonicalizable {
                path: at(longer),
                problem: format!(
                    "object keys {shorter:?} and {longer:?} sort differently in the verifiers' canonical forms"
                ),
            });
        }
    }
    Ok(())
}

/// ASCII is always NFC; only other text needs the full check.
fn is_nfc_fast(text: &str) -> bool {
    text.is_ascii() || is_nfc(text)
}

fn problem(path: &[Segment<'_>], problem: String) -> Error {
    Error::NotCanonicalizable {
        path: json_pointer(path),
        problem,
    }
}

/// RFC 6901 JSON Pointer for a path of object keys / array indices.
fn json_pointer(path: &[Segment<'_>]) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.iter()
        .map(|segment| match segment {
            Segment::Key(key) => format!("/{}", key.replace('~', "~0").replace('/', "~1")),
            Segment::Index(index) => format!("/{index}"),
        })
        .collect()
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(value) => serializer.serialize_bool(*value),
            Json::Unsigned(value) => serializer.serialize_u64(*value),
            Json::Signed(value) => serializer.serialize_i64(*value),
            Json::Float(_) => Err(serde::ser::Error::custom("floats have no canonical form")),
            Json::String(text) => serializer.serialize_str(text),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, item) in members {
                    map.serialize_entry(key.as_ref(), item)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, value: bool) -> std::result::Result<Self::Value, E> {
        Ok(Json::Bool(value))
    }

    fn visit_u64<E>(self, value: u64) -> std::result::Result<Self::Value, E> {
        Ok(Json::Unsigned(value))
    }

    fn visit_i64<E>(self, value: i64) -> std::result::Result<Self::Value, E> {
        Ok(Json::Signed(value))
    }

    fn visit_f64<E>(self, value: f64) -> std::result::Result<Self::Value, E> {
        Ok(Json::Float(value))
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> std::result::Result<Self::Value, E> {
        Ok(Json::String(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> std::result::Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> std::result::Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(value)))
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(key) = map.next_key_seed(BorrowedKey)? {
            members.push((key, map.next_value()?));
        }
        Ok(Json::Object(members))
    }
}

/// Deserialises an object key, borrowing it when it has no escapes.
struct BorrowedKey;

impl<'de> DeserializeSeed<'de> for BorrowedKey {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for BorrowedKey {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> std::result::Result<Self::Value, E> {
        Ok(Cow::Borrowed(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> std::result::Result<Self::Value, E> {
        Ok(Cow::Owned(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> std::result::Result<Self::Value, E> {
        Ok(Cow::Owned(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        let mut tree = Json::parse(text).unwrap();
        tree.canonicalize().unwrap();
        let mut out = Vec::new();
        tree.write_canonical(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn olpc(text: &str) -> String {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut out = Vec::new();
        let mut serializer =
            serde_json::Serializer::with_formatter(&mut out, olpc_cjson::CanonicalFormatter::new());
        value.serialize(&mut serializer).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn error_of(text: &str) -> String {
        Json::parse(text)
            .unwrap()
            .canonicalize()
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        let text = r#"{"b": 1, "a": {"d": [1, "x", -3, true, null], "c": null}, "e": true}"#;
        assert_eq!(
            canonical(text),
            r#"{"a":{"c":null,"d":[1,"x",-3,true,null]},"b":1,"e":true}"#
        );
    }

    #[test]
    fn escapes_only_quote_and_backslash() {
        assert_eq!(
            canonical(r#"{"k": "a\"b\\c\nd\t\u0001<>&é\/"}"#),
            "{\"k\":\"a\\\"b\\\\c\nd\t\u{1}<>&é/\"}"
        );
    }

    #[test]
    fn agrees_with_olpc_cjson_on_a_tuf_document() {
        let text = r#"{"_type":"targets","spec_version":"1.0.31","version":7,"expires":"2099-01-01T00:00:00Z",
            "targets":{"pkg/a b.tar.gz":{"length":12,"hashes":{"sha256":"ab"},"custom":{"x":[1,{"z":"\n","y":"é"}]}},
            "a\\b":{"length":0,"hashes":{}}},"delegations":{"keys":{},"roles":[{"name":"r","paths":["*"],"threshold":1}]}}"#;
        assert_eq!(canonical(text), olpc(text));
    }

    #[test]
    fn floats_are_rejected_with_their_path() {
        assert_eq!(
            error_of(r#"{"targets": {"a/b": {"length": 1.5}}}"#),
            "cannot canonicalise metadata at /targets/a~1b/length: the number 1.5 is not an integer (canonical JSON allows integers only)"
        );
        assert!(error_of(r#"{"big": 100000000000000000000}"#).contains("at /big: the number 1e20"));
    }

    #[test]
    fn non_nfc_strings_and_keys_are_rejected() {
        let error = error_of("{\"x\": [1, \"e\u{0301}\"]}");
        assert!(
            error.contains("at /x/1: string is not in Unicode"),
            "{error}"
        );
        let error = error_of("{\"e\u{0301}\": 1}");
        assert!(error.contains("object key is not"), "{error}");
    }

    #[test]
    fn prefix_keys_followed_by_low_bytes_and_duplicates_are_rejected() {
        assert!(error_of(r#"{"s": {"ab": 1, "ab!": 2}}"#).contains("at /s/ab!"));
        assert!(error_of(r#"{"s": {"ab": 1, "ab": 2}}"#).contains("at /s/ab: duplicate object key"));
        assert_eq!(canonical(r#"{"abc": 2, "ab": 1}"#), r#"{"ab":1,"abc":2}"#);
    }
}
