//! The real `tufkeyd` and `tufkey` binaries, driven as a user would: a daemon on a
//! temporary socket and store, and CLI invocations against it.
//!
//! Binaries come from `$TUFKEY_BIN_DIR`, else `<workspace>/target/debug` (the test
//! script runs `cargo build --bins` first). A test that measures the daemon (memory,
//! connections) asks for the release build with [`DaemonOptions::release`]: from
//! `$TUFKEY_RELEASE_BIN_DIR`, else `<workspace>/target/release` (`cargo build
//! --release --bins`).

use crate::verify::workspace_root;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The passphrase test daemons use unless a test says otherwise.
pub const TEST_PASSPHRASE: &str = "correct horse battery staple 42";

/// Where `tufkeyd` and `tufkey` live.
pub fn bin_dir() -> PathBuf {
    match std::env::var_os("TUFKEY_BIN_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("target").join("debug"),
    }
}

/// Where the release build of `tufkeyd` and `tufkey` lives.
pub fn release_bin_dir() -> PathBuf {
    match std::env::var_os("TUFKEY_RELEASE_BIN_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("target").join("release"),
    }
}

/// How to start a daemon.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    /// `TUFKEY_PASSPHRASE` for the daemon; `None` leaves it unset.
    pub passphrase: Option<String>,
    /// Whether the OS keyring may be used.
    pub keyring: bool,
    /// Extra flags.
    pub args: Vec<String>,
    /// `RUST_LOG` for the daemon.
    pub log_level: String,
    /// Whether the daemon may use YubiKeys. Off by default so that tests of other
    /// backends see only their own keys while the virtual cards are running.
    pub yubikey: bool,
    /// Run the release build ([`release_bin_dir`]) instead of the debug one.
    pub release: bool,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            passphrase: Some(TEST_PASSPHRASE.into()),
            keyring: false,
            args: Vec::new(),
            log_level: "info".into(),
            yubikey: false,
            release: false,
        }
    }
}

impl DaemonOptions {
    /// The defaults, with YubiKeys (through pcscd) enabled.
    pub fn with_yubikeys() -> Self {
        DaemonOptions {
            yubikey: true,
            ..DaemonOptions::default()
        }
    }
}

