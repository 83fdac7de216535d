//! `tufkey audit verify [FILE...]` and `tufkey audit tail [--follow]`.
//!
//! Only tufkeyd holds the audit log's MAC key (it is derived from the keystore's
//! secret), so verification runs in the daemon; this prints its verdict. Records
//! come as the daemon wrote them: `--json` prints them as JSON Lines, otherwise one
//! readable line each. With several `--addr` (replicas, each keeping its own chain),
//! `verify` asks every replica and reports each; `tail` reads the first that answers.

use super::output::print;
use super::Target;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use tufkey::{proto, Client, Error, Result};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every record's MAC, the sequence and the hash chain; name the first bad
    /// record. Without FILE: the daemon's whole log, which must also end with the last
    /// record the daemon wrote.
    Verify {
        /// Files of the daemon's audit log (by name, e.g. audit.log.000002, or path).
        files: Vec<String>,
    },
    /// Show the latest records, oldest first.
    Tail(TailArgs),
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// How many of the latest records to show (0: all).
    #[arg(short = 'n', long, default_value_t = 20)]
    lines: u32,
    /// Keep running and show each new record as it is written.
    #[arg(short, long)]
    follow: bool,
}

pub async fn run(target: &Target, command: AuditCommand, json: bool) -> Result<()> {
    match command {
        AuditCommand::Verify { files } => {
            let mut each = target.connect_each().await?;
            if each.len() == 1 {
                if let Some((_, client)) = each.pop() {
                    return verify(client?, files, json).await;
                }
            }
            verify_each(each, files, json).await
        }
        AuditCommand::Tail(args) => tail(target.connect().await?, args, json).await,
    }
}

/// Verifies every replica's own chain; fails if any replica's fails or cannot be
/// asked.
async fn verify_each(
    each: Vec<(String, Result<Client>)>,
    files: Vec<String>,
    json: bool,
) -> Result<()> {
    let mut reports = Vec::with_capacity(each.len());
    let mut failed = Vec::new();
    for (endpoint, client) in each {
        let outcome = match client {
            Ok(mut client) => client.verify_audit(files.clone()).await,
            Err(error) => Err(error),
        };
        let (mut value, line) = match outcome {
            Ok(report) => {
                let (value, verdict) = summary(&report);
                if verdict.is_err() {
                    failed.push(endpoint.clone());
                }
                (
                    value,
                    verdict.unwrap_or_else(|bad| format!("the audit log does not verify: {bad}")),
                )
            }
            Err(error) => {
                failed.push(endpoint.clone());
                (
                    json!({"ok": false, "error": error.to_string()}),
                    format!("cannot verify: {error}"),
                )
            }
        };
        value["endpoint"] = json!(endpoint);
        reports.push(value);
        if !json {
            println!("{endpoint}: {line}");
        }
    }
    if json {
        println!("{}", json!({"ok": failed.is_empty(), "endpoints": reports}));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::AuditDamaged(format!(
            "on {} of {} replicas: {} (each replica's report says why)",
            failed.len(),
            reports.len(),
            failed.join(", ")
        )))
    }
}

/// A report as JSON, and the verdict for people: `Ok(text)` when intact, else
/// `Err(where and why)`.
fn summary(report: &proto::VerifyAuditResponse) -> (Value, Result<String, String>) {
    let bad = report.bad.as_ref().map(|bad| {
        json!({
            "file": bad.file,
            "line": bad.line,
            "seq": (bad.seq != 0).then_some(bad.seq),
            "reason": bad.reason,
        })
    });
    let value = json!({
        "ok": report.bad.is_none(),
        "files": report.files,
        "records": report.records,
        "first_seq": report.first_seq,
        "last_seq": report.last_seq,
        "bad": bad,
    });
    if let Some(bad) = &report.bad {
        let seq = if bad.seq == 0 {
            String::new()
        } else {
            format!(" (seq {})", bad.seq)
        };
        return (
            value,
            Err(format!(
                "{} line {}{seq}: {}",
                bad.file, bad.line, bad.reason
            )),
        );
    }
    let text = {
        let mut text = format!(
            "audit log intact: {} records (seq {}..{}) in {} file(s)",
            report.records,
            report.first_seq,
            report.last_seq,
            report.files.len()
        );
        if report.first_seq > 1 {
            text.push_str(&format!(
                "; records before seq {} are not in these files",
                report.first_seq
            ));
        }
        text
    };
    (value, Ok(text))
}

