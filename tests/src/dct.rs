//! The Docker Content Trust side of the end-to-end tests: the real peers a `tufkey dct`
//! test talks to or checks its work with, each started on a free loopback port and
//! killed when its guard drops.
//!
//! * [`Registry`]: Debian's `docker-registry` (distribution 2.8), plain HTTP, and
//!   [`push_image`], which writes a tiny deterministic OCI image and copies it in with
//!   `skopeo`, reporting the digest and size the registry serves.
//! * [`NotaryStack`]: the real notary-signer + notary-server (memory storage), with
//!   [`notary`], [`notary_list`] and [`notary_publisher`] driving the real `notary`
//!   client, and [`docker_trust_inspect`] the real Docker CLI (no daemon needed).
//!   [`NotaryStack::start_with_token_auth`] puts the server behind Docker's token
//!   login, with [`TokenServer`] as the token service.
//! * [`FakeNotaryServer`]: an HTTPS server that serves whatever metadata files a test
//!   gives it and refuses (and counts) every write, for "signed by another key" and
//!   "nothing was published" tests.
//! * [`faketime_command`]: run a program as if the clock were days ahead (libfaketime).
//!
//! Tools come from `scripts/dct/install.sh` and `scripts/notary/install.sh`.
//!
//! Facts measured with these tools (Debian 12: docker-registry 2.8.2, skopeo 1.9.3,
//! notary 0.7.0, Docker CLI 28.2 and 20.10):
//! * `skopeo copy oci:DIR:TAG docker://HOST/REPO:TAG` stores the OCI manifest byte for
//!   byte (no conversion); `--format v2s2` converts it to a Docker schema 2 manifest
//!   (other bytes, other digest): see [`ManifestFormat`].
//! * docker-registry 2.8 answers `GET /v2/REPO/manifests/TAG` for an OCI manifest with
//!   404 MANIFEST_UNKNOWN unless `Accept` names `application/vnd.oci.image.manifest.v1+json`,
//!   and for a Docker schema 2 manifest with 400 when no `Accept` is sent (it tries
//!   schema 1): a client must send every manifest media type it accepts.

use crate::notary::{assert_success, free_port, scripts_dir, NotaryServer, Pki};
use crate::verify::{python_dir, venv_python};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The system Python (stdlib only; the scripts here need no venv).
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// The manifest media types a registry client accepts (sent as `Accept`).
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// The passphrase [`notary_publisher`] gives the `notary` client for every key it makes
/// (root, targets, snapshot, delegation): what an import of that trust dir must use.
pub const PUBLISHER_PASSPHRASE: &str = "publisher-pass-123";

/// Kills and reaps a child process when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(what: &str, command: &mut Command) -> Output {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("run {what}: {error} (run scripts/dct/install.sh)"));
    assert_success(what, &output);
    output
}

