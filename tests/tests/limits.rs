//! Every resource a caller can make the daemon spend has a bound, proven against the
//! release build (`cargo build --release --bins`), since memory and connection
//! figures of a debug build say little about what ships:
//! - idle TCP connections beyond `--max-connections` are closed at once, and a
//!   thousand of them do not keep a Unix-socket client from signing within 1 s;
//! - a TCP client that never completes its TLS handshake is cut off after
//!   `--tls-handshake-timeout-secs`;
//! - 64 concurrent wrong Unlocks cost one key derivation at a time (RSS stays under
//!   the KDF's 64 MiB + 100 MiB), are refused with the back-off, and the right
//!   passphrase works once it has passed;
//! - 16 concurrent 60 MB SignMetadata requests stay within
//!   `--sign-memory-budget-bytes` (peak RSS under the budget + 200 MiB), the excess
//!   get RESOURCE_EXHAUSTED naming the setting, and the daemon keeps serving.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use secrecy::SecretString;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
use tufkey::{Client, Error};
use tufkey_e2e::daemon::{proc_status_bytes, DaemonOptions, Sandbox, TEST_PASSPHRASE};
use tufkey_e2e::notary::{Pki, TlsDaemon};
use tufkey_proto::v1 as pb;

const MIB: u64 = 1024 * 1024;

fn release() -> DaemonOptions {
    DaemonOptions {
        release: true,
        ..DaemonOptions::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// The gRPC status of a failed call.
fn status(error: Error) -> tonic::Status {
    match error {
        Error::Rpc(status) => status,
        other => panic!("expected an RPC status, got {other}"),
    }
}

/// Lets this process open `wanted` descriptors (soft limit up to the hard limit).
fn allow_open_files(wanted: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    let (soft, hard) = (numbers[0], numbers[1]);
    if soft >= wanted {
        return;
    }
    assert!(
        hard >= wanted,
        "the open-file hard limit {hard} is below the {wanted} this test needs: raise it (ulimit -Hn)"
    );
    let status = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={hard}:{hard}"),
        ])
        .status()
        .expect("run prlimit (util-linux)");
    assert!(status.success(), "prlimit failed");
}

/// Whether the peer closed `stream` (without blocking).
fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) if error.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// A TLS channel to the daemon as the PKI's test client.
async fn tls_channel(pki: &Pki, port: u16) -> tonic::transport::Channel {
    Client::tls_channel(
        &format!("https://127.0.0.1:{port}"),
        &pki.file("ca.crt"),
        Some((&pki.file("client.crt"), &pki.file("client.key"))),
    )
    .await
    .unwrap()
}

