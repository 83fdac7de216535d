//! tufkeyd under systemd, as far as it can be shown without systemd as PID 1: socket
//! activation through `systemd-socket-activate` (the first connection starts the
//! daemon, which identifies its callers on the passed socket as on its own), the
//! readiness protocol (`NOTIFY_SOCKET`), the units in `udev/` as
//! `scripts/install-units.sh` installs them (`systemd-analyze verify` and `security`),
//! and the udev rule, matched by `udevadm test` against a YubiKey's sysfs entries in a
//! private mount namespace (run as root, as CI does).
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tufkey_e2e::daemon::{bin_dir, cli, TEST_PASSPHRASE};
use tufkey_e2e::verify::workspace_root;

/// A child process (and what it logs), killed on drop.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn spawn(command: &mut Command, log: PathBuf) -> Running {
        let file = fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|error| panic!("spawn {command:?}: {error}"));
        Running { child, log }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        self.wait_exit(Duration::from_secs(20))
    }

    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("still running after {limit:?}; log:\n{}", self.log_text());
    }

    /// Waits until the log says `needle`.
    fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.log_text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn own_uid() -> u32 {
    fs::metadata("/proc/self").unwrap().uid()
}

fn wait_for_path(path: &Path, running: &Running) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared; log:\n{}",
            path.display(),
            running.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `tufkeyd --socket SOCKET --store STORE` arguments, no keyring, no YubiKeys.
fn daemon_args(socket: &Path, store: &Path) -> Vec<String> {
    vec![
        "--socket".into(),
        socket.display().to_string(),
        "--store".into(),
        store.display().to_string(),
        "--no-keyring".into(),
        "--no-yubikey".into(),
    ]
}

/// `systemd-socket-activate` listening on `socket` (with `extra` flags), which starts
/// tufkeyd on the first connection with `environment` (it passes nothing else),
/// under the units' `UMask=0177`: directories tufkeyd creates must still work.
fn socket_activate(
    dir: &Path,
    socket: &Path,
    extra: &[&str],
    environment: &[String],
    name: &str,
) -> Running {
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            "umask 0177 && exec \"$0\" \"$@\"",
            "systemd-socket-activate",
        ])
        .arg("-l")
        .arg(socket)
        .arg("--fdname=tufkeyd.sock")
        .args(extra);
    for variable in environment {
        command.arg("-E").arg(variable);
    }
    command
        .arg(bin_dir().join("tufkeyd"))
        .args(daemon_args(socket, &dir.join("store")));
    Running::spawn(&mut command, dir.join(name))
}

/// Receives one notification from the daemon within 30 s.
fn notification(socket: &UnixDatagram) -> String {
    let mut buffer = [0u8; 512];
    let length = socket
        .recv(&mut buffer)
        .expect("a notification from tufkeyd within 30 s");
    String::from_utf8_lossy(&buffer[..length])
        .trim_end()
        .to_string()
}

fn notify_socket(dir: &Path) -> (UnixDatagram, PathBuf) {
    let path = dir.join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    (socket, path)
}

