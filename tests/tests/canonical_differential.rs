//! Differential property test of tufkey's canonical JSON against both verifiers'
//! canonicalisers: olpc-cjson (tough, in-process) and securesystemslib
//! (python-tuf, one long-lived Python process running `tests/python/cjson_oracle.py`).
//!
//! Documents come from a model ([`Doc`]) with adversarial keys and strings (quotes,
//! backslashes, control characters, non-ASCII, NFC and NFD forms), deep nesting, big
//! and negative integers (also beyond `i64`/`u64`), duplicate keys and floats, written
//! out as JSON text with randomly chosen escapes and whitespace. For each document:
//!
//! - tufkey accepts it: the model finds nothing to refuse, and tufkey's bytes equal
//!   olpc-cjson's and securesystemslib's;
//! - tufkey refuses it: the problem is one of the documented ones, its JSON Pointer
//!   names a value (or key) of the document that has exactly that problem, and when
//!   the only problems are key order or non-NFC text, the two verifiers' outputs do
//!   differ (so the refusal is not over-broad); with floats olpc-cjson refuses too.
//!
//! The `.ci/run` test uses a fixed seed and 100,000 cases. `scripts/fuzz.sh` runs the
//! same test with `TUFKEY_CJSON_CASES` and a time-based `TUFKEY_CJSON_SEED`.

// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde::Serialize;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Instant;
use tufkey_e2e::verify::{python_dir, venv_python};
use tufkeyd::error::Error;
use tufkeyd::tuf::canonical::Json;
use unicode_normalization::is_nfc;

/// The `.ci/run` seed and case count.
const FIXED_SEED: u64 = 0x7475_666b_6579_0010;
const FIXED_CASES: u32 = 100_000;
/// Documents sent to securesystemslib ahead of their checks.
const IN_FLIGHT: usize = 256;

// ---------------------------------------------------------------------------
// The model

/// A JSON document as generated: objects keep duplicate keys, numbers their text.
#[derive(Clone, Debug)]
enum Doc {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Doc>),
    Object(Vec<(String, Doc)>),
}

/// Why a document cannot be canonicalised alike by both verifiers (or at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Problem {
    Float,
    NonNfcString,
    NonNfcKey,
    DuplicateKey,
    KeyOrder,
}

/// serde_json reads an integer as `i64`/`u64` when it fits; anything else (fractions,
/// exponents, larger integers, and `-0`) as a float, which canonical JSON refuses.
fn is_integer(text: &str) -> bool {
    !text.contains(['.', 'e', 'E'])
        && text != "-0"
        && (text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok())
}

