//! tufkeyd as notary-signer's drop-in replacement, proven with the real binaries:
//! the real notary-server keeps its timestamp and snapshot keys in tufkeyd over mutual
//! TLS while the real `notary` client publishes; and tufkeyd's TCP listener refuses
//! every client it should.
//!
//! Needs `cargo build --bins` first and the Debian `notary` package
//! (scripts/notary/install.sh).
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
use tufkey::Client;
use tufkey_e2e::daemon::{bin_dir, DaemonOptions, Sandbox};
use tufkey_e2e::notary::{
    client_flow, openssl_handshake, require_notary_binaries, NotaryServer, Pki, TlsDaemon,
};
use tufkey_e2e::vcard;
use tufkey_proto::notary as pb;
use tufkey_proto::notary::{
    key_management_client::KeyManagementClient, signer_client::SignerClient,
};

/// A tufkeyd with TCP + mTLS, its sandbox and the PKI, kept alive together.
struct Setup {
    tufkeyd: TlsDaemon,
    pki: Pki,
    _sandbox: Sandbox,
}

impl Setup {
    fn start(extra_args: &[&str]) -> Setup {
        let sandbox = Sandbox::new();
        let pki = Pki::make(&sandbox.path("pki"));
        let tufkeyd = TlsDaemon::start(&sandbox, &pki, extra_args);
        Setup {
            tufkeyd,
            pki,
            _sandbox: sandbox,
        }
    }

    /// A TLS channel presenting `<client>.crt` / `<client>.key` (no certificate if `None`).
    async fn channel(&self, client: Option<&str>) -> tufkey::Result<tonic::transport::Channel> {
        let identity = client.map(|name| {
            (
                self.pki.file(&format!("{name}.crt")),
                self.pki.file(&format!("{name}.key")),
            )
        });
        Client::tls_channel(
            &self.tufkeyd.url(),
            &self.pki.file("ca.crt"),
            identity
                .as_ref()
                .map(|(cert, key)| (cert.as_path(), key.as_path())),
        )
        .await
    }