#[test]
fn the_first_connection_starts_the_daemon_on_the_socket_systemd_passed() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tufkeyd.sock");
    let store = dir.path().join("store");
    let (notify, notify_path) = notify_socket(dir.path());
    let mut activator = socket_activate(
        dir.path(),
        &socket,
        &[],
        &[
            format!("TUFKEY_PASSPHRASE={TEST_PASSPHRASE}"),
            format!("NOTIFY_SOCKET={}", notify_path.display()),
            "RUST_LOG=info".into(),
        ],
        "activate.log",
    );
    wait_for_path(&socket, &activator);
    assert!(
        !store.exists(),
        "tufkeyd ran before anyone connected:\n{}",
        activator.log_text()
    );

    // The first connection starts tufkeyd, which serves it on the passed socket.
    let status = cli(&socket, &["--json", "status"], None);
    assert!(
        status.success,
        "{}\n{}",
        status.stderr,
        activator.log_text()
    );
    assert_eq!(status.json()["key_count"], 0, "{}", status.stdout);
    assert_eq!(notification(&notify), "READY=1");
    let log = activator.wait_for_log("tufkeyd listening");
    assert!(log.contains("activated=true"), "{log}");
    assert!(store.is_dir(), "the store was opened");

    // Callers are identified on the passed socket exactly as on tufkeyd's own: the
    // audit log has this process's uid, and another uid is refused by name.
    let generated = cli(
        &socket,
        &[
            "key",
            "generate",
            "--gun",
            "example.com/app",
            "--role",
            "targets",
        ],
        None,
    );
    assert!(generated.success, "{}", generated.stderr);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o666)).unwrap();
    let stranger = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(bin_dir().join("tufkey"))
        .arg("--socket")
        .arg(&socket)
        .args(["--server-uid", &own_uid().to_string(), "key", "list"])
        .output()
        .unwrap();
    let refusal = String::from_utf8_lossy(&stranger.stderr);
    assert!(!stranger.status.success(), "uid 65534 was served");
    assert!(refusal.contains("uid 65534 is not allowed"), "{refusal}");
    let audit = cli(&socket, &["--json", "audit", "tail", "-n", "0"], None);
    assert!(audit.success, "{}", audit.stderr);
    let callers: Vec<(u64, String)> = audit
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .map(|record| {
            (
                record["caller"]["uid"].as_u64().unwrap(),
                record["rpc"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        callers,
        [
            (
                u64::from(own_uid()),
                "tufkey.v1.Keys/GenerateKey".to_string()
            ),
            (65534, "tufkey.v1.Keys/ListKeys".to_string()),
        ]
    );

    // At shutdown tufkeyd says so, and leaves the socket to systemd, which owns it.
    assert!(activator.terminate().success(), "{}", activator.log_text());
    assert_eq!(notification(&notify), "STOPPING=1");
    assert!(
        fs::symlink_metadata(&socket).is_ok(),
        "tufkeyd removed the socket systemd passed"
    );
}

#[test]
fn a_passed_socket_of_the_wrong_kind_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let environment = [format!("TUFKEY_PASSPHRASE={TEST_PASSPHRASE}")];

    // A datagram socket (ListenDatagram=): tufkeyd refuses it and stops.
    let datagram = dir.path().join("datagram.sock");
    let mut activator = socket_activate(
        dir.path(),
        &datagram,
        &["--datagram"],
        &environment,
        "datagram.log",
    );
    wait_for_path(&datagram, &activator);
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"wake up", &datagram)
        .unwrap();
    let status = activator.wait_exit(Duration::from_secs(20));
    let log = activator.log_text();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(
            "tufkeyd: the socket systemd passed (LISTEN_FDS, fd 3) is not a Unix stream socket"
        ),
        "{log}"
    );
    assert!(log.contains("ListenStream="), "the fix is named: {log}");

    // A connection instead of the listener (Accept=yes): refused too.
    let accepting = dir.path().join("accept.sock");
    let activator = socket_activate(
        dir.path(),
        &accepting,
        &["--accept"],
        &environment,
        "accept.log",
    );
    wait_for_path(&accepting, &activator);
    let _connection = UnixStream::connect(&accepting).unwrap();
    let log = activator.wait_for_log("Child ");
    assert!(
        log.contains("is a connection, not a listening socket: set Accept=no"),
        "{log}"
    );
    assert!(log.contains("died with code 1"), "{log}");
}

#[test]
fn readiness_is_reported_once_listening_and_stopping_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run").join("tufkeyd.sock");
    let (notify, notify_path) = notify_socket(dir.path());
    let mut command = Command::new(bin_dir().join("tufkeyd"));
    command
        .args(daemon_args(&socket, &dir.path().join("store")))
        .env("TUFKEY_PASSPHRASE", TEST_PASSPHRASE)
        .env("NOTIFY_SOCKET", &notify_path);
    let mut daemon = Running::spawn(&mut command, dir.path().join("tufkeyd.log"));

    assert_eq!(notification(&notify), "READY=1", "{}", daemon.log_text());
    // Ready means listening: a connection made right now is accepted and served.
    assert!(UnixStream::connect(&socket).is_ok());
    let status = cli(&socket, &["--json", "status"], None);
    assert!(status.success, "{}", status.stderr);

    assert!(daemon.terminate().success(), "{}", daemon.log_text());
    assert_eq!(notification(&notify), "STOPPING=1");
    assert!(!socket.exists(), "a socket tufkeyd bound itself is removed");
}

/// The overall exposure `systemd-analyze security --offline=yes` gives `unit`: the
/// number and its label ("OK", "MEDIUM", ...), with the whole report.
fn exposure(unit: &Path, user: bool, runtime: &Path) -> (f64, String, String) {
    let mut command = Command::new("systemd-analyze");
    command.args(["security", "--offline=yes"]);
    if user {
        command.arg("--user").env("XDG_RUNTIME_DIR", runtime);
    }
    let output = command.arg(unit).output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{}: {}",
        unit.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let overall = report
        .lines()
        .find_map(|line| {
            line.split("Overall exposure level for tufkeyd.service: ")
                .nth(1)
        })
        .unwrap_or_else(|| panic!("no overall exposure level in: {report}"));
    let mut words = overall.split_whitespace();
    let score = words.next().unwrap().parse().unwrap();
    let label = words.next().unwrap().to_string();
    (score, label, report)
}

