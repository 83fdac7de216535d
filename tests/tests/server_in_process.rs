//! The real server (`tufkeyd::server::serve`) in this process, over a real Unix
//! socket, with a backend it has never heard of: the in-memory test backend,
//! plugged in through the public seam. Covers generate, list, sign, delete, unlock,
//! a key that appears in the backend after start-up (found through `find`), and a
//! graceful shutdown that finishes every background task and removes the socket.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tonic::Code;
use tufkey::proto;
use tufkey::{Client, Error};
use tufkey_e2e::memory_backend::{MemoryBackend, NAME};
use tufkeyd::audit::{AuditConfig, AuditKey, LogFile};
use tufkeyd::config::ListenConfig;
use tufkeyd::keys::Backends;
use tufkeyd::server::{serve, ServiceConfig};

const PASSPHRASE: &str = "memory passphrase";

fn code(error: Error) -> Code {
    match error {
        Error::Rpc(status) => status.code(),
        other => panic!("expected an RPC error, got {other}"),
    }
}

fn verify(key: &proto::Key, payload: &[u8], hex_der: &str) {
    let verifying_key = VerifyingKey::from_public_key_pem(&key.public_pem).unwrap();
    let signature = Signature::from_der(&hex::decode(hex_der).unwrap()).unwrap();
    let digest = Sha256::digest(payload);
    verifying_key
        .verify_prehash(&digest, &signature)
        .expect("the signature verifies against the key's public PEM");
}

