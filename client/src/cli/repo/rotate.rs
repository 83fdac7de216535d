//! `repo rotate DIR ROLE [--key ID]`: replace a top-level role's keys. The new root
//! (version + 1) is signed by the root keys of the new root and, when root itself
//! rotates, also by the old root keys, as TUF requires for clients that trust the
//! old root. Targets, snapshot and timestamp are re-signed in the same release, so
//! the repository stays valid for every client; staged changes wait for `publish`.
//! The rotated role ends up with the one new key (threshold 1).

use super::build;
use super::error::RepoError;
use super::init::build_root;
use super::publish::Published;
use super::release::{self, next, Staging};
use super::role::TopRole;
use super::signing::Signer;
use super::state::RepoState;
use std::path::Path;
use tough::schema::KeyHolder;

pub async fn rotate(
    signer: &mut Signer,
    dir: &Path,
    role: TopRole,
    key: Option<&str>,
) -> Result<Published, RepoError> {
    let (mut state, _lock) = RepoState::load_for_update(dir)?;
    let current = release::load(dir)?;
    let old_root = current.root.signed.clone();
    let old_root_keyids = state.role(TopRole::Root)?.keyids.clone();
    let new_keyid = match key {
        Some(keyid) => signer.key(keyid, role.name()).await?.keyid,
        None => {
            let gun = state.gun.clone();
            signer.client().generate_key(&gun, role.name()).await?.keyid
        }
    };
    let config = state
        .roles
        .get_mut(&role)
        .ok_or(RepoError::RoleMissing { role })?;
    if config.keyids == [new_keyid.clone()] {
        return Err(RepoError::Invalid(format!(
            "key {new_keyid} already is the only {role} key: give another --key, or leave it out to generate one"
        )));
    }
    config.keyids = vec![new_keyid];
    config.threshold = 1;

    let new_root = build_root(signer, &state, next(old_root.version)).await?;
    let mut staging = Staging::new(dir)?;
    let mut signed_root = signer
        .sign(
            "root",
            new_root.clone(),
            &KeyHolder::Root(new_root.clone()),
            &state.role(TopRole::Root)?.keyids,
        )
        .await?;
    if role == TopRole::Root {
        let by_old_keys = signer
            .sign(
                "root",
                new_root.clone(),
                &KeyHolder::Root(old_root),
                &old_root_keyids,
            )
            .await?;
        signed_root = signed_root
            .add_old_signatures(by_old_keys.signed().signatures.clone())
            .map_err(RepoError::tough("add the old root keys' signatures"))?;
    }
    staging.add(&signed_root).await?;
    let mut published = build::build(
        signer,
        &state,
        dir,
        &new_root,
        Some(&current),
        &mut staging,
        false,
    )
    .await?;
    staging.commit(dir)?;
    state.save(dir)?;
    published
        .versions
        .insert("root".into(), new_root.version.get());
    Ok(published)
}
