//! `dct key rotate`: a new key for the repository (targets) role, made in
//! tufkeyd, or a new server-managed snapshot or timestamp key, made by the server.
//! Root gets the new key in a new version signed by the root key, and for targets
//! the role is re-signed by its new key in the same update, so the collection never
//! lists a key that signed nothing.

use super::super::error::DctError;
use super::super::gun::Gun;
use super::super::keys::{ecdsa_key, key_id, spki_of};
use super::super::metadata::{PublicKey, Root};
use super::super::signing::SigningKey;
use super::super::trust::role_keys;
use super::super::Session;
use super::init::server_key_from;
use super::publish::{next_targets, repository_key, upload, versions};
use super::{KeyCommand, Report};
use crate::cli::output::short_location;
use serde_json::json;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum RotatedRole {
    Targets,
    Snapshot,
    Timestamp,
}

pub async fn rotate(
    session: &mut Session,
    gun: &Gun,
    command: &KeyCommand,
) -> Result<Report, DctError> {
    let KeyCommand::Rotate {
        role,
        server_managed,
        key,
        ..
    } = command;
    let collection = session.collection(gun).await?;
    let mut files = Vec::new();
    let (role_name, new_id, location) = match role {
        RotatedRole::Targets => {
            if *server_managed {
                return Err(DctError::Usage(
                    "the repository key stays with the publisher: leave out --server-managed"
                        .into(),
                ));
            }
            let new_key = repository_key(session, gun, key.as_deref()).await?;
            let public = ecdsa_key(&spki_of(&new_key)?);
            let id = key_id(&public)?;
            let root = with_role_key(&collection.root, "targets", &id, public);
            let targets = next_targets(&collection, "targets")?;
            files.push((
                "root".to_owned(),
                sign_root(session, gun, &collection.root, &root).await?,
            ));
            let signer = SigningKey {
                metadata_id: id.clone(),
                key: new_key.clone(),
            };
            files.push((
                "targets".to_owned(),
                session
                    .signer
                    .sign_role("targets", targets.version, &targets, &[signer])
                    .await?,
            ));
            ("targets", id, short_location(&new_key))
        }
        RotatedRole::Snapshot | RotatedRole::Timestamp => {
            let name = if matches!(role, RotatedRole::Snapshot) {
                "snapshot"
            } else {
                "timestamp"
            };
            if !*server_managed || key.is_some() {
                return Err(DctError::Usage(format!(
                    "tufkey dct leaves {name} to the server: rotate it with --server-managed (and no --key)"
                )));
            }
            let bytes = session.server.rotate_server_key(gun.as_str(), name).await?;
            let public = server_key_from(name, &bytes)?;
            let id = key_id(&public)?;
            let root = with_role_key(&collection.root, name, &id, public);
            files.push((
                "root".to_owned(),
                sign_root(session, gun, &collection.root, &root).await?,
            ));
            (name, id, "the server".to_owned())
        }
    };
    let changed: Vec<String> = files.iter().map(|(role, _)| role.clone()).collect();
    let published = upload(session, gun, files).await?;
    let lines = vec![
        format!("{role_name} key of {gun} is now {new_id} ({location})"),
        format!("published {}", versions(&published, &changed)),
    ];
    Ok(Report::new(
        lines,
        json!({"gun": gun.as_str(), "role": role_name, "keyid": new_id, "location": location, "root_version": published.root.version}),
    ))
}

/// `root` with `role`'s keys replaced by `key` (old keys no role uses any more
/// are dropped), one version up.
fn with_role_key(root: &Root, role: &str, id: &str, key: PublicKey) -> Root {
    let mut next = root.clone();
    next.version += 1;
    next.keys.insert(id.to_owned(), key);
    if let Some(keys) = next.roles.get_mut(role) {
        keys.keyids = vec![id.to_owned()];
    }
    let used: Vec<String> = next
        .roles
        .values()
        .flat_map(|keys| keys.keyids.clone())
        .collect();
    next.keys.retain(|keyid, _| used.contains(keyid));
    next
}

/// `next` signed by the root keys tufkeyd holds (those of the current root, which
/// are also the new root's: root itself is not rotated here).
async fn sign_root(
    session: &mut Session,
    gun: &Gun,
    current: &Root,
    next: &Root,
) -> Result<Vec<u8>, DctError> {
    let (keyids, _) = role_keys(gun, current, "root")?;
    let keyids = keyids.to_vec();
    let signers = session
        .signer
        .signing_keys(gun.as_str(), "root", &keyids, &current.keys)
        .await?;
    session
        .signer
        .sign_role("root", next.version, next, &signers)
        .await
}
