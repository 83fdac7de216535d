//! The audit log, end to end with the real daemon and CLI: a mixed session is
//! recorded (who, what, which key, what was signed, how it ended) and verifies;
//! each kind of tampering is named at the right record; `tail` shows the records,
//! live with `--follow`; and with the log on a full filesystem signing fails closed.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tufkey_e2e::daemon::{bin_dir, Daemon, DaemonOptions, Sandbox, TEST_PASSPHRASE};

fn own_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|meta| std::os::unix::fs::MetadataExt::uid(&meta))
        .unwrap()
}

/// `audit verify --json`: Ok(report) when intact, Err(bad record) when not.
fn verify(daemon: &Daemon) -> Result<Value, Value> {
    let output = daemon.cli(&["--json", "audit", "verify"]);
    let report: Value = serde_json::from_str(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {} / {}", output.stdout, output.stderr));
    if output.success {
        assert_eq!(report["ok"], true);
        Ok(report)
    } else {
        assert_eq!(report["ok"], false);
        assert!(
            output.stderr.contains("the audit log does not verify"),
            "{}",
            output.stderr
        );
        Err(report["bad"].clone())
    }
}

/// Lines of the log file, each without its newline.
fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// Asserts the bad record is at `line` with `seq` and its reason mentions `why`.
fn assert_bad(bad: &Value, line: usize, seq: Option<u64>, why: &str) {
    assert_eq!(bad["file"], "audit.log", "{bad}");
    assert_eq!(bad["line"], line, "{bad}");
    assert_eq!(bad["seq"].as_u64(), seq, "{bad}");
    assert!(bad["reason"].as_str().unwrap().contains(why), "{bad}");
}

#[test]
fn a_mixed_session_is_recorded_and_each_kind_of_tampering_is_named() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let log = sandbox.store().join("audit/audit.log");

    let targets = daemon.generate_keyid("example.com/audit", "targets");
    let payload = sandbox.path("payload.bin");
    std::fs::write(&payload, b"raw bytes to sign").unwrap();
    daemon.cli_ok(&["sign-raw", "--key", &targets, payload.to_str().unwrap()]);
    let document = sandbox.path("targets.json");
    std::fs::write(
        &document,
        r#"{"signed":{"_type":"targets","version":3,"expires":"2030-01-01T00:00:00Z","targets":{}},"signatures":[]}"#,
    )
    .unwrap();
    daemon.cli_ok(&["sign", "--key", &targets, document.to_str().unwrap()]);
    let unknown = "ab".repeat(32);
    daemon
        .cli(&["sign-raw", "--key", &unknown, payload.to_str().unwrap()])
        .assert_fails_with("no key with ID");
    let doomed = daemon.generate_keyid("example.com/audit", "snapshot");
    daemon.cli_ok(&["key", "delete", &doomed, "--yes"]);
    daemon.cli_ok(&["lock"]);
    let unlocked = daemon.cli_with_stdin(
        &["unlock", "--passphrase-stdin"],
        format!("{TEST_PASSPHRASE}\n").as_bytes(),
    );
    assert!(unlocked.success, "{}", unlocked.stderr);

    // Who did what, in order.
    let records = daemon.audit_records();
    let summary: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["rpc"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("tufkey.v1.Keys/GenerateKey", "ok"),
            ("tufkey.v1.Signing/SignRaw", "ok"),
            ("tufkey.v1.Signing/SignMetadata", "ok"),
            ("tufkey.v1.Signing/SignRaw", "not_found"),
            ("tufkey.v1.Keys/GenerateKey", "ok"),
            ("tufkey.v1.Keys/DeleteKey", "ok"),
            ("tufkey.v1.Session/Lock", "ok"),
            ("tufkey.v1.Session/Unlock", "ok"),
        ]
    );
    for (n, record) in records.iter().enumerate() {
        assert_eq!(record["seq"], n as u64 + 1);
        assert_eq!(record["caller"]["kind"], "unix");
        assert_eq!(record["caller"]["uid"], own_uid());
        assert!(
            record["caller"]["exe"]
                .as_str()
                .unwrap()
                .ends_with("/tufkey"),
            "{record}"
        );
        assert_eq!(record["mac"].as_str().unwrap().len(), 64);
    }
    assert_eq!(records[0]["keyid"], targets.as_str());
    assert_eq!(records[0]["gun"], "example.com/audit");
    assert_eq!(records[0]["role"], "targets");
    assert_eq!(
        records[1]["payload_sha256"],
        hex::encode(Sha256::digest(b"raw bytes to sign"))
    );
    let metadata = &records[2];
    assert_eq!(metadata["keyid"], targets.as_str());
    assert_eq!(metadata["_type"], "targets");
    assert_eq!(metadata["version"], 3);
    assert_eq!(metadata["expires"], "2030-01-01T00:00:00Z");
    assert_eq!(
        metadata["payload_sha256"],
        hex::encode(Sha256::digest(
            br#"{"_type":"targets","expires":"2030-01-01T00:00:00Z","targets":{},"version":3}"#
        ))
    );
    assert!(records[3]["error"].as_str().unwrap().contains(&unknown));
    assert_eq!(records[5]["keyid"], doomed.as_str());

    let report = verify(&daemon).unwrap();
    assert_eq!(report["records"], 8);
    assert_eq!(
        (report["first_seq"].clone(), report["last_seq"].clone()),
        (1.into(), 8.into())
    );

    // Tampering, one kind at a time, each undone before the next.
    let original = lines_of(&log);
    assert_eq!(original.len(), 8);

    let mut edited = original.clone();
    edited[1] = edited[1].replace(
        &hex::encode(Sha256::digest(b"raw bytes to sign")),
        &hex::encode(Sha256::digest(b"something else")),
    );
    assert_ne!(edited, original);
    write_lines(&log, &edited);
    assert_bad(
        &verify(&daemon).unwrap_err(),
        2,
        Some(2),
        "MAC does not match",
    );

    let mut deleted = original.clone();
    deleted.remove(3);
    write_lines(&log, &deleted);
    assert_bad(
        &verify(&daemon).unwrap_err(),
        4,
        Some(5),
        "record 4 is missing",
    );

    let mut swapped = original.clone();
    swapped.swap(4, 5);
    write_lines(&log, &swapped);
    assert_bad(&verify(&daemon).unwrap_err(), 5, Some(6), "expected seq 5");

    let whole = original
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    let cut_at = original[..5].iter().map(|l| l.len() + 1).sum::<usize>() + original[5].len() / 2;
    std::fs::write(&log, &whole.as_bytes()[..cut_at]).unwrap();
    assert_bad(
        &verify(&daemon).unwrap_err(),
        6,
        None,
        "cut in the middle of a record",
    );

    let mut forged = original.clone();
    let mut record: Value = serde_json::from_str(&original[7]).unwrap();
    record["seq"] = 9.into();
    record["prev"] = hex::encode(Sha256::digest(original[7].as_bytes())).into();
    record["rpc"] = "tufkey.v1.Session/Lock".into();
    forged.push(canonical(&record));
    write_lines(&log, &forged);
    assert_bad(
        &verify(&daemon).unwrap_err(),
        9,
        Some(9),
        "MAC does not match",
    );

    // Whole records cut off the end: the daemon remembers what it wrote last.
    write_lines(&log, &original[..7]);
    assert_bad(
        &verify(&daemon).unwrap_err(),
        7,
        Some(7),
        "tufkeyd last wrote seq 8",
    );

    write_lines(&log, &original);
    verify(&daemon).unwrap();
    // Only the log's own files are read.
    daemon
        .cli(&["audit", "verify", "/etc/passwd"])
        .assert_fails_with("is not a file of tufkeyd's audit log");
    let named = daemon
        .cli_ok(&["--json", "audit", "verify", log.to_str().unwrap()])
        .json();
    assert_eq!(named["records"], 8);
    daemon.stop();
}

