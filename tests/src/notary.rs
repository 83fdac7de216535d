//! The Notary side of the end-to-end tests: a test PKI, tufkeyd listening on TCP
//! with mutual TLS, the real `notary-server` pointed at it, and the real `notary`
//! client flow — all through the scripts in `scripts/notary/`, so the tests and the
//! manual recipe in `tests/notary/README.md` are the same thing.
//!
//! Every process started here is killed when its guard drops.

use crate::daemon::{bin_dir, CliOutput, Daemon, DaemonOptions, Sandbox};
use crate::verify::workspace_root;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `scripts/notary/`.
pub fn scripts_dir() -> PathBuf {
    workspace_root().join("scripts").join("notary")
}

/// Fails with the fix when the Debian `notary` package is missing.
pub fn require_notary_binaries() {
    for binary in ["notary", "notary-server", "openssl", "curl"] {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {binary}"))
            .output()
            .is_ok_and(|output| output.status.success());
        assert!(
            found,
            "{binary} is not installed: run scripts/notary/install.sh (Debian package notary)"
        );
    }
}

/// A free loopback TCP port (the OS picks it; racy only against other processes).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind an ephemeral loopback port")
        .port()
}

/// The test PKI from `make-certs.sh` (see that script's header for every file).
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// Writes a fresh PKI into `dir`.
    pub fn make(dir: &Path) -> Pki {
        run_script("make-certs.sh", &[dir.as_os_str()], &[]);
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    /// A file of the PKI, e.g. `ca.crt`, `client.key`.
    pub fn file(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        assert!(path.is_file(), "make-certs.sh wrote no {}", path.display());
        path
    }

    /// `tufkey --addr A1 --addr A2 ... --tls-ca ca.crt --tls-cert client.crt
    /// --tls-key client.key ARGS`: the CLI over TCP + mutual TLS to every address.
    pub fn cli_over_tls(&self, addrs: &[String], args: &[&str]) -> CliOutput {
        let mut command = Command::new(bin_dir().join("tufkey"));
        for addr in addrs {
            command.args(["--addr", addr]);
        }
        for (flag, file) in [
            ("--tls-ca", "ca.crt"),
            ("--tls-cert", "client.crt"),
            ("--tls-key", "client.key"),
        ] {
            command.arg(flag).arg(self.file(file));
        }
        let output = command
            .args(args)
            .output()
            .expect("spawn tufkey (run `cargo build --bins` first)");
        CliOutput::from_output(output)
    }
}

/// The policy [`TlsDaemon`] starts with when a test names none: notary-server's
/// certificate gets the Notary API, the test client's also reads keys.
pub const DEFAULT_TLS_POLICY: &str = r#"
[[grant]]
cert_cn = "notary-server"
permissions = ["notary"]

[[grant]]
cert_cn = "tufkey-test-client"
permissions = ["notary", "keys_read"]
"#;

/// tufkeyd on a temporary store and socket, plus TCP with mutual TLS using the PKI's
/// signer certificate and CA.
pub struct TlsDaemon {
    pub daemon: Daemon,
    pub port: u16,
}

impl TlsDaemon {
    /// Starts tufkeyd on a free port; `extra_args` are appended (e.g. `--policy FILE`;
    /// without one, [`DEFAULT_TLS_POLICY`]).
    pub fn start(sandbox: &Sandbox, pki: &Pki, extra_args: &[&str]) -> TlsDaemon {
        Self::start_with(sandbox, pki, extra_args, DaemonOptions::default())
    }