/// Waits until `ready()` or panics naming `what`, showing `log` (a file), early if the
/// process behind `child` exits.
fn wait_until(what: &str, child: &mut Child, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if ready() {
            return;
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            panic!(
                "{what} did not start ({}):\n{}",
                exited.map_or("timed out".to_owned(), |status| status.to_string()),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Debian's `docker-registry` serving plain HTTP on 127.0.0.1, storage under its dir.
pub struct Registry {
    pub port: u16,
    /// Config, storage (`storage/`), log (`registry.log`) and pushed OCI layouts.
    pub dir: PathBuf,
    _process: KillOnDrop,
}

impl Registry {
    /// Starts `docker-registry serve` on a free port and returns once `/v2/` answers.
    pub fn start(dir: &Path) -> Registry {
        std::fs::create_dir_all(dir.join("storage")).expect("create the registry storage");
        let port = free_port();
        let config = dir.join("config.yml");
        // Plain HTTP on loopback, no auth, filesystem storage, deletes allowed.
        let storage = dir.join("storage");
        let yaml = [
            "version: 0.1".to_owned(),
            "log:".to_owned(),
            "  level: warn".to_owned(),
            "storage:".to_owned(),
            "  filesystem:".to_owned(),
            format!("    rootdirectory: {}", storage.display()),
            "  delete:".to_owned(),
            "    enabled: true".to_owned(),
            "http:".to_owned(),
            format!("  addr: 127.0.0.1:{port}"),
        ];
        std::fs::write(&config, yaml.join("\n") + "\n").expect("write the registry config");
        let log_path = dir.join("registry.log");
        let log = std::fs::File::create(&log_path).expect("create the registry log");
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry (run scripts/dct/install.sh)");
        wait_until("docker-registry", &mut child, &log_path, || {
            http_get_status(port, "/v2/") == Some(200)
        });
        Registry {
            port,
            dir: dir.to_path_buf(),
            _process: KillOnDrop(child),
        }
    }

    /// `localhost:PORT`: the registry part of an image name (`localhost:PORT/acme/app`),
    /// as the issue writes it. `localhost` resolves to 127.0.0.1 here and the registry
    /// speaks plain HTTP: skopeo needs `--tls-verify=false` for any host (it treats
    /// neither localhost nor 127.0.0.1 as insecure by itself); Docker's daemon would
    /// treat both as insecure registries (127.0.0.0/8), but no test needs the daemon.
    /// `127.0.0.1:PORT` reaches the same registry.
    pub fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// `http://localhost:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// `GET /v2/REPOSITORY/manifests/REFERENCE` with every manifest media type in
    /// `Accept` (through curl): what a client signing this tag must read.
    pub fn served_manifest(&self, repository: &str, reference: &str) -> ServedManifest {
        let headers = self.dir.join("last-manifest.headers");
        let body = self.dir.join("last-manifest.body");
        let mut command = Command::new("curl");
        command
            .args(["-s", "-D"])
            .arg(&headers)
            .arg("-o")
            .arg(&body)
            .args(["-w", "%{http_code}"]);
        for media_type in MANIFEST_MEDIA_TYPES {
            command.arg("-H").arg(format!("Accept: {media_type}"));
        }
        let output = run(
            "curl (registry manifest)",
            command.arg(format!(
                "{}/v2/{repository}/manifests/{reference}",
                self.url()
            )),
        );
        let bytes = std::fs::read(&body).unwrap_or_default();
        let code = String::from_utf8_lossy(&output.stdout).into_owned();
        assert_eq!(
            code,
            "200",
            "the registry has no manifest {repository}:{reference}: {}",
            String::from_utf8_lossy(&bytes)
        );
        let headers = std::fs::read_to_string(&headers).expect("read the response headers");
        let header = |name: &str| {
            headers.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
        };
        ServedManifest {
            media_type: header("Content-Type").unwrap_or_default(),
            docker_content_digest: header("Docker-Content-Digest").unwrap_or_default(),
            bytes,
        }
    }
}

/// A manifest as the registry serves it.
pub struct ServedManifest {
    pub bytes: Vec<u8>,
    /// `Content-Type`.
    pub media_type: String,
    /// The `Docker-Content-Digest` header.
    pub docker_content_digest: String,
}

/// `Some(HTTP status)` of a plain-HTTP GET on 127.0.0.1:PORT, `None` if nothing answers.
fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The manifest `skopeo` stores for [`push_image_as`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestFormat {
    /// The OCI image manifest `oci_layout.py` wrote, stored byte for byte.
    Oci,
    /// `skopeo copy --format v2s2`: converted to
    /// `application/vnd.docker.distribution.manifest.v2+json` (what `docker push` makes).
    DockerV2Schema2,
}

/// What the registry serves for a pushed tag: the values a DCT target must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedImage {
    /// `sha256:<hex>` of the manifest bytes the registry serves (checked equal to its
    /// `Docker-Content-Digest` header).
    pub digest: String,
    /// Length of those bytes.
    pub size: u64,
    /// The manifest's media type (`Content-Type`).
    pub media_type: String,
}

impl PushedImage {
    /// The digest's hex part (as `notary list` and `docker trust inspect` print it).
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

/// [`push_image_as`] with the OCI manifest kept as written.
pub fn push_image(registry: &Registry, repository: &str, tag: &str, seed: &str) -> PushedImage {
    push_image_as(registry, repository, tag, seed, ManifestFormat::Oci)
}

/// Writes a one-layer image whose content depends only on `seed` as an OCI layout
/// (`tests/python/oci_layout.py`), copies it to `HOST/REPOSITORY:TAG` with skopeo and
/// reads the manifest back from the registry: the digest and size are those of the
/// bytes the registry serves, and must equal its `Docker-Content-Digest`.
pub fn push_image_as(
    registry: &Registry,
    repository: &str,
    tag: &str,
    seed: &str,
    format: ManifestFormat,
) -> PushedImage {
    static LAYOUTS: AtomicUsize = AtomicUsize::new(0);
    let layout = registry
        .dir
        .join(format!("oci-{}", LAYOUTS.fetch_add(1, Ordering::Relaxed)));
    let written = run(
        "tests/python/oci_layout.py",
        Command::new(SYSTEM_PYTHON)
            .arg(python_dir().join("oci_layout.py"))
            .arg(&layout)
            .arg(tag)
            .arg(seed),
    );
    let written: serde_json::Value =
        serde_json::from_slice(&written.stdout).expect("oci_layout.py prints JSON");

    let mut copy = Command::new("skopeo");
    copy.args([
        "copy",
        "--quiet",
        "--insecure-policy",
        "--dest-tls-verify=false",
    ]);
    if format == ManifestFormat::DockerV2Schema2 {
        copy.args(["--format", "v2s2"]);
    }
    let source = format!("oci:{}:{tag}", layout.display());
    let destination = format!("docker://{}/{repository}:{tag}", registry.host());
    run("skopeo copy", copy.arg(&source).arg(&destination));

    let served = registry.served_manifest(repository, tag);
    let digest = sha256_digest(&served.bytes);
    assert_eq!(
        served.docker_content_digest, digest,
        "the registry's Docker-Content-Digest is not the sha256 of the manifest it serves"
    );
    if format == ManifestFormat::Oci {
        assert_eq!(
            written["manifest_digest"], digest,
            "skopeo changed the OCI manifest on the way in"
        );
    }
    PushedImage {
        digest,
        size: served.bytes.len() as u64,
        media_type: served.media_type,
    }
}

/// `tests/python/fake_notary_server.py`: HTTPS with the PKI's `server.crt`, serving
/// `GET /v2/<gun>/_trust/tuf/<file>` from `FILES_DIR/<gun>/<file>` (`root.json`,
/// `targets/releases.json`, `timestamp.key`, …; 404 when absent). Clients fetch
/// `<role>.<sha256>.json` once they have the snapshot (and `<version>.root.json` when
/// rotating roots): without such a file, `<role>.json` answers when its sha256 /
/// `signed.version` matches, as notary-server does. Every POST, PUT and DELETE gets
/// 400 and every request is logged. Killed on drop.
pub struct FakeNotaryServer {
    pub port: u16,
    state_dir: tempfile::TempDir,
    _process: KillOnDrop,
}

impl FakeNotaryServer {
    /// Starts the server (system python3) and returns once it listens.
    pub fn start(pki: &Pki, files_dir: &Path) -> FakeNotaryServer {
        let state_dir = tempfile::tempdir().expect("tempdir for the fake server");
        let log_path = state_dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).expect("create the fake server log");
        let mut child = Command::new(SYSTEM_PYTHON)
            .arg(python_dir().join("fake_notary_server.py"))
            .arg(pki.file("server.crt"))
            .arg(pki.file("server.key"))
            .arg(files_dir)
            .arg(state_dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start tests/python/fake_notary_server.py");
        let port_file = state_dir.path().join("port");
        wait_until("fake_notary_server.py", &mut child, &log_path, || {
            port_file.is_file()
        });
        let port = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .expect("fake_notary_server.py wrote its port");
        FakeNotaryServer {
            port,
            state_dir,
            _process: KillOnDrop(child),
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Every request so far, `"METHOD PATH"`, in order.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.state_dir.path().join("requests.log"))
            .expect("read the fake server's request log")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// How many POSTs (publish attempts) reached the server.
    pub fn posts(&self) -> usize {
        self.requests()
            .iter()
            .filter(|line| line.starts_with("POST "))
            .count()
    }
}

/// Copies what notary-server serves for `gun` into `files_dir/<gun>/` in the layout
/// [`FakeNotaryServer`] serves: `<role>.json` for root, targets, snapshot, timestamp and
/// each of `delegations` (e.g. `targets/releases`). A test can then edit or re-sign a
/// file and serve the result. Panics if the server does not have one of them.
pub fn copy_collection(stack: &NotaryStack, gun: &str, delegations: &[&str], files_dir: &Path) {
    let top_level = ["root", "targets", "snapshot", "timestamp"];
    for role in top_level.iter().chain(delegations) {
        let file = files_dir.join(gun).join(format!("{role}.json"));
        std::fs::create_dir_all(file.parent().expect("a role file has a parent"))
            .expect("create the fake server's files dir");
        let output = run(
            "curl (notary-server metadata)",
            Command::new("curl")
                .args(["-s", "-w", "%{http_code}", "--cacert"])
                .arg(stack.ca())
                .arg("-o")
                .arg(&file)
                .arg(format!("{}/v2/{gun}/_trust/tuf/{role}.json", stack.url())),
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "200",
            "notary-server has no {role}.json for {gun}"
        );
    }
}

/// The one user [`TokenServer`] knows.
pub const TOKEN_USERNAME: &str = "publisher";
/// [`TOKEN_USERNAME`]'s password.
pub const TOKEN_PASSWORD: &str = "correct-horse-battery-staple";
/// The `iss` of the tokens [`TokenServer`] issues (what notary-server checks).
pub const TOKEN_ISSUER: &str = "tufkey-test-issuer";

/// `tests/python/token_server.py` (venv python): Docker's token service over HTTPS with
/// the PKI's `server.crt`, issuing ES256 JWTs to [`TOKEN_USERNAME`] /
/// [`TOKEN_PASSWORD`] (HTTP basic) that notary-server's token auth accepts. Killed on
/// drop.
pub struct TokenServer {
    pub port: u16,
    /// The token-signing certificate (notary-server's `rootcertbundle`).
    pub bundle: PathBuf,
    /// One line per token: `ISSUED <scopes>` for the user, `ANONYMOUS <scopes>` for an
    /// anonymous one (which grants nothing).
    log: PathBuf,
    _process: KillOnDrop,
}

impl TokenServer {
    /// Starts the token service on a free port; its files go into the PKI's dir.
    pub fn start(pki: &Pki) -> TokenServer {
        let python = venv_python().unwrap_or_else(|error| panic!("the Python venv: {error}"));
        let bundle = pki.dir.join("token-signing-bundle.pem");
        let log = pki.dir.join("tokens-issued.log");
        let mut child = Command::new(python)
            .arg(python_dir().join("token_server.py"))
            .arg("--cert")
            .arg(pki.file("server.crt"))
            .arg("--key")
            .arg(pki.file("server.key"))
            .arg("--bundle")
            .arg(&bundle)
            .args(["--issuer", TOKEN_ISSUER, "--username", TOKEN_USERNAME])
            .arg("--log")
            .arg(&log)
            .env("TOKEN_SERVER_PASSWORD", TOKEN_PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start tests/python/token_server.py");
        let mut line = String::new();
        let stdout = child
            .stdout
            .take()
            .expect("token_server.py's stdout is piped");
        let process = KillOnDrop(child);
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read token_server.py's first line");
        let port = line
            .strip_prefix("LISTENING ")
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("token_server.py did not start: {line:?}"));
        TokenServer {
            port,
            bundle,
            log,
            _process: process,
        }
    }

    /// notary-server's `"auth"` config for this token service.
    pub fn notary_server_auth(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "token",
            "options": {
                "realm": format!("https://127.0.0.1:{}/token", self.port),
                "service": "notary-server",
                "issuer": TOKEN_ISSUER,
                "rootcertbundle": self.bundle,
            }
        })
    }

    /// Every token issued so far, one line each: `ISSUED <scopes>` for the user,
    /// `ANONYMOUS <scopes>` for an anonymous one.
    pub fn issued_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many tokens it has issued to the user (anonymous ones not counted).
    pub fn issued(&self) -> usize {
        self.issued_log()
            .lines()
            .filter(|line| line.starts_with("ISSUED "))
            .count()
    }
}

/// The real notary-signer (memory) and notary-server (memory storage) using it, as
/// `tests/tests/notary_e2e.rs` runs them, on a fresh PKI. Both are killed on drop.
pub struct NotaryStack {
    pub pki: Pki,
    /// notary-server's HTTPS port (changes on [`NotaryStack::restart_server`]).
    pub server_port: u16,
    pub signer_port: u16,
    /// notary-server's `"auth"` config (JSON), kept for restarts; `None`: no auth.
    auth: Option<String>,
    // Dropped before the signer.
    server: Option<NotaryServer>,
    _signer: SignerGuard,
}

/// Kills the notary-signer that `start-signer.sh` started (by its pid file).
struct SignerGuard {
    pid_file: PathBuf,
}

impl Drop for SignerGuard {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let _ = Command::new("kill").arg("-KILL").arg(pid.trim()).status();
        }
    }
}

impl NotaryStack {
    /// Makes a PKI in `dir/pki`, starts notary-signer and notary-server on free ports.
    pub fn start(dir: &Path) -> NotaryStack {
        crate::notary::require_notary_binaries();
        Self::start_on(Pki::make(&dir.join("pki")), None)
    }

    /// [`NotaryStack::start`] with notary-server behind Docker's token login: a
    /// [`TokenServer`] (started first, on the same PKI) issues the tokens the server
    /// accepts, for [`TOKEN_USERNAME`] / [`TOKEN_PASSWORD`] only. [`notary`] logs in
    /// as that user.
    pub fn start_with_token_auth(dir: &Path) -> (NotaryStack, TokenServer) {
        crate::notary::require_notary_binaries();
        let pki = Pki::make(&dir.join("pki"));
        let tokens = TokenServer::start(&pki);
        let stack = Self::start_on(pki, Some(tokens.notary_server_auth().to_string()));
        (stack, tokens)
    }

    /// notary-signer, then notary-server with `auth` as its `"auth"` config.
    fn start_on(pki: Pki, auth: Option<String>) -> NotaryStack {
        let signer_port = free_port();
        run(
            "scripts/notary/start-signer.sh",
            Command::new(scripts_dir().join("start-signer.sh"))
                .arg(&pki.dir)
                .arg(signer_port.to_string())
                .env("NOTARY_LOG_LEVEL", "error"),
        );
        let signer = SignerGuard {
            pid_file: pki.dir.join("notary-signer.pid"),
        };
        let server = NotaryServer::start_with_auth(&pki, signer_port, auth.as_deref());
        NotaryStack {
            server_port: server.port,
            signer_port,
            auth,
            server: Some(server),
            pki,
            _signer: signer,
        }
    }

    /// `https://127.0.0.1:PORT` (notary-server's certificate names 127.0.0.1).
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.server_port)
    }

    /// The CA that verifies notary-server (`pki/ca.crt`).
    pub fn ca(&self) -> PathBuf {
        self.pki.file("ca.crt")
    }

    /// Kills notary-server and starts a fresh one (empty memory store, same signer and
    /// PKI) on a NEW port: use [`NotaryStack::url`] again afterwards.
    pub fn restart_server(&mut self) {
        self.server = None;
        let server =
            NotaryServer::start_with_auth(&self.pki, self.signer_port, self.auth.as_deref());
        self.server_port = server.port;
        self.server = Some(server);
    }
}

