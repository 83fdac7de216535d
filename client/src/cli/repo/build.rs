//! Building and signing one release on top of the current one: tough's
//! `TargetsEditor` edits each targets role (staged additions and removals, new
//! delegations) and tough's `SignedRole` signs every role, then a snapshot and a
//! timestamp that list them.
//!
//! tough's `RepositoryEditor::sign` is not used for this: it re-serialises every
//! delegated role (its maps come out in a new order each time) under the same
//! version, which would overwrite published files with different bytes. Only the
//! roles that change are re-signed; snapshot.json keeps the entries of the rest.

use super::error::RepoError;
use super::publish::Published;
use super::release::{
    self, expires_soon, expiry, metafile, next, target_name, Release, Staging, SPEC_VERSION,
};
use super::role::TopRole;
use super::signing::Signer;
use super::state::{Delegation, RepoState};
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU64;
use std::path::Path;
use tough::editor::signed::SignedRole;
use tough::editor::targets::TargetsEditor;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::Key;
use tough::schema::{
    DelegatedRole, Delegations, KeyHolder, PathPattern, PathSet, Root, Snapshot, Targets, Timestamp,
};

/// A delegated role being edited in this release.
struct DelegationEdit {
    editor: TargetsEditor,
    /// The metadata listing the role's keys (the delegating targets).
    holder: KeyHolder,
    keyids: Vec<String>,
    /// For a role new in this release: how the top-level targets delegates to it.
    new: Option<NewDelegation>,
}

struct NewDelegation {
    paths: PathSet,
    keys: HashMap<Decoded<Hex>, Key>,
    keyids: Vec<Decoded<Hex>>,
    threshold: NonZeroU64,
}

/// The targets roles of one release: the top-level one and the delegations it edits.
struct TargetsEdits<'a> {
    previous: Option<&'a Release>,
    /// The top-level targets as published (what removals are checked against).
    top_targets: Targets,
    top: TargetsEditor,
    delegations: BTreeMap<String, DelegationEdit>,
}

impl<'a> TargetsEdits<'a> {
    fn new(root: &Root, previous: Option<&'a Release>, expires: jiff::Timestamp) -> Self {
        let mut top_targets = match previous {
            Some(release) => release.targets.signed.clone(),
            None => Targets::new(SPEC_VERSION.into(), NonZeroU64::MIN, expires),
        };
        // tough adds delegations only to a targets role that has the field.
        top_targets.delegations.get_or_insert_with(Delegations::new);
        let top = TargetsEditor::from_targets(
            "targets",
            top_targets.clone(),
            KeyHolder::Root(root.clone()),
        );
        TargetsEdits {
            previous,
            top_targets,
            top,
            delegations: BTreeMap::new(),
        }
    }

    /// Opens an editor for each delegation staged by `repo delegate` (version 1).
    async fn add_new_delegations(
        &mut self,
        signer: &mut Signer,
        state: &RepoState,
    ) -> Result<(), RepoError> {
        for (name, delegation) in state.delegations.iter().filter(|(_, d)| !d.published) {
            let edit = new_delegation(signer, name, delegation).await?;
            self.delegations.insert(name.clone(), edit);
        }
        Ok(())
    }

    /// Opens an editor (next version) for each published delegation that staged
    /// changes touch or that is within a third of its lifetime of expiring.
    fn open_delegations(&mut self, state: &RepoState) -> Result<(), RepoError> {
        let staged = state
            .staged
            .add
            .iter()
            .filter_map(|add| add.delegation.as_ref())
            .chain(
                state
                    .staged
                    .remove
                    .iter()
                    .filter_map(|remove| remove.delegation.as_ref()),
            );
        let expiring = self
            .previous
            .into_iter()
            .flat_map(|release| release.delegated.iter())
            .filter(|(name, role)| {
                state.delegations.get(*name).is_some_and(|delegation| {
                    expires_soon(role.signed.expires, delegation.expires_days)
                })
            })
            .map(|(name, _)| name);
        let names: Vec<String> = staged.chain(expiring).cloned().collect();
        for name in names {
            if self.delegations.contains_key(&name) {
                continue;
            }
            let delegation = state.delegation(&name)?;
            let current = self
                .previous
                .and_then(|release| release.delegated.get(&name))
                .ok_or_else(|| RepoError::UnknownDelegation { name: name.clone() })?;
            let holder =
                KeyHolder::Delegations(self.top_targets.delegations.clone().unwrap_or_default());
            let mut editor =
                TargetsEditor::from_targets(&name, current.signed.clone(), holder.clone());
            editor.version(next(current.signed.version));
            self.delegations.insert(
                name,
                DelegationEdit {
                    editor,
                    holder,
                    keyids: delegation.keyids.clone(),
                    new: None,
                },
            );
        }
        Ok(())
    }

