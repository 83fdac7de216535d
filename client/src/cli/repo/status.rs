//! `repo status DIR [--json]`: each role's version and expiry, where its keys are
//! (software, or YubiKey serial/slot and label; present or not), and what needs
//! doing: absent cards, keys missing from tufkeyd, staged changes, roles expiring
//! soon.

use super::super::output::short_location as location;
use super::error::RepoError;
use super::release::expires_soon;
use super::release::{self, Release};
use super::role::TopRole;
use super::signing::yubikey_serial;
use super::state::RepoState;
use serde_json::{json, Value};
use std::path::Path;
use tough::schema::Role;
use tufkey::Client;

/// The status report, as JSON (the text form is derived from it).
pub async fn status(client: &mut Client, dir: &Path) -> Result<Value, RepoError> {
    let state = RepoState::load(dir)?;
    let current = release::load(dir)?;
    let mut missing = Vec::new();
    let mut expiring = Vec::new();
    let mut roles = serde_json::Map::new();
    for role in TopRole::ALL {
        let config = state.role(role)?;
        let (version, expires) = version_and_expiry(&current, role);
        if expires_soon(expires, config.expires_days) {
            expiring.push(role.name());
            missing.push(format!(
                "{role} v{version} expires {expires}: {}",
                match role {
                    TopRole::Timestamp | TopRole::Snapshot =>
                        format!("run `tufkey repo refresh {} --role {role}`", dir.display()),
                    TopRole::Targets => format!("run `tufkey repo publish {}`", dir.display()),
                    TopRole::Root => format!("run `tufkey repo rotate {} root`", dir.display()),
                }
            ));
        }
        let keys = keys_json(client, &state, role.name(), &config.keyids, &mut missing).await;
        roles.insert(
            role.name().into(),
            json!({
                "version": version.get(),
                "expires": expires.to_string(),
                "threshold": config.threshold,
                "keys": keys,
            }),
        );
    }
    let mut delegations = serde_json::Map::new();
    for (name, delegation) in &state.delegations {
        let published = current.delegated.get(name);
        let keys = keys_json(client, &state, name, &delegation.keyids, &mut missing).await;
        if let Some(role) =
            published.filter(|role| expires_soon(role.signed.expires, delegation.expires_days))
        {
            expiring.push(name.as_str());
            missing.push(format!(
                "delegation {name} v{} expires {}: run `tufkey repo publish {}`",
                role.signed.version,
                role.signed.expires,
                dir.display()
            ));
        }
        if !delegation.published {
            missing.push(format!(
                "delegation {name} is staged: run `tufkey repo publish {}`",
                dir.display()
            ));
        }
        delegations.insert(
            name.clone(),
            json!({
                "version": published.map(|role| role.signed.version.get()),
                "expires": published.map(|role| role.signed.expires.to_string()),
                "threshold": delegation.threshold,
                "paths": delegation.paths,
                "published": delegation.published,
                "keys": keys,
            }),
        );
    }
    if !state.staged.is_empty() {
        missing.push(format!(
            "{} staged change(s): run `tufkey repo publish {}`",
            state.staged.add.len() + state.staged.remove.len(),
            dir.display()
        ));
    }
    let staged_add: Vec<Value> = state
        .staged
        .add
        .iter()
        .map(|add| json!({"name": add.name, "path": add.path, "delegation": add.delegation}))
        .collect();
    let staged_remove: Vec<Value> = state
        .staged
        .remove
        .iter()
        .map(|remove| json!({"name": remove.name, "delegation": remove.delegation}))
        .collect();
    Ok(json!({
        "dir": dir,
        "gun": state.gun,
        "roles": roles,
        "delegations": delegations,
        "targets": current.targets.signed.targets.len(),
        "staged": {"add": staged_add, "remove": staged_remove},
        "expiring_soon": expiring,
        "missing": missing,
    }))
}

fn version_and_expiry(current: &Release, role: TopRole) -> (std::num::NonZeroU64, jiff::Timestamp) {
    match role {
        TopRole::Root => (current.root.signed.version, current.root.signed.expires),
        TopRole::Targets => (
            current.targets.signed.version,
            current.targets.signed.expires,
        ),
        TopRole::Snapshot => (
            current.snapshot.signed.version,
            current.snapshot.signed.expires(),
        ),
        TopRole::Timestamp => (
            current.timestamp.signed.version,
            current.timestamp.signed.expires(),
        ),
    }
}

/// Where each key is; what is missing goes to `missing`.
async fn keys_json(
    client: &mut Client,
    state: &RepoState,
    role: &str,
    keyids: &[String],
    missing: &mut Vec<String>,
) -> Vec<Value> {
    let mut keys = Vec::new();
    for keyid in keyids {
        match client.get_key(keyid).await {
            Ok(key) => {
                let serial = yubikey_serial(&key);
                let label = serial.and_then(|serial| state.card_labels.get(&serial));
                if !key.available {
                    missing.push(match serial {
                        Some(serial) => format!(
                            "insert YubiKey {serial}{} to sign {role}",
                            label.map(|label| format!(" ({label})")).unwrap_or_default()
                        ),
                        None => format!("key {keyid} ({role}) is unavailable: run `tufkey status`"),
                    });
                }
                keys.push(json!({
                    "keyid": keyid,
                    "location": location(&key),
                    "serial": serial,
                    "label": label,
                    "available": key.available,
                }));
            }
            Err(error) => {
                missing.push(format!("key {keyid} ({role}) is not in tufkeyd: {error}"));
                keys.push(json!({"keyid": keyid, "location": null, "available": false}));
            }
        }
    }
    keys
}

/// The report for people.
pub fn text(report: &Value) -> String {
    let mut lines = vec![format!(
        "repository {} ({})",
        report["dir"].as_str().unwrap_or(""),
        report["gun"].as_str().unwrap_or("")
    )];
    if let Some(roles) = report["roles"].as_object() {
        for (name, role) in roles
            .iter()
            .chain(report["delegations"].as_object().into_iter().flatten())
        {
            let keys: Vec<String> = role["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|key| {
                    format!(
                        "{} ({}{})",
                        key["keyid"].as_str().unwrap_or(""),
                        key["location"].as_str().unwrap_or("not in tufkeyd"),
                        key["label"]
                            .as_str()
                            .map(|label| format!(", {label}"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            lines.push(format!(
                "{name:<10} v{} expires {}  keys: {}",
                role["version"],
                role["expires"].as_str().unwrap_or("-"),
                keys.join(", ")
            ));
        }
    }
    lines.push(format!("targets: {}", report["targets"]));
    for item in report["missing"].as_array().into_iter().flatten() {
        lines.push(format!("todo: {}", item.as_str().unwrap_or("")));
    }
    lines.join("\n")
}
