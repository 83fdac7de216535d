//! A `tufkey` command run in the background, for tests that act while it runs:
//! insert a card once it asks for one, check it is still waiting, then collect
//! how it ended.

use crate::daemon::{bin_dir, Daemon};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A `tufkey` run in the background: its stderr arrives line by line while it runs.
pub struct Running {
    child: Child,
    stderr_lines: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
    stdout: std::thread::JoinHandle<String>,
    args: Vec<String>,
}

/// What a background run ended with.
pub struct Finished {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Running {
    /// Starts `tufkey --socket SOCKET ARGS...` with `stdin` written to it (then closed).
    pub fn start(daemon: &Daemon, args: &[&str], stdin: &str) -> Running {
        let mut child = Command::new(bin_dir().join("tufkey"))
            .arg("--socket")
            .arg(&daemon.socket)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tufkey (run `cargo build --bins` first)");
        child
            .stdin
            .take()
            .expect("tufkey stdin is piped")
            .write_all(stdin.as_bytes())
            .expect("write tufkey stdin");
        let (send, stderr_lines) = mpsc::channel();
        let stderr = child.stderr.take().expect("tufkey stderr is piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stdout = child.stdout.take().expect("tufkey stdout is piped");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        Running {
            child,
            stderr_lines,
            stderr_seen: Vec::new(),
            stdout,
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        }
    }

    /// Waits until a stderr line contains `needle`; panics (with what was printed)
    /// if the run ends or `limit` passes first.
    pub fn wait_for_stderr(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) => {
                    self.stderr_seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "tufkey {:?} printed no {needle:?} within {limit:?} (exit: {:?}); stderr so far:\n{}",
                    self.args,
                    self.child.try_wait().expect("poll tufkey"),
                    self.stderr_seen.join("\n")
                ),
            }
        }
    }

    /// Whether the run is still going (e.g. still waiting for a card).
    pub fn still_running(&mut self) -> bool {
        self.child.try_wait().expect("poll tufkey").is_none()
    }

    /// Waits for the run to end (killed, and a panic, after `limit`).
    pub fn finish(mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll tufkey") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "tufkey {:?} did not finish within {limit:?}; stderr:\n{}",
                    self.args,
                    self.stderr_seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.stderr_seen.extend(self.stderr_lines.iter());
        Finished {
            success: status.success(),
            stdout: self.stdout.join().expect("stdout reader thread"),
            stderr: self.stderr_seen.join("\n"),
        }
    }
}
