//! `tufkey doctor` against the real daemon: each fault is injected for real (no
//! daemon, a dead socket, a socket others may open, a daemon without pcscd, a card
//! on its factory management key, a timestamp about to expire) and doctor must name
//! it with its fix and exit 1 when it fails; a healthy setup is all ok and exits 0.
//! The last test uses the virtual cards (tests/vcard through the real pcscd).
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Mutex;
use tufkey_e2e::daemon::{cli, CliOutput, Daemon, DaemonOptions, Sandbox};
use tufkey_e2e::vcard;

/// Held while a daemon starts: the pcscd test changes this process's environment,
/// which daemons started meanwhile would inherit.
static SPAWN: Mutex<()> = Mutex::new(());

fn start(sandbox: &Sandbox, options: &DaemonOptions) -> Daemon {
    let _spawning = SPAWN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    private(sandbox);
    sandbox.start(options)
}

/// The sandbox (the socket's directory) as private as `$XDG_RUNTIME_DIR`.
fn private(sandbox: &Sandbox) {
    std::fs::set_permissions(sandbox.dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// `tufkey --json doctor ARGS` on `socket`: the exit code and the findings.
fn doctor(socket: &Path, args: &[&str]) -> (CliOutput, Vec<Value>) {
    let mut all = vec!["--json", "doctor"];
    all.extend_from_slice(args);
    let output = cli(socket, &all, None);
    let findings = output.json().as_array().unwrap().clone();
    for finding in &findings {
        let status = finding["status"].as_str().unwrap();
        assert!(["ok", "warn", "fail"].contains(&status), "{finding}");
        // Anything not ok says how to fix it.
        assert_eq!(finding["fix"].is_null(), status == "ok", "{finding}");
    }
    (output, findings)
}

/// The one finding of `check` whose detail mentions `about`.
fn finding<'a>(findings: &'a [Value], check: &str, about: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["check"] == check && f["detail"].as_str().unwrap().contains(about))
        .unwrap_or_else(|| panic!("no {check} finding about {about:?} in {findings:#?}"))
}

fn assert_fails(output: &CliOutput) {
    assert_eq!(output.code, Some(1), "{}", output.stdout);
    assert!(
        output.stderr.contains("check(s) failed"),
        "{}",
        output.stderr
    );
}

#[test]
fn a_daemon_that_is_down_is_named_with_how_to_start_it() {
    let sandbox = Sandbox::new();
    // Never started: no socket.
    let (output, findings) = doctor(&sandbox.socket(), &[]);
    assert_fails(&output);
    let down = finding(&findings, "daemon", "no socket at");
    assert_eq!(down["status"], "fail");
    assert!(down["fix"]
        .as_str()
        .unwrap()
        .contains("systemctl --user start tufkeyd"));

    // Killed: its socket file is left behind with nothing listening.
    let daemon = start(&sandbox, &DaemonOptions::default());
    daemon.kill9();
    assert!(sandbox.socket().exists());
    let (output, findings) = doctor(&sandbox.socket(), &[]);
    assert_fails(&output);
    let dead = finding(&findings, "daemon", "nothing listens on it");
    assert_eq!(dead["status"], "fail");
    assert!(dead["fix"].as_str().unwrap().contains("start tufkeyd"));

    // The text form: one line, the fix on it.
    let text = cli(&sandbox.socket(), &["doctor"], None);
    assert_eq!(text.code, Some(1));
    assert_eq!(text.stdout.lines().count(), 1, "{}", text.stdout);
    assert!(text.stdout.starts_with("fail  daemon: "), "{}", text.stdout);
    assert!(
        text.stdout.contains(" -- fix: start tufkeyd"),
        "{}",
        text.stdout
    );
}

