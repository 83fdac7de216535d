use super::*;
use std::cmp::Ordering;

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

/// Keys the old rule (prefix + byte below `"`) let through although olpc-cjson and
/// securesystemslib order them differently.
#[test]
fn keys_first_differing_at_a_quote_against_hash_to_bracket_are_rejected() {
    for (lower, higher) in [("a\"b", "a#b"), ("\"", "A"), ("x\"", "x["), ("\"", "#")] {
        let text = serde_json::json!({ "s": { lower: 1, higher: 2 } }).to_string();
        let error = error_of(&text);
        let pointer = format!("/s/{}", higher.replace('~', "~0").replace('/', "~1"));
        assert!(
            error.contains(&format!("at {pointer}: object keys"))
                && error.contains("sort differently"),
            "{lower:?} vs {higher:?}: {error}"
        );
    }
}

#[test]
fn keys_ordered_alike_both_ways_are_accepted_as_olpc_writes_them() {
    for (lower, higher) in [
        ("\"", "\\"),
        ("\"", "]"),
        ("\"", "a"),
        ("!", "\""),
        ("\\", "a"),
        ("a", "a\""),
        ("a", "a\\"),
        ("a", "a\""),
        ("a\"", "a\"\""),
        ("a", "a\"b"),
        ("a", "a#"),
        ("é", "é\""),
    ] {
        let text = serde_json::json!({ higher: 2, lower: 1 }).to_string();
        assert_eq!(canonical(&text), olpc(&text), "{lower:?} vs {higher:?}");
    }
}

#[test]
fn escaped_quoted_is_the_olpc_sort_key() {
    for key in ["", "a", "\"", "\\", "a\"b\\c", "\u{1}é😀"] {
        let expected = format!("{}\"", key.replace('\\', "\\\\").replace('"', "\\\""));
        assert_eq!(
            escaped_quoted(key).collect::<Vec<u8>>(),
            expected.as_bytes(),
            "{key:?}"
        );
    }
}

#[test]
fn the_root_is_the_empty_pointer_and_an_empty_key_is_slash() {
    assert_eq!(
        error_of("1.5"),
        "cannot canonicalise metadata at : the number 1.5 is not an integer (canonical JSON allows integers only)"
    );
    assert!(error_of(r#"{"": 1.5}"#).contains("at /: the number"));
    assert!(error_of(r#"{"a/b~": {"": [0, -0]}}"#).contains("at /a~1b~0//1: the number -0.0"));
}

#[test]
fn the_fast_escaped_order_check_agrees_with_comparing_escaped_keys() {
    let alphabet: &[u8] = b"\x01 !\"#/[\\]a\x7f";
    let mut keys: Vec<Vec<u8>> = vec![Vec::new()];
    for _ in 0..2 {
        let longer: Vec<Vec<u8>> = keys
            .iter()
            .flat_map(|key| {
                alphabet.iter().map(move |byte| {
                    let mut next = key.clone();
                    next.push(*byte);
                    next
                })
            })
            .collect();
        keys.extend(longer);
    }
    keys.sort();
    keys.dedup();
    let mut checked = 0;
    for lower in &keys {
        for higher in keys.iter().filter(|higher| *higher > lower) {
            let (a, b) = (
                std::str::from_utf8(lower).unwrap(),
                std::str::from_utf8(higher).unwrap(),
            );
            let expected = escaped_quoted(a).cmp(escaped_quoted(b)) == Ordering::Less;
            assert_eq!(escaped_order_agrees(lower, higher), expected, "{a:?} {b:?}");
            checked += 1;
        }
    }
    assert!(checked > 8_000, "{checked}");
    assert!(!escaped_order_agrees(b"a", b"a"));
}
