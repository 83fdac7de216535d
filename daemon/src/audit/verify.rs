//! Verifying a log: every record's MAC, the sequence numbers and the hash chain,
//! across files in order. The answer names the first bad record (file, line, seq)
//! and why, which is where to start looking: an edited field fails its MAC, a
//! deleted record leaves a gap in `seq`, swapped records come out of order, a file
//! cut mid-record ends in an incomplete line, a record appended without the key
//! fails its MAC, and records removed from the end are caught against the head the
//! daemon remembers.

use super::key::AuditKey;
use super::record::{canonical, line_hash, Record, GENESIS};
use super::writer::Head;
use serde_json::Value;

/// One file of the log, by the name reports should use.
pub struct LogFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A log that verified.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    /// The first record's seq; above 1 when older files were not given (or removed).
    pub first_seq: Option<u64>,
    /// The last record.
    pub last: Option<Head>,
}

/// The first record that does not verify.
#[derive(Debug, PartialEq, Eq)]
pub struct BadRecord {
    pub file: String,
    /// 1-based line number in `file`.
    pub line: u64,
    /// The record's own seq, when it has one.
    pub seq: Option<u64>,
    pub reason: String,
}

impl std::fmt::Display for BadRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} line {}", self.file, self.line)?;
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Verifies `files` in order. With `head` (what the daemon last wrote), the log must
/// also end exactly there.
pub fn verify(
    key: &AuditKey,
    files: impl IntoIterator<Item = LogFile>,
    head: Option<&Head>,
) -> Result<Verified, BadRecord> {
    let mut verified = Verified::default();
    let mut last_place = (String::new(), 0);
    for file in files {
        let mut lines: Vec<&[u8]> = file.bytes.split(|&b| b == b'\n').collect();
        // A file ends with a newline: the empty piece after it is no line.
        let tail = lines.pop().unwrap_or_default();
        for (index, line) in lines.iter().enumerate() {
            let number = index as u64 + 1;
            check_line(key, line, verified.last.as_ref()).map_err(|(seq, reason)| BadRecord {
                file: file.name.clone(),
                line: number,
                seq,
                reason,
            })?;
            let record: Record = serde_json::from_slice(line).expect("checked above");
            verified.records += 1;
            verified.first_seq.get_or_insert(record.seq);
            verified.last = Some(Head {
                seq: record.seq,
                hash: line_hash(line),
            });
            last_place = (file.name.clone(), number);
        }
        if !tail.is_empty() {
            return Err(BadRecord {
                file: file.name.clone(),
                line: lines.len() as u64 + 1,
                seq: None,
                reason: "the record is incomplete: the file was cut in the middle of a record"
                    .into(),
            });
        }
    }
    if let Some(head) = head.filter(|head| head.seq > 0) {
        let ends_right = verified.last.as_ref() == Some(head);
        if !ends_right {
            let (file, line) = last_place;
            let ends_at = verified.last.as_ref().map_or(0, |last| last.seq);
            return Err(BadRecord {
                file,
                line,
                seq: verified.last.as_ref().map(|last| last.seq),
                reason: if ends_at == head.seq {
                    format!(
                        "the last record is not the one tufkeyd wrote as seq {}",
                        head.seq
                    )
                } else {
                    format!(
                        "the log ends at seq {ends_at} but tufkeyd last wrote seq {}: records were removed from the end",
                        head.seq
                    )
                },
            });
        }
    }
    Ok(verified)
}

