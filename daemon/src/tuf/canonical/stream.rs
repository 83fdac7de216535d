//! Canonical JSON in one serde_json pass: the canonical form is written while the
//! input is read, with no tree. Members of an object go straight to the output; an
//! object whose keys turn out not to be in order has its members (already written
//! canonically) reordered in place once it ends, so each byte is copied at most once
//! per enclosing object that was out of order. Documents written with sorted keys
//! (python-tuf, tough) are never copied at all.
//!
//! It accepts only what [`Json::canonicalize`](super::Json::canonicalize) accepts and
//! writes exactly what [`Json::write_canonical`](super::Json::write_canonical) writes.
//! Anything it refuses (a float, a string that is not NFC, duplicate keys, keys the
//! two verifiers would order differently, invalid JSON) makes it give up, and the
//! caller runs the tree path, which names exactly what is wrong and where.

use super::{escaped_order_agrees, is_nfc_fast, BorrowedKey, CanonicalEscapes};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::ops::Range;

/// A member of the top-level object, as far as the audit summary cares.
#[derive(Debug, PartialEq)]
pub enum TopValue<'a> {
    String(Cow<'a, str>),
    Unsigned(u64),
    Other,
}

/// The members of the top-level object in canonical order.
pub type TopMembers<'a> = Vec<(Cow<'a, str>, TopValue<'a>)>;

/// Writes the canonical form of `input` to `out` and returns the members of the
/// top-level object (values other than strings and unsigned integers as
/// [`TopValue::Other`]). `None`, with `out` in an unspecified state, when `input` is
/// not a JSON object or is anything the tree path would refuse.
pub fn write_canonical_stream<'a>(input: &'a str, out: &mut Vec<u8>) -> Option<TopMembers<'a>> {
    let mut deserializer = serde_json::Deserializer::from_str(input);
    let top = CanonicalObject(out).deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(top)
}

/// Reads one JSON object from a deserializer already under way (e.g. a member of a
/// larger document) and writes its canonical form to the `Vec`, yielding its
/// top-level members as [`write_canonical_stream`] does; fails (without naming the
/// problem) where that returns `None`.
pub struct CanonicalObject<'o>(pub &'o mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for CanonicalObject<'_> {
    type Value = TopMembers<'de>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<TopMembers<'de>, D::Error> {
        let mut state = State {
            out: self.0,
            members: Vec::new(),
            scratch: Vec::new(),
            top: Some(Vec::new()),
        };
        let seen = Value {
            state: &mut state,
            keep: false,
        }
        .deserialize(deserializer)?;
        match (seen, state.top) {
            (Seen::Object, Some(top)) => Ok(top),
            _ => Err(give_up()),
        }
    }
}

/// What the pass carries from value to value.
struct State<'o, 'a> {
    out: &'o mut Vec<u8>,
    /// The members of the objects being read, innermost last: key and where the
    /// member (`"key":value`) is in `out`. Each object uses the tail past where it
    /// started and leaves the stack as it found it.
    members: Vec<(Cow<'a, str>, Range<usize>)>,
    /// Reused buffer for reordering an object's members.
    scratch: Vec<u8>,
    /// Until the top-level object has been entered: where its members' values go.
    top: Option<TopMembers<'a>>,
}

/// Why the pass gave up; never shown (the tree path names the problem).
fn give_up<E: de::Error>() -> E {
    E::custom("not canonicalisable on the streaming path")
}

/// What a value turned out to be; strings and unsigned integers only when `keep`.
enum Seen<'a> {
    Object,
    String(Cow<'a, str>),
    Unsigned(u64),
    Other,
}

impl<'a> Seen<'a> {
    fn into_top(self) -> TopValue<'a> {
        match self {
            Seen::String(text) => TopValue::String(text),
            Seen::Unsigned(number) => TopValue::Unsigned(number),
            Seen::Object | Seen::Other => TopValue::Other,
        }
    }
}

/// Reads one value and writes it canonically. `keep`: the value is a member of the
/// top-level object, so an escaped string is kept for the summary.
struct Value<'s, 'o, 'a> {
    state: &'s mut State<'o, 'a>,
    keep: bool,
}

