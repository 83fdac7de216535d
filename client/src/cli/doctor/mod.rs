//! `tufkey doctor`: checks a setup end to end and explains what is wrong, each
//! finding on one line with the exact command that fixes it. A broken setup
//! otherwise shows up as one failing command at a time; this names every problem
//! at once, including the ones no command trips over yet (a socket others can
//! open, a card on its factory management key, a timestamp about to expire).
//!
//! Checks that need the daemon go through its API; the file checks (socket,
//! socket directory, store) run locally where the files are visible.

mod daemon;
mod local;
mod repo;

use super::Target;
use clap::Args;
use serde_json::{json, Value};
use std::path::PathBuf;
use tufkey::{Error, Result};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also check a `tufkey repo` directory: metadata that expires within a third of
    /// its lifetime, or has expired.
    #[arg(long, value_name = "DIR")]
    repo: Vec<PathBuf>,
}

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One finding: what was checked, how it came out, what was found and, unless it
/// is ok, the command that fixes it.
#[derive(Clone, Debug)]
pub struct Check {
    pub check: &'static str,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Check {
            check,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            check,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            check,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn json(&self) -> Value {
        json!({
            "check": self.check,
            "status": self.status.name(),
            "detail": self.detail,
            "fix": self.fix,
        })
    }

    fn line(&self) -> String {
        let mut line = format!("{:<4}  {}: {}", self.status.name(), self.check, self.detail);
        if let Some(fix) = &self.fix {
            line.push_str(" -- fix: ");
            line.push_str(fix);
        }
        line
    }
}

/// Runs every check, prints them, and fails (exit 1) when any check failed.
pub async fn run(target: &Target, args: DoctorArgs, json: bool) -> Result<()> {
    let mut checks = Vec::new();
    let client = match target {
        Target::Unix { socket, server } => {
            let (found, client) = local::socket_checks(socket, *server).await;
            checks.extend(found);
            client.map(|(client, uid)| (client, Some(uid)))
        }
        Target::Tls(_) => match target.connect().await {
            Ok(client) => {
                checks.push(Check::ok(
                    "daemon",
                    format!("reachable at {}", client.endpoint()),
                ));
                Some((client, None))
            }
            Err(error) => {
                checks.push(Check::fail(
                    "daemon",
                    error.to_string(),
                    "check --addr and the --tls-* files, and that tufkeyd runs with --listen-tcp",
                ));
                None
            }
        },
    };
    if let Some((client, daemon_uid)) = client {
        checks.extend(daemon::checks(client, daemon_uid).await);
    }
    for dir in &args.repo {
        checks.extend(repo::checks(dir));
    }
    let failed = checks
        .iter()
        .filter(|check| check.status == Status::Fail)
        .count();
    if json {
        println!("{}", Value::Array(checks.iter().map(Check::json).collect()));
    } else {
        for check in &checks {
            println!("{}", check.line());
        }
    }
    if failed > 0 {
        return Err(Error::Usage(format!(
            "doctor: {failed} check(s) failed; each names its fix above"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_prints_as_one_line_with_its_fix() {
        let check = Check::fail("socket", "mode 0666", "chmod 600 /s");
        assert_eq!(check.line(), "fail  socket: mode 0666 -- fix: chmod 600 /s");
        assert_eq!(Check::ok("daemon", "up").line(), "ok    daemon: up");
        assert_eq!(
            check.json(),
            json!({"check": "socket", "status": "fail", "detail": "mode 0666", "fix": "chmod 600 /s"})
        );
        assert_eq!(Check::ok("daemon", "up").json()["fix"], Value::Null);
    }
}