    /// The editor of the top-level targets (`None`) or of a delegation.
    fn editor(&mut self, delegation: Option<&String>) -> Result<&mut TargetsEditor, RepoError> {
        match delegation {
            None => Ok(&mut self.top),
            Some(name) => self
                .delegations
                .get_mut(name)
                .map(|edit| &mut edit.editor)
                .ok_or_else(|| RepoError::UnknownDelegation { name: name.clone() }),
        }
    }

    /// Drops the staged removals; each must name a published target.
    fn apply_removals(&mut self, state: &RepoState) -> Result<(), RepoError> {
        for removal in &state.staged.remove {
            let target = target_name(&removal.name)?;
            let listed = match &removal.delegation {
                None => self.top_targets.targets.contains_key(&target),
                Some(name) => self
                    .previous
                    .and_then(|release| release.delegated.get(name))
                    .is_some_and(|role| role.signed.targets.contains_key(&target)),
            };
            if !listed {
                return Err(RepoError::UnknownTarget {
                    name: removal.name.clone(),
                    role: removal.delegation.clone().unwrap_or("targets".into()),
                });
            }
            self.editor(removal.delegation.as_ref())?
                .remove_target(&target);
        }
        Ok(())
    }

    /// Copies each staged file into DIR/targets and lists it.
    async fn apply_additions(&mut self, state: &RepoState, dir: &Path) -> Result<(), RepoError> {
        let files = state
            .staged
            .add
            .iter()
            .map(|add| (add.path.clone(), add.name.clone()))
            .collect();
        let copied = release::copy_targets(dir, files).await?;
        for (add, target) in state.staged.add.iter().zip(copied) {
            self.editor(add.delegation.as_ref())?
                .add_target(add.name.as_str(), target)
                .map_err(RepoError::tough(format!("add target {}", add.name)))?;
        }
        Ok(())
    }
}

/// An editor for a delegation staged by `repo delegate`, and how to delegate to it.
async fn new_delegation(
    signer: &mut Signer,
    name: &str,
    delegation: &Delegation,
) -> Result<DelegationEdit, RepoError> {
    let keys = signer.tuf_keys(&delegation.keyids, name).await?;
    let keyids: Vec<Decoded<Hex>> = keys.keys().cloned().collect();
    let patterns = delegation
        .paths
        .iter()
        .map(|path| {
            PathPattern::new(path.as_str())
                .map_err(RepoError::schema(format!("use the path pattern {path:?}")))
        })
        .collect::<Result<_, _>>()?;
    let paths = PathSet::Paths(patterns);
    let threshold = NonZeroU64::new(delegation.threshold)
        .ok_or_else(|| RepoError::Invalid(format!("delegation {name}: threshold 0")))?;
    // Until the top-level targets lists it, the role's keys come from here.
    let holder = KeyHolder::Delegations(Delegations {
        keys: keys.clone(),
        roles: vec![DelegatedRole {
            name: name.to_owned(),
            keyids: keyids.clone(),
            threshold,
            paths: paths.clone(),
            terminating: false,
            targets: None,
        }],
    });
    let mut empty = Targets::new(
        SPEC_VERSION.into(),
        NonZeroU64::MIN,
        expiry(delegation.expires_days)?,
    );
    empty.delegations = Some(Delegations::new());
    let mut editor = TargetsEditor::from_targets(name, empty, holder.clone());
    editor.version(NonZeroU64::MIN);
    Ok(DelegationEdit {
        editor,
        holder,
        keyids: delegation.keyids.clone(),
        new: Some(NewDelegation {
            paths,
            keys,
            keyids,
            threshold,
        }),
    })
}