/// The canonical form the daemon writes: keys sorted, compact.
fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(members) => {
                let mut keys: Vec<&String> = members.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&members[k])))
                        .collect(),
                )
            }
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

#[test]
fn tail_shows_the_records_and_follows_new_ones() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let keyid = daemon.generate_keyid("example.com/tail", "targets");

    let readable = daemon.cli_ok(&["audit", "tail"]).stdout;
    assert!(readable.starts_with("#1  "), "{readable}");
    assert!(readable.contains("GenerateKey"), "{readable}");
    assert!(
        readable.contains(&format!("uid {}", own_uid())),
        "{readable}"
    );
    assert!(readable.contains(&keyid[..16]), "{readable}");

    let mut follower = Command::new(bin_dir().join("tufkey"))
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["--json", "audit", "tail", "--follow", "-n", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["seq"], 1);
    let payload = sandbox.path("payload");
    std::fs::File::create(&payload)
        .unwrap()
        .write_all(b"followed")
        .unwrap();
    daemon.cli_ok(&["sign-raw", "--key", &keyid, payload.to_str().unwrap()]);
    let next: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(next["seq"], 2);
    assert_eq!(next["rpc"], "tufkey.v1.Signing/SignRaw");
    assert_eq!(
        next["payload_sha256"],
        hex::encode(Sha256::digest(b"followed"))
    );
    follower.kill().unwrap();
    follower.wait().unwrap();
    daemon.stop();
}

