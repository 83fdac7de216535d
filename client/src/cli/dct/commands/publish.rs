//! What every changing command shares: the next version of a targets role, the
//! keys that sign it, and the upload of the changed roles in one update, checked
//! afterwards by fetching the collection again.

use super::super::error::DctError;
use super::super::gun::Gun;
use super::super::metadata::{expires_in, Delegations, Root, Targets};
use super::super::signing::SigningKey;
use super::super::trust::{role_keys, Collection};
use super::super::Session;

/// Notary's default lifetime of targets and delegated roles: 3 years.
pub const TARGETS_DAYS: u32 = 3 * 365;
/// And of root: 10 years.
pub const ROOT_DAYS: u32 = 10 * 365;

/// The next version of `role` (an empty one if it was never published), with a
/// fresh expiry; the caller edits it.
pub fn next_targets(collection: &Collection, role: &str) -> Result<Targets, DctError> {
    let current = if role == "targets" {
        Some(&collection.targets)
    } else {
        collection.delegated.get(role)
    };
    let mut next = current.cloned().unwrap_or_else(|| Targets {
        kind: "Targets".to_owned(),
        delegations: Delegations::default(),
        expires: String::new(),
        targets: Default::default(),
        version: 0,
    });
    next.version += 1;
    next.expires = expires_in(TARGETS_DAYS)?;
    Ok(next)
}

/// The keys tufkeyd holds for `role`: targets' from `root`, a delegation's from
/// `parent` (the top-level targets as it will be published). `only` narrows them
/// to these key IDs (a signer's own keys).
pub async fn keys_for(
    session: &mut Session,
    gun: &Gun,
    root: &Root,
    parent: &Targets,
    role: &str,
    only: Option<&[String]>,
) -> Result<Vec<SigningKey>, DctError> {
    let (keyids, keys): (Vec<String>, _) = if role == "targets" {
        (role_keys(gun, root, "targets")?.0.to_vec(), &root.keys)
    } else {
        let delegation = parent
            .delegations
            .roles
            .iter()
            .find(|delegation| delegation.name == role)
            .ok_or_else(|| {
                DctError::Usage(format!(
                    "{gun} has no role {role}: add the signer with `tufkey dct signer add`"
                ))
            })?;
        (delegation.keyids.clone(), &parent.delegations.keys)
    };
    let keyids: Vec<String> = match only {
        Some(only) => keyids.into_iter().filter(|id| only.contains(id)).collect(),
        None => keyids,
    };
    session
        .signer
        .signing_keys(gun.as_str(), role, &keyids, keys)
        .await
}

/// The repository (targets) key: `keyid` from tufkeyd, or a new software key.
pub async fn repository_key(
    session: &mut Session,
    gun: &Gun,
    keyid: Option<&str>,
) -> Result<tufkey::proto::Key, DctError> {
    let client = session.signer.client();
    Ok(match keyid {
        Some(keyid) => client.get_key(keyid).await?,
        None => client.generate_key(gun.as_str(), "targets").await?,
    })
}

/// Uploads `files` (role name, bytes) as one update, then fetches and verifies the
/// collection again (the server has made a new snapshot and timestamp).
pub async fn upload(
    session: &mut Session,
    gun: &Gun,
    files: Vec<(String, Vec<u8>)>,
) -> Result<Collection, DctError> {
    session.server.publish(gun.as_str(), &files).await?;
    session.remember_server(gun)?;
    session.collection(gun).await
}

/// "targets v4, targets/releases v2" for a report.
pub fn versions(collection: &Collection, roles: &[String]) -> String {
    roles
        .iter()
        .map(|role| {
            let version = if role == "targets" {
                Some(collection.targets.version)
            } else if role == "root" {
                Some(collection.root.version)
            } else {
                collection
                    .delegated
                    .get(role)
                    .map(|targets| targets.version)
            };
            match version {
                Some(version) => format!("{role} v{version}"),
                None => role.clone(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