/// The real `notary` client: `notary -s URL --tlscacert CA -d TRUST_DIR ARGS`, with
/// `passphrase` for every `NOTARY_*_PASSPHRASE` and no stdin. Does not check the exit;
/// notary 0.7 prints its errors (`* fatal: …`) on STDOUT, not stderr.
///
/// Against a stack with token auth it logs in as [`TOKEN_USERNAME`]: notary 0.7 takes
/// the login from `NOTARY_AUTH` (base64 of `USER:PASSWORD`, else it prompts on stdin);
/// read-only commands (`list`, `lookup`) first ask for a token anonymously and retry
/// with that login when the server says 401.
pub fn notary(stack: &NotaryStack, trust_dir: &Path, args: &[&str], passphrase: &str) -> Output {
    let mut command = Command::new("notary");
    if stack.auth.is_some() {
        let login = format!("{TOKEN_USERNAME}:{TOKEN_PASSWORD}");
        command.env(
            "NOTARY_AUTH",
            base64::engine::general_purpose::STANDARD.encode(login),
        );
    }
    command
        .arg("-s")
        .arg(stack.url())
        .arg("--tlscacert")
        .arg(stack.ca())
        .arg("-d")
        .arg(trust_dir)
        .args(args)
        .envs(
            ["ROOT", "TARGETS", "SNAPSHOT", "DELEGATION"]
                .map(|role| (format!("NOTARY_{role}_PASSPHRASE"), passphrase)),
        )
        .stdin(Stdio::null())
        .output()
        .expect("run notary (scripts/notary/install.sh)")
}

