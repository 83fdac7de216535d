//! `tufkey::dct::transport` against the real notary-server (Debian `notary` 0.7, the
//! real notary-signer as its trust service): metadata, server-managed keys and
//! publish errors without auth; TLS refused with the wrong CA; and Docker's token
//! login with a real token service (tests/python/token_server.py issuing ES256
//! JWTs that notary-server's docker-distribution token auth verifies).
//!
//! Needs the Debian `notary` package (scripts/notary/install.sh) and the Python
//! venv (tests/python/setup-venv.sh, made on first use).
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::Value;
use tufkey::dct::transport::{
    Credentials, NotaryServer, Registry, ServerConfig, TransportError, ENV_PASSWORD, ENV_TOKEN,
    ENV_USERNAME,
};
use tufkey_e2e::dct::{NotaryStack, TOKEN_PASSWORD as PASSWORD, TOKEN_USERNAME as USERNAME};

const GUN: &str = "localhost:5000/acme/app";

/// The transport's configuration for the stack's notary-server.
fn config(stack: &NotaryStack, ca: Option<PathBuf>, credentials: Credentials) -> ServerConfig {
    ServerConfig {
        url: url::Url::parse(&stack.url()).unwrap(),
        ca,
        client_identity: None,
        credentials,
    }
}

/// A client of the stack's notary-server that trusts its CA.
fn client(stack: &NotaryStack, credentials: Credentials) -> NotaryServer {
    NotaryServer::new(config(stack, Some(stack.ca()), credentials)).unwrap()
}

/// An error with its whole source chain, as the CLI shows it.
fn chain(error: &TransportError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    eprintln!("error shown: {text}");
    text
}

fn assert_ecdsa_key(key: &[u8]) -> Value {
    let key: Value = serde_json::from_slice(key).unwrap();
    assert_eq!(key["keytype"], "ecdsa", "{key}");
    assert!(
        key["keyval"]["public"]
            .as_str()
            .is_some_and(|public| !public.is_empty()),
        "{key}"
    );
    key
}

#[tokio::test]
async fn notary_server_without_auth() {
    let dir = tempfile::tempdir().unwrap();
    let stack = NotaryStack::start(dir.path());
    let notary = client(&stack, Credentials::None);

    // Nothing published yet.
    assert_eq!(
        notary
            .metadata("example.com/unknown", "root")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        notary.metadata(GUN, "targets/releases").await.unwrap(),
        None
    );

    // The server makes its keys on ask (until a root naming one is published, each
    // ask makes a new one), and rotates on POST.
    let key = assert_ecdsa_key(&notary.server_key(GUN, "timestamp").await.unwrap());
    assert_ecdsa_key(&notary.server_key(GUN, "snapshot").await.unwrap());
    let rotated = notary.rotate_server_key(GUN, "timestamp").await.unwrap();
    assert_ne!(assert_ecdsa_key(&rotated)["keyval"], key["keyval"]);

    // A role the server does not manage: its error, with code and message.
    let error = chain(&notary.server_key(GUN, "targets").await.unwrap_err());
    assert!(error.contains("404") || error.contains("400"), "{error}");
    assert!(
        error.contains(&format!("/v2/{GUN}/_trust/tuf/targets.key")),
        "{error}"
    );

    // Nonsense is refused, naming the server's error (code and message).
    let error = notary
        .publish(
            GUN,
            &[("root".into(), b"this is not TUF metadata".to_vec())],
        )
        .await
        .unwrap_err();
    let text = chain(&error);
    assert!(
        matches!(error, TransportError::Status { status, .. } if status == 400),
        "{text}"
    );
    assert!(text.contains("POST"), "{text}");
    assert!(text.contains("MALFORMED_JSON"), "{text}");
    assert!(text.contains("could not be parsed"), "{text}");
    // A delegation's part reaches the server under its full role name (an invalid
    // role name would be refused before its content is read); one that is not a TUF
    // role is refused as such.
    for (role, body, code) in [
        ("targets/releases", &b"{{{"[..], "MALFORMED_JSON"),
        ("releases", &b"{}"[..], "INVALID_ROLE"),
    ] {
        let publish = notary.publish(GUN, &[(role.into(), body.to_vec())]).await;
        let error = chain(&publish.unwrap_err());
        assert!(error.contains(code), "{role}: {error}");
    }

    // Names that could leave the path never reach the server.
    for (gun, role) in [
        ("../etc", "root"),
        (GUN, "root?x=1"),
        ("a b", "root"),
        (GUN, "targets/../root"),
    ] {
        let error = notary.metadata(gun, role).await.unwrap_err();
        assert!(
            matches!(error, TransportError::BadName { .. }),
            "{gun} {role}: {error}"
        );
    }

    // TLS with the wrong CA: refused, naming the CA file.
    let other_ca = stack.pki.file("other-ca.crt");
    let wrong =
        NotaryServer::new(config(&stack, Some(other_ca.clone()), Credentials::None)).unwrap();
    let error = chain(&wrong.metadata(GUN, "root").await.unwrap_err());
    assert!(error.contains(other_ca.to_str().unwrap()), "{error}");
    assert!(error.contains("does not verify"), "{error}");
    // Without a CA the system's roots are used, which do not know the test CA.
    let system = NotaryServer::new(config(&stack, None, Credentials::None)).unwrap();
    let error = chain(&system.metadata(GUN, "root").await.unwrap_err());
    assert!(error.contains("system's root certificates"), "{error}");

    // Only https for a Notary server.
    let mut plain = config(&stack, None, Credentials::None);
    plain.url = url::Url::parse("http://127.0.0.1:1").unwrap();
    assert!(matches!(
        NotaryServer::new(plain),
        Err(TransportError::BadUrl { .. })
    ));
}