/// A small tmpfs, unmounted on drop (after the daemon using it has stopped).
struct SmallFilesystem(PathBuf);

impl SmallFilesystem {
    fn mount(dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs (this test runs as root)"
        );
        SmallFilesystem(dir)
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fills the filesystem at `dir` with one file until it is full.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = [0u8; 1024];
    loop {
        if let Err(error) = file.write_all(&block).and_then(|()| file.sync_all()) {
            assert_eq!(error.raw_os_error(), Some(28), "ENOSPC expected: {error}");
            return filler;
        }
    }
}

#[test]
fn with_the_log_on_a_full_filesystem_signing_fails_closed() {
    let sandbox = Sandbox::new();
    let filesystem = SmallFilesystem::mount(sandbox.path("auditfs"));
    let log = filesystem.0.join("audit.log");
    let options = DaemonOptions {
        args: vec!["--audit-log".into(), log.display().to_string()],
        ..DaemonOptions::default()
    };
    let daemon = sandbox.start(&options);
    let keyid = daemon.generate_keyid("example.com/full", "targets");
    let payload = sandbox.path("payload");
    std::fs::write(&payload, b"must not be signed unrecorded").unwrap();
    let filler = fill(&filesystem.0);

    // The log's last page may still take a record or two; then nothing fits.
    let mut signed = 0;
    let refused = loop {
        let output = daemon.cli(&["sign-raw", "--key", &keyid, payload.to_str().unwrap()]);
        if !output.success {
            break output;
        }
        signed += 1;
        assert!(signed < 32, "signing never failed on a full filesystem");
    };
    refused.assert_fails_with("cannot write the audit log");
    assert!(
        refused.stderr.contains("No space left on device"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("Unavailable"), "{}", refused.stderr);
    assert!(
        refused.stdout.is_empty(),
        "a signature came back: {}",
        refused.stdout
    );
    let document = sandbox.path("doc.json");
    let unsigned = r#"{"signed":{"_type":"targets","version":1},"signatures":[]}"#;
    std::fs::write(&document, unsigned).unwrap();
    daemon
        .cli(&["sign", "--key", &keyid, document.to_str().unwrap()])
        .assert_fails_with("cannot write the audit log");
    assert_eq!(
        std::fs::read_to_string(&document).unwrap(),
        unsigned,
        "the document was not signed"
    );

    // With space again, signing works and the log verifies: no half record was left.
    std::fs::remove_file(filler).unwrap();
    daemon.cli_ok(&["sign-raw", "--key", &keyid, payload.to_str().unwrap()]);
    let report = daemon.cli_ok(&["--json", "audit", "verify"]).json();
    assert_eq!(report["records"], 1 + signed + 1, "{report}");
    daemon.stop();
    drop(filesystem);
}