    /// `tufkey key list --json` over the Unix socket.
    fn listed_keys(&self) -> Vec<Value> {
        let listed = self
            .tufkeyd
            .daemon
            .cli_ok(&["--json", "key", "list"])
            .json();
        listed.as_array().expect("key list is an array").clone()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Asks tufkeyd for a new key through the Notary API; returns its Notary key ID.
async fn create_notary_key(
    channel: tonic::transport::Channel,
    gun: &str,
    role: &str,
) -> Result<String, tonic::Status> {
    let created = KeyManagementClient::new(channel)
        .create_key(pb::CreateKeyRequest {
            algorithm: "ecdsa".into(),
            gun: gun.into(),
            role: role.into(),
        })
        .await?
        .into_inner();
    Ok(created.key_info.unwrap().key_id.unwrap().id)
}

/// The status of the first RPC on a channel (a refused client sees the TLS 1.3 alert
/// here: its own side of the handshake finished before the server judged its cert).
async fn first_rpc(channel: tufkey::Result<tonic::transport::Channel>) -> Result<(), String> {
    let channel = channel.map_err(|error| error.to_string())?;
    create_notary_key(channel, "example.com/refused", "timestamp")
        .await
        .map(drop)
        .map_err(|status| {
            let mut text = format!("{:?}: {}", status.code(), status.message());
            let mut source = std::error::Error::source(&status);
            while let Some(inner) = source {
                text.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            text
        })
}

/// Runs the whole notary client flow against notary-server backed by `setup`'s tufkeyd
/// and checks that the server-managed keys live in tufkeyd's `backend`.
fn notary_flow_keeps_server_keys_in_tufkeyd(setup: &Setup, backend: &str) {
    require_notary_binaries();
    let server = NotaryServer::start(&setup.pki, setup.tufkeyd.port);
    let gun = format!("example.com/tufkey/e2e-{backend}-{}", std::process::id());

    let flow = client_flow(&setup.pki, &server, &gun);
    flow.assert_passed_with_server_keys();

    let keys = setup.listed_keys();
    for (role, notary_keyid) in &flow.signer_keys {
        let key = keys
            .iter()
            .find(|key| key["notary_keyid"] == notary_keyid.as_str())
            .unwrap_or_else(|| {
                panic!("{role} key {notary_keyid} is not in tufkey key list: {keys:#?}")
            });
        assert_eq!(key["gun"], gun.as_str());
        assert_eq!(key["role"], role.as_str());
        assert_eq!(key["backend"], backend);
    }

    // notary-server's own gRPC health client must accept tufkeyd (both service names).
    let (code, body) = server.health_after_first_trust_check(&setup.pki);
    assert_eq!(code, "200", "notary-server's trust check failed: {body}");
    assert_eq!(body.trim(), "{}");
}

#[test]
fn notary_server_publishes_with_its_timestamp_and_snapshot_keys_in_tufkeyd() {
    notary_flow_keeps_server_keys_in_tufkeyd(&Setup::start(&[]), "software");
}

#[test]
fn notary_server_publishes_with_its_timestamp_and_snapshot_keys_on_a_yubikey() {
    let cards = vcard::cards();
    let serial = cards.serial(3);
    vcard::reset(serial);
    let serial_text = serial.to_string();
    let sandbox = Sandbox::new();
    let pki = Pki::make(&sandbox.path("pki"));
    let tufkeyd = TlsDaemon::start_with(
        &sandbox,
        &pki,
        &[
            "--notary-backend",
            "yubikey",
            "--notary-yubikey-serial",
            &serial_text,
        ],
        DaemonOptions::with_yubikeys(),
    );
    // What an operator does once: replace the factory management key, give the PIN.
    let init = tufkeyd.daemon.cli_with_stdin(
        &["device", "init", "--serial", &serial_text, "--pin-stdin"],
        format!("{}\n", vcard::PIN).as_bytes(),
    );
    assert!(init.success, "{}", init.stderr);
    assert!(vcard::unlock(&tufkeyd.daemon, serial, vcard::PIN).success);
    let setup = Setup {
        tufkeyd,
        pki,
        _sandbox: sandbox,
    };
    notary_flow_keeps_server_keys_in_tufkeyd(&setup, "yubikey");
    let on_card = setup.listed_keys();
    assert!(
        on_card
            .iter()
            .filter(|key| key["backend"] == "yubikey")
            .all(|key| key["serial"] == serial),
        "{on_card:#?}"
    );
    drop(setup);
    vcard::reset(serial);
}

#[test]
fn mtls_refuses_clients_without_a_certificate_or_with_one_from_another_ca() {
    let setup = Setup::start(&[]);
    let port = setup.tufkeyd.port;

    // The handshake itself refuses them, with the alert saying why.
    let without_certificate = openssl_handshake(&setup.pki, port, None)
        .expect_err("a handshake without a client certificate succeeded");
    assert!(
        without_certificate.contains("alert certificate required"),
        "{without_certificate}"
    );
    let other_ca = openssl_handshake(&setup.pki, port, Some("other-client"))
        .expect_err("a handshake with another CA's client certificate succeeded");
    assert!(other_ca.contains("alert unknown ca"), "{other_ca}");
    openssl_handshake(&setup.pki, port, Some("client"))
        .expect("a client certificate from the CA completes the handshake");

    // gRPC clients (TLS 1.3) see their first call fail, and nothing was created.
    let runtime = runtime();
    for refused in [None, Some("other-client")] {
        runtime
            .block_on(first_rpc(runtime.block_on(setup.channel(refused))))
            .expect_err("a refused client was served");
    }
    assert!(setup.listed_keys().is_empty());
    runtime
        .block_on(first_rpc(runtime.block_on(setup.channel(Some("client")))))
        .expect("a client certificate from the CA is served");
    assert_eq!(setup.listed_keys().len(), 1);
}

#[test]
fn subject_allow_list_refuses_an_unlisted_common_name() {
    let setup = Setup::start(&["--tls-allow-subject", "notary-server"]);
    let runtime = runtime();

    let unlisted = runtime
        .block_on(first_rpc(runtime.block_on(setup.channel(Some("client")))))
        .expect_err("CN=tufkey-test-client is not on the allow-list");
    assert!(unlisted.starts_with("PermissionDenied"), "{unlisted}");
    assert!(unlisted.contains("tufkey-test-client"), "{unlisted}");

    runtime
        .block_on(first_rpc(
            runtime.block_on(setup.channel(Some("server-client"))),
        ))
        .expect("CN=notary-server is on the allow-list");
}

#[test]
fn health_answers_serving_for_the_names_notary_server_checks() {
    let setup = Setup::start(&[]);
    let runtime = runtime();
    let channel = runtime
        .block_on(setup.channel(Some("server-client")))
        .unwrap();
    for service in [
        "grpc.health.v1.Health.KeyManagement",
        "grpc.health.v1.Health.Signer",
    ] {
        let response = runtime
            .block_on(
                HealthClient::new(channel.clone()).check(HealthCheckRequest {
                    service: service.into(),
                }),
            )
            .unwrap_or_else(|status| panic!("health check of {service}: {status}"))
            .into_inner();
        assert_eq!(response.status, ServingStatus::Serving as i32, "{service}");
    }
}

#[test]
fn notary_keys_sign_over_tls_and_bad_requests_never_crash_the_daemon() {
    let setup = Setup::start(&[]);
    let runtime = runtime();
    let channel = runtime.block_on(setup.channel(Some("client"))).unwrap();
    let gun = "docker.io/acme/app";
    let id = runtime
        .block_on(create_notary_key(channel.clone(), gun, "snapshot"))
        .unwrap();

    let mut signer = SignerClient::new(channel.clone());
    let signature = runtime
        .block_on(signer.sign(pb::SignatureRequest {
            key_id: Some(pb::KeyId { id: id.clone() }),
            content: b"{\"_type\":\"snapshot\"}".to_vec(),
        }))
        .unwrap()
        .into_inner();
    assert_eq!(signature.content.len(), 64, "raw r||s");

    // notary-signer 0.7 crashes on a Sign without keyID; tufkeyd must refuse and live.
    let missing = runtime
        .block_on(signer.sign(pb::SignatureRequest {
            key_id: None,
            content: Vec::new(),
        }))
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    let unknown = runtime
        .block_on(signer.sign(pb::SignatureRequest {
            key_id: Some(pb::KeyId {
                id: "feedface".into(),
            }),
            content: Vec::new(),
        }))
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let rsa = runtime
        .block_on(
            KeyManagementClient::new(channel).create_key(pb::CreateKeyRequest {
                algorithm: "rsa".into(),
                gun: gun.into(),
                role: "timestamp".into(),
            }),
        )
        .unwrap_err();
    assert_eq!(rsa.code(), Code::InvalidArgument);
    assert!(rsa.message().contains("\"rsa\""), "{}", rsa.message());

    // The key is an ordinary tufkey key, also over the native API through the CLI on TCP.
    let tls_cli = cli_over_tls(&setup, &["--json", "key", "show", &id]);
    assert_eq!(tls_cli["notary_keyid"], id.as_str());
    assert_eq!(tls_cli["gun"], gun);
    assert_eq!(tls_cli["role"], "snapshot");
}

#[test]
fn bench_drives_the_notary_protocol_over_mtls() {
    let setup = Setup::start(&[]);
    let report = cli_over_tls(
        &setup,
        &[
            "--json",
            "bench",
            "--protocol",
            "notary",
            "--concurrency",
            "2",
            "--duration",
            "1",
        ],
    );
    assert_eq!(report["protocol"], "notary");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["signs_per_sec"].as_f64().unwrap() > 0.0, "{report}");
    assert!(report["p99_ms"].as_f64().unwrap() >= report["p50_ms"].as_f64().unwrap());
}

/// `tufkey --addr https://... --tls-ca --tls-cert --tls-key ARGS` (client.crt), stdout as JSON.
fn cli_over_tls(setup: &Setup, args: &[&str]) -> Value {
    let file = |name: &str| setup.pki.file(name);
    let output = std::process::Command::new(bin_dir().join("tufkey"))
        .arg("--addr")
        .arg(setup.tufkeyd.url())
        .arg("--tls-ca")
        .arg(file("ca.crt"))
        .arg("--tls-cert")
        .arg(file("client.crt"))
        .arg("--tls-key")
        .arg(file("client.key"))
        .args(args)
        .env_remove("TUFKEY_SOCK")
        .output()
        .expect("run tufkey (cargo build --bins first)");
    assert!(
        output.status.success(),
        "tufkey {args:?} over TLS failed: {}\n(tufkeyd log: {})",
        String::from_utf8_lossy(&output.stderr),
        setup.tufkeyd.daemon.log_text()
    );
    serde_json::from_slice(&output.stdout).expect("tufkey --json prints JSON")
}
