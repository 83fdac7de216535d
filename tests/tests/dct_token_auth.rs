//! `tufkey dct` through Docker's token login: the real notary-server (Debian `notary`
//! 0.7) behind docker distribution's token auth, with tests/python/token_server.py as
//! the token service, and tufkeyd holding the keys. The CLI logs in with
//! `TUFKEY_DCT_USERNAME` / `TUFKEY_DCT_PASSWORD`; the real `notary` client, logged in
//! too, reads back what it published. Without a login the CLI says which variables to
//! set; with a wrong password it fails without ever printing the password.
//!
//! Needs `cargo build --bins`, scripts/notary/install.sh and the Python venv
//! (tests/python/setup-venv.sh, made on first use).
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use tufkey::dct::transport::{ENV_PASSWORD, ENV_TOKEN, ENV_USERNAME};
use tufkey_e2e::daemon::{bin_dir, Daemon, DaemonOptions, Sandbox};
use tufkey_e2e::dct::{notary_list, sha256_digest, NotaryStack, TOKEN_PASSWORD, TOKEN_USERNAME};

const GUN: &str = "registry.example/acme/app";

/// `tufkey --socket SOCK --json dct ARGS --server URL --server-ca CA --trust-dir DIR
/// --notary-trust-dir EMPTY` with `login` as `(TUFKEY_DCT_USERNAME,
/// TUFKEY_DCT_PASSWORD)` and no other DCT credentials in its environment.
fn dct(
    daemon: &Daemon,
    stack: &NotaryStack,
    sandbox: &Sandbox,
    args: &[&str],
    login: Option<(&str, &str)>,
) -> Output {
    let notary_trust_dir = sandbox.path("no-docker-trust");
    std::fs::create_dir_all(&notary_trust_dir).unwrap();
    let mut command = Command::new(bin_dir().join("tufkey"));
    command
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["--json", "dct"])
        .args(args)
        .arg("--server")
        .arg(stack.url())
        .arg("--server-ca")
        .arg(stack.ca())
        .arg("--trust-dir")
        .arg(sandbox.path("dct-pins"))
        .arg("--notary-trust-dir")
        .arg(&notary_trust_dir)
        .env_remove(ENV_USERNAME)
        .env_remove(ENV_PASSWORD)
        .env_remove(ENV_TOKEN)
        .stdin(Stdio::null());
    if let Some((username, password)) = login {
        command
            .env(ENV_USERNAME, username)
            .env(ENV_PASSWORD, password);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_ok(what: &str, output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{what} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!("{what} printed no JSON ({error}): {}", text(&output.stdout))
    })
}

fn empty_dir(sandbox: &Sandbox, name: &str) -> std::path::PathBuf {
    let dir = sandbox.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Panics unless a fresh `notary list GUN` (logged in, empty trust dir) shows exactly
/// `(tag, hex digest, size)`.
fn assert_listed_only(stack: &NotaryStack, trust_dir: &Path, expected: (&str, &str, u64)) {
    let rows = notary_list(stack, trust_dir, GUN);
    let shown: Vec<_> = rows
        .iter()
        .map(|(tag, digest, size, _role)| (tag.as_str(), digest.as_str(), *size))
        .collect();
    assert_eq!(shown, [expected], "{rows:?}");
}

#[test]
fn dct_init_and_sign_log_in_with_username_and_password_and_a_missing_or_wrong_login_fails_clearly()
{
    let sandbox = Sandbox::new();
    let (stack, tokens) = NotaryStack::start_with_token_auth(&sandbox.path("notary"));
    let daemon = sandbox.start(&DaemonOptions::default());
    let login = Some((TOKEN_USERNAME, TOKEN_PASSWORD));

    assert_ok(
        "dct init",
        &dct(&daemon, &stack, &sandbox, &["init", GUN], login),
    );
    let issued_by_init = tokens.issued();
    assert!(
        issued_by_init > 0,
        "dct init logged in: {}",
        tokens.issued_log()
    );

    let manifest = b"{\"schemaVersion\":2,\"tag\":\"v1\"}";
    let digest = sha256_digest(manifest);
    let size = manifest.len().to_string();
    let sign = |tag: &str, login| {
        let reference = format!("{GUN}:{tag}");
        dct(
            &daemon,
            &stack,
            &sandbox,
            &["sign", &reference, "--digest", &digest, "--size", &size],
            login,
        )
    };
    assert_ok("dct sign v1", &sign("v1", login));
    assert!(tokens.issued() > issued_by_init, "dct sign logged in");
    assert!(
        tokens.issued_log().contains(&format!("repository:{GUN}:")),
        "{}",
        tokens.issued_log()
    );

    // The real notary client, logged in (NOTARY_AUTH), sees v1 with its digest and size.
    let v1 = (
        "v1",
        digest.trim_start_matches("sha256:"),
        manifest.len() as u64,
    );
    assert_listed_only(&stack, &empty_dir(&sandbox, "notary-1"), v1);

    // notary 0.7's `list` asks for an anonymous token first (it grants nothing), then
    // retries with its login.
    assert!(
        tokens.issued_log().contains("ANONYMOUS "),
        "{}",
        tokens.issued_log()
    );

    // No login: refused before anything is published, in one line naming the variables.
    let issued = tokens.issued();
    let output = sign("v2", None);
    let stderr = text(&output.stderr);
    eprintln!("without a login: {stderr}");
    assert!(
        !output.status.success(),
        "dct sign without a login succeeded"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(ENV_USERNAME), "{stderr}");
    assert!(stderr.contains(ENV_PASSWORD), "{stderr}");
    assert_eq!(tokens.issued(), issued, "no token without a login");

    // A wrong password: refused, and the password is printed nowhere.
    let wrong_password = "wrong-password-d41c7e";
    let output = sign("v2", Some((TOKEN_USERNAME, wrong_password)));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    eprintln!("with a wrong password: {stderr}");
    assert!(
        !output.status.success(),
        "dct sign with a wrong password succeeded"
    );
    assert!(stderr.contains("rejected"), "{stderr}");
    assert!(
        !stdout.contains(wrong_password) && !stderr.contains(wrong_password),
        "the password was printed:\n{stdout}\n{stderr}"
    );
    assert_eq!(tokens.issued(), issued, "no token for a wrong password");

    // Neither attempt published anything.
    assert_listed_only(&stack, &empty_dir(&sandbox, "notary-2"), v1);
}
