//! The README's first command, `scripts/tufkeyd`, on machines that lack what the
//! build needs: the real script, run by bash with a PATH of stand-ins, so each case
//! is a machine with or without a C compiler, pkg-config and libpcsclite, a Rust
//! toolchain (new enough or not), root or sudo. What it must do: install the
//! missing Debian packages as root (or through sudo), else print the exact
//! `apt-get` line to run as root; print the rustup command when Rust is missing or
//! older than the workspace's rust-version; and only then hand over to `cargo run`.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use tufkey_e2e::verify::workspace_root;

const RUSTUP: &str = "curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh";

/// A PATH holding only the commands a case gives it, each a stand-in that records
/// how it was called in `calls`.
struct Machine {
    dir: tempfile::TempDir,
}

/// What a run of the script did.
struct Run {
    success: bool,
    stderr: String,
    /// One line per stand-in call: its name and arguments.
    calls: Vec<String>,
}

impl Machine {
    /// A machine with the script's own plain tools (`dirname`, `env`), `id` saying
    /// `uid`, and nothing else.
    fn new(uid: u32) -> Self {
        let machine = Machine {
            dir: tempfile::tempdir().unwrap(),
        };
        fs::create_dir(machine.bin()).unwrap();
        fs::create_dir(machine.dir.path().join("home")).unwrap();
        for tool in ["dirname", "env"] {
            std::os::unix::fs::symlink(which(tool), machine.bin().join(tool)).unwrap();
        }
        machine.stand_in("id", &format!("echo {uid}"));
        machine
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn calls_file(&self) -> PathBuf {
        self.dir.path().join("calls")
    }

    /// `name` on PATH: records its call (with `DEBIAN_FRONTEND` for apt-get), then
    /// runs `body`.
    fn stand_in(&self, name: &str, body: &str) -> &Self {
        let path = self.bin().join(name);
        let frontend = if name == "apt-get" {
            " DEBIAN_FRONTEND=$DEBIAN_FRONTEND"
        } else {
            ""
        };
        fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{name} $*{frontend}\" >>'{}'\n{body}\n",
                self.calls_file().display()
            ),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    /// A C compiler, pkg-config that finds libpcsclite, and apt-get.
    fn with_build_packages(&self) -> &Self {
        self.stand_in("cc", "")
            .stand_in("pkg-config", "exit 0")
            .stand_in("apt-get", "")
    }

    /// cargo, and a rustc that says it is `version`.
    fn with_rust(&self, version: &str) -> &Self {
        self.stand_in("cargo", "").stand_in(
            "rustc",
            &format!("echo 'rustc {version} (0000000 2026-01-01)'"),
        )
    }

    /// `scripts/tufkeyd --no-keyring` with only this machine's PATH and HOME.
    fn run(&self) -> Run {
        let output = Command::new("/bin/bash")
            .arg(workspace_root().join("scripts/tufkeyd"))
            .arg("--no-keyring")
            .env_clear()
            .env("PATH", self.bin())
            .env("HOME", self.dir.path().join("home"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let calls = fs::read_to_string(self.calls_file()).unwrap_or_default();
        Run {
            success: output.status.success(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            calls: calls
                .lines()
                .filter(|call| !call.starts_with("id ") && !call.starts_with("rustc "))
                .filter(|call| !call.starts_with("pkg-config "))
                .map(str::to_owned)
                .collect(),
        }
    }
}

fn which(tool: &str) -> PathBuf {
    ["/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(tool))
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("{tool} is not in /usr/bin or /bin"))
}

/// The workspace's rust-version, e.g. `1.89`.
fn required_rust() -> String {
    let manifest = fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap()
        .to_string()
}

fn cargo_run_line() -> String {
    format!(
        "cargo run --release --manifest-path {}/Cargo.toml -p tufkeyd -- --no-keyring",
        workspace_root().display()
    )
}

#[test]
fn a_user_without_pkg_config_gets_the_exact_apt_get_line_and_nothing_runs() {
    let machine = Machine::new(1000);
    machine
        .stand_in("cc", "")
        .stand_in("apt-get", "")
        .with_rust("1.95.0");
    let run = machine.run();
    assert!(!run.success, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "as root, run:\n  apt-get update && apt-get install -y --no-install-recommends \
             libpcsclite-dev pkg-config\n"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("rustup"), "{}", run.stderr);
    assert_eq!(run.calls, Vec::<String>::new(), "nothing may run");
}

#[test]
fn a_user_on_a_bare_machine_gets_both_fixes() {
    let machine = Machine::new(1000);
    machine.stand_in("apt-get", "");
    let run = machine.run();
    assert!(!run.success);
    assert!(
        run.stderr.contains(
            "  apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
             libpcsclite-dev pkg-config\n"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("there is no cargo"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("  {RUSTUP}\n")),
        "{}",
        run.stderr
    );
    assert_eq!(run.calls, Vec::<String>::new());
}

#[test]
fn root_installs_what_is_missing_then_runs_cargo() {
    let machine = Machine::new(0);
    machine.stand_in("apt-get", "").with_rust("1.95.0");
    let run = machine.run();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(
        run.calls,
        [
            "apt-get update -q DEBIAN_FRONTEND=noninteractive".to_string(),
            "apt-get install -y --no-install-recommends gcc libc6-dev libpcsclite-dev \
             pkg-config DEBIAN_FRONTEND=noninteractive"
                .to_string(),
            cargo_run_line(),
        ]
    );
}

#[test]
fn a_user_with_sudo_installs_through_it() {
    let machine = Machine::new(1000);
    machine
        .stand_in("cc", "")
        .stand_in("apt-get", "")
        .stand_in("sudo", "exec \"$@\"")
        .with_rust("1.95.0");
    let run = machine.run();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(
        run.calls[..2],
        [
            "sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q".to_string(),
            "apt-get update -q DEBIAN_FRONTEND=noninteractive".to_string(),
        ]
    );
    assert_eq!(run.calls.last(), Some(&cargo_run_line()));
}

#[test]
fn without_rust_it_prints_the_rustup_command_and_stops() {
    let machine = Machine::new(0);
    machine.with_build_packages();
    let run = machine.run();
    assert!(!run.success);
    assert!(
        run.stderr.contains(&format!(
            "needs Rust {} or later, and there is no cargo",
            required_rust()
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Debian 12's cargo package is too old"));
    assert!(
        run.stderr.contains(&format!("  {RUSTUP}\n")),
        "{}",
        run.stderr
    );
    assert_eq!(run.calls, Vec::<String>::new());
}

#[test]
fn an_older_rust_than_the_workspace_needs_is_named() {
    let machine = Machine::new(0);
    machine.with_build_packages().with_rust("1.63.0");
    let run = machine.run();
    assert!(!run.success);
    assert!(
        run.stderr.contains("this rustc is 1.63.0"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&format!("  {RUSTUP}\n")));
    assert_eq!(run.calls, Vec::<String>::new(), "cargo must not run");
}

#[test]
fn with_everything_in_place_it_only_runs_cargo() {
    let machine = Machine::new(1000);
    machine
        .with_build_packages()
        .with_rust(&format!("{}.0", required_rust()));
    let run = machine.run();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.calls, [cargo_run_line()]);
}