fn verify(units: &[PathBuf], user: bool, runtime: &Path) {
    let mut command = Command::new("systemd-analyze");
    command.args(["verify", "--man=no"]);
    if user {
        command.arg("--user").env("XDG_RUNTIME_DIR", runtime);
    }
    let output = command.args(units).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{units:?}: {stderr}");
    // Unknown or misspelt settings are only warnings: none may name our units.
    assert!(
        !stderr.contains("tufkeyd."),
        "systemd-analyze verify warns: {stderr}"
    );
}

fn install_units(mode: &str, root: &Path) -> Output {
    let output = Command::new("bash")
        .arg(workspace_root().join("scripts/install-units.sh"))
        .arg(mode)
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--root")
        .arg(root)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "install-units.sh {mode}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn installed_units_verify_and_score_their_exposure() {
    let root = tempfile::tempdir().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("etc")).unwrap();
    let daemon = bin_dir().join("tufkeyd");

    // System mode: units, users, the polkit and udev rules, the secret.
    let said = String::from_utf8(install_units("--system", root.path()).stdout).unwrap();
    let system = root.path().join("etc/systemd/system");
    for installed in [
        "etc/systemd/system/tufkeyd.service",
        "etc/systemd/system/tufkeyd.socket",
        "usr/lib/sysusers.d/tufkey.conf",
        "usr/lib/tmpfiles.d/tufkey.conf",
        "etc/polkit-1/rules.d/50-tufkey-pcscd.rules",
        "etc/udev/rules.d/70-tufkey-yubikey.rules",
    ] {
        assert!(
            said.contains(&format!(
                "installed {}",
                root.path().join(installed).display()
            )),
            "{installed} not reported: {said}"
        );
    }
    let secret = fs::metadata(root.path().join("etc/tufkey/secret")).unwrap();
    assert_eq!(secret.mode() & 0o777, 0o600);
    let service = fs::read_to_string(system.join("tufkeyd.service")).unwrap();
    assert!(
        service.contains(&format!("ExecStart={} --store", daemon.display())),
        "{service}"
    );
    let passwd = fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    assert!(
        passwd.lines().any(|line| line.starts_with("tufkey:")),
        "{passwd}"
    );
    verify(
        &[
            system.join("tufkeyd.socket"),
            system.join("tufkeyd.service"),
        ],
        false,
        runtime.path(),
    );
    let (score, label, report) = exposure(&system.join("tufkeyd.service"), false, runtime.path());
    assert!(
        score <= 2.0 && label == "OK",
        "system unit {score} {label}:\n{report}"
    );

    // User mode: the socket and service pair.
    let said = String::from_utf8(install_units("--user", root.path()).stdout).unwrap();
    let user = root.path().join(".config/systemd/user");
    assert!(
        said.contains("systemctl --user enable --now tufkeyd.socket"),
        "{said}"
    );
    let socket_unit = fs::read_to_string(user.join("tufkeyd.socket")).unwrap();
    for line in [
        "ListenStream=%t/tufkey/tufkeyd.sock",
        "SocketMode=0600",
        "DirectoryMode=0700",
    ] {
        assert!(
            socket_unit.lines().any(|l| l == line),
            "{line}: {socket_unit}"
        );
    }
    verify(
        &[user.join("tufkeyd.socket"), user.join("tufkeyd.service")],
        true,
        runtime.path(),
    );
    // A user unit can have no namespaces and no capability bounding set (both fail
    // to start under `systemd --user`), and the offline scorer assumes root: what
    // it can have must all be set, and the score stays "MEDIUM" (README).
    let (score, label, report) = exposure(&user.join("tufkeyd.service"), true, runtime.path());
    for setting in [
        "✓ RestrictAddressFamilies=~AF_(INET|INET6)",
        "✓ IPAddressDeny=",
        "✓ NoNewPrivileges=",
        "✓ SystemCallFilter=~@privileged",
        "✓ LockPersonality=",
        "✓ MemoryDenyWriteExecute=",
        "✓ RestrictRealtime=",
        "✓ RestrictSUIDSGID=",
        "✓ RestrictNamespaces=~user",
        "✓ SystemCallArchitectures=",
        "✓ UMask=",
    ] {
        assert!(
            report.contains(setting),
            "user unit lacks {setting}:\n{report}"
        );
    }
    assert!(
        score <= 6.0 && label == "MEDIUM",
        "user unit {score} {label}:\n{report}"
    );
    for namespaced in [
        "ProtectSystem=",
        "PrivateTmp=",
        "PrivateDevices=",
        "CapabilityBoundingSet=",
    ] {
        assert!(
            !fs::read_to_string(user.join("tufkeyd.service"))
                .unwrap()
                .contains(&format!("\n{namespaced}")),
            "{namespaced} breaks a user unit"
        );
    }
}

