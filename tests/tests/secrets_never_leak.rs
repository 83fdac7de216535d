//! After a session of unlock / generate / sign / backup / Docker export with known
//! passphrases, neither a passphrase nor any private key appears in the daemon's
//! debug log, the keystore files, the audit log (under the store), the backup and
//! the exported key files, or anything the CLI received. Nothing is decrypted: bytes
//! are scanned.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use p256::pkcs8::DecodePublicKey;
use std::path::Path;
use tufkey_e2e::daemon::{DaemonOptions, Sandbox};
use tufkey_e2e::leak_scan::{encodings_of, ScalarDetector};

const PASSPHRASE: &str = "leak-canary passphrase 7f3a9c";
const BACKUP_PASSPHRASE: &str = "leak-canary backup 51be0d";
const EXPORT_PASSPHRASE: &str = "leak-canary notary export 93c1aa";

fn files_under(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else if path.is_file() {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
}

#[test]
fn no_passphrase_or_private_key_in_logs_files_or_replies() {
    let sandbox = Sandbox::new();
    let options = DaemonOptions {
        passphrase: None,
        log_level: "debug".into(),
        ..DaemonOptions::default()
    };
    let daemon = sandbox.start(&options);
    let mut replies: Vec<String> = Vec::new();
    let mut record = |output: tufkey_e2e::daemon::CliOutput| {
        assert!(output.success, "{}", output.stderr);
        replies.push(output.stdout.clone() + &output.stderr);
        output
    };

    record(daemon.cli_with_stdin(
        &["--json", "unlock", "--passphrase-stdin"],
        format!("{PASSPHRASE}\n").as_bytes(),
    ));
    let mut keyids = Vec::new();
    for role in ["root", "targets", "snapshot", "timestamp"] {
        let out = record(daemon.cli(&[
            "--json",
            "key",
            "generate",
            "--gun",
            "example.com/leaks",
            "--role",
            role,
        ]));
        keyids.push(out.json()["keyid"].as_str().unwrap().to_owned());
    }
    let listed = record(daemon.cli(&["--json", "key", "list"])).json();
    record(daemon.cli(&["--json", "key", "show", &keyids[0]]));
    let doc = sandbox.path("doc.json");
    std::fs::write(
        &doc,
        r#"{"signed":{"_type":"targets","version":1,"targets":{}},"signatures":[]}"#,
    )
    .unwrap();
    record(daemon.cli(&[
        "--json",
        "sign",
        "--key",
        &keyids[1],
        "--key",
        &keyids[0],
        doc.to_str().unwrap(),
    ]));
    let signed_document = std::fs::read_to_string(&doc).unwrap();
    for format in ["tuf", "notary"] {
        record(daemon.cli(&[
            "--json",
            "sign-raw",
            "--key",
            &keyids[2],
            "--format",
            format,
            doc.to_str().unwrap(),
        ]));
    }
    record(daemon.cli(&["--json", "lock"]));
    record(daemon.cli_with_stdin(
        &["--json", "unlock", "--passphrase-stdin"],
        format!("{PASSPHRASE}\n").as_bytes(),
    ));
    record(daemon.cli(&[
        "--json",
        "sign-raw",
        "--key",
        &keyids[3],
        doc.to_str().unwrap(),
    ]));
    let backup = sandbox.path("leaks.age");
    record(daemon.cli_with_stdin(
        &[
            "--json",
            "backup",
            "--gun",
            "example.com/leaks",
            "--out",
            backup.to_str().unwrap(),
            "--passphrase-stdin",
        ],
        format!("{BACKUP_PASSPHRASE}\n").as_bytes(),
    ));
    let exported = sandbox.path("leaks-notary.pem");
    record(daemon.cli_with_stdin(
        &[
            "--json",
            "export",
            "docker",
            "--gun",
            "example.com/leaks",
            "--out",
            exported.to_str().unwrap(),
            "--passphrase-stdin",
        ],
        format!("{EXPORT_PASSPHRASE}\n").as_bytes(),
    ));
    record(daemon.cli(&["--json", "status"]));
    record(daemon.cli(&["--json", "audit", "tail", "-n", "0"]));
    replies.push(signed_document);
    let log_path = daemon.log.clone();
    daemon.stop();

    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
    let log = std::fs::read(&log_path).unwrap();
    assert!(
        String::from_utf8_lossy(&log).contains("DEBUG"),
        "the daemon did not log at debug level"
    );
    haystacks.push(("daemon log".into(), log));
    files_under(&sandbox.store(), &mut haystacks);
    let audit_log = sandbox.store().join("audit/audit.log");
    let audit = haystacks
        .iter()
        .find(|(name, _)| name == &audit_log.display().to_string())
        .expect("the audit log is among the files scanned");
    // Unlock, 4 generates, 1 metadata signature per key (2), 2 raw, lock, unlock, 1 raw;
    // the backup and the export: one record per key each.
    assert_eq!(
        String::from_utf8_lossy(&audit.1).lines().count(),
        20,
        "the audit log holds the session's records"
    );
    for file in [&backup, &exported] {
        haystacks.push((file.display().to_string(), std::fs::read(file).unwrap()));
    }
    for (n, reply) in replies.into_iter().enumerate() {
        haystacks.push((format!("CLI reply {n}"), reply.into_bytes()));
    }
    assert!(
        haystacks.len() >= 6,
        "nothing to scan: {:?}",
        haystacks.iter().map(|h| &h.0).collect::<Vec<_>>()
    );

    let public_keys = listed.as_array().unwrap().iter().map(|key| {
        p256::PublicKey::from_public_key_pem(key["public_pem"].as_str().unwrap()).unwrap()
    });
    let detector = ScalarDetector::new(public_keys);
    for (name, bytes) in &haystacks {
        for encoding in [PASSPHRASE, BACKUP_PASSPHRASE, EXPORT_PASSPHRASE]
            .into_iter()
            .flat_map(encodings_of)
        {
            assert!(
                !bytes
                    .windows(encoding.len())
                    .any(|window| window == encoding.as_bytes()),
                "{name} contains the passphrase (as {encoding:?})"
            );
        }
        assert!(
            !detector.finds_private_key_in(bytes),
            "{name} contains a private key"
        );
    }
}