/// olpc-cjson's sort key: the key escaped (only `"` and `\`) and quoted.
fn escaped_quoted(key: &str) -> String {
    format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The distinct keys of an object, sorted as securesystemslib sorts them (code
/// points) and as olpc-cjson sorts them (escaped, quoted bytes).
fn both_orders(members: &[(String, Doc)]) -> (Vec<&str>, Vec<&str>) {
    let mut raw: Vec<&str> = members.iter().map(|(key, _)| key.as_str()).collect();
    raw.sort_by(|a, b| a.chars().cmp(b.chars()));
    raw.dedup();
    let mut escaped = raw.clone();
    escaped.sort_by_cached_key(|key| escaped_quoted(key));
    (raw, escaped)
}

/// Keys that are the larger of a raw-adjacent pair the other order inverts.
fn inverted_keys(members: &[(String, Doc)]) -> Vec<&str> {
    let (raw, _) = both_orders(members);
    raw.windows(2)
        .filter(|pair| escaped_quoted(pair[0]) > escaped_quoted(pair[1]))
        .map(|pair| pair[1])
        .collect()
}

/// Every problem anywhere in the document.
fn problems(doc: &Doc, found: &mut Vec<Problem>) {
    match doc {
        Doc::Number(text) if !is_integer(text) => found.push(Problem::Float),
        Doc::String(text) if !is_nfc(text) => found.push(Problem::NonNfcString),
        Doc::Array(items) => items.iter().for_each(|item| problems(item, found)),
        Doc::Object(members) => {
            if members.iter().any(|(key, _)| !is_nfc(key)) {
                found.push(Problem::NonNfcKey);
            }
            let (raw, escaped) = both_orders(members);
            if raw.len() < members.len() {
                found.push(Problem::DuplicateKey);
            }
            if raw != escaped {
                found.push(Problem::KeyOrder);
            }
            members.iter().for_each(|(_, item)| problems(item, found));
        }
        _ => {}
    }
}

fn problems_of(doc: &Doc) -> Vec<Problem> {
    let mut found = Vec::new();
    problems(doc, &mut found);
    found.sort();
    found.dedup();
    found
}

// ---------------------------------------------------------------------------
// Writing the model as JSON text, with varied escapes and whitespace

/// splitmix64: the per-document choices of escapes and whitespace.
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
}

fn write_space(out: &mut String, choices: &mut Choices) {
    if choices.one_in(8) {
        out.push_str([" ", "\t", "\n", "\r\n  "][(choices.next() % 4) as usize]);
    }
}

fn write_u_escape(out: &mut String, unit: u32, choices: &mut Choices) {
    if choices.one_in(2) {
        out.push_str(&format!("\\u{unit:04x}"));
    } else {
        out.push_str(&format!("\\u{unit:04X}"));
    }
}

fn write_string(out: &mut String, text: &str, choices: &mut Choices) {
    out.push('"');
    for ch in text.chars() {
        let short = match ch {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '/' => Some("\\/"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        let must_escape = matches!(ch, '"' | '\\' | '\u{0}'..='\u{1f}');
        if !must_escape && !choices.one_in(6) {
            out.push(ch);
        } else if let (Some(short), true) = (short, choices.one_in(2)) {
            out.push_str(short);
        } else {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write_u_escape(out, u32::from(*unit), choices);
            }
        }
    }
    out.push('"');
}

fn write_doc(out: &mut String, doc: &Doc, choices: &mut Choices) {
    write_space(out, choices);
    match doc {
        Doc::Null => out.push_str("null"),
        Doc::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
        Doc::Number(text) => out.push_str(text),
        Doc::String(text) => write_string(out, text, choices),
        Doc::Array(items) => {
            out.push('[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_doc(out, item, choices);
            }
            write_space(out, choices);
            out.push(']');
        }
        Doc::Object(members) => {
            out.push('{');
            for (position, (key, item)) in members.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_space(out, choices);
                write_string(out, key, choices);
                write_space(out, choices);
                out.push(':');
                write_doc(out, item, choices);
            }
            write_space(out, choices);
            out.push('}');
        }
    }
    write_space(out, choices);
}

fn json_text(doc: &Doc, seed: u64) -> String {
    let mut out = String::new();
    write_doc(&mut out, doc, &mut Choices(seed));
    out
}

// ---------------------------------------------------------------------------
// Generating documents

/// Characters chosen to hit every difference between the verifiers: the escaped
/// pair, the bytes around them, control characters, multi-byte UTF-8 of every
/// length, and pieces that make NFD or otherwise non-NFC text.
fn adversarial_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::sample::select(vec!['"', '\\']),
        4 => prop::sample::select(vec!['!', '#', '[', ']', 'A', 'Z', 'a', 'z', '/', '~', ' ', '0']),
        3 => prop::char::range('\u{0}', '\u{1f}'),
        1 => Just('\u{7f}'),
        2 => prop::sample::select(vec!['é', 'Å', 'ñ', '中', '😀', '\u{2028}', '\u{feff}', '\u{ffff}', '\u{10ffff}']),
        // Combining marks (NFD after a base letter), singletons NFC replaces
        // (Angstrom, Ohm), conjoining jamo that compose to a Hangul syllable.
        1 => prop::sample::select(vec!['e', '\u{301}', '\u{308}', '\u{327}', '\u{212b}', '\u{2126}', '\u{1100}', '\u{1161}', '\u{11a8}', '한']),
        1 => any::<char>(),
    ]
}

fn adversarial_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(adversarial_char(), 0..max).prop_map(|chars| chars.into_iter().collect())
}

