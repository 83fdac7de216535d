//! The access policy, proven against the real daemon over its real listeners:
//! notary-server's certificate reaches only the Notary API and only the keys it
//! created (never a root key); a certificate granted one GUN signs only there; a uid
//! granted `sign` on one role can sign with that role's key and do nothing else;
//! `tufkey policy check` explains both outcomes; SIGHUP reloads the policy.
//!
//! Needs `cargo build --bins` first; the uid test runs the CLI as nobody with
//! `setpriv` (util-linux), so it must run as root.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tufkey::Client;
use tufkey_e2e::daemon::{bin_dir, DaemonOptions, Sandbox};
use tufkey_e2e::notary::{Pki, TlsDaemon};
use tufkey_proto::notary as pb;
use tufkey_proto::notary::{
    key_management_client::KeyManagementClient, signer_client::SignerClient,
};

const NOBODY: u32 = 65534;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn channel(pki: &Pki, daemon: &TlsDaemon, client: &str) -> Channel {
    let cert = pki.file(&format!("{client}.crt"));
    let key = pki.file(&format!("{client}.key"));
    Client::tls_channel(&daemon.url(), &pki.file("ca.crt"), Some((&cert, &key)))
        .await
        .unwrap()
}

async fn create(channel: &Channel, gun: &str, role: &str) -> Result<String, Status> {
    let created = KeyManagementClient::new(channel.clone())
        .create_key(pb::CreateKeyRequest {
            algorithm: "ecdsa".into(),
            gun: gun.into(),
            role: role.into(),
        })
        .await?
        .into_inner();
    Ok(created.key_info.unwrap().key_id.unwrap().id)
}

async fn sign(channel: &Channel, key_id: &str) -> Result<Vec<u8>, Status> {
    Ok(SignerClient::new(channel.clone())
        .sign(pb::SignatureRequest {
            key_id: Some(pb::KeyId { id: key_id.into() }),
            content: b"{\"_type\":\"timestamp\"}".to_vec(),
        })
        .await?
        .into_inner()
        .content)
}

/// Asserts PERMISSION_DENIED naming `permission` and `caller`.
fn assert_denied<T: std::fmt::Debug>(
    result: Result<T, Status>,
    permission: &str,
    caller: &str,
) -> String {
    let status = result.expect_err("the policy should have refused this");
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "{}",
        status.message()
    );
    let message = status.message().to_string();
    assert!(message.contains(&format!("`{permission}`")), "{message}");
    assert!(message.contains(caller), "{message}");
    assert!(!message.contains("allow-list"), "{message}");
    message
}

/// The Notary key ID of a key the daemon's owner made through the native API.
fn native_notary_keyid(daemon: &TlsDaemon, gun: &str, role: &str) -> String {
    let key = daemon.daemon.generate(gun, role);
    key["notary_keyid"].as_str().unwrap().to_owned()
}

