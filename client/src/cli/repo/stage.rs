//! `repo add` and `repo remove`: stage target changes in the state file. Nothing is
//! signed until `repo publish`.

use super::error::RepoError;
use super::release;
use super::release::target_name;
use super::state::{RepoState, StagedRemoval, StagedTarget};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Stages `files` for the top-level targets or `delegation`, each published under
/// its file name, or with `relative_to`, under its path below that directory
/// (`pkg/app.tar.gz`). Returns how many changes are staged in all.
pub fn add(
    dir: &Path,
    files: &[PathBuf],
    delegation: Option<&str>,
    relative_to: Option<&Path>,
) -> Result<usize, RepoError> {
    let (mut state, _lock) = RepoState::load_for_update(dir)?;
    if let Some(name) = delegation {
        state.delegation(name)?;
    }
    let base = relative_to
        .map(|base| {
            std::fs::canonicalize(base).map_err(|_| {
                RepoError::Invalid(format!(
                    "--relative-to {}: no such directory: give the directory the target paths start from",
                    base.display()
                ))
            })
        })
        .transpose()?;
    let mut staged = Vec::new();
    for file in files {
        let path = std::fs::canonicalize(file)
            .map_err(|_| RepoError::FileNotFound { path: file.clone() })?;
        if !path.is_file() {
            return Err(RepoError::FileNotFound { path: file.clone() });
        }
        let name = published_name(file, &path, base.as_deref())?;
        target_name(&name)?;
        staged.push(StagedTarget {
            name,
            path,
            delegation: delegation.map(str::to_owned),
        });
    }
    // A file staged again under the same name replaces the earlier one.
    let restaged: HashSet<(&str, Option<&str>)> = staged
        .iter()
        .map(|target| (target.name.as_str(), target.delegation.as_deref()))
        .collect();
    state
        .staged
        .add
        .retain(|other| !restaged.contains(&(other.name.as_str(), other.delegation.as_deref())));
    state.staged.add.extend(staged);
    state.save(dir)?;
    Ok(state.staged.add.len() + state.staged.remove.len())
}

/// The target name of the file at `path` (`file` as the user gave it): its file
/// name, or its path below `base` with `/` between the parts.
fn published_name(file: &Path, path: &Path, base: Option<&Path>) -> Result<String, RepoError> {
    let relative = match base {
        None => Path::new(path.file_name().unwrap_or_default()),
        Some(base) => path.strip_prefix(base).map_err(|_| {
            RepoError::Invalid(format!(
                "{} is not under --relative-to {}: stage it from that directory, or without --relative-to",
                file.display(),
                base.display()
            ))
        })?,
    };
    let parts: Option<Vec<&str>> = relative.iter().map(|part| part.to_str()).collect();
    parts.map(|parts| parts.join("/")).ok_or_else(|| {
        RepoError::Invalid(format!(
            "{}: the file name is not UTF-8; rename the file",
            file.display()
        ))
    })
}

/// Stages the removal of published targets (or drops them from the stage).
pub fn remove(dir: &Path, names: &[String], delegation: Option<&str>) -> Result<usize, RepoError> {
    let (mut state, _lock) = RepoState::load_for_update(dir)?;
    if let Some(name) = delegation {
        state.delegation(name)?;
    }
    let current = release::load(dir)?;
    let role = delegation.unwrap_or("targets");
    for name in names {
        let target = target_name(name)?;
        let before = state.staged.add.len();
        state
            .staged
            .add
            .retain(|add| !(add.name == *name && add.delegation.as_deref() == delegation));
        let published = match delegation {
            None => current.targets.signed.targets.contains_key(&target),
            Some(role) => current
                .delegated
                .get(role)
                .is_some_and(|targets| targets.signed.targets.contains_key(&target)),
        };
        if published {
            state.staged.remove.push(StagedRemoval {
                name: name.clone(),
                delegation: delegation.map(str::to_owned),
            });
        } else if state.staged.add.len() == before {
            return Err(RepoError::UnknownTarget {
                name: name.clone(),
                role: role.to_owned(),
            });
        }
    }
    state.save(dir)?;
    Ok(state.staged.add.len() + state.staged.remove.len())
}