/// Keys: mostly plain (so most objects are acceptable and their sorting is
/// exercised), often adversarial, sometimes an NFC/NFD pair of the same text.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::collection::vec(prop::sample::select(vec!['a', 'b', 'c', '_', '/', '~', 'é']), 0..4)
            .prop_map(|chars| chars.into_iter().collect::<String>()),
        3 => adversarial_text(4),
        1 => prop::sample::select(vec!["é", "e\u{301}", "\u{c5}", "\u{212b}", "A\u{30a}", "한", "\u{1112}\u{1161}\u{11ab}"])
            .prop_map(str::to_owned),
    ]
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (-1000i64..1000).prop_map(|n| n.to_string()),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        2 => any::<u64>().prop_map(|n| n.to_string()),
        2 => prop::sample::select(vec![
            "0", "-1", "9223372036854775807", "-9223372036854775808", "18446744073709551615",
            // Integers serde_json can only read as floats, and floats.
            "18446744073709551616", "-9223372036854775809", "100000000000000000000000000000",
            "-0", "1.5", "1.0", "0.1", "-2.5e3", "1e2", "1E+2", "0e0", "-0.0", "123456789012345678901234567890e-5",
        ]).prop_map(str::to_owned),
        1 => (any::<bool>(), prop::collection::vec(0..10u8, 18..40)).prop_map(|(negative, digits)| {
            let digits: String = digits.iter().map(|digit| char::from(b'1' + digit % 9)).collect();
            format!("{}{digits}", if negative { "-" } else { "" })
        }),
    ]
}

fn leaf() -> impl Strategy<Value = Doc> {
    prop_oneof![
        1 => Just(Doc::Null),
        1 => any::<bool>().prop_map(Doc::Bool),
        3 => number().prop_map(Doc::Number),
        4 => adversarial_text(8).prop_map(Doc::String),
    ]
}

/// Arrays and objects nested up to five levels. Built once: `prop_recursive` would
/// rebuild its strategies for every case, which dominates a 100k-case debug run.
fn tree() -> BoxedStrategy<Doc> {
    let mut level = leaf().boxed();
    for depth in 0..5 {
        // The document itself is mostly an object, as TUF metadata is.
        let leaf_weight = if depth == 4 { 1 } else { 5 };
        let object_weight = if depth == 4 { 6 } else { 2 };
        level = prop_oneof![
            leaf_weight => leaf(),
            1 => prop::collection::vec(level.clone(), 0..6).prop_map(Doc::Array),
            object_weight => prop::collection::vec((key(), level), 0..6).prop_map(Doc::Object),
        ]
        .boxed();
    }
    level
}

/// A tree, sometimes wrapped in up to 110 levels of arrays and single-key objects
/// (serde_json, and so tufkey, refuses nesting beyond 128).
fn document() -> impl Strategy<Value = (Doc, u64)> {
    let wrappers = prop::collection::vec(prop::option::of(key()), 0..110);
    let tree = tree();
    let deep = (tree.clone(), wrappers).prop_map(|(mut doc, wrappers)| {
        for wrapper in wrappers {
            doc = match wrapper {
                Some(key) => Doc::Object(vec![(key, doc)]),
                None => Doc::Array(vec![doc]),
            };
        }
        doc
    });
    (prop_oneof![9 => tree, 1 => deep], any::<u64>())
}

// ---------------------------------------------------------------------------
// The three canonicalisers

/// tufkey: canonical bytes, or the refusal's JSON Pointer and problem.
fn tufkey(text: &str) -> Result<Vec<u8>, (String, String)> {
    let mut tree = Json::parse(text).map_err(|error| (String::new(), format!("parse: {error}")))?;
    match tree.canonicalize() {
        Ok(()) => {
            let mut out = Vec::new();
            tree.write_canonical(&mut out);
            Ok(out)
        }
        Err(Error::NotCanonicalizable { path, problem }) => Err((path, problem)),
        Err(other) => Err((String::new(), format!("unexpected error: {other}"))),
    }
}

/// tough's canonicaliser: serde_json `Value` through olpc-cjson's formatter.
fn olpc(text: &str) -> Result<Vec<u8>, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut out, olpc_cjson::CanonicalFormatter::new());
    value
        .serialize(&mut serializer)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// python-tuf's canonicaliser, one long-lived process answering a line at a time.
/// Questions may run ahead of answers (a thread reads them), so Python works on one
/// core while this test generates and checks on the other.
struct Securesystemslib {
    child: Child,
    input: BufWriter<ChildStdin>,
    answers: Receiver<Result<Vec<u8>, String>>,
}