#[test]
fn certificates_reach_only_what_the_policy_grants_them() {
    let sandbox = Sandbox::new();
    let pki = Pki::make(&sandbox.path("pki"));
    let policy = sandbox.path("policy.toml");
    std::fs::write(
        &policy,
        "[[grant]]\ncert_cn = \"notary-server\"\npermissions = [\"notary\"]\n\n\
         [[grant]]\ncert_cn = \"tufkey-test-client\"\npermissions = [\"notary\"]\nguns = [\"docker.io/acme/*\"]\n",
    )
    .unwrap();
    let tufkeyd = TlsDaemon::start(&sandbox, &pki, &["--policy", policy.to_str().unwrap()]);
    let root = native_notary_keyid(&tufkeyd, "docker.io/acme/app", "root");
    let targets = native_notary_keyid(&tufkeyd, "docker.io/acme/app", "targets");
    let runtime = runtime();
    let server = runtime.block_on(channel(&pki, &tufkeyd, "server-client"));
    let server_cn = "TLS client CN=notary-server";

    // notary-server's own keys work.
    let timestamp = runtime
        .block_on(create(&server, "docker.io/acme/app", "timestamp"))
        .unwrap();
    assert_eq!(
        runtime.block_on(sign(&server, &timestamp)).unwrap().len(),
        64
    );

    // Nothing outside the Notary API.
    let mut native = Client::from_channel(server.clone());
    assert_denied(
        runtime.block_on(native.status()).map_err(rpc_status),
        "session",
        server_cn,
    );
    assert_denied(
        runtime.block_on(native.lock()).map_err(rpc_status),
        "session",
        server_cn,
    );
    assert_denied(
        runtime
            .block_on(native.generate_key("docker.io/acme/app", "targets"))
            .map_err(rpc_status),
        "keys_admin",
        server_cn,
    );
    assert_denied(
        runtime
            .block_on(native.delete_key(&timestamp))
            .map_err(rpc_status),
        "keys_admin",
        server_cn,
    );
    assert_denied(
        runtime.block_on(native.list_devices()).map_err(rpc_status),
        "devices_admin",
        server_cn,
    );
    assert_denied(
        runtime
            .block_on(native.unlock_device(1, &"123456".to_string().into(), false, false))
            .map_err(rpc_status),
        "devices_admin",
        server_cn,
    );

    // Not the root key, not any key made through the native API.
    let refused = assert_denied(runtime.block_on(sign(&server, &root)), "notary", server_cn);
    assert!(refused.contains("root key"), "{refused}");
    let refused = assert_denied(
        runtime.block_on(sign(&server, &targets)),
        "notary",
        server_cn,
    );
    assert!(
        refused.contains("not created through the Notary API"),
        "{refused}"
    );
    let delete = runtime.block_on(
        KeyManagementClient::new(server.clone()).delete_key(pb::KeyId { id: root.clone() }),
    );
    assert_denied(delete, "notary", server_cn);
    assert!(
        tufkeyd.daemon.cli_ok(&["key", "show", &root]).success,
        "the root key is still there"
    );

    // A second certificate granted one GUN signs there and nowhere else.
    let scoped = runtime.block_on(channel(&pki, &tufkeyd, "client"));
    let inside = runtime
        .block_on(create(&scoped, "docker.io/acme/web", "snapshot"))
        .unwrap();
    assert_eq!(runtime.block_on(sign(&scoped, &inside)).unwrap().len(), 64);
    let outside = runtime
        .block_on(create(&server, "docker.io/other/app", "snapshot"))
        .unwrap();
    let refused = assert_denied(
        runtime.block_on(sign(&scoped, &outside)),
        "notary",
        "TLS client CN=tufkey-test-client",
    );
    assert!(refused.contains("docker.io/other/app"), "{refused}");
    assert_eq!(runtime.block_on(sign(&server, &outside)).unwrap().len(), 64);

    // `tufkey policy check` explains both outcomes, naming the rule.
    let server_cert = pki.file("server-client.crt");
    let cert_arg = format!("cert:{}", server_cert.display());
    let allowed = tufkeyd
        .daemon
        .cli_ok(&[
            "--json",
            "policy",
            "check",
            "--as",
            &cert_arg,
            "Signer/Sign",
            &timestamp,
        ])
        .json();
    assert_eq!(allowed["allowed"], true, "{allowed}");
    assert_eq!(allowed["rpc"], "proto.Signer/Sign");
    assert_eq!(allowed["permission"], "notary");
    let rule = allowed["rule"].as_str().unwrap();
    assert!(
        rule.contains("policy.toml line 1") && rule.contains("cert_cn = \"notary-server\""),
        "{rule}"
    );
    let denied = tufkeyd
        .daemon
        .cli_ok(&["policy", "check", "--as", &cert_arg, "Signer/Sign", &root])
        .stdout;
    assert!(
        denied.starts_with("DENIED: TLS client CN=notary-server"),
        "{denied}"
    );
    assert!(denied.contains("root key"), "{denied}");

    // Every denial above is in the audit log, with the caller's certificate, and the
    // log verifies.
    let records: Vec<serde_json::Value> = tufkeyd
        .daemon
        .cli_ok(&["--json", "audit", "tail", "-n", "0"])
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let denials_of = |common_name: &str, rpc: &str| {
        records
            .iter()
            .filter(|record| {
                record["result"] == "permission_denied"
                    && record["rpc"] == rpc
                    && record["caller"]["common_name"] == common_name
            })
            .count()
    };
    for (rpc, expected) in [
        ("tufkey.v1.Session/Status", 1),
        ("tufkey.v1.Session/Lock", 1),
        ("tufkey.v1.Keys/GenerateKey", 1),
        ("tufkey.v1.Keys/DeleteKey", 1),
        ("tufkey.v1.Devices/ListDevices", 1),
        ("tufkey.v1.Devices/UnlockDevice", 1),
        ("proto.Signer/Sign", 2),
        ("proto.KeyManagement/DeleteKey", 1),
    ] {
        assert_eq!(
            denials_of("notary-server", rpc),
            expected,
            "denials of notary-server's {rpc} in the audit log: {records:#?}"
        );
    }
    assert_eq!(
        denials_of("tufkey-test-client", "proto.Signer/Sign"),
        1,
        "{records:#?}"
    );
    assert!(tufkeyd.daemon.cli(&["audit", "verify"]).success);
}