fn other_location(key: &proto::Key) -> &str {
    match &key.location {
        Some(proto::key::Location::Other(other)) => &other.backend,
        other => panic!("expected an other-backend location, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_a_backend_plugged_in_through_the_seam() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run/tufkeyd.sock");
    let memory = Arc::new(MemoryBackend::new(PASSPHRASE));
    let mut backends = Backends::new();
    backends.register(memory.clone()).unwrap();
    let (stop, server) = start(&socket, backends);
    let mut client = connect(&socket).await;
    assert!(
        memory.maintenance_started(),
        "the server runs the backend's background work"
    );
    assert_eq!(
        memory.change_listeners(),
        1,
        "the registry follows the backend's changes"
    );

    // Locked until unlocked; a wrong passphrase is refused as such.
    let status = client.status().await.unwrap();
    assert!(status.locked);
    assert_eq!(status.store, NAME);
    assert_eq!(
        code(
            client
                .generate_key("example.com/app", "targets")
                .await
                .unwrap_err()
        ),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(
            client
                .unlock(&SecretString::from("wrong"))
                .await
                .unwrap_err()
        ),
        Code::Unauthenticated
    );
    assert!(
        !client
            .unlock(&SecretString::from(PASSPHRASE))
            .await
            .unwrap()
            .locked
    );

    // Generate, list, sign (raw and metadata).
    let key = client
        .generate_key("example.com/app", "targets")
        .await
        .unwrap();
    assert_eq!(other_location(&key), NAME);
    assert!(key.available);
    assert!(memory.holds(&key.keyid));
    let listed = client.list_keys("example.com/app", "").await.unwrap();
    assert_eq!(
        listed.iter().map(|k| &k.keyid).collect::<Vec<_>>(),
        vec![&key.keyid]
    );
    let signed = client
        .sign_raw(&key.keyid, b"payload".to_vec(), proto::SignatureFormat::Tuf)
        .await
        .unwrap();
    verify(&key, b"payload", &signed.signature);
    let document = client
        .sign_metadata(
            br#"{"signed":{"_type":"targets","version":1},"signatures":[]}"#.to_vec(),
            vec![key.keyid.clone()],
        )
        .await
        .unwrap();
    let document: serde_json::Value = serde_json::from_slice(&document).unwrap();
    assert_eq!(document["signatures"][0]["keyid"], key.keyid.as_str());
    verify(
        &key,
        br#"{"_type":"targets","version":1}"#,
        document["signatures"][0]["sig"].as_str().unwrap(),
    );

    // A key added to the backend after start-up, without any notice: found by
    // TUF key ID and by Notary key ID, and it signs.
    let late = memory.add_behind_the_daemons_back("example.com/app", "snapshot");
    let found = client.get_key(&late.keyid).await.unwrap();
    assert_eq!(found.role, "snapshot");
    assert_eq!(
        client.get_key(&late.notary_keyid).await.unwrap().keyid,
        late.keyid
    );
    let found = client.get_key(&late.keyid).await.unwrap();
    let signed = client
        .sign_raw(&found.keyid, b"late".to_vec(), proto::SignatureFormat::Tuf)
        .await
        .unwrap();
    verify(&found, b"late", &signed.signature);
    assert_eq!(client.list_keys("", "").await.unwrap().len(), 2);
    assert_eq!(
        code(client.get_key(&"0".repeat(64)).await.unwrap_err()),
        Code::NotFound
    );

    // Delete.
    let deleted = client.delete_key(&key.keyid).await.unwrap();
    assert_eq!(deleted.keyid, key.keyid);
    assert!(!memory.holds(&key.keyid));
    assert_eq!(
        code(client.get_key(&key.keyid).await.unwrap_err()),
        Code::NotFound
    );

    // Lock: signing needs the passphrase again.
    assert!(client.lock().await.unwrap().locked);
    assert_eq!(
        code(
            client
                .sign_raw(&late.keyid, b"x".to_vec(), proto::SignatureFormat::Tuf)
                .await
                .unwrap_err()
        ),
        Code::FailedPrecondition
    );

    // A backend without devices: the Devices API says so instead of failing oddly.
    assert_eq!(
        code(client.list_devices().await.unwrap_err()),
        Code::FailedPrecondition
    );

    // Every call that used a key or the lock is in the audit log, in order, under
    // a key derived from the backend's secret; the calls refused before the first
    // unlock could not be MACed and are not.
    let log = std::fs::read(audit_log(&socket)).unwrap();
    let verified = tufkeyd::audit::verify(
        &AuditKey::derive(PASSPHRASE.as_bytes()),
        [LogFile {
            name: "audit.log".into(),
            bytes: log.clone(),
        }],
        None,
    )
    .unwrap();
    let records: Vec<serde_json::Value> = String::from_utf8(log)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(verified.records, records.len() as u64);
    let summary: Vec<(&str, &str)> = records
        .iter()
        .map(|record| {
            (
                record["rpc"].as_str().unwrap(),
                record["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("tufkey.v1.Session/Unlock", "ok"),
            ("tufkey.v1.Keys/GenerateKey", "ok"),
            ("tufkey.v1.Signing/SignRaw", "ok"),
            ("tufkey.v1.Signing/SignMetadata", "ok"),
            ("tufkey.v1.Signing/SignRaw", "ok"),
            ("tufkey.v1.Keys/DeleteKey", "ok"),
            ("tufkey.v1.Session/Lock", "ok"),
            ("tufkey.v1.Signing/SignRaw", "failed_precondition"),
        ]
    );
    assert!(records
        .iter()
        .all(|record| record["caller"]["uid"] == own_uid()));
    assert_eq!(records[2]["keyid"], key.keyid.as_str());
    assert_eq!(
        records[2]["payload_sha256"],
        hex::encode(Sha256::digest(b"payload"))
    );
    assert_eq!(records[3]["_type"], "targets");
    assert_eq!(records[3]["version"], 1);

    // Graceful shutdown: serve returns, every background task has finished, the
    // socket is gone.
    drop(client);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns after the shutdown signal")
        .unwrap()
        .expect("serve ends cleanly");
    assert!(
        memory.maintenance_finished(),
        "the backend's background work was awaited"
    );
    assert_eq!(
        memory.change_listeners(),
        0,
        "the registry's follower task ended"
    );
    assert!(!socket.exists(), "the socket is removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devices_api_says_why_when_no_backend_manages_devices() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tufkeyd.sock");
    let mut backends = Backends::new();
    backends
        .register(Arc::new(MemoryBackend::new(PASSPHRASE)))
        .unwrap();
    backends.switched_off(
        "yubikey",
        "YubiKey support is off: tufkeyd was started with --no-yubikey".into(),
    );
    let (stop, server) = start(&socket, backends);
    let mut client = connect(&socket).await;
    let Error::Rpc(status) = client.watch_devices().await.unwrap_err() else {
        panic!("expected an RPC error");
    };
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status
            .message()
            .contains("YubiKey support is off: tufkeyd was started with --no-yubikey"),
        "{}",
        status.message()
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns")
        .unwrap()
        .unwrap();
    assert!(!socket.exists());
}

type Server = tokio::task::JoinHandle<tufkeyd::error::Result<()>>;

/// Runs the real server on `socket` for this process's uid, until `stop` is sent.
fn start(socket: &std::path::Path, backends: Backends) -> (oneshot::Sender<()>, Server) {
    let listen = ListenConfig {
        socket: socket.to_path_buf(),
        allow_uids: vec![own_uid()],
        allow_gids: Vec::new(),
        max_message_bytes: 1 << 20,
        tcp: None,
    };
    let audit = AuditConfig {
        path: audit_log(socket),
        max_bytes: 1 << 20,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve(
            &listen,
            &ServiceConfig::default(),
            &audit,
            backends,
            async {
                let _ = stopped.await;
            },
        )
        .await
    });
    (stop, server)
}

/// Where `start` puts the audit log: beside the socket.
fn audit_log(socket: &std::path::Path) -> std::path::PathBuf {
    socket.with_file_name("audit").join("audit.log")
}

fn own_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|meta| std::os::unix::fs::MetadataExt::uid(&meta))
        .expect("/proc/self")
}

async fn connect(socket: &std::path::Path) -> Client {
    for _ in 0..100 {
        if socket.exists() {
            if let Ok(mut client) = Client::connect_unix(socket).await {
                if client.status().await.is_ok() || client.list_keys("", "").await.is_ok() {
                    return client;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the in-process server did not come up on {}",
        socket.display()
    );
}
