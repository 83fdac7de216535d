//! Logs fit where they go, against the real binaries: tufkeyd's log has no colour
//! codes in a file, has them on a terminal (unless `NO_COLOR`), and under systemd
//! (stderr being the stream `JOURNAL_STREAM` names) carries each line's level as a
//! `<N>` syslog priority and no timestamp, journald adding its own; tufkey's usage
//! errors (clap's) follow the same terminal rule. Terminals come from `script`.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tufkey_e2e::daemon::{bin_dir, DaemonOptions, Sandbox};

const ESC: char = '\u{1b}';

/// A flag value the daemon refuses after its logging starts: it logs one error and
/// exits.
const REFUSED: [&str; 2] = ["--max-connections", "0"];

/// Whether `line` holds an RFC 3339 date and time (`2026-11-28T08:27:28`), as the
/// default format starts each line.
fn has_timestamp(line: &str) -> bool {
    let bytes = line.as_bytes();
    bytes.windows(11).any(|window| {
        window.iter().enumerate().all(|(i, byte)| match i {
            4 | 7 => *byte == b'-',
            10 => *byte == b'T',
            _ => byte.is_ascii_digit(),
        })
    })
}

/// `DEVICE:INODE` of `path`, as systemd writes `JOURNAL_STREAM`.
fn journal_stream_of(path: &Path) -> String {
    let metadata = fs::metadata(path).unwrap();
    format!("{}:{}", metadata.dev(), metadata.ino())
}

/// Runs tufkeyd on a fresh store with stderr appended to `log`, `journal_stream`
/// as `JOURNAL_STREAM`, no passphrase (so it warns that the store is locked); stops
/// it with SIGTERM once it listens and returns the log.
fn serve_once(sandbox: &Sandbox, log: &Path, journal_stream: &str) -> String {
    let mut child = Command::new(bin_dir().join("tufkeyd"))
        .arg("--socket")
        .arg(sandbox.socket())
        .arg("--store")
        .arg(sandbox.store())
        .args(["--no-keyring", "--no-yubikey"])
        .env_remove("TUFKEY_PASSPHRASE")
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .env("JOURNAL_STREAM", journal_stream)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::OpenOptions::new().append(true).open(log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while UnixStream::connect(sandbox.socket()).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "tufkeyd exited early");
        assert!(Instant::now() < deadline, "tufkeyd did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    fs::read_to_string(log).unwrap()
}

/// `argv` run by `script` on a pseudo-terminal, with `NO_COLOR` as given; returns
/// what the terminal showed.
fn on_a_terminal(argv: &[&str], no_color: Option<&str>) -> String {
    let quoted: Vec<String> = argv
        .iter()
        .map(|arg| format!("'{}'", arg.replace('\'', r"'\''")))
        .collect();
    let mut command = Command::new("script");
    command
        .args(["-q", "-c", &quoted.join(" "), "/dev/null"])
        .env_remove("NO_COLOR")
        .env_remove("JOURNAL_STREAM")
        .env("TERM", "xterm")
        .stdin(Stdio::null());
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let output = command.output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn tufkeyd() -> String {
    bin_dir().join("tufkeyd").display().to_string()
}

fn tufkey() -> String {
    bin_dir().join("tufkey").display().to_string()
}

#[test]
fn a_log_in_a_file_has_timestamps_and_no_colour_codes() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::default());
    daemon.cli_ok(&["status"]);
    let log = daemon.log.clone();
    daemon.stop();
    let text = fs::read_to_string(log).unwrap();
    assert!(text.contains("tufkeyd listening"), "{text}");
    assert!(!text.contains(ESC), "colour codes in a file: {text:?}");
    for line in text.lines() {
        assert!(has_timestamp(line), "no timestamp: {line:?}");
        assert!(
            line.contains(" INFO ") || line.contains(" WARN "),
            "{line:?}"
        );
    }
}

#[test]
fn under_systemd_each_line_starts_with_its_syslog_priority_and_has_no_timestamp() {
    let sandbox = Sandbox::new();
    let log = sandbox.path("journal");
    fs::write(&log, "").unwrap();
    let text = serve_once(&sandbox, &log, &journal_stream_of(&log));
    assert!(!text.contains(ESC), "{text:?}");
    assert!(
        text.contains("\n<6>tufkeyd::server: tufkeyd listening"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|line| line.starts_with("<4>")
                && line.contains("keystore locked: run `tufkey unlock`")),
        "the locked store is a warning: {text}"
    );
    for line in text.lines() {
        let priority = line.get(..3).unwrap_or_default();
        assert!(["<4>", "<6>"].contains(&priority), "{line:?}");
        assert!(!has_timestamp(line), "journald adds the time: {line:?}");
        assert!(
            !line.contains(" INFO ") && !line.contains(" WARN "),
            "{line:?}"
        );
    }

    // An error is priority 3.
    let output = Command::new(bin_dir().join("tufkeyd"))
        .args(REFUSED)
        .env("JOURNAL_STREAM", journal_stream_of(&log))
        .stderr(fs::OpenOptions::new().append(true).open(&log).unwrap())
        .status()
        .unwrap();
    assert!(!output.success());
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.lines()
            .any(|line| line.starts_with("<3>tufkeyd: tufkeyd stopped")
                && line.contains("--max-connections 0 would refuse every caller")),
        "{text}"
    );
}

#[test]
fn a_journal_stream_that_is_not_stderr_changes_nothing() {
    // What a child of a systemd service sees when its stderr goes elsewhere: the
    // variable, inherited, names another file.
    let sandbox = Sandbox::new();
    let log = sandbox.path("log");
    let elsewhere = sandbox.path("elsewhere");
    fs::write(&log, "").unwrap();
    fs::write(&elsewhere, "").unwrap();
    let text = serve_once(&sandbox, &log, &journal_stream_of(&elsewhere));
    assert!(text.contains("tufkeyd listening"), "{text}");
    for line in text.lines() {
        assert!(!line.starts_with('<'), "{line:?}");
        assert!(has_timestamp(line), "{line:?}");
    }
    assert!(!text.contains(ESC));
}

#[test]
fn the_daemon_colours_a_terminal_unless_no_color_is_set() {
    let mut argv = vec![tufkeyd()];
    argv.extend(REFUSED.map(String::from));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let coloured = on_a_terminal(&argv, None);
    assert!(coloured.contains("tufkeyd stopped"), "{coloured:?}");
    assert!(
        coloured.contains(ESC),
        "no colour on a terminal: {coloured:?}"
    );
    let plain = on_a_terminal(&argv, Some("1"));
    assert!(plain.contains("tufkeyd stopped"), "{plain:?}");
    assert!(!plain.contains(ESC), "colour despite NO_COLOR: {plain:?}");
    // An empty NO_COLOR does not count (https://no-color.org).
    assert!(on_a_terminal(&argv, Some("")).contains(ESC));
}

#[test]
fn the_cli_colours_only_a_terminal() {
    let argv = [tufkey()];
    let argv = [argv[0].as_str(), "no-such-command"];
    let output = Command::new(argv[0]).arg(argv[1]).output().unwrap();
    let piped = String::from_utf8_lossy(&output.stderr);
    assert!(piped.contains("unrecognized subcommand"), "{piped}");
    assert!(!piped.contains(ESC), "colour in a pipe: {piped:?}");
    let coloured = on_a_terminal(&argv, None);
    assert!(coloured.contains("unrecognized subcommand"), "{coloured:?}");
    assert!(coloured.contains(ESC), "{coloured:?}");
    assert!(!on_a_terminal(&argv, Some("1")).contains(ESC));
}