/// A running `tufkeyd`, killed on drop.
pub struct Daemon {
    child: Option<Child>,
    pub socket: PathBuf,
    pub store: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts a daemon on `socket` with its store at `store` and waits until it
    /// accepts connections. Its stderr goes to `store`'s sibling `tufkeyd.log`.
    pub fn start(socket: &Path, store: &Path, options: &DaemonOptions) -> Daemon {
        let log = store.with_extension("log");
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open daemon log");
        let dir = if options.release {
            release_bin_dir()
        } else {
            bin_dir()
        };
        let mut command = Command::new(dir.join("tufkeyd"));
        command
            .arg("--socket")
            .arg(socket)
            .arg("--store")
            .arg(store)
            .args(&options.args)
            .env("RUST_LOG", &options.log_level)
            .env_remove("TUFKEY_PASSPHRASE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        if !options.keyring {
            command.arg("--no-keyring");
        }
        if !options.yubikey {
            command.arg("--no-yubikey");
        }
        if let Some(passphrase) = &options.passphrase {
            command.env("TUFKEY_PASSPHRASE", passphrase);
        }
        let child = command.spawn().unwrap_or_else(|error| {
            panic!(
                "spawn {} ({error}): run `cargo build{} --bins` first",
                dir.join("tufkeyd").display(),
                if options.release { " --release" } else { "" }
            )
        });
        let mut daemon = Daemon {
            child: Some(child),
            socket: socket.to_path_buf(),
            store: store.to_path_buf(),
            log,
        };
        daemon.wait_until_listening();
        daemon
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "tufkeyd exited with {status} before listening; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "tufkeyd did not listen within 30 s; log:\n{}",
            self.log_text()
        );
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    /// Everything the daemon logged so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `tufkey --socket SOCKET ARGS...`.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        cli(&self.socket, args, None)
    }

    /// Runs the CLI with `stdin` fed to it.
    pub fn cli_with_stdin(&self, args: &[&str], stdin: &[u8]) -> CliOutput {
        cli(&self.socket, args, Some(stdin))
    }

    /// Runs the CLI and insists it succeeds.
    pub fn cli_ok(&self, args: &[&str]) -> CliOutput {
        let output = self.cli(args);
        assert!(output.success, "tufkey {args:?} failed: {}", output.stderr);
        output
    }

    /// A signer for [`crate::tuf_repo::RepoBuilder::build`]: `tufkey sign --key ID...
    /// IN --out OUT` against this daemon.
    pub fn metadata_signer(
        &self,
    ) -> impl FnMut(&Path, &Path, &[String]) -> Result<(), crate::tuf_repo::Error> + '_ {
        move |input: &Path, output: &Path, keyids: &[String]| {
            let mut args = vec!["sign".to_string()];
            for keyid in keyids {
                args.extend(["--key".to_string(), keyid.clone()]);
            }
            args.extend([
                input.display().to_string(),
                "--out".into(),
                output.display().to_string(),
            ]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let result = self.cli(&args);
            if result.success {
                Ok(())
            } else {
                Err(result.stderr.into())
            }
        }
    }

    /// Generates a key and returns its `--json` description.
    pub fn generate(&self, gun: &str, role: &str) -> serde_json::Value {
        self.cli_ok(&["--json", "key", "generate", "--gun", gun, "--role", role])
            .json()
    }

    /// Every audit record (`--json audit tail -n 0`), oldest first.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        self.cli_ok(&["--json", "audit", "tail", "-n", "0"])
            .stdout
            .lines()
            .map(|line| serde_json::from_str(line).expect("an audit record is JSON"))
            .collect()
    }

    /// Asserts that `audit verify` finds the whole log intact.
    pub fn assert_audit_intact(&self) {
        let report = self.cli_ok(&["--json", "audit", "verify"]).json();
        assert_eq!(report["ok"], true, "audit log does not verify: {report}");
    }

    /// Generates a key and returns its TUF key ID.
    pub fn generate_keyid(&self, gun: &str, role: &str) -> String {
        self.cli_ok(&["key", "generate", "--gun", gun, "--role", role])
            .stdout
            .trim()
            .to_owned()
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(self) {
        self.stop_within(Duration::from_secs(60));
    }

    /// SIGTERM, and wait at most `limit` for a clean exit (killed and a panic after
    /// that); returns how long it took.
    pub fn stop_within(mut self, limit: Duration) -> Duration {
        let Some(mut child) = self.child.take() else {
            return Duration::ZERO;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait for tufkeyd") {
                assert!(
                    status.success(),
                    "tufkeyd exited with {status} on SIGTERM; log:\n{}",
                    self.log_text()
                );
                return started.elapsed();
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "tufkeyd still running {limit:?} after SIGTERM; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, no cleanup: what a crash or power cut looks like to the store.
    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What one CLI run produced.
#[derive(Debug)]
pub struct CliOutput {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// What a finished `tufkey` process produced.
    pub fn from_output(output: Output) -> Self {
        CliOutput {
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }

    /// Asserts failure with a one-line reason containing `needle`.
    pub fn assert_fails_with(&self, needle: &str) {
        assert!(
            !self.success,
            "expected failure, got success: {}",
            self.stdout
        );
        assert_ne!(self.code, Some(0));
        assert!(
            self.stderr.contains(needle),
            "stderr does not mention {needle:?}: {}",
            self.stderr
        );
        assert_eq!(
            self.stderr.trim_end().lines().count(),
            1,
            "reason is not one line: {}",
            self.stderr
        );
    }
}

/// Runs `tufkey --socket SOCKET ARGS...`, optionally feeding stdin.
pub fn cli(socket: &Path, args: &[&str], stdin: Option<&[u8]>) -> CliOutput {
    let mut command = Command::new(bin_dir().join("tufkey"));
    command
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .expect("spawn tufkey (run `cargo build --bins` first)");
    if let Some(bytes) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(bytes)
            .expect("write stdin");
    }
    CliOutput::from_output(child.wait_with_output().expect("wait for tufkey"))
}

/// A temporary directory with a socket path and a store path inside.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("tufkeyd.sock")
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts a daemon on this sandbox's socket and store.
    pub fn start(&self, options: &DaemonOptions) -> Daemon {
        Daemon::start(&self.socket(), &self.store(), options)
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

/// sha256 of every file in a software keystore (`store.json`, `backups.json`, the key
/// files; not the audit log, which records refusals too): proof that a refused call
/// changed nothing.
pub fn store_fingerprint(store: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for dir in [store.to_path_buf(), store.join("keys")] {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_file() {
                let bytes = fs::read(&path).expect("a store file");
                files.insert(
                    path.display().to_string(),
                    hex::encode(Sha256::digest(bytes)),
                );
            }
        }
    }
    files
}

/// A field of `/proc/PID/status` in bytes (`VmRSS`, `VmHWM`).
pub fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|error| panic!("read /proc/{pid}/status: {error}"));
    let line = status
        .lines()
        .find(|line| line.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("unreadable {line:?}"));
    kib * 1024
}
