//! `--repo DIR`: the metadata of a `tufkey repo` directory that expires within a
//! third of its lifetime (the lifetimes are the repository's own, from
//! `tufkey-repo.json`), or has expired, with the command that re-signs it. Only
//! the files are read: no signature is checked here (`tufkey repo status` and any
//! TUF client do that).

use super::Check;
use serde_json::Value;
use std::path::Path;

const CHECK: &str = "repository";

/// One finding per role of the repository.
pub fn checks(dir: &Path) -> Vec<Check> {
    let shown = dir.display();
    let state = match read_json(&dir.join("tufkey-repo.json")) {
        Ok(state) => state,
        Err(reason) => {
            return vec![Check::fail(
                CHECK,
                format!("{shown}: {reason}"),
                format!("give --repo a directory made by `tufkey repo init` (it holds tufkey-repo.json), e.g. `tufkey repo status {shown}`"),
            )]
        }
    };
    let mut roles: Vec<(String, u64, String)> = Vec::new();
    for (section, fix) in [("roles", "refresh"), ("delegations", "publish")] {
        if let Some(map) = state.get(section).and_then(Value::as_object) {
            for (name, config) in map {
                if config.get("published").and_then(Value::as_bool) == Some(false) {
                    continue;
                }
                let days = config
                    .get("expires_days")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                roles.push((name.clone(), days, fix_for(dir, name, fix)));
            }
        }
    }
    let now = jiff::Timestamp::now();
    roles
        .into_iter()
        .map(|(role, days, fix)| role_check(dir, &role, days, now, fix))
        .collect()
}

fn fix_for(dir: &Path, role: &str, kind: &str) -> String {
    let shown = dir.display();
    match (kind, role) {
        ("refresh", "timestamp" | "snapshot") => {
            format!("`tufkey repo refresh {shown} --role {role}`")
        }
        ("refresh", "root") => format!("`tufkey repo rotate {shown} root`"),
        _ => format!("`tufkey repo publish {shown}`"),
    }
}

fn role_check(dir: &Path, role: &str, days: u64, now: jiff::Timestamp, fix: String) -> Check {
    let path = match current_file(dir, role) {
        Ok(path) => path,
        Err(reason) => return Check::fail(CHECK, format!("{role}: {reason}"), fix),
    };
    let expires = match read_json(&path).and_then(|document| {
        let text = document["signed"]["expires"]
            .as_str()
            .ok_or_else(|| "no signed.expires".to_owned())?
            .to_owned();
        text.parse::<jiff::Timestamp>()
            .map(|time| (text.clone(), time))
            .map_err(|error| format!("expires {text:?}: {error}"))
    }) {
        Ok(expires) => expires,
        Err(reason) => return Check::fail(CHECK, format!("{}: {reason}", path.display()), fix),
    };
    let (text, time) = expires;
    let left = time.as_second() - now.as_second();
    let lifetime = i64::try_from(days)
        .unwrap_or(i64::MAX / 2)
        .saturating_mul(86_400);
    let name = path
        .file_name()
        .map_or(role.into(), |name| name.to_string_lossy().into_owned());
    if left <= 0 {
        Check::fail(
            CHECK,
            format!("{role} ({name}) expired at {text}: clients refuse the repository"),
            fix,
        )
    } else if left < lifetime / 3 {
        Check::warn(
            CHECK,
            format!("{role} ({name}) expires within {} at {text} (a third of its {days}-day lifetime is left or less)", hours(left)),
            fix,
        )
    } else {
        Check::ok(CHECK, format!("{role} ({name}) expires {text}"))
    }
}

fn hours(seconds: i64) -> String {
    let hours = (seconds + 3599) / 3600;
    if hours == 1 {
        "1 hour".into()
    } else {
        format!("{hours} hours")
    }
}

/// `timestamp.json`, else the highest-versioned `N.ROLE.json` (consistent snapshots).
fn current_file(dir: &Path, role: &str) -> Result<std::path::PathBuf, String> {
    let metadata = dir.join("metadata");
    if role == "timestamp" {
        return Ok(metadata.join("timestamp.json"));
    }
    let suffix = format!(".{role}.json");
    let entries = std::fs::read_dir(&metadata)
        .map_err(|error| format!("reading {}: {error}", metadata.display()))?;
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let version = name.strip_suffix(&suffix)?.parse::<u64>().ok()?;
            Some((version, name))
        })
        .max()
        .map(|(_, name)| metadata.join(name))
        .ok_or_else(|| format!("no N{suffix} in {}", metadata.display()))
}

fn read_json(path: &Path) -> Result<Value, String> {
    let bytes =
        std::fs::read(path).map_err(|error| format!("reading {}: {error}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|error| format!("{}: {error}", path.display()))
}