/// [`notary`] that panics, with its output, unless it succeeds.
pub fn notary_ok(stack: &NotaryStack, trust_dir: &Path, args: &[&str], passphrase: &str) -> Output {
    let output = notary(stack, trust_dir, args, passphrase);
    assert_success(&format!("notary {}", args.join(" ")), &output);
    output
}

/// `notary list GUN` as `(tag, hex sha256 digest, size, role)` rows; panics if the
/// client fails (e.g. the collection does not verify). An empty trust dir is fine:
/// the client then trusts the server's root on first use.
pub fn notary_list(
    stack: &NotaryStack,
    trust_dir: &Path,
    gun: &str,
) -> Vec<(String, String, u64, String)> {
    let output = notary_ok(stack, trust_dir, &["list", gun], "");
    parse_notary_list(&String::from_utf8_lossy(&output.stdout))
}

/// Parses `notary list`'s table (`NAME DIGEST SIZE (BYTES) ROLE`, a `----` line, rows);
/// "No targets present in this repository." gives no rows.
fn parse_notary_list(text: &str) -> Vec<(String, String, u64, String)> {
    text.lines()
        .skip_while(|line| !line.starts_with("----"))
        .skip(1)
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let [name, digest, size, role] = words[..] else {
                return None;
            };
            Some((
                name.to_owned(),
                digest.to_owned(),
                size.parse()
                    .unwrap_or_else(|_| panic!("notary list: bad size in {line:?}")),
                role.to_owned(),
            ))
        })
        .collect()
}