    /// [`TlsDaemon::start`] from other daemon options (e.g. with YubiKeys).
    pub fn start_with(
        sandbox: &Sandbox,
        pki: &Pki,
        extra_args: &[&str],
        options: DaemonOptions,
    ) -> TlsDaemon {
        let port = free_port();
        let mut args: Vec<String> = vec![
            "--listen-tcp".into(),
            format!("127.0.0.1:{port}"),
            "--tls-cert".into(),
            path_arg(&pki.file("signer.crt")),
            "--tls-key".into(),
            path_arg(&pki.file("signer.key")),
            "--tls-client-ca".into(),
            path_arg(&pki.file("ca.crt")),
        ];
        // `--listen-tcp` needs a policy naming a TLS client; unless the test brings
        // its own, the PKI's two client certificates get the Notary API (and the test
        // client also reads keys, for `tufkey key show` over TLS).
        if !extra_args
            .iter()
            .any(|arg| *arg == "--policy" || *arg == "--tls-allow-subject")
        {
            let policy = pki.dir.join("tufkeyd-policy.toml");
            std::fs::write(&policy, DEFAULT_TLS_POLICY).expect("write the test policy");
            args.extend(["--policy".into(), path_arg(&policy)]);
        }
        args.extend(extra_args.iter().map(|arg| arg.to_string()));
        let daemon = sandbox.start(&DaemonOptions { args, ..options });
        TlsDaemon { daemon, port }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

/// The real notary-server (memory storage) using tufkeyd as its trust service;
/// SIGKILLed on drop (its memory store needs no clean shutdown).
pub struct NotaryServer {
    pub port: u16,
    pub started: Instant,
    pid_file: PathBuf,
}

impl NotaryServer {
    /// Starts notary-server on a free port with the PKI's `server-client` certificate
    /// and returns once its HTTPS health endpoint answers.
    pub fn start(pki: &Pki, signer_port: u16) -> NotaryServer {
        Self::start_with_auth(pki, signer_port, None)
    }

    /// [`NotaryServer::start`] with `auth` (JSON) as the config's `"auth"` value, e.g.
    /// docker distribution's token auth (`start-server.sh`'s `AUTH_JSON`).
    pub fn start_with_auth(pki: &Pki, signer_port: u16, auth: Option<&str>) -> NotaryServer {
        let port = free_port();
        let started = Instant::now();
        let server = NotaryServer {
            port,
            started,
            pid_file: pki.dir.join("notary-server.pid"),
        };
        run_script(
            "start-server.sh",
            &[
                pki.dir.as_os_str(),
                port.to_string().as_ref(),
                "127.0.0.1".as_ref(),
                signer_port.to_string().as_ref(),
            ],
            &[
                ("NOTARY_LOG_LEVEL", "error"),
                ("AUTH_JSON", auth.unwrap_or_default()),
            ],
        );
        server
    }

    /// notary-server's `/_notary_server/health` once its periodic trust check (first
    /// run 10 s after start) has run: `(HTTP status, body)`.
    pub fn health_after_first_trust_check(&self, pki: &Pki) -> (String, String) {
        let first_check = Duration::from_millis(11_500);
        if let Some(left) = first_check.checked_sub(self.started.elapsed()) {
            std::thread::sleep(left);
        }
        let body = pki.dir.join("notary-server.health");
        let output = Command::new("curl")
            .arg("-s")
            .arg("-o")
            .arg(&body)
            .arg("-w")
            .arg("%{http_code}")
            .arg("--cacert")
            .arg(pki.file("ca.crt"))
            .arg(format!(
                "https://127.0.0.1:{}/_notary_server/health",
                self.port
            ))
            .output()
            .expect("run curl");
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            std::fs::read_to_string(&body).unwrap_or_default(),
        )
    }
}

impl Drop for NotaryServer {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let _ = Command::new("kill").arg("-KILL").arg(pid.trim()).status();
        }
    }
}

/// What `client-flow.sh` reported.
pub struct ClientFlow {
    pub stdout: String,
    /// `(role, notary key ID)` of the keys notary-server keeps in its signer.
    pub signer_keys: Vec<(String, String)>,
}

impl ClientFlow {
    /// Asserts every step passed and notary-server kept exactly its snapshot and
    /// timestamp keys in the signer.
    pub fn assert_passed_with_server_keys(&self) {
        assert!(
            self.stdout.contains("client-flow: all 32 steps passed"),
            "{}",
            self.stdout
        );
        let mut roles: Vec<&str> = self
            .signer_keys
            .iter()
            .map(|(role, _)| role.as_str())
            .collect();
        roles.sort_unstable();
        assert_eq!(roles, ["snapshot", "timestamp"], "{}", self.stdout);
    }
}

/// Runs `client-flow.sh` (the real `notary` CLI, every step checked) for `gun`.
pub fn client_flow(pki: &Pki, server: &NotaryServer, gun: &str) -> ClientFlow {
    let output = run_script(
        "client-flow.sh",
        &[
            pki.dir.as_os_str(),
            server.port.to_string().as_ref(),
            gun.as_ref(),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let signer_keys = stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("SIGNER_KEY")).then(|| {
                let role = words.next().unwrap_or_default().to_owned();
                let id = words.next().unwrap_or_default().to_owned();
                (role, id)
            })
        })
        .collect();
    ClientFlow {
        stdout,
        signer_keys,
    }
}

/// A bare TLS handshake with `openssl s_client` (no SNI, like notary-server dialling
/// an IP), presenting `<client>.crt` / `.key` if given. TLS 1.2, so the server's
/// verdict on the client certificate is part of the handshake (with TLS 1.3 the
/// client finishes first and only a later read sees the alert). `Err` holds
/// openssl's output, which names the alert.
pub fn openssl_handshake(pki: &Pki, port: u16, client: Option<&str>) -> Result<(), String> {
    let mut command = Command::new("openssl");
    command
        .args(["s_client", "-tls1_2", "-noservername", "-alpn", "h2"])
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-verify_ip")
        .arg("127.0.0.1")
        .arg("-CAfile")
        .arg(pki.file("ca.crt"))
        .args(["-verify_return_error", "-brief"])
        .stdin(std::process::Stdio::null());
    if let Some(name) = client {
        command
            .arg("-cert")
            .arg(pki.file(&format!("{name}.crt")))
            .arg("-key")
            .arg(pki.file(&format!("{name}.key")));
    }
    let output = command.output().expect("run openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(())
    } else {
        Err(text)
    }
}

/// A temporary path as a command-line argument.
pub fn path_arg(path: &Path) -> String {
    path.to_str().expect("temp paths are UTF-8").to_owned()
}

/// Runs `scripts/notary/NAME ARGS` and insists it succeeds, showing its output if not.
fn run_script(name: &str, args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Output {
    let output = Command::new(scripts_dir().join(name))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|error| panic!("run scripts/notary/{name}: {error}"));
    assert_success(&format!("scripts/notary/{name}"), &output);
    output
}

/// Panics, with what the process printed, unless `output` is a success.
pub fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