async fn health(channel: tonic::transport::Channel) -> i32 {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[test]
fn a_thousand_idle_tcp_connections_are_capped_and_do_not_lock_out_the_unix_socket() {
    const IDLE: usize = 1000;
    const CAP: usize = 200;
    allow_open_files(IDLE as u64 + 200);
    let sandbox = Sandbox::new();
    let pki = Pki::make(&sandbox.path("pki"));
    // A long handshake timeout: the idle connections under the cap stay open.
    let tls = TlsDaemon::start_with(
        &sandbox,
        &pki,
        &[
            "--max-connections",
            &CAP.to_string(),
            "--tls-handshake-timeout-secs",
            "300",
        ],
        release(),
    );
    let runtime = runtime();
    let mut client = runtime
        .block_on(Client::connect_unix(&tls.daemon.socket))
        .unwrap();
    let keyid = runtime
        .block_on(client.generate_key("example.com/limits", "targets"))
        .unwrap()
        .keyid;

    let mut idle: Vec<TcpStream> = (0..IDLE)
        .map(|_| {
            let stream = TcpStream::connect(("127.0.0.1", tls.port)).unwrap();
            stream.set_nonblocking(true).unwrap();
            stream
        })
        .collect();
    let mut closed = vec![false; IDLE];
    let deadline = Instant::now() + Duration::from_secs(20);
    while closed.iter().filter(|closed| **closed).count() < IDLE - CAP && Instant::now() < deadline
    {
        for (stream, closed) in idle.iter_mut().zip(closed.iter_mut()) {
            if !*closed {
                *closed = closed_by_peer(stream);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        closed.iter().filter(|closed| **closed).count(),
        IDLE - CAP,
        "exactly the connections over the cap of {CAP} are closed"
    );

    // With the TCP listener full, a local client still gets its signature at once.
    let started = Instant::now();
    let signed = runtime.block_on(async {
        let mut local = Client::connect_unix(&tls.daemon.socket).await.unwrap();
        local
            .sign_raw(&keyid, b"still served".to_vec(), pb::SignatureFormat::Tuf)
            .await
    });
    let elapsed = started.elapsed();
    assert!(signed.is_ok(), "{signed:?}");
    assert!(
        elapsed < Duration::from_secs(1),
        "signing over the Unix socket took {elapsed:?} with {IDLE} idle TCP connections"
    );
    assert!(
        tls.daemon
            .log_text()
            .contains("closed connections over the listener's cap (--max-connections)"),
        "{}",
        tls.daemon.log_text()
    );
    // Rate-limited: 800 refusals within seconds make a line or two, not 800.
    let lines = tls
        .daemon
        .log_text()
        .matches("closed connections over the listener's cap")
        .count();
    assert!(lines <= 3, "{lines} log lines for {} refusals", IDLE - CAP);
    drop(idle);
}

#[test]
fn a_tcp_client_that_sends_nothing_is_cut_off_after_the_handshake_timeout() {
    let sandbox = Sandbox::new();
    let pki = Pki::make(&sandbox.path("pki"));
    let tls = TlsDaemon::start_with(
        &sandbox,
        &pki,
        &["--tls-handshake-timeout-secs", "1"],
        release(),
    );
    let mut silent = TcpStream::connect(("127.0.0.1", tls.port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let read = silent.read(&mut byte);
    let elapsed = started.elapsed();
    assert!(
        matches!(read, Ok(0))
            || matches!(&read, Err(error) if error.kind() == ErrorKind::ConnectionReset),
        "expected the daemon to close the connection, got {read:?} after {elapsed:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "closed after {elapsed:?}, expected about 1 s"
    );
    // A client that does handshake is served as before.
    let runtime = runtime();
    let serving = runtime.block_on(async { health(tls_channel(&pki, tls.port).await).await });
    assert_eq!(serving, ServingStatus::Serving as i32);
}

#[test]
fn concurrent_wrong_unlocks_derive_one_at_a_time_and_back_off() {
    const ATTEMPTS: usize = 64;
    // The store's Argon2id uses 64 MiB; the rest of the daemon stays well under 100 MiB.
    const RSS_BOUND: u64 = 64 * MIB + 100 * MIB;
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&release());
    let runtime = runtime();
    let results = runtime.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..ATTEMPTS {
            clients.push(Client::connect_unix(&daemon.socket).await.unwrap());
        }
        let mut attempts = tokio::task::JoinSet::new();
        for mut client in clients {
            attempts.spawn(async move {
                client
                    .unlock(&SecretString::from("not the passphrase"))
                    .await
                    .map(|_| ())
                    .map_err(status)
            });
        }
        attempts.join_all().await
    });
    let wrong: Vec<_> = results
        .iter()
        .filter_map(|result| result.as_ref().err())
        .filter(|status| status.code() == Code::Unauthenticated)
        .collect();
    let backing_off: Vec<_> = results
        .iter()
        .filter_map(|result| result.as_ref().err())
        .filter(|status| status.code() == Code::Unavailable)
        .collect();
    assert_eq!(wrong.len(), 1, "one derivation ran: {results:?}");
    assert!(
        wrong[0].message().contains("wrong passphrase"),
        "{}",
        wrong[0].message()
    );
    assert_eq!(backing_off.len(), ATTEMPTS - 1, "{results:?}");
    for status in &backing_off {
        assert!(
            status
                .message()
                .contains("1 wrong passphrase in a row; wait 1 s"),
            "{}",
            status.message()
        );
    }
    let peak = proc_status_bytes(daemon.pid(), "VmHWM");
    eprintln!("peak RSS {} MiB after {ATTEMPTS} Unlocks", peak / MIB);
    assert!(
        peak < RSS_BOUND,
        "peak RSS {} MiB with {ATTEMPTS} concurrent Unlocks; bound {} MiB",
        peak / MIB,
        RSS_BOUND / MIB
    );

    // Once the back-off has passed, the right passphrase unlocks.
    std::thread::sleep(Duration::from_millis(1100));
    let status = runtime
        .block_on(async {
            let mut client = Client::connect_unix(&daemon.socket).await.unwrap();
            client.unlock(&SecretString::from(TEST_PASSPHRASE)).await
        })
        .unwrap();
    assert!(!status.locked);
    assert!(proc_status_bytes(daemon.pid(), "VmHWM") < RSS_BOUND);
}

/// A targets document of about `bytes` bytes.
fn targets_document(bytes: usize) -> Vec<u8> {
    let mut document = String::with_capacity(bytes + 4096);
    document.push_str(
        r#"{"signatures":[],"signed":{"_type":"targets","expires":"2030-01-01T00:00:00Z","spec_version":"1.0.31","targets":{"#,
    );
    let mut index = 0u64;
    while document.len() < bytes {
        if index > 0 {
            document.push(',');
        }
        document.push_str(&format!(
            r#""pkg/file-{index:09}.tar.gz":{{"hashes":{{"sha256":"{index:064x}"}},"length":{}}}"#,
            index * 7 + 1
        ));
        index += 1;
    }
    document.push_str(r#"},"version":1}}"#);
    document.into_bytes()
}

#[test]
fn huge_documents_beyond_the_memory_budget_are_refused_and_the_daemon_keeps_serving() {
    const REQUESTS: usize = 16;
    const DOCUMENT: usize = 60_000_000;
    const BUDGET: u64 = 1024 * MIB;
    // Beyond the budget: the daemon's baseline, tonic's and hyper's buffers.
    const OVERHEAD: u64 = 200 * MIB;
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions {
        args: vec![
            "--max-message-bytes".into(),
            "100000000".into(),
            "--sign-memory-budget-bytes".into(),
            BUDGET.to_string(),
        ],
        ..release()
    });
    let runtime = runtime();
    let document = targets_document(DOCUMENT);
    let keyid = runtime
        .block_on(async {
            let mut client = Client::connect_unix(&daemon.socket).await.unwrap();
            client.generate_key("example.com/budget", "targets").await
        })
        .unwrap()
        .keyid;

    let results = runtime.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..REQUESTS {
            clients.push(Client::connect_unix(&daemon.socket).await.unwrap());
        }
        let mut requests = tokio::task::JoinSet::new();
        for mut client in clients {
            let document = document.clone();
            let keyid = keyid.clone();
            requests.spawn(async move {
                client
                    .sign_metadata(document, vec![keyid])
                    .await
                    .map(|signed| signed.len())
                    .map_err(status)
            });
        }
        requests.join_all().await
    });
    let signed = results.iter().filter(|result| result.is_ok()).count();
    let exhausted: Vec<_> = results
        .iter()
        .filter_map(|result| result.as_ref().err())
        .filter(|status| status.code() == Code::ResourceExhausted)
        .collect();
    let peak = proc_status_bytes(daemon.pid(), "VmHWM");
    eprintln!(
        "{signed} signed, {} refused; peak RSS {} MiB",
        exhausted.len(),
        peak / MIB
    );
    assert!(signed >= 1, "no document was signed: {results:?}");
    assert!(!exhausted.is_empty(), "nothing was refused: {results:?}");
    assert_eq!(signed + exhausted.len(), REQUESTS, "{results:?}");
    for status in &exhausted {
        assert!(
            status.message().contains("--sign-memory-budget-bytes"),
            "{}",
            status.message()
        );
    }
    assert!(
        peak < BUDGET + OVERHEAD,
        "peak RSS {} MiB; budget {} MiB + overhead {} MiB",
        peak / MIB,
        BUDGET / MIB,
        OVERHEAD / MIB
    );

    // Still serving: a small document signs at once.
    let small = br#"{"signatures":[],"signed":{"_type":"targets","expires":"2030-01-01T00:00:00Z","spec_version":"1.0.31","targets":{},"version":2}}"#;
    let signed_small = runtime
        .block_on(async {
            let mut client = Client::connect_unix(&daemon.socket).await.unwrap();
            client
                .sign_metadata(small.to_vec(), vec![keyid.clone()])
                .await
        })
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&signed_small).unwrap();
    assert_eq!(value["signatures"][0]["keyid"], keyid.as_str());
    daemon.stop();
}

#[test]
fn a_client_holding_an_idle_connection_cannot_keep_the_daemon_from_stopping() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&release());
    // An HTTP/2 client that opens its connection and then never closes it.
    let mut idle = std::os::unix::net::UnixStream::connect(sandbox.socket()).unwrap();
    idle.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    let took = daemon.stop_within(Duration::from_secs(30));
    assert!(
        took < Duration::from_secs(15),
        "stopping took {took:?}; the grace period is 10 s"
    );
    let mut rest = Vec::new();
    // The daemon closed the connection on its way out (reset or end of stream).
    let _ = idle.read_to_end(&mut rest);
    assert!(!sandbox.socket().exists(), "the socket was not removed");
}
