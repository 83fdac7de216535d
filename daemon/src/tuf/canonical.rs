//! Canonical JSON (OLPC) as TUF signs it, fast enough for a 100k-target
//! targets.json, and the checks that keep it unambiguous.
//!
//! The two verifiers we must satisfy canonicalise slightly differently. tough's
//! `olpc-cjson` NFC-normalises strings, refuses floats, and sorts object keys by
//! their escaped, quoted bytes (only `"` and `\` are escaped, as `\"` and `\\`).
//! python-tuf's securesystemslib (`encode_canonical`) does not normalise, refuses
//! floats, and sorts keys by the raw string (code point order, which is UTF-8 byte
//! order). [`Json::canonicalize`] sorts raw and refuses, naming the JSON Pointer
//! (RFC 6901; the root is the empty pointer) of the first offending value:
//!
//! - a number that is not an integer in `i64`/`u64` (serde_json reads larger
//!   integers and `-0` as floats, so olpc-cjson refuses them too);
//! - a string or key that is not NFC (the two outputs would differ);
//! - an object whose keys sort differently in the two orders. The rule is exact:
//!   two total orders on a set differ iff some neighbours in one are inverted in the
//!   other, so each adjacent pair in raw order is compared escaped and quoted. That
//!   happens iff, at the first byte where the keys differ, the smaller key has `"`
//!   and the larger a byte in `#`..=`[` (0x23..=0x5b), or the smaller key ends
//!   and the larger continues with a byte below `"` (a control character or `!`).
//!
//! Duplicate keys are also refused, although both verifiers would keep the last one:
//! a documented superset, because other JSON readers keep the first and so would
//! see a different document than the one that was signed.
//! Every other document is written byte for byte as both verifiers write it (proved
//! by the differential test `tests/tests/canonical_differential.rs`), so one
//! signature is valid for both.
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

/// Names must be NFC and unique, and sorted raw they must also be sorted escaped and
/// quoted (see the module doc). `members` is sorted raw, so checking neighbours is
/// exact: two total orders agree iff no adjacent pair of one is inverted in the other.
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
        let (lower, higher) = (&pair[0].0, &pair[1].0);
        if lower == higher {
            return Err(Error::NotCanonicalizable {
                path: at(higher),
                problem: "duplicate object key".into(),
            });
        }
        if !escaped_order_agrees(lower.as_bytes(), higher.as_bytes()) {
            return Err(Error::NotCanonicalizable {
                path: at(higher),
                problem: format!(
                    "object keys {lower:?} and {higher:?} sort differently in the verifiers' canonical forms \
                     (securesystemslib sorts raw strings, olpc-cjson escaped ones); rename one of them"
                ),
            });
        }
    }
    Ok(())
}

/// For keys with `lower < higher` in raw byte order: whether olpc-cjson's order
/// ([`escaped_quoted`]) agrees. The rule of the module doc, decided at the first
/// byte where the keys differ, without building either escaped form (a targets.json
/// compares hundreds of thousands of keys).
fn escaped_order_agrees(lower: &[u8], higher: &[u8]) -> bool {
    let common = lower.iter().zip(higher).take_while(|(a, b)| a == b).count();
    match (lower.get(common), higher.get(common)) {
        (Some(&a), Some(&b)) => !(a == b'"' && (0x23..=0x5b).contains(&b)),
        (None, Some(&b)) => b >= b'"',
        // Not `lower < higher`: equal keys are a duplicate, never "agreeing".
        _ => false,
    }
}

/// The bytes olpc-cjson sorts a key by, after the opening quote they all share: the
/// key with `"` and `\` escaped, then the closing quote. Yields them without
/// allocating.
#[cfg(test)]
fn escaped_quoted(key: &str) -> impl Iterator<Item = u8> + '_ {
    key.bytes()
        .flat_map(|byte| {
            let escaped = matches!(byte, b'"' | b'\\');
            [b'\\', byte].into_iter().skip(usize::from(!escaped))
        })
        .chain(std::iter::once(b'"'))
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

/// RFC 6901 JSON Pointer for a path of object keys / array indices (`""` is the root).
fn json_pointer(path: &[Segment<'_>]) -> String {
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

mod stream;
pub use stream::{write_canonical_stream, CanonicalObject, TopMembers, TopValue};

#[cfg(test)]
mod tests;
