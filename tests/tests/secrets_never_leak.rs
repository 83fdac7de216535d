//! After a session of unlock / generate / sign / backup / Docker export with known
//! passphrases, neither a passphrase nor any private key appears in the daemon's
//! debug log, the keystore files, the audit log (under the store), the backup and
//! the exported key files, or anything the CLI received. Nothing is decrypted: bytes
//! are scanned.
//!
//! The same holds at trace level, on the error paths (a wrong keystore passphrase,
//! a restore and a Docker import with the wrong passphrase) and over TCP with mutual
//! TLS, both the native API and the Notary signer API. And the daemon process keeps
//! what it holds out of reach: `TUFKEY_PASSPHRASE` is gone from `/proc/PID/environ`,
//! core files are off, the process is not dumpable, and its memory is locked when the
//! limits allow (else it says how to allow it).
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use p256::pkcs8::DecodePublicKey;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tufkey::Client;
use tufkey_e2e::daemon::{bin_dir, CliOutput, DaemonOptions, Sandbox};
use tufkey_e2e::leak_scan::{encodings_of, ScalarDetector};
use tufkey_e2e::notary::{Pki, TlsDaemon};
use tufkey_proto::notary as pb;
use tufkey_proto::notary::{
    key_management_client::KeyManagementClient, signer_client::SignerClient,
};

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
    let mut record = |output: CliOutput| {
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

const WRONG_PASSPHRASE: &str = "leak-canary wrong guess c0ffee";
const TCP_WRONG_PASSPHRASE: &str = "leak-canary tcp wrong guess 4242";

/// Grants the PKI's test client everything but device administration over TCP, so
/// the native API's secret-bearing calls (Unlock) run over mutual TLS too.
const TCP_POLICY: &str = r#"
[[grant]]
cert_cn = "notary-server"
permissions = ["notary"]

[[grant]]
cert_cn = "tufkey-test-client"
permissions = ["notary", "sign", "keys_read", "keys_admin", "session"]
"#;

/// `tufkey --addr https://... (client.crt) ARGS`, stdin fed when given.
fn cli_over_tls(tls: &TlsDaemon, pki: &Pki, args: &[&str], stdin: &[u8]) -> CliOutput {
    let mut child = Command::new(bin_dir().join("tufkey"))
        .arg("--addr")
        .arg(tls.url())
        .arg("--tls-ca")
        .arg(pki.file("ca.crt"))
        .arg("--tls-cert")
        .arg(pki.file("client.crt"))
        .arg("--tls-key")
        .arg(pki.file("client.key"))
        .args(args)
        .env_remove("TUFKEY_SOCK")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    CliOutput {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Asserts that no encoding of any of `passphrases`, and no private key of
/// `public_keys`, occurs in any of `haystacks`.
fn assert_nothing_leaks(
    haystacks: &[(String, Vec<u8>)],
    passphrases: &[&str],
    public_keys: impl IntoIterator<Item = p256::PublicKey>,
) {
    let detector = ScalarDetector::new(public_keys);
    for (name, bytes) in haystacks {
        for encoding in passphrases.iter().copied().flat_map(encodings_of) {
            assert!(
                !bytes
                    .windows(encoding.len())
                    .any(|window| window == encoding.as_bytes()),
                "{name} contains a passphrase (as {encoding:?})"
            );
        }
        assert!(
            !detector.finds_private_key_in(bytes),
            "{name} contains a private key"
        );
    }
}

#[test]
fn trace_logs_error_paths_tcp_and_notary_leak_nothing() {
    let sandbox = Sandbox::new();
    let pki = Pki::make(&sandbox.path("pki"));
    let policy = sandbox.path("policy.toml");
    std::fs::write(&policy, TCP_POLICY).unwrap();
    let tls = TlsDaemon::start_with(
        &sandbox,
        &pki,
        &["--policy", policy.to_str().unwrap()],
        DaemonOptions {
            passphrase: Some(PASSPHRASE.into()),
            log_level: "trace".into(),
            ..DaemonOptions::default()
        },
    );
    let daemon = &tls.daemon;
    let gun = "example.com/trace-leaks";
    let mut replies: Vec<String> = Vec::new();
    // Notary API replies, kept apart while `record` holds `replies`.
    let mut notary_replies: Vec<String> = Vec::new();
    let mut record = |output: CliOutput, should_succeed: bool| {
        assert_eq!(
            output.success, should_succeed,
            "{}{}",
            output.stdout, output.stderr
        );
        replies.push(output.stdout.clone() + &output.stderr);
        output
    };

    // The Unix socket: keys, a backup and a Docker export to take back in wrongly.
    for role in ["root", "targets"] {
        record(
            daemon.cli(&["--json", "key", "generate", "--gun", gun, "--role", role]),
            true,
        );
    }
    let backup = sandbox.path("trace.age");
    record(
        daemon.cli_with_stdin(
            &[
                "--json",
                "backup",
                "--gun",
                gun,
                "--out",
                backup.to_str().unwrap(),
                "--passphrase-stdin",
            ],
            format!("{BACKUP_PASSPHRASE}\n").as_bytes(),
        ),
        true,
    );
    let exported = sandbox.path("trace-notary.pem");
    record(
        daemon.cli_with_stdin(
            &[
                "--json",
                "export",
                "docker",
                "--gun",
                gun,
                "--out",
                exported.to_str().unwrap(),
                "--passphrase-stdin",
            ],
            format!("{EXPORT_PASSPHRASE}\n").as_bytes(),
        ),
        true,
    );
    // Error paths: a wrong keystore passphrase, a restore and an import with the
    // wrong passphrase.
    record(daemon.cli(&["--json", "lock"]), true);
    let wrong = record(
        daemon.cli_with_stdin(
            &["--json", "unlock", "--passphrase-stdin"],
            format!("{WRONG_PASSPHRASE}\n").as_bytes(),
        ),
        false,
    );
    assert!(wrong.stderr.contains("passphrase"), "{}", wrong.stderr);
    record(
        daemon.cli_with_stdin(
            &[
                "--json",
                "restore",
                backup.to_str().unwrap(),
                "--passphrase-stdin",
            ],
            format!("{WRONG_PASSPHRASE}\n").as_bytes(),
        ),
        false,
    );
    record(
        daemon.cli_with_stdin(
            &[
                "--json",
                "import",
                "docker",
                "--bundle",
                exported.to_str().unwrap(),
                "--gun",
                gun,
                "--passphrase-stdin",
            ],
            format!("{WRONG_PASSPHRASE}\n{WRONG_PASSPHRASE}\n").as_bytes(),
        ),
        false,
    );

    // TCP with mutual TLS, the native API: a wrong then (after the back-off) the right
    // passphrase, and signatures.
    std::thread::sleep(Duration::from_millis(1100));
    record(
        cli_over_tls(
            &tls,
            &pki,
            &["--json", "unlock", "--passphrase-stdin"],
            format!("{TCP_WRONG_PASSPHRASE}\n").as_bytes(),
        ),
        false,
    );
    std::thread::sleep(Duration::from_millis(2100));
    record(
        cli_over_tls(
            &tls,
            &pki,
            &["--json", "unlock", "--passphrase-stdin"],
            format!("{PASSPHRASE}\n").as_bytes(),
        ),
        true,
    );
    let listed = record(
        cli_over_tls(&tls, &pki, &["--json", "key", "list"], b""),
        true,
    )
    .json();
    let targets = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["role"] == "targets")
        .unwrap()["keyid"]
        .as_str()
        .unwrap()
        .to_owned();
    let doc = sandbox.path("doc.json");
    std::fs::write(&doc, r#"{"_type":"targets","version":1}"#).unwrap();
    record(
        cli_over_tls(
            &tls,
            &pki,
            &[
                "--json",
                "sign-raw",
                "--key",
                &targets,
                doc.to_str().unwrap(),
            ],
            b"",
        ),
        true,
    );

    // The Notary signer API over mutual TLS: a key made and used, and a refused Sign.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let channel = runtime
        .block_on(Client::tls_channel(
            &tls.url(),
            &pki.file("ca.crt"),
            Some((&pki.file("client.crt"), &pki.file("client.key"))),
        ))
        .unwrap();
    let created = runtime
        .block_on(
            KeyManagementClient::new(channel.clone()).create_key(pb::CreateKeyRequest {
                algorithm: "ecdsa".into(),
                gun: gun.into(),
                role: "snapshot".into(),
            }),
        )
        .unwrap()
        .into_inner();
    let notary_id = created.key_info.unwrap().key_id.unwrap().id;
    let mut signer = SignerClient::new(channel);
    let signed = runtime
        .block_on(signer.sign(pb::SignatureRequest {
            key_id: Some(pb::KeyId { id: notary_id }),
            content: b"{\"_type\":\"snapshot\"}".to_vec(),
        }))
        .unwrap()
        .into_inner();
    notary_replies.push(format!("{signed:?}"));
    let refused = runtime
        .block_on(signer.sign(pb::SignatureRequest {
            key_id: Some(pb::KeyId {
                id: "feedface".into(),
            }),
            content: Vec::new(),
        }))
        .unwrap_err();
    notary_replies.push(format!("{refused:?}"));
    // Close the connection: the daemon's graceful shutdown waits for open ones.
    drop(signer);
    drop(runtime);

    let all_keys = record(daemon.cli(&["--json", "key", "list"]), true).json();
    assert_eq!(all_keys.as_array().unwrap().len(), 3, "{all_keys}");
    let log_path = daemon.log.clone();
    tls.daemon.stop();

    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
    let log = std::fs::read(&log_path).unwrap();
    let log_text = String::from_utf8_lossy(&log);
    assert!(
        log_text.contains("TRACE"),
        "the daemon did not log at trace level"
    );
    assert!(
        log_text.contains("wrong keystore passphrase"),
        "the wrong passphrases were not logged as such"
    );
    haystacks.push(("daemon trace log".into(), log));
    files_under(&sandbox.store(), &mut haystacks);
    for file in [&backup, &exported] {
        haystacks.push((file.display().to_string(), std::fs::read(file).unwrap()));
    }
    for (n, reply) in replies.into_iter().chain(notary_replies).enumerate() {
        haystacks.push((format!("reply {n}"), reply.into_bytes()));
    }
    let public_keys = all_keys.as_array().unwrap().iter().map(|key| {
        p256::PublicKey::from_public_key_pem(key["public_pem"].as_str().unwrap()).unwrap()
    });
    assert_nothing_leaks(
        &haystacks,
        &[
            PASSPHRASE,
            BACKUP_PASSPHRASE,
            EXPORT_PASSPHRASE,
            WRONG_PASSPHRASE,
            TCP_WRONG_PASSPHRASE,
        ],
        public_keys,
    );
}

/// One field of `/proc/PID/status`, e.g. `Uid` (its first number) or `VmLck`.
fn proc_status_number(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn the_daemon_process_keeps_its_secrets_out_of_environ_core_files_and_swap() {
    // The daemon runs as an unprivileged uid: then the owner of /proc/PID/* shows
    // whether it is dumpable (the kernel makes them root's when it is not), and the
    // locked-memory limit is an ordinary user's. Run as root (CI does) so that the
    // test can switch the daemon's uid and read its /proc entries.
    assert!(
        proc_status_number(std::process::id(), "Uid") == 0,
        "run this test as root (scripts/test does): it starts tufkeyd as nobody"
    );
    const NOBODY: u32 = 65534;
    let sandbox = Sandbox::new();
    std::os::unix::fs::chown(sandbox.dir.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    // The workspace's target/ may not be reachable by nobody (a clone in a 0700
    // temporary directory is not): run a copy from the sandbox.
    let daemon_binary = sandbox.path("tufkeyd");
    std::fs::copy(bin_dir().join("tufkeyd"), &daemon_binary).unwrap();
    let log = sandbox.path("tufkeyd.log");
    let mut child = Command::new(&daemon_binary)
        .arg("--socket")
        .arg(sandbox.socket())
        .arg("--store")
        .arg(sandbox.store())
        .args(["--no-keyring", "--no-yubikey"])
        .env("TUFKEY_PASSPHRASE", PASSPHRASE)
        .env("RUST_LOG", "info")
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("tufkeyd listening")
    {
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "tufkeyd did not start: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("keystore unlocked") && log_text.contains("environment"),
        "TUFKEY_PASSPHRASE did not unlock the keystore: {log_text}"
    );

    // The passphrase is in no form in the environment the kernel shows.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        environ
            .windows(b"RUST_LOG=info".len())
            .any(|w| w == b"RUST_LOG=info"),
        "not the daemon's environment"
    );
    assert_nothing_leaks(
        &[("/proc/PID/environ".into(), environ.clone())],
        &[PASSPHRASE],
        [],
    );
    assert!(
        !environ
            .windows(b"TUFKEY_PASSPHRASE=".len())
            .any(|w| w == b"TUFKEY_PASSPHRASE="),
        "TUFKEY_PASSPHRASE is still in /proc/{pid}/environ"
    );

    // No core file, whatever the soft or hard limit is raised to later.
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|line| line.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(
        core.split_whitespace().skip(4).take(2).collect::<Vec<_>>(),
        ["0", "0"],
        "{core}"
    );
    // Not dumpable: /proc/PID/* belong to root although the process runs as nobody.
    assert_eq!(proc_status_number(pid, "Uid"), u64::from(NOBODY));
    let owner = std::fs::metadata(format!("/proc/{pid}/environ"))
        .unwrap()
        .uid();
    assert_eq!(
        owner, 0,
        "/proc/{pid}/environ is owned by uid {owner}: the daemon is dumpable"
    );

    // Memory locked when the limit allows, else a warning with the fix.
    let unlimited = limits
        .lines()
        .find(|line| line.starts_with("Max locked memory"))
        .is_some_and(|line| line.split_whitespace().nth(3) == Some("unlimited"));
    let locked_kib = proc_status_number(pid, "VmLck");
    if unlimited {
        assert!(
            locked_kib > 0,
            "RLIMIT_MEMLOCK is unlimited but no memory is locked"
        );
    } else {
        assert_eq!(locked_kib, 0, "memory locked under a finite RLIMIT_MEMLOCK");
        assert!(
            log_text.contains("LimitMEMLOCK=infinity"),
            "no warning with the fix: {log_text}"
        );
    }

    let stopped = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(child.wait().unwrap().success());
}
