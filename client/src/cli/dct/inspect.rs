//! `dct inspect GUN[:TAG]`: what is signed (tags, digests, sizes, and which roles
//! sign each, named as Docker names signers), by which keys, and where each key
//! lives (software, a YubiKey's serial and slot, the server, or not here), with
//! versions and expiry. Read-only: it verifies like every command, signs nothing.

use super::error::DctError;
use super::gun::{check_tag, split_tag, Gun};
use super::keys::{certificate_facts, tufkeyd_id};
use super::metadata::PublicKey;
use super::trust::Collection;
use super::{ServerArgs, Session};
use crate::cli::output::short_location;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use clap::Args;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// GUN or GUN:TAG.
    pub target: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `GUN` or `GUN:TAG` (a colon after the last `/`).
pub fn parse_target(text: &str) -> Result<(Gun, Option<String>), DctError> {
    let (name, tag) = split_tag(text);
    let tag = tag
        .map(|tag| check_tag(tag).map(str::to_owned))
        .transpose()?;
    Ok((Gun::parse(name)?, tag))
}

pub struct Inspected {
    json: Value,
}

pub async fn inspect(
    session: &mut Session,
    gun: &Gun,
    tag: Option<&str>,
) -> Result<Inspected, DctError> {
    let collection = session.collection(gun).await?;
    let tags = signed_tags(&collection, tag);
    if let (Some(tag), true) = (tag, tags.is_empty()) {
        return Err(DctError::Usage(format!("{gun}:{tag} is not signed")));
    }
    let mut administrative = Vec::new();
    for role in ["root", "targets", "snapshot", "timestamp"] {
        let keyids = collection
            .root
            .roles
            .get(role)
            .map(|keys| keys.keyids.clone())
            .unwrap_or_default();
        let mut keys = Vec::new();
        for keyid in keyids {
            let public = collection.root.keys.get(&keyid);
            keys.push(describe_key(session, &keyid, public, role).await?);
        }
        administrative.push(json!({"role": role, "keys": keys}));
    }
    let mut signers = Vec::new();
    for delegation in &collection.targets.delegations.roles {
        let mut keys = Vec::new();
        for keyid in &delegation.keyids {
            let public = collection.targets.delegations.keys.get(keyid);
            keys.push(describe_key(session, keyid, public, &delegation.name).await?);
        }
        signers.push(json!({
            "role": delegation.name,
            "name": signer_name(&delegation.name),
            "keys": keys,
            "version": collection.delegated.get(&delegation.name).map(|targets| targets.version),
        }));
    }
    let version = |role: &str, version: u64, expires: &str| json!({"role": role, "version": version, "expires": expires});
    let mut roles = vec![
        version("root", collection.root.version, &collection.root.expires),
        version(
            "targets",
            collection.targets.version,
            &collection.targets.expires,
        ),
        version(
            "snapshot",
            collection.snapshot.version,
            &collection.snapshot.expires,
        ),
        version(
            "timestamp",
            collection.timestamp.version,
            &collection.timestamp.expires,
        ),
    ];
    for (name, targets) in &collection.delegated {
        roles.push(version(name, targets.version, &targets.expires));
    }
    Ok(Inspected {
        json: json!({
            "gun": gun.as_str(),
            "server": session.server.url().as_str(),
            "tags": tags,
            "signers": signers,
            "administrative_keys": administrative,
            "roles": roles,
        }),
    })
}