impl Securesystemslib {
    fn start() -> Self {
        let python = venv_python().unwrap();
        let mut child = Command::new(python)
            .arg(python_dir().join("cjson_oracle.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let input = BufWriter::new(child.stdin.take().unwrap());
        let output = BufReader::new(child.stdout.take().unwrap());
        let (sender, answers) = mpsc::channel();
        std::thread::spawn(move || {
            let engine = base64::engine::general_purpose::STANDARD;
            for line in output.lines() {
                let line = line.unwrap();
                let answer = match line.split_once(' ') {
                    Some(("ok", encoded)) => Ok(engine.decode(encoded).unwrap()),
                    Some(("err", reason)) => Err(reason.to_owned()),
                    _ => panic!("cjson_oracle.py answered {line:?}"),
                };
                if sender.send(answer).is_err() {
                    return;
                }
            }
        });
        Securesystemslib {
            child,
            input,
            answers,
        }
    }

    fn ask(&mut self, text: &str) {
        let engine = base64::engine::general_purpose::STANDARD;
        writeln!(self.input, "{}", engine.encode(text)).unwrap();
        self.input.flush().unwrap();
    }

    /// The answer to the oldest question not yet answered.
    fn answer(&mut self) -> Result<Vec<u8>, String> {
        self.answers
            .recv()
            .expect("cjson_oracle.py exited; run it by hand to see why")
    }

    fn canonical(&mut self, text: &str) -> Result<Vec<u8>, String> {
        self.ask(text);
        self.answer()
    }
}

impl Drop for Securesystemslib {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The property

/// What a refusal's problem text says, in the words canonical.rs uses.
fn problem_named(problem: &str) -> Option<Problem> {
    if problem.contains("is not an integer") {
        Some(Problem::Float)
    } else if problem.starts_with("string is not in Unicode normalisation form NFC") {
        Some(Problem::NonNfcString)
    } else if problem.starts_with("object key is not in Unicode normalisation form NFC") {
        Some(Problem::NonNfcKey)
    } else if problem == "duplicate object key" {
        Some(Problem::DuplicateKey)
    } else if problem.contains("sort differently in the verifiers' canonical forms") {
        Some(Problem::KeyOrder)
    } else {
        None
    }
}

/// Where an RFC 6901 pointer leads: the parent object's members and the key, or a
/// value. Keys above the last step must be unique (tufkey checks an object's keys
/// before anything inside it).
enum Target<'d> {
    Member(&'d [(String, Doc)], String),
    Value(&'d Doc),
}

fn resolve<'d>(doc: &'d Doc, pointer: &str) -> Result<Target<'d>, String> {
    if pointer.is_empty() {
        return Ok(Target::Value(doc));
    }
    let steps: Vec<String> = pointer
        .strip_prefix('/')
        .ok_or_else(|| format!("pointer {pointer:?} does not start with /"))?
        .split('/')
        .map(|step| step.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut at = doc;
    for (depth, step) in steps.iter().enumerate() {
        let last = depth + 1 == steps.len();
        match at {
            Doc::Array(items) => {
                let index: usize = step
                    .parse()
                    .map_err(|_| format!("{step:?} is not an array index"))?;
                at = items.get(index).ok_or_else(|| format!("no item {index}"))?;
            }
            Doc::Object(members) => {
                let matching: Vec<&Doc> = members
                    .iter()
                    .filter(|(key, _)| key == step)
                    .map(|(_, item)| item)
                    .collect();
                if last && !matching.is_empty() {
                    return Ok(Target::Member(members, step.clone()));
                }
                match matching.as_slice() {
                    [one] => at = one,
                    [] => return Err(format!("no key {step:?}")),
                    _ => return Err(format!("key {step:?} is duplicated above the refusal")),
                }
            }
            _ => return Err(format!("{step:?} steps into a scalar")),
        }
    }
    Ok(Target::Value(at))
}

/// Does the place the pointer names have the problem tufkey names?
fn has_problem(target: &Target<'_>, problem: Problem) -> bool {
    let value_problem = |value: &Doc| match (value, problem) {
        (Doc::Number(text), Problem::Float) => !is_integer(text),
        (Doc::String(text), Problem::NonNfcString) => !is_nfc(text),
        _ => false,
    };
    match target {
        Target::Value(value) => value_problem(value),
        Target::Member(members, key) => match problem {
            Problem::NonNfcKey => !is_nfc(key),
            Problem::DuplicateKey => members.iter().filter(|(k, _)| k == key).count() > 1,
            Problem::KeyOrder => inverted_keys(members).contains(&key.as_str()),
            Problem::Float | Problem::NonNfcString => members
                .iter()
                .filter(|(k, _)| k == key)
                .any(|(_, value)| value_problem(value)),
        },
    }
}

#[derive(Default, Debug)]
struct Tally {
    accepted: u64,
    refused: [u64; 5],
}

fn check_one(
    doc: &Doc,
    text: &str,
    sslib: Result<Vec<u8>, String>,
    tally: &mut Tally,
) -> Result<(), TestCaseError> {
    let found = problems_of(doc);
    let olpc = olpc(text);
    match tufkey(text) {
        Ok(ours) => {
            prop_assert!(found.is_empty(), "accepted a document with {found:?}");
            prop_assert_eq!(Ok(&ours), olpc.as_ref(), "olpc-cjson differs");
            prop_assert_eq!(Ok(&ours), sslib.as_ref(), "securesystemslib differs");
            tally.accepted += 1;
        }
        Err((pointer, problem)) => {
            let named = problem_named(&problem);
            prop_assert!(named.is_some(), "unexpected refusal {pointer:?}: {problem}");
            let named = named.unwrap_or(Problem::Float);
            prop_assert!(
                found.contains(&named),
                "refused for {named:?} ({problem}) but the model finds only {found:?}"
            );
            let target = resolve(doc, &pointer);
            prop_assert!(target.is_ok(), "pointer {pointer:?}: {:?}", target.err());
            let target = target.map_err(TestCaseError::fail)?;
            prop_assert!(
                has_problem(&target, named),
                "pointer {pointer:?} does not name a place with {named:?} ({problem})"
            );
            // The refusals are necessary: the verifiers really disagree, or olpc-cjson
            // refuses too. Duplicate keys are the documented superset (both verifiers
            // keep the last one, which may also hide a float or non-NFC text).
            if found.contains(&Problem::DuplicateKey) {
                if found == [Problem::DuplicateKey] {
                    prop_assert_eq!(olpc, sslib, "both verifiers keep the last duplicate");
                }
            } else if found.contains(&Problem::Float) {
                prop_assert!(olpc.is_err(), "olpc-cjson accepted a float");
            } else {
                prop_assert!(olpc.is_ok() && sslib.is_ok(), "{olpc:?} {sslib:?}");
                prop_assert_ne!(olpc, sslib, "refused although both verifiers agree");
            }
            tally.refused[named as usize] += 1;
        }
    }
    Ok(())
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut choices = Choices(seed);
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&choices.next().to_le_bytes());
    }
    bytes
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .map(|value| {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{name}={value:?} is not a number"))
        })
        .unwrap_or(default)
}

/// ≥ 100,000 documents from a fixed seed (`.ci/run`); `scripts/fuzz.sh` sets
/// `TUFKEY_CJSON_CASES` and `TUFKEY_CJSON_SEED`.
#[test]
fn tufkey_canonical_json_is_refused_or_identical_to_both_verifiers() {
    let cases: u32 = env_or("TUFKEY_CJSON_CASES", FIXED_CASES);
    let seed: u64 = env_or("TUFKEY_CJSON_SEED", FIXED_SEED);
    eprintln!("canonical differential: seed {seed:#x}, {cases} cases (TUFKEY_CJSON_SEED={seed} to replay)");
    let mut config = Config::with_cases(cases);
    config.failure_persistence = None;
    config.rng_algorithm = RngAlgorithm::XorShift;
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::XorShift, &seed_bytes(seed)[..16]),
    );
    let strategy = document();
    let mut python = Securesystemslib::start();
    let mut pending = VecDeque::new();
    let mut tally = Tally::default();
    let started = Instant::now();
    let mut check_oldest = |pending: &mut VecDeque<(u32, Doc, String)>,
                            python: &mut Securesystemslib| {
        let (case, doc, text) = pending.pop_front().unwrap();
        if let Err(error) = check_one(&doc, &text, python.answer(), &mut tally) {
            panic!("case {case} of seed {seed}: {error}\n  document: {text}\n  model: {doc:?}");
        }
    };
    for case in 0..cases {
        let (doc, choices) = strategy.new_tree(&mut runner).unwrap().current();
        let text = json_text(&doc, choices);
        python.ask(&text);
        pending.push_back((case, doc, text));
        if pending.len() > IN_FLIGHT {
            check_oldest(&mut pending, &mut python);
        }
    }
    while !pending.is_empty() {
        check_oldest(&mut pending, &mut python);
    }
    eprintln!(
        "canonical differential: {cases} cases in {:.1} s; accepted {}, refused: float {}, non-NFC string {}, non-NFC key {}, duplicate key {}, key order {}",
        started.elapsed().as_secs_f64(),
        tally.accepted,
        tally.refused[0],
        tally.refused[1],
        tally.refused[2],
        tally.refused[3],
        tally.refused[4],
    );
    // The generator must reach every verdict often enough to mean something.
    let minimum = u64::from(cases) / 100;
    assert!(tally.accepted >= u64::from(cases) / 10, "{tally:?}");
    assert!(tally.refused.iter().all(|&n| n >= minimum), "{tally:?}");
}

