//! `tufkey sign` gets only the signatures back from tufkeyd (`signatures_only`) and
//! splices them into the caller's own text: the result verifies with python-tuf,
//! keeps every byte outside the `signatures` list as the caller wrote it (formatting,
//! member order), keeps signatures by other keys and replaces one by the same key.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use tufkey_e2e::daemon::{Daemon, DaemonOptions, Sandbox};
use tufkey_e2e::verify::{python_dir, venv_python};

const GUN: &str = "example.com/splice";

/// An unsigned targets document as python's `json.dumps(indent=1)` writes it, keys
/// deliberately out of canonical order, with `signatures` BEFORE `signed` and the
/// given signature list.
fn document(signatures: &Value) -> String {
    let signatures = serde_json::to_string(signatures).unwrap();
    format!(
        "{{\n \"signatures\": {signatures},\n \"signed\": {{\n  \"version\": 3,\n  \"_type\": \"targets\",\n  \
         \"spec_version\": \"1.0.31\",\n  \"expires\": \"2030-01-01T00:00:00Z\",\n  \"targets\": {{\n   \
         \"b.txt\": {{\"length\": 2, \"hashes\": {{\"sha256\": \"{h}\"}}}},\n   \
         \"a.txt\": {{\"length\": 1, \"hashes\": {{\"sha256\": \"{h}\"}}, \"custom\": {{\"z\": [1, {{\"y\": 2, \"x\": 1}}]}}}}\n  }}\n }}\n}}\n",
        h = "ab".repeat(32)
    )
}

/// Runs python-tuf over `file`: which of `keys` ({keyid: TUF key JSON}) signed it,
/// and every signature's keyid in document order.
fn python_tuf_check(file: &Path, keys: &Value) -> (bool, Value) {
    let out = Command::new(venv_python().unwrap())
        .arg(python_dir().join("verify_signatures.py"))
        .arg(file)
        .arg(keys.to_string())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("python-tuf printed no report ({e}): {stderr}"));
    (out.status.success(), report)
}

fn key(daemon: &Daemon, role: &str) -> (String, Value) {
    let key = daemon.generate(GUN, role);
    (
        key["keyid"].as_str().unwrap().to_owned(),
        key["tuf_key"].clone(),
    )
}

/// The text outside the `signatures` array, which a splice must leave alone.
fn outside_signatures(text: &str) -> (String, String) {
    let start = text.find("\"signatures\": [").unwrap() + "\"signatures\": ".len();
    let end = text[start..].find("],\n").unwrap() + start + 1;
    (text[..start].to_owned(), text[end..].to_owned())
}

#[test]
fn signatures_are_spliced_into_the_callers_text_and_verify_with_python_tuf() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let (first, first_key) = key(&daemon, "targets");
    let (second, second_key) = key(&daemon, "targets");

    // A document that already carries a signature by another key (made by tufkey
    // too, so python-tuf can check it stays valid).
    let input = sandbox.path("targets.json");
    std::fs::write(&input, document(&json!([]))).unwrap();
    let by_first = sandbox.path("by-first.json");
    daemon.cli_ok(&[
        "sign",
        "--key",
        &first,
        input.to_str().unwrap(),
        "--out",
        by_first.to_str().unwrap(),
    ]);
    let by_both = sandbox.path("by-both.json");
    daemon.cli_ok(&[
        "sign",
        "--key",
        &second,
        by_first.to_str().unwrap(),
        "--out",
        by_both.to_str().unwrap(),
    ]);
    let keys = json!({first.clone(): first_key, second.clone(): second_key});
    let (ok, report) = python_tuf_check(&by_both, &keys);
    assert!(ok, "python-tuf rejected {}: {report}", by_both.display());
    assert_eq!(report["keyids"], json!([first, second]));

    // Only the signature list changed: formatting and member order are the caller's.
    let original = std::fs::read_to_string(&input).unwrap();
    let signed = std::fs::read_to_string(&by_both).unwrap();
    assert_eq!(
        outside_signatures(&signed),
        outside_signatures(&original),
        "{signed}"
    );
}

