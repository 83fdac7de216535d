//! `dct signer add|remove`: delegations as `docker trust signer` makes them. A
//! signer NAME is the role `targets/NAME` plus membership of `targets/releases`
//! (the role Docker reads signed tags from), both with paths `[""]` (every tag)
//! and threshold 1. Only the top-level targets changes; the repository key signs it.

use super::super::error::DctError;
use super::super::gun::{check_signer, Gun};
use super::super::keys::{ecdsa_key, key_id, spki_of};
use super::super::metadata::DelegationRole;
use super::super::Session;
use super::publish::{keys_for, next_targets, upload, versions};
use super::{Report, SignerCommand};
use serde_json::json;

const RELEASES: &str = "targets/releases";

pub async fn signer(
    session: &mut Session,
    gun: &Gun,
    command: &SignerCommand,
) -> Result<Report, DctError> {
    let collection = session.collection(gun).await?;
    let mut next = next_targets(&collection, "targets")?;
    let delegations = &mut next.delegations;
    let (name, lines, keyids) = match command {
        SignerCommand::Add { name, keys, .. } => {
            let role = format!("targets/{}", check_signer(name)?);
            let mut ids = Vec::new();
            for keyid in keys {
                let key = session.signer.client().get_key(keyid).await?;
                let public = ecdsa_key(&spki_of(&key)?);
                let id = key_id(&public)?;
                delegations.keys.insert(id.clone(), public);
                ids.push(id);
            }
            for role in [RELEASES, role.as_str()] {
                match delegations
                    .roles
                    .iter_mut()
                    .find(|delegation| delegation.name == role)
                {
                    Some(delegation) => {
                        for id in &ids {
                            if !delegation.keyids.contains(id) {
                                delegation.keyids.push(id.clone());
                            }
                        }
                    }
                    None => delegations.roles.push(DelegationRole {
                        keyids: ids.clone(),
                        name: role.to_owned(),
                        paths: vec![String::new()],
                        threshold: 1,
                    }),
                }
            }
            (
                name,
                vec![format!(
                    "signer {name} added to {gun} with key(s) {}",
                    ids.join(", ")
                )],
                ids,
            )
        }
        SignerCommand::Remove { name, .. } => {
            let role = format!("targets/{}", check_signer(name)?);
            let position = delegations
                .roles
                .iter()
                .position(|delegation| delegation.name == role)
                .ok_or_else(|| DctError::Usage(format!("{gun} has no signer {name}: see its signers with `tufkey dct inspect {gun}`")))?;
            let removed = delegations.roles.remove(position);
            let still_used = |id: &String, roles: &[DelegationRole]| {
                roles
                    .iter()
                    .filter(|delegation| delegation.name != RELEASES)
                    .any(|delegation| delegation.keyids.contains(id))
            };
            let others = delegations.roles.clone();
            if let Some(releases) = delegations
                .roles
                .iter_mut()
                .find(|delegation| delegation.name == RELEASES)
            {
                releases
                    .keyids
                    .retain(|id| !removed.keyids.contains(id) || still_used(id, &others));
            }
            delegations
                .roles
                .retain(|delegation| !delegation.keyids.is_empty());
            let referenced: Vec<String> = delegations
                .roles
                .iter()
                .flat_map(|delegation| delegation.keyids.clone())
                .collect();
            delegations.keys.retain(|id, _| referenced.contains(id));
            (
                name,
                vec![format!("signer {name} removed from {gun}")],
                removed.keyids,
            )
        }
    };
    let keys = keys_for(
        session,
        gun,
        &collection.root,
        &collection.targets,
        "targets",
        None,
    )
    .await?;
    let file = session
        .signer
        .sign_role("targets", next.version, &next, &keys)
        .await?;
    let published = upload(session, gun, vec![("targets".into(), file)]).await?;
    let mut lines = lines;
    lines.push(format!(
        "published {}",
        versions(&published, &["targets".into()])
    ));
    Ok(Report::new(
        lines,
        json!({"gun": gun.as_str(), "signer": name, "keyids": keyids, "targets_version": published.targets.version}),
    ))
}