// ---------------------------------------------------------------------------
// Named regressions: key pairs the old rule accepted although the verifiers order
// them differently

/// The rule before issue 10: refuse only a key that is a prefix of the next one
/// followed by a byte below `"`.
fn old_rule_accepts(lower: &str, higher: &str) -> bool {
    !(higher.starts_with(lower) && higher.as_bytes()[lower.len()] < b'"')
}

fn assert_old_rule_accepted_but_verifiers_disagree_now_refused(lower: &str, higher: &str) {
    assert!(lower < higher && old_rule_accepts(lower, higher));
    let text = serde_json::json!({ "signed": { lower: 1, higher: 2 } }).to_string();
    let olpc = olpc(&text).unwrap();
    let sslib = Securesystemslib::start().canonical(&text).unwrap();
    assert_ne!(
        olpc, sslib,
        "the verifiers should disagree on {lower:?} vs {higher:?}"
    );
    let (pointer, problem) = tufkey(&text).unwrap_err();
    assert_eq!(
        pointer,
        format!("/signed/{}", higher.replace('~', "~0").replace('/', "~1"))
    );
    assert!(problem.contains("sort differently"), "{problem}");
}

#[test]
fn regression_quote_against_hash_in_the_middle_of_a_key() {
    assert_old_rule_accepted_but_verifiers_disagree_now_refused("a\"b", "a#b");
}