/// Checks one line against the record before it; the error is (its seq, why).
fn check_line(
    key: &AuditKey,
    line: &[u8],
    previous: Option<&Head>,
) -> Result<(), (Option<u64>, String)> {
    let value: Value = serde_json::from_slice(line).map_err(|error| {
        (
            None,
            format!("not a JSON record ({error}): cut short or edited"),
        )
    })?;
    let seq = value.get("seq").and_then(Value::as_u64);
    let fail = |reason: String| (seq, reason);
    let Value::Object(mut members) = value.clone() else {
        return Err(fail("not a JSON object".into()));
    };
    if canonical(&value) != line {
        return Err(fail(
            "not in the canonical form tufkeyd writes: the line was edited".into(),
        ));
    }
    let Some(Value::String(mac)) = members.remove("mac") else {
        return Err(fail("the record has no MAC".into()));
    };
    if !key.verify(&canonical(&Value::Object(members)), &mac) {
        return Err(fail(
            "the MAC does not match: the record was edited, or written by someone without the key"
                .into(),
        ));
    }
    let record: Record = serde_json::from_value(value)
        .map_err(|error| fail(format!("not an audit record: {error}")))?;
    match previous {
        None if record.seq == 1 && record.prev != GENESIS => Err(fail(
            "the first record (seq 1) does not start the chain".into(),
        )),
        // Older files were not given: the chain is checked from here on.
        None => Ok(()),
        Some(previous) if record.seq != previous.seq + 1 => {
            let expected = previous.seq + 1;
            Err(fail(if record.seq > expected {
                format!(
                    "expected seq {expected} after seq {}, found seq {}: record {expected} is missing (deleted) or out of order",
                    previous.seq, record.seq
                )
            } else {
                format!(
                    "seq {} comes after seq {}: records are out of order or repeated",
                    record.seq, previous.seq
                )
            }))
        }
        Some(previous) if record.prev != previous.hash => Err(fail(format!(
            "prev is not the hash of record {}: a record before it was replaced",
            previous.seq
        ))),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::writer::Writer;

    /// A log of `count` records in one file; returns its lines and the head.
    fn log(count: u64) -> (AuditKey, Vec<String>, Head) {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::derive(b"store");
        let mut writer = Writer::open(&dir.path().join("audit.log"), 1 << 20).unwrap();
        let records = (0..count)
            .map(|n| Record {
                caller: serde_json::json!({"kind": "unix", "uid": 1000}),
                rpc: format!("rpc{n}"),
                result: "ok".into(),
                ..Record::default()
            })
            .collect();
        let lines = writer.append(vec![(records, key.clone())]).unwrap();
        let head = writer.head().clone();
        (key, lines, head)
    }

    fn file(lines: &[String]) -> LogFile {
        LogFile {
            name: "audit.log".into(),
            bytes: lines
                .iter()
                .map(|line| format!("{line}\n"))
                .collect::<String>()
                .into_bytes(),
        }
    }

    fn bad(key: &AuditKey, lines: &[String], head: Option<&Head>) -> BadRecord {
        verify(key, [file(lines)], head).unwrap_err()
    }

    #[test]
    fn an_intact_log_verifies_with_its_head() {
        let (key, lines, head) = log(5);
        let verified = verify(&key, [file(&lines)], Some(&head)).unwrap();
        assert_eq!(verified.records, 5);
        assert_eq!(verified.first_seq, Some(1));
        assert_eq!(verified.last, Some(head));
        // Split across files, the chain still holds.
        let verified = verify(&key, [file(&lines[..2]), file(&lines[2..])], None).unwrap();
        assert_eq!(verified.records, 5);
        // A later file alone verifies from where it starts.
        assert_eq!(
            verify(&key, [file(&lines[3..])], None).unwrap().first_seq,
            Some(4)
        );
    }

    #[test]
    fn each_kind_of_tampering_is_named_at_the_first_bad_record() {
        let (key, lines, head) = log(5);

        let mut edited = lines.clone();
        edited[2] = edited[2].replace("rpc2", "rpc9");
        let report = bad(&key, &edited, None);
        assert_eq!((report.line, report.seq), (3, Some(3)));
        assert!(report.reason.contains("MAC does not match"), "{report}");

        let mut deleted = lines.clone();
        deleted.remove(2);
        let report = bad(&key, &deleted, None);
        assert_eq!((report.line, report.seq), (3, Some(4)));
        assert!(report.reason.contains("record 3 is missing"), "{report}");

        let mut swapped = lines.clone();
        swapped.swap(1, 2);
        let report = bad(&key, &swapped, None);
        assert_eq!((report.line, report.seq), (2, Some(3)));
        assert!(report.reason.contains("expected seq 2"), "{report}");

        let mut cut = file(&lines);
        let middle = lines[0].len() + 1 + lines[1].len() / 2;
        cut.bytes.truncate(middle);
        let report = verify(&key, [cut], None).unwrap_err();
        assert_eq!((report.line, report.seq), (2, None));
        assert!(report.reason.contains("cut in the middle"), "{report}");

        let mut forged = lines.clone();
        let mut record: Record = serde_json::from_str(&lines[4]).unwrap();
        record.seq = 6;
        record.prev = line_hash(lines[4].as_bytes());
        record.mac = "00".repeat(32);
        forged.push(String::from_utf8(canonical(&serde_json::to_value(&record).unwrap())).unwrap());
        let report = bad(&key, &forged, None);
        assert_eq!((report.line, report.seq), (6, Some(6)));
        assert!(report.reason.contains("MAC does not match"), "{report}");

        // Sealed with another key: a forger without the store secret.
        let other_key = AuditKey::derive(b"other");
        let report = verify(&other_key, [file(&lines)], None).unwrap_err();
        assert_eq!(report.seq, Some(1));

        let mut reformatted = lines.clone();
        reformatted[1] = reformatted[1].replacen(':', ": ", 1);
        assert!(bad(&key, &reformatted, None).reason.contains("canonical"));

        let report = bad(&key, &lines[..4], Some(&head));
        assert_eq!((report.line, report.seq), (4, Some(4)));
        assert!(
            report.reason.contains("tufkeyd last wrote seq 5"),
            "{report}"
        );
    }
}