/// A publisher's trust dir as the real `notary` client makes it, the way `docker trust
/// sign` / `docker push` do on first use: `notary init GUN`, the snapshot key handed
/// to the server (`key rotate GUN snapshot -r`, as Docker's `Initialize(…,
/// CanonicalSnapshotRole)`), each `(tag, content)` added to `targets` (`notary add GUN
/// TAG FILE`), then `publish`. `trust_dir/private/` then holds the root and targets
/// keys (encrypted with [`PUBLISHER_PASSPHRASE`]), `trust_dir/tuf/GUN/` the metadata.
pub fn notary_publisher(stack: &NotaryStack, trust_dir: &Path, gun: &str, tags: &[(&str, &[u8])]) {
    let pass = PUBLISHER_PASSPHRASE;
    notary_ok(stack, trust_dir, &["init", gun], pass);
    notary_ok(
        stack,
        trust_dir,
        &["key", "rotate", gun, "snapshot", "-r"],
        pass,
    );
    for (tag, content) in tags {
        let mut file = tempfile::NamedTempFile::new().expect("temp file for a target");
        file.write_all(content).expect("write the target");
        let path = file.path().to_str().expect("temp paths are UTF-8");
        notary_ok(stack, trust_dir, &["add", gun, tag, path], pass);
    }
    notary_ok(stack, trust_dir, &["publish", gun], pass);
}