#[test]
fn regression_lone_quote_against_capital_letter() {
    assert_old_rule_accepted_but_verifiers_disagree_now_refused("\"", "A");
}

#[test]
fn regression_trailing_quote_against_open_bracket() {
    assert_old_rule_accepted_but_verifiers_disagree_now_refused("x\"", "x[");
}

#[test]
fn regression_target_path_with_quote_against_digit() {
    assert_old_rule_accepted_but_verifiers_disagree_now_refused("pkg/\"v1\".tar", "pkg/1.tar");
}

/// The boundary of the rule: `"` against `\` and `]` (just outside 0x23..=0x5b) is
/// ordered alike by both, and accepted with the verifiers' bytes.
#[test]
fn quote_against_backslash_and_close_bracket_is_accepted_and_identical() {
    let mut python = Securesystemslib::start();
    for (lower, higher) in [("a\"", "a\\"), ("a\"", "a]"), ("a", "a\"")] {
        let text = serde_json::json!({ higher: 2, lower: 1 }).to_string();
        let ours = tufkey(&text).unwrap();
        assert_eq!(ours, olpc(&text).unwrap());
        assert_eq!(ours, python.canonical(&text).unwrap());
    }
}

/// A document nested deeper than serde_json's limit is refused while parsing, before
/// any recursion of tufkey's own could run out of stack.
#[test]
fn nesting_beyond_the_parser_limit_is_refused() {
    let text = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let (_, error) = tufkey(&text).unwrap_err();
    assert!(error.contains("recursion limit"), "{error}");
}