async fn verify(mut client: Client, files: Vec<String>, json: bool) -> Result<()> {
    let report = client.verify_audit(files).await?;
    let (value, verdict) = summary(&report);
    match verdict {
        Ok(text) => {
            print(json, value, || text);
            Ok(())
        }
        Err(bad) => {
            if json {
                println!("{value}");
            }
            Err(Error::AuditDamaged(bad))
        }
    }
}

async fn tail(mut client: Client, args: TailArgs, json: bool) -> Result<()> {
    let mut records = client.tail_audit(args.lines, args.follow).await?;
    while let Some(record) = records.message().await? {
        if json {
            println!("{}", record.json);
        } else {
            println!("{}", readable(&record.json));
        }
    }
    Ok(())
}

/// One line for people: seq, time, who, what, which key, the outcome.
fn readable(line: &str) -> String {
    let Ok(record) = serde_json::from_str::<Value>(line) else {
        return format!("(unreadable record) {line}");
    };
    let text = |name: &str| record.get(name).and_then(Value::as_str);
    let mut parts = vec![
        format!("#{}", record["seq"]),
        text("time").unwrap_or("?").to_owned(),
        caller(&record["caller"]),
        text("rpc")
            .map_or("?", |rpc| rpc.rsplit('/').next().unwrap_or(rpc))
            .to_owned(),
    ];
    if let Some(keyid) = text("keyid") {
        parts.push(format!("key {}", &keyid[..keyid.len().min(16)]));
    }
    if let (Some(gun), Some(role)) = (text("gun"), text("role")) {
        parts.push(format!("{gun} {role}"));
    }
    if let Some(kind) = text("_type") {
        let version = record
            .get("version")
            .map_or(String::new(), |v| format!(" v{v}"));
        let expires = text("expires").map_or(String::new(), |e| format!(" expires {e}"));
        parts.push(format!("{kind}{version}{expires}"));
    }
    if let Some(digest) = text("payload_sha256") {
        parts.push(format!("sha256 {}", &digest[..digest.len().min(16)]));
    }
    if let Some(serial) = record.get("serial") {
        parts.push(format!("YubiKey {serial}"));
    }
    match (text("result"), text("error")) {
        (Some("ok"), _) => parts.push("ok".into()),
        (Some(kind), Some(message)) => parts.push(format!("{kind}: {message}")),
        (kind, _) => parts.push(kind.unwrap_or("?").to_owned()),
    }
    parts.join("  ")
}

fn caller(caller: &Value) -> String {
    let field = |name: &str| caller.get(name).filter(|value| !value.is_null());
    match caller.get("kind").and_then(Value::as_str) {
        Some("unix") => {
            let mut text = format!("uid {}", caller["uid"]);
            if let Some(pid) = field("pid") {
                text.push_str(&format!(" pid {pid}"));
            }
            if let Some(exe) = field("exe").and_then(Value::as_str) {
                text.push_str(&format!(" ({exe})"));
            }
            text
        }
        Some("tls") => {
            let name = field("common_name")
                .and_then(Value::as_str)
                .unwrap_or("(no CN)");
            let spki = field("spki_sha256").and_then(Value::as_str).unwrap_or("");
            format!("cert CN={name} spki {}", &spki[..spki.len().min(16)])
        }
        _ => caller.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_as_one_line_with_who_what_and_the_outcome() {
        let line = r#"{"_type":"targets","caller":{"exe":"/usr/bin/tufkey","gid":1000,"kind":"unix","pid":42,"uid":1000},"expires":"2030-01-01T00:00:00Z","gun":"example.com/app","keyid":"0123456789abcdef0123","mac":"00","payload_sha256":"feedfacefeedfacefeed","prev":"00","result":"ok","role":"targets","rpc":"tufkey.v1.Signing/SignMetadata","seq":7,"time":"2026-01-01T00:00:00Z","version":3}"#;
        assert_eq!(
            readable(line),
            "#7  2026-01-01T00:00:00Z  uid 1000 pid 42 (/usr/bin/tufkey)  SignMetadata  key 0123456789abcdef  example.com/app targets  targets v3 expires 2030-01-01T00:00:00Z  sha256 feedfacefeedface  ok"
        );
        let denied = r#"{"caller":{"common_name":"notary-server","kind":"tls","sans":[],"spki_sha256":"abcdef"},"error":"no","mac":"00","prev":"00","result":"permission_denied","rpc":"tufkey.v1.Session/Lock","seq":8,"time":"t"}"#;
        assert!(readable(denied)
            .ends_with("cert CN=notary-server spki abcdef  Lock  permission_denied: no"));
    }
}
