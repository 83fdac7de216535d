//! Canonical JSON (OLPC) as TUF signs it, and the check that keeps it unambiguous.
//!
//! The two verifiers we must satisfy canonicalise slightly differently: tough's
//! `olpc-cjson` NFC-normalises strings and sorts object keys by their escaped,
//! quoted form; python-tuf's securesystemslib does neither. They agree on every
//! document except those with floats (neither allows them), non-NFC strings, or an
//! object where one key is a prefix of another that continues with a character below
//! `"` (0x22). [`check`] rejects exactly those, naming the JSON Pointer of the first
//! offending value, so one signature is valid for both.

use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::Value;
use unicode_normalization::is_nfc;

/// Rejects values that would not canonicalise identically everywhere.
pub fn check(value: &Value) -> Result<()> {
    let mut path = Vec::new();
    check_at(value, &mut path)
}

/// Serialises `value` as canonical JSON. Call [`check`] first.
pub fn to_canonical_bytes(value: &Value) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(4096);
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut bytes, olpc_cjson::CanonicalFormatter::new());
    value
        .serialize(&mut serializer)
        .map_err(|error| Error::NotCanonicalizable {
            path: "/".into(),
            problem: error.to_string(),
        })?;
    Ok(bytes)
}

/// One step of the path from the document root to a value.
#[derive(Clone, Copy)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn check_at<'a>(value: &'a Value, path: &mut Vec<Segment<'a>>) -> Result<()> {
    match value {
        Value::Number(number) if !(number.is_i64() || number.is_u64()) => Err(problem(
            path,
            format!("the number {number} is not an integer (canonical JSON allows integers only)"),
        )),
        Value::String(text) if !is_nfc(text) => Err(problem(
            path,
            "string is not in Unicode normalisation form NFC".into(),
        )),
        Value::Array(items) => {
            for (position, item) in items.iter().enumerate() {
                path.push(Segment::Index(position));
                check_at(item, path)?;
                path.pop();
            }
            Ok(())
        }
        Value::Object(map) => {
            check_key_order(map.keys().map(String::as_str), path)?;
            for (key, item) in map {
                path.push(Segment::Key(key));
                if !is_nfc(key) {
                    return Err(problem(
                        path,
                        "object key is not in Unicode normalisation form NFC".into(),
                    ));
                }
                check_at(item, path)?;
                path.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A key that is a prefix of another continuing with a byte below `"` sorts one way
/// raw and the other way escaped-and-quoted. Only keys holding such a byte can be
/// involved, so the common case costs one scan.
fn check_key_order<'a>(
    keys: impl Iterator<Item = &'a str> + Clone,
    path: &[Segment<'a>],
) -> Result<()> {
    if !keys.clone().any(|key| key.bytes().any(|byte| byte < b'"')) {
        return Ok(());
    }
    let mut sorted: Vec<&str> = keys.collect();
    sorted.sort_unstable();
    for pair in sorted.windows(2) {
        let (shorter, longer) = (pair[0], pair[1]);
        if longer.starts_with(shorter) && longer.as_bytes()[shorter.len()] < b'"' {
            let mut at = path.to_vec();
            at.push(Segment::Key(longer));
            return Err(problem(
                &at,
                format!("object keys {shorter:?} and {longer:?} sort differently in the verifiers' canonical forms"),
            ));
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canonical(value: Value) -> String {
        check(&value).unwrap();
        String::from_utf8(to_canonical_bytes(&value).unwrap()).unwrap()
    }

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        let value = json!({"b": 1, "a": {"d": [1, "x"], "c": null}, "e": true});
        assert_eq!(
            canonical(value),
            r#"{"a":{"c":null,"d":[1,"x"]},"b":1,"e":true}"#
        );
    }

    #[test]
    fn escapes_only_quote_and_backslash() {
        let value = json!({"k": "a\"b\\c\nd<>&é"});
        assert_eq!(canonical(value), "{\"k\":\"a\\\"b\\\\c\nd<>&é\"}");
    }

    #[test]
    fn floats_are_rejected_with_their_path() {
        let error = check(&json!({"signed": {"targets": {"a/b": {"length": 1.5}}}})).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot canonicalise metadata at /signed/targets/a~1b/length: the number 1.5 is not an integer (canonical JSON allows integers only)"
        );
    }

    #[test]
    fn non_nfc_strings_and_keys_are_rejected() {
        let decomposed = "e\u{0301}";
        let error = check(&json!({"signed": {"x": [1, decomposed]}})).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("at /signed/x/1: string is not in Unicode"),
            "{error}"
        );
        let error = check(&json!({"signed": {decomposed: 1}})).unwrap_err();
        assert!(error.to_string().contains("object key is not"), "{error}");
    }

    #[test]
    fn prefix_keys_followed_by_low_bytes_are_rejected() {
        let error = check(&json!({"signed": {"ab": 1, "ab!": 2}})).unwrap_err();
        assert!(error.to_string().contains("at /signed/ab!"), "{error}");
        // A prefix followed by an ordinary character is fine.
        check(&json!({"signed": {"ab": 1, "abc": 2}})).unwrap();
    }
}
