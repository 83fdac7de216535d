//! tufkeyd as a Python user of plain `grpcio` meets it, every channel option at its
//! default: over the Unix socket (where grpcio sends the percent-encoded socket path
//! as `:authority`, which h2 alone would reset) and over TCP with mutual TLS, health
//! answers SERVING and server reflection lists tufkey's services in both versions,
//! `v1alpha` (grpcio-reflection's client) and `v1`.
//!
//! The same for grpc-go as Debian ships it (golang-google-grpc-dev), dialled both
//! ways Go programs do: a `unix:` target, and the bare path through a Unix dialer
//! (which sends the path itself as `:authority`, as grpc-java does).
//!
//! The probes are tests/python/grpc_probe.py in the test venv and
//! tests/go/grpc_probe.go (scripts/install-deps.sh installs Go and grpc-go); the TLS
//! side uses the Notary tests' PKI (the server certificate names `localhost`, which
//! is dialled). Needs `cargo build --bins` first.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use tufkey_e2e::daemon::{DaemonOptions, Sandbox};
use tufkey_e2e::notary::{Pki, TlsDaemon};
use tufkey_e2e::verify::{python_dir, venv_python, workspace_root};

/// What every answer must list, in both reflection versions.
const EXPECTED_SERVICES: &[&str] = &[
    "tufkey.v1.Keys",
    "tufkey.v1.Signing",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Runs grpc_probe.py with `args`; its JSON answer, or a panic with its stderr.
fn probe(args: &[&str]) -> Value {
    let mut command = Command::new(venv_python().unwrap());
    command.arg(python_dir().join("grpc_probe.py")).args(args);
    answer_of(command, "grpc_probe.py", args)
}

/// Builds tests/go/grpc_probe.go into `dir` (once) and runs it with `args`.
fn go_probe(dir: &Path, args: &[&str]) -> Value {
    let binary = dir.join("grpc_probe");
    if !binary.exists() {
        // GOPATH mode against Debian's Go sources: nothing is downloaded.
        let mut go = Command::new("go");
        go.args(["build", "-o"])
            .arg(&binary)
            .arg("grpc_probe.go")
            .current_dir(workspace_root().join("tests").join("go"))
            .env("GO111MODULE", "off")
            .env("GOPATH", "/usr/share/gocode");
        if std::env::var_os("GOCACHE").is_none() && std::env::var_os("HOME").is_none() {
            // Go needs a build cache; without a home, a fresh one beside the binary.
            go.env("GOCACHE", dir.join("go-cache"));
        }
        let built = go.output().unwrap_or_else(|error| {
            panic!("running go ({error}): run scripts/install-deps.sh (golang-go)")
        });
        assert!(
            built.status.success(),
            "building tests/go/grpc_probe.go failed (scripts/install-deps.sh installs \
             golang-go and golang-google-grpc-dev): {}",
            String::from_utf8_lossy(&built.stderr)
        );
    }
    let mut command = Command::new(&binary);
    command.args(args);
    answer_of(command, "grpc_probe.go", args)
}

/// The JSON a probe printed; panics with its stderr when it failed.
fn answer_of(mut command: Command, probe: &str, args: &[&str]) -> Value {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{probe} {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The service names `answer` lists for reflection `version`, all expected ones
/// among them.
fn listed(answer: &Value, version: &str) -> Vec<String> {
    let services: Vec<String> = answer[version]
        .as_array()
        .unwrap_or_else(|| panic!("no {version} list in {answer}"))
        .iter()
        .map(|name| name.as_str().unwrap().to_owned())
        .collect();
    for service in EXPECTED_SERVICES {
        assert!(
            services.iter().any(|name| name == service),
            "reflection {version} does not list {service}: {services:?}"
        );
    }
    services
}

/// Health SERVING, and both reflection versions list the same services, tufkey's
/// among them.
fn assert_served(answer: &Value) {
    assert_eq!(answer["health"], "SERVING", "{answer}");
    assert_eq!(
        listed(answer, "v1"),
        listed(answer, "v1alpha"),
        "both reflection versions list the same services"
    );
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn grpcio_with_default_options_is_served_on_the_unix_socket() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let socket = path_arg(&daemon.socket);
    // grpcio's own `:authority` for a Unix socket: the percent-encoded path.
    assert_served(&probe(&["--unix", socket]));
    // What grpc-java sends: the raw path.
    assert_served(&probe(&["--unix", socket, "--authority", socket]));
    // A valid authority is kept as it is.
    assert_served(&probe(&["--unix", socket, "--authority", "localhost"]));
    daemon.stop();
}

#[test]
fn grpcio_with_default_options_is_served_over_mutual_tls() {
    let sandbox = Sandbox::new();
    let pki = Pki::make(&sandbox.path("pki"));
    let tufkeyd = TlsDaemon::start(&sandbox, &pki, &[]);
    let (ca, cert, key) = (
        pki.file("ca.crt"),
        pki.file("client.crt"),
        pki.file("client.key"),
    );
    let answer = probe(&[
        "--tls",
        &format!("localhost:{}", tufkeyd.port),
        "--ca",
        path_arg(&ca),
        "--cert",
        path_arg(&cert),
        "--key",
        path_arg(&key),
    ]);
    assert_served(&answer);
    tufkeyd.daemon.stop();
}

#[test]
fn grpc_go_with_default_options_is_served_on_the_unix_socket() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    let socket = path_arg(&daemon.socket);
    let target = format!("unix://{socket}");
    for args in [&[target.as_str()][..], &["-dialer", socket]] {
        let answer = go_probe(sandbox.dir.path(), args);
        assert_eq!(answer["health"], "SERVING", "{answer}");
        listed(&answer, "v1alpha");
    }
    daemon.stop();
}