#[tokio::test]
async fn notary_server_with_token_auth() {
    let dir = tempfile::tempdir().unwrap();
    let (stack, tokens) = NotaryStack::start_with_token_auth(dir.path());

    // No credentials: the error says which variables to set.
    let error = client(&stack, Credentials::None)
        .server_key(GUN, "timestamp")
        .await
        .unwrap_err();
    let text = chain(&error);
    assert!(
        matches!(error, TransportError::CredentialsNeeded { .. }),
        "{text}"
    );
    for variable in [ENV_USERNAME, ENV_PASSWORD, ENV_TOKEN] {
        assert!(text.contains(variable), "{text}");
    }
    assert_eq!(tokens.issued(), 0);

    // A wrong password: rejected, and the password is nowhere in the message.
    let wrong_password = "wrong-password-7f3a9c";
    let error = client(
        &stack,
        Credentials::Basic {
            username: USERNAME.into(),
            password: wrong_password.to_owned().into(),
        },
    )
    .metadata(GUN, "root")
    .await
    .unwrap_err();
    let text = chain(&error);
    assert!(matches!(error, TransportError::Rejected { .. }), "{text}");
    assert!(text.contains("rejected"), "{text}");
    assert!(!text.contains(wrong_password), "{text}");
    assert!(!format!("{error:?}").contains(wrong_password));

    // A token notary-server does not accept: rejected too.
    let bogus_token = "not-a-jwt-5b1e";
    let error = client(&stack, Credentials::Token(bogus_token.to_owned().into()))
        .metadata(GUN, "root")
        .await
        .unwrap_err();
    let text = chain(&error);
    assert!(matches!(error, TransportError::Rejected { .. }), "{text}");
    assert!(!text.contains(bogus_token), "{text}");

    // The right login: a token per scope, fetched once and reused.
    let notary = client(
        &stack,
        Credentials::Basic {
            username: USERNAME.into(),
            password: PASSWORD.to_owned().into(),
        },
    );
    assert_ecdsa_key(&notary.server_key(GUN, "timestamp").await.unwrap());
    assert_eq!(tokens.issued(), 1, "push,pull token");
    assert_ecdsa_key(&notary.server_key(GUN, "snapshot").await.unwrap());
    assert_eq!(tokens.issued(), 1, "the cached token is reused");
    assert_eq!(notary.metadata(GUN, "root").await.unwrap(), None);
    assert_eq!(tokens.issued(), 2, "a pull token");
    let clone = notary.clone();
    assert_eq!(clone.metadata(GUN, "targets").await.unwrap(), None);
    assert_eq!(tokens.issued(), 2, "clones share the cache");
    // Rotation needs the "*" action: one more token.
    assert_ecdsa_key(&notary.rotate_server_key(GUN, "snapshot").await.unwrap());
    assert_eq!(tokens.issued(), 3);
    let log = tokens.issued_log();
    assert!(log.contains(&format!("repository:{GUN}:")), "{log}");

    // Debug output of the configuration shows no secret.
    let login = config(
        &stack,
        Some(stack.ca()),
        Credentials::Basic {
            username: USERNAME.into(),
            password: PASSWORD.to_owned().into(),
        },
    );
    let shown = format!("{login:?}");
    assert!(shown.contains(USERNAME), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    let shown = format!(
        "{:?}",
        config(
            &stack,
            None,
            Credentials::Token(bogus_token.to_owned().into())
        )
    );
    assert!(!shown.contains(bogus_token), "{shown}");
}

/// The environment variables, in one test (the process environment is shared).
#[test]
fn credentials_from_env() {
    fn set(username: Option<&str>, password: Option<&str>, token: Option<&str>) {
        for (name, value) in [
            (ENV_USERNAME, username),
            (ENV_PASSWORD, password),
            (ENV_TOKEN, token),
        ] {
            match value {
                Some(value) => std::env::set_var(name, value),
                None => std::env::remove_var(name),
            }
        }
    }
    set(None, None, None);
    assert!(matches!(Credentials::from_env(), Ok(Credentials::None)));
    set(Some("alice"), Some("s3cret-pw"), None);
    let credentials = Credentials::from_env().unwrap();
    assert!(matches!(&credentials, Credentials::Basic { username, .. } if username == "alice"));
    assert!(!format!("{credentials:?}").contains("s3cret-pw"));
    set(None, None, Some("tok-123-secret"));
    let credentials = Credentials::from_env().unwrap();
    assert!(matches!(credentials, Credentials::Token(_)));
    assert!(!format!("{credentials:?}").contains("tok-123-secret"));
    set(Some(""), Some(""), None);
    assert!(matches!(Credentials::from_env(), Ok(Credentials::None)));
    set(Some("alice"), None, None);
    let error = Credentials::from_env().unwrap_err().to_string();
    assert!(error.contains(ENV_PASSWORD), "{error}");
    set(Some("alice"), Some("s3cret-pw"), Some("tok-123-secret"));
    let error = Credentials::from_env().unwrap_err().to_string();
    assert!(error.contains("not both"), "{error}");
    assert!(!error.contains("s3cret-pw") && !error.contains("tok-123-secret"));
    set(None, None, None);
}

/// `Registry::manifest` against Debian's docker-registry (plain HTTP on localhost):
/// the digest and size of the bytes it serves, OCI and Docker schema 2 alike.
#[tokio::test]
async fn registry_manifest_digest_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let registry = tufkey_e2e::dct::Registry::start(dir.path());
    let oci = tufkey_e2e::dct::push_image(&registry, "acme/app", "v1", "transport-oci");
    let docker = tufkey_e2e::dct::push_image_as(
        &registry,
        "acme/app",
        "v2",
        "transport-v2s2",
        tufkey_e2e::dct::ManifestFormat::DockerV2Schema2,
    );
    let client = Registry::new(ServerConfig {
        url: url::Url::parse(&registry.url()).unwrap(),
        ca: None,
        client_identity: None,
        credentials: Credentials::None,
    })
    .unwrap();
    for (tag, pushed) in [("v1", &oci), ("v2", &docker)] {
        let manifest = client.manifest("acme/app", tag).await.unwrap();
        assert_eq!(manifest.digest, pushed.digest, "{tag}");
        assert_eq!(manifest.size, pushed.size, "{tag}");
        assert_eq!(manifest.media_type, pushed.media_type, "{tag}");
        // By digest, the same manifest.
        let by_digest = client.manifest("acme/app", &pushed.digest).await.unwrap();
        assert_eq!(by_digest, manifest, "{tag}");
    }
    assert_ne!(oci.media_type, docker.media_type);

    // An unknown tag: the registry's error code, method and URL.
    let error = chain(&client.manifest("acme/app", "missing").await.unwrap_err());
    assert!(error.contains("MANIFEST_UNKNOWN"), "{error}");
    assert!(
        error.contains("GET") && error.contains("/v2/acme/app/manifests/missing"),
        "{error}"
    );

    // Plain HTTP is for this machine only.
    let remote = Registry::new(ServerConfig {
        url: url::Url::parse("http://registry.example.com:5000").unwrap(),
        ca: None,
        client_identity: None,
        credentials: Credentials::None,
    });
    let error = remote.map(drop).unwrap_err().to_string();
    assert!(error.contains("only for localhost"), "{error}");
}