/// Every signed tag (or just `only`), with its digest, size and signer names: a
/// tag in `targets` is signed by "Repo Admin", one in `targets/NAME` by NAME, as
/// `docker trust inspect` shows them.
fn signed_tags(collection: &Collection, only: Option<&str>) -> Vec<Value> {
    let mut tags: BTreeMap<(String, String, u64), Vec<String>> = BTreeMap::new();
    let roles = std::iter::once(("targets", &collection.targets)).chain(
        collection
            .delegated
            .iter()
            .map(|(name, targets)| (name.as_str(), targets)),
    );
    for (role, targets) in roles {
        for (tag, meta) in &targets.targets {
            if only.is_some_and(|only| only != tag) {
                continue;
            }
            let digest = meta
                .hashes
                .get("sha256")
                .and_then(|digest| BASE64.decode(digest).ok())
                .map(hex::encode)
                .unwrap_or_default();
            tags.entry((tag.clone(), digest, meta.length))
                .or_default()
                .push(role.to_owned());
        }
    }
    tags.into_iter()
        .map(|((tag, digest, size), roles)| {
            let signers: Vec<&str> = roles.iter().map(|role| signer_name(role)).filter(|name| *name != "releases").collect();
            json!({"tag": tag, "digest": format!("sha256:{digest}"), "size": size, "roles": roles, "signers": signers})
        })
        .collect()
}

/// "Repo Admin" for targets, NAME for targets/NAME.
fn signer_name(role: &str) -> &str {
    match role.strip_prefix("targets/") {
        Some(name) => name,
        None => "Repo Admin",
    }
}

async fn describe_key(
    session: &mut Session,
    keyid: &str,
    public: Option<&PublicKey>,
    role: &str,
) -> Result<Value, DctError> {
    let Some(public) = public else {
        return Ok(json!({"keyid": keyid, "location": "missing from the metadata"}));
    };
    let mut described = json!({"keyid": keyid, "keytype": public.keytype});
    if let Some((common_name, not_after)) = certificate_facts(public) {
        described["certificate"] =
            json!({"common_name": common_name, "expires": not_after.to_string()});
    }
    let held = session
        .signer
        .held_keys(
            &[keyid.to_owned()],
            &BTreeMap::from([(keyid.to_owned(), public.clone())]),
        )
        .await?;
    described["location"] = match held.first() {
        Some(held) => json!(short_location(&held.key)),
        None if matches!(role, "snapshot" | "timestamp") => json!("the server"),
        None => json!("not in tufkeyd"),
    };
    if let Some(held) = held.first() {
        described["tufkeyd_keyid"] = json!(held.key.keyid);
        described["available"] = json!(held.key.available);
    } else if let Ok(id) = tufkeyd_id(public) {
        described["notary_keyid"] = json!(id);
    }
    Ok(described)
}

impl Inspected {
    pub fn json(&self) -> Value {
        self.json.clone()
    }

    pub fn text(&self) -> String {
        let json = &self.json;
        let mut lines = vec![format!(
            "{} on {}",
            json["gun"].as_str().unwrap_or(""),
            json["server"].as_str().unwrap_or("")
        )];
        lines.push("signed tags:".into());
        for tag in json["tags"].as_array().into_iter().flatten() {
            let signers: Vec<&str> = tag["signers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            lines.push(format!(
                "  {}  {}  {} bytes  signed by {}",
                tag["tag"].as_str().unwrap_or(""),
                tag["digest"].as_str().unwrap_or(""),
                tag["size"],
                if signers.is_empty() {
                    "Repo Admin".to_owned()
                } else {
                    signers.join(", ")
                }
            ));
        }
        for (title, list, name) in [
            ("signers:", "signers", "role"),
            ("administrative keys:", "administrative_keys", "role"),
        ] {
            lines.push(title.into());
            for entry in json[list].as_array().into_iter().flatten() {
                for key in entry["keys"].as_array().into_iter().flatten() {
                    lines.push(format!(
                        "  {:<18} {}  {}",
                        entry[name].as_str().unwrap_or(""),
                        key["keyid"].as_str().unwrap_or(""),
                        key["location"].as_str().unwrap_or("")
                    ));
                }
            }
        }
        lines.push("versions:".into());
        for role in json["roles"].as_array().into_iter().flatten() {
            lines.push(format!(
                "  {:<18} v{}  expires {}",
                role["role"].as_str().unwrap_or(""),
                role["version"],
                role["expires"].as_str().unwrap_or("")
            ));
        }
        lines.join("\n")
    }
}
