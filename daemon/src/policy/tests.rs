use super::*;
use crate::config::TcpListenerConfig;
use crate::error::ErrorKind;
use crate::keys::{Location, Role};
use std::io::Write;

const OWNER: u32 = 1000;
const NOTARY_SPKI: &str = "9bb69b32dc838f05ccc71cac616470ddb9758ab018177766611171ce0b39890a";

fn listen(tcp_subjects: Option<Vec<&str>>) -> ListenConfig {
    ListenConfig {
        socket: "/run/test.sock".into(),
        allow_uids: vec![OWNER],
        allow_gids: vec![],
        max_message_bytes: 1 << 20,
        tcp: tcp_subjects.map(|subjects| TcpListenerConfig {
            listen: "127.0.0.1:7899".parse().unwrap(),
            cert: "/c".into(),
            key: "/k".into(),
            client_ca: "/ca".into(),
            allowed_subjects: subjects.into_iter().map(String::from).collect(),
        }),
    }
}

fn policy_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn load(
    text: Option<&str>,
    tcp_subjects: Option<Vec<&str>>,
) -> (Result<Policy>, Option<tempfile::NamedTempFile>) {
    let file = text.map(policy_file);
    let config = PolicyConfig {
        source: file
            .as_ref()
            .map(|file| PolicySource::File(file.path().to_path_buf())),
        notary_keys: None,
    };
    (Policy::load(&config, &listen(tcp_subjects)), file)
}

fn unix(uid: u32, gid: u32) -> Caller {
    Caller::Unix {
        uid,
        gid,
        pid: Some(1),
        exe: None,
    }
}

fn tls(cn: &str, spki: &str) -> Caller {
    Caller::Tls {
        common_name: Some(cn.into()),
        sans: vec!["spiffe://acme/ci".into()],
        spki_sha256: spki.into(),
    }
}

fn key(gun: &str, role: &str) -> KeyRecord {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    KeyRecord::new(
        secret.public_key(),
        gun.parse().unwrap(),
        role.parse().unwrap(),
        Location::Other { backend: "memory" },
        "2026-01-01T00:00:00Z".into(),
        false,
    )
}

const POLICY: &str = r#"
[[grant]]
cert_cn = "notary-server"
permissions = ["notary"]

[[grant]]
cert_spki_sha256 = "9BB69B32DC838F05CCC71CAC616470DDB9758AB018177766611171CE0B39890A"
permissions = ["notary"]
guns = ["docker.io/acme/*"]

[[grant]]
uid = 2001
permissions = ["sign", "keys_read"]
roles = ["targets"]

[[grant]]
gid = 3000
permissions = ["sign"]
roles = ["*"]

[[grant]]
uid = 2002
permissions = ["sign"]
roles = ["root"]

[[grant]]
cert_san = "spiffe://acme/ci"
permissions = ["keys_read"]
"#;

#[test]
fn owners_may_do_everything_on_the_unix_socket_and_nobody_else_by_default() {
    let (policy, _file) = load(None, None);
    let policy = policy.unwrap();
    let root = key("docker.io/acme/app", "root");
    for permission in PERMISSIONS.into_iter().filter(|p| *p != Permission::Notary) {
        assert!(
            policy
                .decide(&unix(OWNER, 5), permission, Some(&root))
                .allowed,
            "{permission:?}"
        );
    }
    let decision = policy.decide(&unix(OWNER, 5), Permission::Session, None);
    assert!(
        decision.rule.contains("--allow-uid 1000"),
        "{}",
        decision.rule
    );

    let stranger = policy.decide(&unix(1234, 1234), Permission::Session, None);
    assert!(!stranger.allowed);
    assert!(
        stranger
            .reason
            .contains("no grant gives uid 1234 `session`"),
        "{}",
        stranger.reason
    );
    assert!(
        stranger.reason.contains("uid = 1234"),
        "the fix names the identity: {}",
        stranger.reason
    );
    // A TLS client is never an owner, even with a certificate that says uid 1000.
    assert!(
        !policy
            .decide(&tls("1000", NOTARY_SPKI), Permission::Notary, None)
            .allowed
    );
}