/// A client error as the gRPC status it carries.
fn rpc_status(error: tufkey::Error) -> Status {
    match error {
        tufkey::Error::Rpc(status) => status,
        other => panic!("expected an RPC error, got {other}"),
    }
}

/// Runs the CLI as nobody against `socket`.
fn as_nobody(socket: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin_dir().join("tufkey"))
        .arg("--socket")
        .arg(socket)
        // The daemon runs as the test's uid, not nobody's: tell the CLI so.
        .arg("--server-uid")
        .arg(daemon_uid(socket).to_string())
        .args(args)
        .output()
        .expect("setpriv (util-linux) runs the CLI as nobody")
}

/// The uid tufkeyd runs as: its socket's owner.
fn daemon_uid(socket: &Path) -> u32 {
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(socket).unwrap())
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_uid_granted_sign_on_one_role_signs_with_it_and_does_nothing_else() {
    let sandbox = Sandbox::new();
    // nobody must reach the socket (and read the payload): open the sandbox to it.
    std::fs::set_permissions(sandbox.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let policy = sandbox.path("policy.toml");
    std::fs::write(
        &policy,
        format!("[[grant]]\nuid = {NOBODY}\npermissions = [\"sign\", \"keys_read\"]\nroles = [\"targets\"]\n"),
    )
    .unwrap();
    let daemon = sandbox.start(&DaemonOptions {
        args: vec!["--policy".into(), policy.to_str().unwrap().into()],
        ..DaemonOptions::default()
    });
    std::fs::set_permissions(&daemon.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let targets = daemon.generate_keyid("example.com/app", "targets");
    let snapshot = daemon.generate_keyid("example.com/app", "snapshot");
    let payload = sandbox.path("payload");
    std::fs::write(&payload, b"release 1.0").unwrap();
    std::fs::set_permissions(&payload, std::fs::Permissions::from_mode(0o644)).unwrap();
    let payload = payload.to_str().unwrap();

    let signed = as_nobody(&daemon.socket, &["sign-raw", "--key", &targets, payload]);
    assert!(signed.status.success(), "{}", stderr(&signed));
    let shown = as_nobody(&daemon.socket, &["--json", "key", "show", &targets]);
    assert!(shown.status.success(), "{}", stderr(&shown));

    for (args, permission) in [
        (vec!["sign-raw", "--key", &snapshot, payload], "sign"),
        (
            vec![
                "key",
                "generate",
                "--gun",
                "example.com/app",
                "--role",
                "targets",
            ],
            "keys_admin",
        ),
        (vec!["key", "delete", &targets, "--yes"], "keys_admin"),
        (vec!["lock"], "session"),
    ] {
        let refused = as_nobody(&daemon.socket, &args);
        assert!(!refused.status.success(), "{args:?} succeeded");
        let message = stderr(&refused);
        assert!(message.contains("PermissionDenied"), "{args:?}: {message}");
        assert!(
            message.contains(&format!("uid {NOBODY} is not allowed `{permission}`")),
            "{args:?}: {message}"
        );
    }
    assert!(
        daemon.cli_ok(&["key", "show", &targets]).success,
        "the key was not deleted"
    );

    // The owner asks the daemon to explain.
    let uid = format!("uid:{NOBODY}");
    let allowed = daemon
        .cli_ok(&[
            "--json", "policy", "check", "--as", &uid, "SignRaw", &targets,
        ])
        .json();
    assert_eq!(allowed["allowed"], true, "{allowed}");
    assert!(
        allowed["rule"]
            .as_str()
            .unwrap()
            .contains("policy.toml line 1"),
        "{allowed}"
    );
    let denied = daemon
        .cli_ok(&[
            "--json",
            "policy",
            "check",
            "--as",
            &uid,
            "Keys/GenerateKey",
        ])
        .json();
    assert_eq!(denied["allowed"], false, "{denied}");
    assert_eq!(denied["permission"], "keys_admin");
    assert!(
        denied["reason"]
            .as_str()
            .unwrap()
            .contains("no grant gives uid 65534 `keys_admin`"),
        "{denied}"
    );

    // nobody cannot ask for explanations (that needs `session`).
    let asked = as_nobody(
        &daemon.socket,
        &["policy", "check", "--as", "uid:0", "Lock"],
    );
    assert!(stderr(&asked).contains("`session`"), "{}", stderr(&asked));

    // SIGHUP: a bad file keeps the old policy, a good one takes effect.
    std::fs::write(
        &policy,
        "[[grant]]\nuid = 65534\npermissions = [\"sgin\"]\n",
    )
    .unwrap();
    hangup(daemon.pid());
    wait_for_log(&daemon, "the policy was not reloaded");
    assert!(
        as_nobody(&daemon.socket, &["sign-raw", "--key", &targets, payload])
            .status
            .success()
    );
    std::fs::write(
        &policy,
        format!("[[grant]]\nuid = {NOBODY}\npermissions = [\"sign\"]\nroles = [\"snapshot\"]\n"),
    )
    .unwrap();
    hangup(daemon.pid());
    wait_for_log(&daemon, "access policy reloaded");
    let now = as_nobody(&daemon.socket, &["sign-raw", "--key", &snapshot, payload]);
    assert!(now.status.success(), "{}", stderr(&now));
    assert!(
        !as_nobody(&daemon.socket, &["sign-raw", "--key", &targets, payload])
            .status
            .success()
    );
}

fn hangup(pid: u32) {
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

fn wait_for_log(daemon: &tufkey_e2e::daemon::Daemon, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !daemon.log_text().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "the daemon never logged {needle:?}: {}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tcp_without_a_named_tls_client_refuses_to_start_and_says_how() {
    let sandbox = Sandbox::new();
    let pki = Pki::make(&sandbox.path("pki"));
    let policy = sandbox.path("uids-only.toml");
    std::fs::write(&policy, "[[grant]]\nuid = 4242\npermissions = [\"sign\"]\n").unwrap();
    let port = tufkey_e2e::notary::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let socket = sandbox.socket().to_str().unwrap().to_owned();
    for extra in [vec![], vec!["--policy", policy.to_str().unwrap()]] {
        let mut args = vec![
            "--no-keyring",
            "--no-yubikey",
            "--store",
            sandbox.dir.path().to_str().unwrap(),
            "--socket",
            &socket,
            "--listen-tcp",
            &listen,
        ];
        let files = [
            ("--tls-cert", pki.file("signer.crt")),
            ("--tls-key", pki.file("signer.key")),
            ("--tls-client-ca", pki.file("ca.crt")),
        ];
        let file_args: Vec<String> = files
            .iter()
            .flat_map(|(flag, path)| [flag.to_string(), path.to_str().unwrap().to_owned()])
            .collect();
        args.extend(file_args.iter().map(String::as_str));
        args.extend(extra);
        let output = std::process::Command::new(bin_dir().join("tufkeyd"))
            .args(&args)
            .env("TUFKEY_PASSPHRASE", "x")
            .output()
            .unwrap();
        assert!(!output.status.success());
        let message = stderr(&output);
        assert!(
            message.contains("--listen-tcp serves TLS clients"),
            "{message}"
        );
        assert!(message.contains("cert_cn = \"notary-server\""), "{message}");
        assert!(message.contains("--policy FILE"), "{message}");
    }
}