#[test]
fn a_socket_others_may_open_fails_with_chmod_600() {
    let sandbox = Sandbox::new();
    let daemon = start(&sandbox, &DaemonOptions::default());
    let socket = sandbox.socket();
    let (output, findings) = doctor(&socket, &[]);
    assert_eq!(output.code, Some(0), "{findings:#?}");
    assert_eq!(finding(&findings, "socket", "mode 0600")["status"], "ok");

    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (output, findings) = doctor(&socket, &[]);
    assert_fails(&output);
    let open = finding(&findings, "socket", "mode 0666");
    assert_eq!(open["status"], "fail");
    let fix = open["fix"].as_str().unwrap();
    assert!(
        fix.contains(&format!("chmod 600 {}", socket.display())),
        "{fix}"
    );
    assert!(fix.contains("restart tufkeyd"), "{fix}");

    // The socket's directory too.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).unwrap();
    let dir = sandbox.dir.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (output, findings) = doctor(&socket, &[]);
    assert_eq!(output.code, Some(0), "readable is a warning: {findings:#?}");
    let readable = finding(&findings, "socket directory", "mode 0755");
    assert_eq!(readable["status"], "warn");
    assert_eq!(readable["fix"], format!("`chmod 700 {}`", dir.display()));
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (output, findings) = doctor(&socket, &[]);
    assert_fails(&output);
    let writable = finding(&findings, "socket directory", "others may replace");
    assert_eq!(writable["status"], "fail");
    assert_eq!(writable["fix"], format!("`chmod 700 {}`", dir.display()));
    drop(daemon);
}

#[test]
fn a_daemon_without_pcscd_is_a_warning_with_the_fix() {
    // Switched off on purpose.
    let sandbox = Sandbox::new();
    let daemon = start(&sandbox, &DaemonOptions::default());
    let (output, findings) = doctor(&daemon.socket, &[]);
    assert_eq!(output.code, Some(0), "warnings alone pass: {findings:#?}");
    let off = finding(&findings, "pcscd", "--no-yubikey");
    assert_eq!(off["status"], "warn");
    assert!(off["fix"]
        .as_str()
        .unwrap()
        .contains("restart tufkeyd without --no-yubikey"));

    // Wanted, but pcscd cannot be reached: pcsc-lite finds pcscd through this
    // variable, pointed nowhere for this one daemon.
    let sandbox = Sandbox::new();
    let daemon = {
        // The variable is process-wide: the card test's own PC/SC calls must not see
        // it. (Cards before SPAWN, as in that test.)
        let _cards = vcard::cards();
        let _spawning = SPAWN
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        private(&sandbox);
        std::env::set_var("PCSCLITE_CSOCK_NAME", "/nonexistent/pcscd.comm");
        let daemon = sandbox.start(&DaemonOptions::with_yubikeys());
        std::env::remove_var("PCSCLITE_CSOCK_NAME");
        daemon
    };
    let (output, findings) = doctor(&daemon.socket, &[]);
    assert_eq!(output.code, Some(0), "{findings:#?}");
    let unreachable = finding(&findings, "pcscd", "pcscd is not reachable");
    assert_eq!(unreachable["status"], "warn");
    let fix = unreachable["fix"].as_str().unwrap();
    assert!(fix.contains("systemctl enable --now pcscd.socket"), "{fix}");
    assert!(fix.contains("restart tufkeyd"), "{fix}");
}