#[test]
fn the_notary_api_reaches_only_its_own_keys_even_for_owners() {
    let (policy, _file) = load(Some(POLICY), Some(vec![]));
    let policy = policy.unwrap();
    let created = key("docker.io/acme/app", "timestamp");
    let native = key("docker.io/acme/app", "targets");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime
        .block_on(policy.notary_keys().add(&created.keyid))
        .unwrap();
    let server = tls("notary-server", "00");
    assert!(
        policy
            .decide(&server, Permission::Notary, Some(&created))
            .allowed
    );
    assert!(policy.decide(&server, Permission::Notary, None).allowed);
    let refused = policy.decide(&server, Permission::Notary, Some(&native));
    assert!(!refused.allowed);
    assert!(
        refused
            .reason
            .contains("not created through the Notary API"),
        "{}",
        refused.reason
    );
    assert!(refused.rule.contains("line 2"), "{}", refused.rule);
    assert!(
        !policy
            .decide(&unix(OWNER, 1), Permission::Notary, Some(&native))
            .allowed
    );
    assert!(
        policy
            .decide(&unix(OWNER, 1), Permission::Sign, Some(&native))
            .allowed
    );
    // Other permissions are not the Notary's.
    let session = policy.decide(&server, Permission::Session, None);
    assert!(!session.allowed);
    assert!(
        session.reason.contains("its grants give other permissions"),
        "{}",
        session.reason
    );
}

#[test]
fn root_keys_need_a_grant_that_names_them() {
    let root = key("docker.io/acme/app", "root");
    let (policy, _file) = load(
        Some(&format!(
            "{POLICY}\n[[grant]]\ncert_cn = \"root-signer\"\npermissions = [\"notary\"]\nkeys = [\"{}\"]\n",
            root.notary_keyid
        )),
        Some(vec![]),
    );
    let policy = policy.unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // Even a root key the Notary API created stays out of reach of a plain grant.
    runtime
        .block_on(policy.notary_keys().add(&root.keyid))
        .unwrap();
    let refused = policy.decide(&tls("notary-server", "00"), Permission::Notary, Some(&root));
    assert!(!refused.allowed);
    assert!(
        refused.reason.contains("is a root key"),
        "{}",
        refused.reason
    );
    assert!(
        !policy
            .decide(&unix(OWNER, 1), Permission::Notary, Some(&root))
            .allowed
    );
    // roles = ["*"] is not a grant of root; roles = ["root"] and a key ID are.
    assert!(
        !policy
            .decide(&unix(5, 3000), Permission::Sign, Some(&root))
            .allowed
    );
    assert!(
        policy
            .decide(
                &unix(5, 3000),
                Permission::Sign,
                Some(&key("a/b", "snapshot"))
            )
            .allowed
    );
    assert!(
        policy
            .decide(&unix(2002, 1), Permission::Sign, Some(&root))
            .allowed
    );
    assert!(
        policy
            .decide(&tls("root-signer", "00"), Permission::Notary, Some(&root))
            .allowed
    );
}

#[test]
fn scopes_limit_guns_roles_and_key_ids() {
    let (policy, _file) = load(Some(POLICY), Some(vec![]));
    let policy = policy.unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let inside = key("docker.io/acme/app", "snapshot");
    let outside = key("docker.io/other/app", "snapshot");
    for created in [&inside, &outside] {
        runtime
            .block_on(policy.notary_keys().add(&created.keyid))
            .unwrap();
    }
    let scoped = tls("someone-else", NOTARY_SPKI);
    assert!(
        policy
            .decide(&scoped, Permission::Notary, Some(&inside))
            .allowed
    );
    let refused = policy.decide(&scoped, Permission::Notary, Some(&outside));
    assert!(!refused.allowed);
    assert!(
        refused.reason.contains("GUN docker.io/other/app"),
        "{}",
        refused.reason
    );
    assert!(
        refused.rule.contains("guns = [\"docker.io/acme/*\"]"),
        "{}",
        refused.rule
    );

    let targets = key("docker.io/acme/app", "targets");
    let signer = unix(2001, 2001);
    assert!(
        policy
            .decide(&signer, Permission::Sign, Some(&targets))
            .allowed
    );
    assert!(
        !policy
            .decide(&signer, Permission::Sign, Some(&inside))
            .allowed
    );
    assert!(policy.decide(&signer, Permission::KeysRead, None).allowed);
    assert!(!policy.decide(&signer, Permission::KeysAdmin, None).allowed);
    // The SAN grant matches by SAN alone.
    assert!(
        policy
            .decide(&tls("x", "00"), Permission::KeysRead, None)
            .allowed
    );
}

#[test]
fn denials_are_permission_denied_errors_naming_permission_and_caller() {
    let (policy, _file) = load(None, None);
    let policy = policy.unwrap();
    let error = policy
        .authorize(&unix(65534, 65534), Permission::KeysAdmin, None)
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    let message = error.to_string();
    assert!(
        message.starts_with("uid 65534 is not allowed `keys_admin`"),
        "{message}"
    );
    assert!(message.contains("pid 1"), "{message}");
    assert!(!message.contains("allow-list"), "{message}");
}