/// The real Docker CLI's `docker trust ARGS` against the Notary server at `server_url`
/// (`https://HOST:PORT`), with `HOME=home`, `DOCKER_CONFIG=home/.docker` and `ca`
/// copied to `home/.docker/tls/HOST:PORT/ca.crt`, where Docker looks for it. Needs no
/// Docker daemon. Does not check the exit.
pub fn docker_trust(server_url: &str, ca: &Path, home: &Path, args: &[&str]) -> Output {
    let host = server_url
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let tls_dir = home.join(".docker").join("tls").join(host);
    std::fs::create_dir_all(&tls_dir).expect("create ~/.docker/tls/HOST:PORT");
    std::fs::copy(ca, tls_dir.join("ca.crt")).expect("copy the CA for docker");
    Command::new("docker")
        .arg("trust")
        .args(args)
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("DOCKER_CONTENT_TRUST_SERVER", server_url)
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::null())
        .output()
        .expect("run docker (scripts/dct/install.sh)")
}

/// `docker trust inspect GUN` (JSON, an array with one object per argument) against
/// the stack's notary-server; panics with stderr if it fails.
///
/// The argument is an image name; Docker derives the GUN from it (measured with CLI
/// 28.2): `127.0.0.1:PORT/acme/app` and `localhost:PORT/acme/app` are taken as written
/// (two different GUNs, whichever registry host the image lives on — the trust server
/// comes from `DOCKER_CONTENT_TRUST_SERVER`); `acme/app` and `docker.io/acme/app` are the
/// GUN `docker.io/acme/app`, `alpine` is `docker.io/library/alpine`. A `:TAG` suffix
/// limits `SignedTags` to that tag. The output's `Name` echoes the argument as given,
/// not the GUN. Docker keeps what it fetched under `home/.docker/trust/tuf/GUN/`, and
/// trusts the root on first use.
pub fn docker_trust_inspect(stack: &NotaryStack, home: &Path, gun: &str) -> serde_json::Value {
    let output = docker_trust(&stack.url(), &stack.ca(), home, &["inspect", gun]);
    assert_success(&format!("docker trust inspect {gun}"), &output);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "docker trust inspect printed no JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// `(tag, hex digest)` of each `SignedTags` row of one repository in
/// [`docker_trust_inspect`]'s output, in Docker's order.
pub fn inspected_tags(repo: &serde_json::Value) -> Vec<(String, String)> {
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    repo["SignedTags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|tag| (text(&tag["SignedTag"]), text(&tag["Digest"])))
                .collect()
        })
        .unwrap_or_default()
}

