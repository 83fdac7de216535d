//! `repo publish` (a new release: staged target changes, new delegations, new
//! targets/snapshot/timestamp versions with their expiry bumped) and `repo refresh`
//! (re-sign just the timestamp, or the snapshot and timestamp, for a timer).

use super::build::{self, sign_snapshot_and_timestamp, sign_timestamp};
use super::error::RepoError;
use super::release::{self, expiry, next, Staging};
use super::role::TopRole;
use super::signing::Signer;
use super::state::RepoState;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use tough::schema::{Snapshot, Timestamp};

/// What a release carried, for the command's output.
pub struct Published {
    pub versions: BTreeMap<String, u64>,
}

impl Published {
    pub fn json(&self) -> Value {
        json!({ "versions": self.versions })
    }

    pub fn text(&self) -> String {
        let parts: Vec<String> = self
            .versions
            .iter()
            .map(|(role, version)| format!("{role} v{version}"))
            .collect();
        format!("published {}", parts.join(", "))
    }
}

/// `repo publish DIR`: a release with everything staged; the stage is then cleared.
pub async fn publish(signer: &mut Signer, dir: &Path) -> Result<Published, RepoError> {
    let (mut state, _lock) = RepoState::load_for_update(dir)?;
    let current = release::load(dir)?;
    check_staged_files(&state)?;
    let mut staging = Staging::new(dir)?;
    let published = build::build(
        signer,
        &state,
        dir,
        &current.root.signed,
        Some(&current),
        &mut staging,
        true,
    )
    .await?;
    staging.commit(dir)?;
    for delegation in state.delegations.values_mut() {
        delegation.published = true;
    }
    state.staged = Default::default();
    state.save(dir)?;
    Ok(published)
}

/// Every staged file must still be there before anything is signed.
fn check_staged_files(state: &RepoState) -> Result<(), RepoError> {
    for add in &state.staged.add {
        if !add.path.is_file() {
            return Err(RepoError::FileNotFound {
                path: add.path.clone(),
            });
        }
    }
    Ok(())
}

/// `repo refresh DIR --role timestamp|snapshot`: the same content, a new version
/// and expiry (snapshot also brings a new timestamp).
pub async fn refresh(
    signer: &mut Signer,
    dir: &Path,
    role: TopRole,
) -> Result<Published, RepoError> {
    let (state, _lock) = RepoState::load_for_update(dir)?;
    let current = release::load(dir)?;
    let root = &current.root.signed;
    let mut staging = Staging::new(dir)?;
    let mut versions = BTreeMap::new();
    match role {
        TopRole::Timestamp => {
            let mut timestamp: Timestamp = current.timestamp.signed.clone();
            timestamp.version = next(timestamp.version);
            timestamp.expires = expiry(state.role(TopRole::Timestamp)?.expires_days)?;
            let signed = sign_timestamp(signer, &state, root, timestamp, &mut staging).await?;
            versions.insert("timestamp".into(), signed.signed().signed.version.get());
        }
        TopRole::Snapshot => {
            let mut snapshot: Snapshot = current.snapshot.signed.clone();
            snapshot.version = next(snapshot.version);
            snapshot.expires = expiry(state.role(TopRole::Snapshot)?.expires_days)?;
            let (snapshot_version, timestamp_version) = sign_snapshot_and_timestamp(
                signer,
                &state,
                root,
                snapshot,
                Some(&current),
                &mut staging,
            )
            .await?;
            versions.insert("snapshot".into(), snapshot_version);
            versions.insert("timestamp".into(), timestamp_version);
        }
        TopRole::Root | TopRole::Targets => {
            return Err(RepoError::Invalid(format!(
                "refresh --role {role}: only timestamp and snapshot are refreshed; use `tufkey repo publish DIR` for targets and `tufkey repo rotate DIR root` for root"
            )))
        }
    }
    staging.commit(dir)?;
    Ok(Published { versions })
}