#[test]
fn tcp_needs_a_named_tls_client() {
    let (refused, _file) = load(None, Some(vec![]));
    let message = refused.err().unwrap().to_string();
    assert!(message.contains("--listen-tcp"), "{message}");
    assert!(message.contains("cert_cn = \"notary-server\""), "{message}");
    let (only_uids, _file) = load(
        Some("[[grant]]\nuid = 5\npermissions = [\"sign\"]\n"),
        Some(vec![]),
    );
    assert!(only_uids.is_err());
    let (shorthand, _file) = load(None, Some(vec!["notary-server"]));
    let policy = shorthand.unwrap();
    let decision = policy.decide(&tls("notary-server", "00"), Permission::Notary, None);
    assert!(decision.allowed);
    assert!(
        decision.rule.contains("--tls-allow-subject notary-server"),
        "{}",
        decision.rule
    );
    assert!(
        !policy
            .decide(&tls("notary-server", "00"), Permission::KeysAdmin, None)
            .allowed
    );
}

#[test]
fn a_bad_file_at_start_is_refused_naming_the_line() {
    let (refused, _file) = load(
        Some("[[grant]]\nuid = 5\npermissions = [\"sign\"]\n\n[[grant]]\nuid = 6\npermissions = [\"root\"]\n"),
        None,
    );
    let message = refused.err().unwrap().to_string();
    assert!(
        message.contains("line 5: unknown permission \"root\""),
        "{message}"
    );
}

#[test]
fn reload_swaps_the_policy_and_a_bad_file_keeps_the_old_one() {
    let (policy, file) = load(Some(POLICY), Some(vec![]));
    let policy = policy.unwrap();
    let file = file.unwrap();
    let newcomer = unix(4242, 4242);
    assert!(!policy.decide(&newcomer, Permission::Sign, None).allowed);

    std::fs::write(
        file.path(),
        format!("{POLICY}\n[[grant]]\nuid = 4242\npermissions = [\"sign\"]\n"),
    )
    .unwrap();
    policy.reload().unwrap();
    assert!(policy.decide(&newcomer, Permission::Sign, None).allowed);

    std::fs::write(
        file.path(),
        "[[grant]]\nuid = 4242\npermissions = [\"sing\"]\n",
    )
    .unwrap();
    let error = policy.reload().unwrap_err().to_string();
    assert!(error.contains("line 1"), "{error}");
    assert!(
        policy.decide(&newcomer, Permission::Sign, None).allowed,
        "the old policy stays"
    );

    // A policy that would leave the TCP listener without a client is refused too.
    std::fs::write(
        file.path(),
        "[[grant]]\nuid = 4242\npermissions = [\"keys_read\"]\n",
    )
    .unwrap();
    assert!(policy
        .reload()
        .unwrap_err()
        .to_string()
        .contains("--listen-tcp"));
    assert!(
        policy.decide(&newcomer, Permission::Sign, None).allowed,
        "the old policy stays"
    );
    assert!(
        policy
            .decide(&tls("notary-server", "00"), Permission::Notary, None)
            .allowed
    );
}

#[test]
fn an_inline_policy_is_read_from_the_config_file() {
    let config = policy_file(
        "store = \"/somewhere\"\n\n[[policy.grant]]\nuid = 7\npermissions = [\"sign\"]\n\n\
         [[policy.grant]]\nuid = 8\npermissions = [\"sigh\"]\n",
    );
    let source = PolicyConfig {
        source: Some(PolicySource::ConfigFile(config.path().to_path_buf())),
        notary_keys: None,
    };
    let message = Policy::load(&source, &listen(None))
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.contains("line 7: unknown permission \"sigh\""),
        "{message}"
    );
    std::fs::write(
        config.path(),
        "store = \"/x\"\n[[policy.grant]]\nuid = 7\npermissions = [\"sign\"]\n",
    )
    .unwrap();
    let policy = Policy::load(&source, &listen(None)).unwrap();
    let decision = policy.decide(&unix(7, 7), Permission::Sign, Some(&key("a/b", "targets")));
    assert!(decision.allowed);
    assert!(decision.rule.contains("line 2"), "{}", decision.rule);
    assert_eq!(Role::Targets.as_str(), "targets");
}

#[tokio::test]
async fn sighup_reloads_the_policy() {
    let (policy, file) = load(Some("[[grant]]\nuid = 1\npermissions = [\"sign\"]\n"), None);
    let policy = Arc::new(policy.unwrap());
    let file = file.unwrap();
    let stop = crate::shutdown::StopSignal::new();
    let task = tokio::spawn(policy.clone().reload_on_sighup(stop.subscribe()).unwrap());
    std::fs::write(
        file.path(),
        "[[grant]]\nuid = 1\npermissions = [\"session\"]\n",
    )
    .unwrap();
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !policy
        .decide(&unix(1, 1), Permission::Session, None)
        .allowed
    {
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not reload the policy"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.stop();
    task.await.unwrap();
}