#[test]
fn a_signature_by_the_same_key_is_replaced_and_the_others_kept() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let (first, first_key) = key(&daemon, "targets");
    let (second, second_key) = key(&daemon, "targets");

    // `second`'s real signature, then a stale one by `first` (over other content).
    let input = sandbox.path("targets.json");
    std::fs::write(&input, document(&json!([]))).unwrap();
    daemon.cli_ok(&["sign", "--key", &second, input.to_str().unwrap()]);
    let by_second: Value = serde_json::from_slice(&std::fs::read(&input).unwrap()).unwrap();
    let stale = json!({"keyid": first, "sig": "3045022100".to_owned() + &"11".repeat(32) + "022022" + &"22".repeat(32)});
    let with_stale = document(&json!([by_second["signatures"][0], stale]));
    std::fs::write(&input, &with_stale).unwrap();
    let keys = json!({first.clone(): first_key, second.clone(): second_key});
    let (ok, _) = python_tuf_check(&input, &keys);
    assert!(!ok, "the stale signature by {first} must not verify");

    // Signing in place with `first` replaces its stale signature, keeps `second`'s.
    daemon.cli_ok(&["sign", "--key", &first, input.to_str().unwrap()]);
    let (ok, report) = python_tuf_check(&input, &keys);
    assert!(ok, "python-tuf rejected the re-signed document: {report}");
    assert_eq!(report["keyids"], json!([second, first]));
    let signed = std::fs::read_to_string(&input).unwrap();
    assert_eq!(outside_signatures(&signed), outside_signatures(&with_stale));

    // Signing again with both changes nothing but the (new) signatures.
    daemon.cli_ok(&[
        "sign",
        "--key",
        &first,
        "--key",
        &second,
        input.to_str().unwrap(),
    ]);
    let (ok, report) = python_tuf_check(&input, &keys);
    assert!(
        ok,
        "python-tuf rejected the document signed twice: {report}"
    );
    assert_eq!(report["keyids"], json!([first, second]));
}

#[test]
fn a_document_without_a_signature_list_gets_one_and_refusals_are_unchanged() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let (first, first_key) = key(&daemon, "targets");

    let input = sandbox.path("bare.json");
    let text =
        "{\"signed\": {\"_type\": \"targets\", \"version\": 1, \"spec_version\": \"1.0.31\", \
                \"expires\": \"2030-01-01T00:00:00Z\", \"targets\": {}}}\n";
    std::fs::write(&input, text).unwrap();
    daemon.cli_ok(&["sign", "--key", &first, input.to_str().unwrap()]);
    let (ok, report) = python_tuf_check(&input, &json!({first.clone(): first_key}));
    assert!(ok, "python-tuf rejected {}: {report}", input.display());
    let signed = std::fs::read_to_string(&input).unwrap();
    assert!(
        signed.starts_with(&text[..text.len() - 2]),
        "the caller's text must come first unchanged: {signed}"
    );
    assert!(signed.ends_with("}]}\n"), "{signed}");

    // What cannot be canonicalised is still refused, and the file left alone.
    for (bad, problem) in [
        (
            r#"{"signed": {"version": 1.5}, "signatures": []}"#,
            "/signed/version",
        ),
        (
            "{\"signed\": {\"name\": \"e\u{301}\"}, \"signatures\": []}",
            "not in Unicode normalisation form NFC",
        ),
        (
            r#"{"signed": {"a": 1, "a": 2}, "signatures": []}"#,
            "duplicate object key",
        ),
    ] {
        std::fs::write(&input, bad).unwrap();
        daemon
            .cli(&["sign", "--key", &first, input.to_str().unwrap()])
            .assert_fails_with(problem);
        assert_eq!(std::fs::read_to_string(&input).unwrap(), bad);
    }
}