/// Runs `udevadm test` on fake sysfs entries in a private mount namespace (tmpfs on
/// /sys, /run and the rules directories; the host is untouched) with only the udev
/// rule of `udev/` loaded: a YubiKey (its USB device, its CCID interface, its HID
/// interface) and another vendor's smart card reader. Returns the properties udev
/// gives each device, by name.
fn udev_properties() -> Vec<(String, String)> {
    let rule = workspace_root().join("udev/70-tufkey-yubikey.rules");
    let script = r#"
set -eu
mount -t tmpfs tufkey-sysfs /sys
mount -t tmpfs tufkey-run /run
mkdir -p /etc/udev/rules.d /usr/lib/udev/rules.d
mount -t tmpfs tufkey-rules /etc/udev/rules.d
mount -t tmpfs tufkey-rules /usr/lib/udev/rules.d
cp "$RULE" /etc/udev/rules.d/
mkdir -p /sys/bus/usb
usb=/sys/devices/pci0000:00/0000:00:14.0/usb1
device() { # NAME VENDOR
    mkdir -p "$usb/$1"
    ln -s ../../../../../bus/usb "$usb/$1/subsystem"
    printf 'DEVTYPE=usb_device\nDRIVER=usb\nPRODUCT=%s/407/543\n' "$2" >"$usb/$1/uevent"
    echo "$2" >"$usb/$1/idVendor"
}
interface() { # DEVICE NAME CLASS
    mkdir -p "$usb/$1/$2"
    ln -s ../../../../../../bus/usb "$usb/$1/$2/subsystem"
    printf 'DEVTYPE=usb_interface\nINTERFACE=%d/0/0\n' "$((16#$3))" >"$usb/$1/$2/uevent"
    echo "$3" >"$usb/$1/$2/bInterfaceClass"
}
device 1-1 1050
interface 1-1 1-1:1.0 03
interface 1-1 1-1:1.2 0b
device 1-2 076b
interface 1-2 1-2:1.0 0b
for path in 1-1 1-1/1-1:1.0 1-1/1-1:1.2 1-2/1-2:1.0; do
    echo "=== $path"
    SYSTEMD_DEVICE_VERIFY_SYSFS=0 udevadm test --action=add "$usb/$path" 2>/dev/null
done
"#;
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "bash", "-c", script])
        .env("RULE", &rule)
        .output()
        .expect("unshare (util-linux) and udevadm (udev; scripts/install-deps.sh)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .split("=== ")
        .skip(1)
        .map(|section| {
            let (name, properties) = section.split_once('\n').unwrap();
            (name.to_string(), properties.to_string())
        })
        .collect()
}

#[test]
fn the_udev_rule_starts_the_user_service_for_a_yubikeys_ccid_interface() {
    let name = "70-tufkey-yubikey.rules";
    assert!(
        name < "73-seat-late.rules",
        "uaccess is applied by 73-seat-late.rules: the rule must sort before it"
    );
    let devices = udev_properties();
    let properties = |name: &str| -> Vec<String> {
        let (_, text) = devices
            .iter()
            .find(|(device, _)| device == name)
            .unwrap_or_else(|| panic!("no udevadm output for {name}: {devices:?}"));
        assert!(
            text.contains("ACTION=add"),
            "udevadm test did not run: {text}"
        );
        text.lines().map(str::to_string).collect()
    };
    let has = |name: &str, line: &str| properties(name).iter().any(|l| l == line);

    // The YubiKey's CCID interface: pcscd's socket, and the user service.
    let ccid = "1-1/1-1:1.2";
    assert!(
        has(ccid, "SYSTEMD_USER_WANTS=tufkeyd.service"),
        "{:?}",
        properties(ccid)
    );
    assert!(
        has(ccid, "SYSTEMD_WANTS=pcscd.socket"),
        "{:?}",
        properties(ccid)
    );
    assert!(has(ccid, "TAGS=:systemd:"), "{:?}", properties(ccid));
    // The YubiKey itself: the user at the seat may open it.
    assert!(has("1-1", "TAGS=:uaccess:"), "{:?}", properties("1-1"));
    // Its HID interface and another vendor's card reader start nothing.
    for other in ["1-1/1-1:1.0", "1-2/1-2:1.0"] {
        let lines = properties(other);
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("SYSTEMD_") || l.starts_with("TAGS=")),
            "{other}: {lines:?}"
        );
    }
}