/// Builds and signs a release on top of `previous` (none: the first release) into
/// `staging`. With `apply_staged`, the staged changes and new delegations go in;
/// without, targets, snapshot and timestamp are only re-signed (after a rotation).
pub async fn build(
    signer: &mut Signer,
    state: &RepoState,
    dir: &Path,
    root: &Root,
    previous: Option<&Release>,
    staging: &mut Staging,
    apply_staged: bool,
) -> Result<Published, RepoError> {
    let targets_config = state.role(TopRole::Targets)?;
    let top_expires = expiry(targets_config.expires_days)?;
    let mut edits = TargetsEdits::new(root, previous, top_expires);
    if apply_staged {
        edits.add_new_delegations(signer, state).await?;
        edits.open_delegations(state)?;
        edits.apply_removals(state)?;
        edits.apply_additions(state, dir).await?;
    }

    let mut versions = BTreeMap::new();
    let mut snapshot_meta =
        previous.map_or_else(HashMap::new, |release| release.snapshot.signed.meta.clone());
    let TargetsEdits {
        mut top,
        delegations,
        ..
    } = edits;
    for (name, mut edit) in delegations {
        edit.editor
            .expires(expiry(state.delegation(&name)?.expires_days)?);
        let built = edit
            .editor
            .build_targets()
            .map_err(RepoError::tough(format!("build delegation {name}")))?;
        let signed = signer
            .sign(&name, built, &edit.holder, &edit.keyids)
            .await?;
        staging.add(&signed).await?;
        snapshot_meta.insert(format!("{name}.json"), metafile(&signed));
        versions.insert(name.clone(), signed.signed().signed.version.get());
        if let Some(new) = edit.new {
            top.delegate_role(
                signed.signed().clone(),
                new.paths,
                false,
                new.keys,
                new.keyids,
                new.threshold,
            )
            .map_err(RepoError::tough(format!("delegate to {name}")))?;
        }
    }

    let top_version = previous.map_or(NonZeroU64::MIN, |release| {
        next(release.targets.signed.version)
    });
    top.version(top_version).expires(top_expires);
    let built = top
        .build_targets()
        .map_err(RepoError::tough("build targets"))?;
    let signed_targets = signer
        .sign(
            "targets",
            built,
            &KeyHolder::Root(root.clone()),
            &targets_config.keyids,
        )
        .await?;
    staging.add(&signed_targets).await?;
    snapshot_meta.insert("targets.json".into(), metafile(&signed_targets));
    versions.insert("targets".into(), top_version.get());

    let mut snapshot = Snapshot::new(
        SPEC_VERSION.into(),
        previous.map_or(NonZeroU64::MIN, |release| {
            next(release.snapshot.signed.version)
        }),
        expiry(state.role(TopRole::Snapshot)?.expires_days)?,
    );
    snapshot.meta = snapshot_meta;
    let (snapshot_version, timestamp_version) =
        sign_snapshot_and_timestamp(signer, state, root, snapshot, previous, staging).await?;
    versions.insert("snapshot".into(), snapshot_version);
    versions.insert("timestamp".into(), timestamp_version);
    Ok(Published { versions })
}

/// Signs `snapshot`, then a new timestamp pointing at it.
pub async fn sign_snapshot_and_timestamp(
    signer: &mut Signer,
    state: &RepoState,
    root: &Root,
    snapshot: Snapshot,
    previous: Option<&Release>,
    staging: &mut Staging,
) -> Result<(u64, u64), RepoError> {
    let holder = KeyHolder::Root(root.clone());
    let signed_snapshot = signer
        .sign(
            "snapshot",
            snapshot,
            &holder,
            &state.role(TopRole::Snapshot)?.keyids,
        )
        .await?;
    staging.add(&signed_snapshot).await?;
    let mut timestamp = Timestamp::new(
        SPEC_VERSION.into(),
        previous.map_or(NonZeroU64::MIN, |release| {
            next(release.timestamp.signed.version)
        }),
        expiry(state.role(TopRole::Timestamp)?.expires_days)?,
    );
    timestamp
        .meta
        .insert("snapshot.json".into(), metafile(&signed_snapshot));
    let signed_timestamp = sign_timestamp(signer, state, root, timestamp, staging).await?;
    Ok((
        signed_snapshot.signed().signed.version.get(),
        signed_timestamp.signed().signed.version.get(),
    ))
}

pub async fn sign_timestamp(
    signer: &mut Signer,
    state: &RepoState,
    root: &Root,
    timestamp: Timestamp,
    staging: &mut Staging,
) -> Result<SignedRole<Timestamp>, RepoError> {
    let signed = signer
        .sign(
            "timestamp",
            timestamp,
            &KeyHolder::Root(root.clone()),
            &state.role(TopRole::Timestamp)?.keyids,
        )
        .await?;
    staging.add(&signed).await?;
    Ok(signed)
}