/// The key IDs `docker trust inspect` lists under `AdministrativeKeys` for `name`
/// ("Root", "Repository"); empty when it lists no such entry.
pub fn inspected_admin_keys(repo: &serde_json::Value, name: &str) -> Vec<String> {
    repo["AdministrativeKeys"]
        .as_array()
        .and_then(|admin| admin.iter().find(|entry| entry["Name"] == name))
        .and_then(|entry| entry["Keys"].as_array())
        .map(|keys| {
            keys.iter()
                .filter_map(|key| key["ID"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `faketime -f OFFSET PROGRAM` with `DONT_FAKE_MONOTONIC=1`: PROGRAM (add its args
/// with `.args`) sees the wall clock (`time()`, `gettimeofday`, `clock_gettime(
/// CLOCK_REALTIME)`, hence Rust's `SystemTime`) shifted by OFFSET, e.g. `"+15d"`,
/// `"-2h"`, `"+1y"` (libfaketime's relative format; plain `faketime +15d` without `-f`
/// is refused). Monotonic clocks stay real, so tokio timers and `Instant` work
/// normally (measured: with a relative offset a tokio program also worked without
/// `DONT_FAKE_MONOTONIC`; it is set so no timer ever sees a shifted clock). No
/// `FAKETIME_NO_CACHE` is needed: the offset is fixed for the program's life. The
/// shift reaches every child PROGRAM starts (LD_PRELOAD is inherited): a tufkeyd
/// that `tufkey` auto-starts would also live 15 days ahead, while an already-running
/// tufkeyd keeps the real time. Statically linked programs are not
/// affected (libfaketime works through the dynamic loader).
pub fn faketime_command(offset: &str, program: &Path) -> Command {
    let mut command = Command::new("faketime");
    command
        .arg("-f")
        .arg(offset)
        .arg(program)
        .env("DONT_FAKE_MONOTONIC", "1");
    command
}

#[cfg(test)]
mod tests {
    use super::parse_notary_list;

    #[test]
    fn parses_notary_list_rows_and_the_empty_message() {
        let table = "NAME    DIGEST    SIZE (BYTES)    ROLE\n----    ------    ------------    ----\nv1      ab12      3               targets\nv2      cd34      10              targets/releases\n";
        assert_eq!(
            parse_notary_list(table),
            [
                ("v1".into(), "ab12".into(), 3, "targets".into()),
                ("v2".into(), "cd34".into(), 10, "targets/releases".into()),
            ]
        );
        assert!(parse_notary_list("\nNo targets present in this repository.\n\n").is_empty());
    }
}