impl<'de> DeserializeSeed<'de> for Value<'_, '_, 'de> {
    type Value = Seen<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Seen<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn write_str<E: de::Error>(out: &mut Vec<u8>, text: &str) -> Result<(), E> {
    if !is_nfc_fast(text) {
        return Err(give_up());
    }
    // Canonical JSON escapes only `"` and `\`: without them the string is written
    // as is, which is what the serializer below would write, byte for byte.
    if !text.bytes().any(|byte| byte == b'"' || byte == b'\\') {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return Ok(());
    }
    let mut serializer = serde_json::Serializer::with_formatter(out, CanonicalEscapes);
    serde::Serializer::serialize_str(&mut serializer, text).map_err(|_| give_up::<E>())
}

impl<'de> Visitor<'de> for Value<'_, '_, 'de> {
    type Value = Seen<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Seen<'de>, E> {
        self.state.out.extend_from_slice(b"null");
        Ok(Seen::Other)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Seen<'de>, E> {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.state.out.extend_from_slice(text);
        Ok(Seen::Other)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Seen<'de>, E> {
        write!(self.state.out, "{value}").map_err(|_| give_up::<E>())?;
        Ok(Seen::Unsigned(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Seen<'de>, E> {
        write!(self.state.out, "{value}").map_err(|_| give_up::<E>())?;
        Ok(Seen::Other)
    }

    fn visit_f64<E: de::Error>(self, _value: f64) -> Result<Seen<'de>, E> {
        Err(give_up())
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Seen<'de>, E> {
        write_str(self.state.out, value)?;
        Ok(Seen::String(Cow::Borrowed(value)))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Seen<'de>, E> {
        write_str(self.state.out, value)?;
        Ok(if self.keep {
            Seen::String(Cow::Owned(value.to_owned()))
        } else {
            Seen::Other
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Seen<'de>, A::Error> {
        let state = self.state;
        state.top = None;
        state.out.push(b'[');
        let mut first = true;
        loop {
            if !first {
                state.out.push(b',');
            }
            let item = Value {
                state: &mut *state,
                keep: false,
            };
            if seq.next_element_seed(item)?.is_none() {
                if !first {
                    // The comma written before finding the end.
                    state.out.pop();
                }
                break;
            }
            first = false;
        }
        state.out.push(b']');
        Ok(Seen::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Seen<'de>, A::Error> {
        let state = self.state;
        let mut top = state.top.take();
        let base = state.members.len();
        let body_start = state.out.len() + 1;
        state.out.push(b'{');
        let mut in_order = true;
        while let Some(key) = map.next_key_seed(BorrowedKey)? {
            if let Some((previous, _)) = state.members[base..].last() {
                in_order &= previous.as_bytes() < key.as_bytes();
                state.out.push(b',');
            }
            let member_start = state.out.len();
            write_str(state.out, &key)?;
            state.out.push(b':');
            let value = Value {
                state: &mut *state,
                keep: top.is_some(),
            };
            let seen = map.next_value_seed(value)?;
            if let Some(top) = top.as_mut() {
                top.push((key.clone(), seen.into_top()));
            }
            let member = member_start..state.out.len();
            state.members.push((key, member));
        }
        if !in_order {
            reorder(state, base, body_start).map_err(|()| give_up::<A::Error>())?;
            if let Some(top) = top.as_mut() {
                top.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            }
        }
        check_member_names(&state.members[base..]).map_err(|()| give_up::<A::Error>())?;
        state.members.truncate(base);
        state.out.push(b'}');
        state.top = top;
        Ok(Seen::Object)
    }
}

/// Puts the members of the object that started at `body_start` (past its `{`),
/// listed in `state.members[base..]`, into raw key order in `state.out`.
fn reorder(state: &mut State<'_, '_>, base: usize, body_start: usize) -> Result<(), ()> {
    let members = &mut state.members[base..];
    members.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
    state.scratch.clear();
    state.scratch.extend_from_slice(&state.out[body_start..]);
    state.out.truncate(body_start);
    for (position, (_, member)) in members.iter_mut().enumerate() {
        if position > 0 {
            state.out.push(b',');
        }
        let start = state.out.len();
        let text = state
            .scratch
            .get(member.start - body_start..member.end - body_start)
            .ok_or(())?;
        state.out.extend_from_slice(text);
        *member = start..state.out.len();
    }
    Ok(())
}

/// The members (in raw key order) have unique keys, and escaped and quoted the keys
/// are in the same order (see the parent module's doc: adjacent pairs decide).
/// Keys were checked for NFC when written.
fn check_member_names(members: &[(Cow<'_, str>, Range<usize>)]) -> Result<(), ()> {
    for pair in members.windows(2) {
        let (lower, higher) = (&pair[0].0, &pair[1].0);
        if lower.as_bytes() >= higher.as_bytes()
            || !escaped_order_agrees(lower.as_bytes(), higher.as_bytes())
        {
            return Err(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Json;
    use super::*;

    fn tree_path(text: &str) -> Option<String> {
        let mut tree = Json::parse(text).ok()?;
        tree.canonicalize().ok()?;
        let mut out = Vec::new();
        tree.write_canonical(&mut out);
        Some(String::from_utf8(out).unwrap())
    }

    fn stream_path(text: &str) -> Option<String> {
        let mut out = Vec::new();
        write_canonical_stream(text, &mut out)?;
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn objects_come_out_exactly_as_the_tree_path_writes_them() {
        for text in [
            r#"{}"#,
            r#"{"a": [], "b": {}, "c": [1, -2, true, false, null, "x"]}"#,
            r#"{"c": [{"z": 1, "y": [{"q": 1, "p": 2}]}, 2], "b": {"d": {}, "a": []}, "a": 0}"#,
            r#"{"b": 1, "a": {"d": [1, "x", -3, true, null], "c": null}, "e": true}"#,
            "{\"a\": \"tab\\there \\\"q\\\" back\\\\slash \\u00e9 /\\/\", \"b\": [[], [{}]]}",
            r#"{"version": 7, "expires": "2030-01-01T00:00:00Z", "_type": "targets"}"#,
            "{\"\u{65e5}\": 2, \"\\u00e9\": 1}",
            r#"{"b": -9223372036854775808, "a": 18446744073709551615}"#,
            // Keys whose raw and escaped orders agree although one holds a quote.
            "{\"a\\\"\": 1, \"a!\": 2}",
        ] {
            let expected = tree_path(text);
            assert!(expected.is_some(), "{text}");
            assert_eq!(stream_path(text), expected, "{text}");
        }
    }

    #[test]
    fn what_the_tree_path_refuses_is_refused() {
        for text in [
            r#"{"a": 1, "a": 2}"#,
            r#"{"b": {"a": 1, "c": 3, "a": 2}}"#,
            r#"{"a": 1.0}"#,
            r#"{"a": -0}"#,
            r#"{"a": [1e3]}"#,
            "{\"a\": \"e\u{301}\"}",
            "{\"e\u{301}\": 1}",
            // Sorted raw, but olpc-cjson's escaped order differs.
            "{\"a\\\"\": 1, \"a#\": 2}",
            r#"{"a": 1} x"#,
            r#"{"a": 1"#,
        ] {
            assert_eq!(stream_path(text), None, "{text}");
            assert_eq!(tree_path(text), None, "{text}");
        }
        for not_an_object in [r#"[{"a": 1}]"#, r#""text""#, "7"] {
            assert_eq!(stream_path(not_an_object), None, "{not_an_object}");
        }
    }

    #[test]
    fn the_top_level_members_are_reported_in_canonical_order() {
        let mut out = Vec::new();
        let top = write_canonical_stream(
            r#"{"version": 7, "targets": {"x": {"b": "y", "a": "z"}}, "_type": "t\u0061rgets", "expires": "2030"}"#,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            top,
            vec![
                ("_type".into(), TopValue::String("targets".into())),
                ("expires".into(), TopValue::String("2030".into())),
                ("targets".into(), TopValue::Other),
                ("version".into(), TopValue::Unsigned(7)),
            ]
        );
    }
}