/// `tufkey repo init DIR` with a 1-day timestamp, then a timestamp re-signed (by
/// tufkeyd, with the timestamp key) that expires in two hours: a third of a day is
/// eight.
#[test]
fn an_expiring_timestamp_is_named_with_the_refresh_command() {
    let sandbox = Sandbox::new();
    let daemon = start(&sandbox, &DaemonOptions::default());
    let repo = sandbox.path("repo");
    let repo_text = repo.to_str().unwrap();
    daemon.cli_ok(&[
        "repo",
        "init",
        repo_text,
        "--gun",
        "example.com/doctor",
        "--expires",
        "timestamp=1",
    ]);
    let (output, findings) = doctor(&daemon.socket, &["--repo", repo_text]);
    assert_eq!(output.code, Some(0), "{findings:#?}");
    assert_eq!(
        finding(
            &findings,
            "repository",
            "timestamp (timestamp.json) expires"
        )["status"],
        "ok"
    );

    let state: Value =
        serde_json::from_slice(&std::fs::read(repo.join("tufkey-repo.json")).unwrap()).unwrap();
    let keyid = state["roles"]["timestamp"]["keyids"][0].as_str().unwrap();
    let timestamp = repo.join("metadata/timestamp.json");
    let mut document: Value = serde_json::from_slice(&std::fs::read(&timestamp).unwrap()).unwrap();
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2 * 3600;
    let soon = jiff::Timestamp::from_second(i64::try_from(soon).unwrap())
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    document["signed"]["expires"] = Value::String(soon.clone());
    std::fs::write(&timestamp, serde_json::to_vec(&document).unwrap()).unwrap();
    daemon.cli_ok(&["sign", "--key", keyid, timestamp.to_str().unwrap()]);
    let signed: Value = serde_json::from_slice(&std::fs::read(&timestamp).unwrap()).unwrap();
    assert_eq!(signed["signed"]["expires"], soon.as_str());
    assert_eq!(signed["signatures"].as_array().unwrap().len(), 1);

    let (output, findings) = doctor(&daemon.socket, &["--repo", repo_text]);
    assert_eq!(
        output.code,
        Some(0),
        "expiring soon is a warning: {findings:#?}"
    );
    let expiring = finding(
        &findings,
        "repository",
        "timestamp (timestamp.json) expires within 2 hours",
    );
    assert_eq!(expiring["status"], "warn");
    assert_eq!(
        expiring["fix"],
        format!("`tufkey repo refresh {repo_text} --role timestamp`")
    );
    assert_eq!(finding(&findings, "repository", "snapshot")["status"], "ok");

    // The fix works: refreshed, the timestamp is ok again.
    daemon.cli_ok(&["repo", "refresh", repo_text, "--role", "timestamp"]);
    let (output, findings) = doctor(&daemon.socket, &["--repo", repo_text]);
    assert_eq!(output.code, Some(0), "{findings:#?}");
    assert_eq!(
        finding(
            &findings,
            "repository",
            "timestamp (timestamp.json) expires"
        )["status"],
        "ok"
    );
}

/// With the virtual cards: a healthy setup (every card initialised, the keystore
/// unlocked, a fresh repository) is all ok and exits 0; a card put back to its
/// factory management key fails with `tufkey device init --serial N`.
#[test]
fn a_healthy_setup_is_all_ok_and_a_factory_management_key_fails() {
    let cards = vcard::cards();
    for &serial in &cards.serials {
        vcard::reset(serial);
    }
    let sandbox = Sandbox::new();
    let daemon = start(&sandbox, &DaemonOptions::with_yubikeys());
    for &serial in &cards.serials {
        let init = daemon.cli_with_stdin(
            &[
                "device",
                "init",
                "--serial",
                &serial.to_string(),
                "--pin-stdin",
            ],
            format!("{}\n", vcard::PIN).as_bytes(),
        );
        assert!(init.success, "{}", init.stderr);
        assert!(!vcard::factory_management_key_works(serial));
    }
    let repo = sandbox.path("repo");
    let repo_text = repo.to_str().unwrap();
    daemon.cli_ok(&["repo", "init", repo_text, "--gun", "example.com/healthy"]);

    let (output, findings) = doctor(&daemon.socket, &["--repo", repo_text]);
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    for finding in &findings {
        assert_eq!(finding["status"], "ok", "{findings:#?}");
    }
    let checks: Vec<&str> = findings
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    for check in [
        "daemon",
        "socket",
        "socket directory",
        "keyring",
        "store",
        "store health",
        "pcscd",
        "policy",
        "audit log",
        "repository",
    ] {
        assert!(checks.contains(&check), "no {check} check: {checks:?}");
    }
    assert_eq!(
        checks.iter().filter(|check| **check == "card").count(),
        cards.serials.len()
    );
    finding(
        &findings,
        "pcscd",
        &format!("{} YubiKey(s) present", cards.serials.len()),
    );

    let factory = cards.serial(1);
    vcard::reset(factory);
    let (output, findings) = doctor(&daemon.socket, &[]);
    assert_fails(&output);
    let card = finding(&findings, "card", &format!("YubiKey {factory} "));
    assert_eq!(card["status"], "fail");
    assert!(card["detail"]
        .as_str()
        .unwrap()
        .contains("factory management key"));
    assert_eq!(
        card["fix"],
        format!("`tufkey device init --serial {factory}`")
    );
    // Only that card.
    let failing: Vec<&Value> = findings.iter().filter(|f| f["status"] == "fail").collect();
    assert_eq!(failing.len(), 1, "{failing:#?}");

    drop(daemon);
    for &serial in &cards.serials {
        vcard::reset(serial);
    }
}
