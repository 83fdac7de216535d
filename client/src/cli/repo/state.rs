//! `DIR/tufkey-repo.json`: what the workflow remembers between commands (the GUN,
//! each role's keys, thresholds and expiry, card labels, delegations, and the changes
//! staged for the next `publish`). The signed metadata itself lives in `DIR/metadata/`.

use super::error::RepoError;
use super::lock::{lock, RepoLock};
use super::role::TopRole;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The state file's name inside DIR.
pub const STATE_FILE: &str = "tufkey-repo.json";

/// The whole state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoState {
    pub gun: String,
    /// root, targets, snapshot, timestamp.
    pub roles: BTreeMap<TopRole, RoleConfig>,
    /// Names given to YubiKeys, by serial, for "insert YubiKey SERIAL (LABEL)".
    #[serde(default)]
    pub card_labels: BTreeMap<u32, String>,
    /// Delegated targets roles (published or staged), by name.
    #[serde(default)]
    pub delegations: BTreeMap<String, Delegation>,
    /// What the next `publish` changes.
    #[serde(default)]
    pub staged: Staged,
}

/// One role's keys, threshold and lifetime.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleConfig {
    pub keyids: Vec<String>,
    pub threshold: u64,
    pub expires_days: u32,
}

/// A delegated targets role of the top-level targets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delegation {
    pub keyids: Vec<String>,
    pub threshold: u64,
    pub paths: Vec<String>,
    pub expires_days: u32,
    /// Whether a release already carries it.
    pub published: bool,
}

/// Changes waiting for `publish`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Staged {
    #[serde(default)]
    pub add: Vec<StagedTarget>,
    #[serde(default)]
    pub remove: Vec<StagedRemoval>,
}

impl Staged {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// A file to publish as target `name` (in `delegation`, else the top-level targets).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagedTarget {
    pub name: String,
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<String>,
}

/// A target to drop from the next release.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagedRemoval {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<String>,
}

impl RepoState {
    /// The state of the repository in `dir`.
    pub fn load(dir: &Path) -> Result<Self, RepoError> {
        let path = state_path(dir);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(RepoError::NotARepository {
                    dir: dir.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(RepoError::Io {
                    action: "reading",
                    path,
                    source,
                })
            }
        };
        serde_json::from_slice(&bytes).map_err(|source| RepoError::StateDamaged { path, source })
    }

    /// The state, with DIR's lock held: for commands that change the repository.
    pub fn load_for_update(dir: &Path) -> Result<(Self, RepoLock), RepoError> {
        // A DIR that is not a repository gets that error, not one about the lock file.
        Self::load(dir)?;
        let lock = lock(dir)?;
        Ok((Self::load(dir)?, lock))
    }

    /// Writes the state atomically (temp file, fsync, rename).
    pub fn save(&self, dir: &Path) -> Result<(), RepoError> {
        let path = state_path(dir);
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| RepoError::Io {
                action,
                path,
                source,
            }
        };
        let mut bytes = serde_json::to_vec_pretty(self).map_err(RepoError::StateEncode)?;
        bytes.push(b'\n');
        let mut temp = tempfile::NamedTempFile::new_in(dir)
            .map_err(io("creating a temporary file in", dir))?;
        temp.write_all(&bytes)
            .and_then(|()| temp.as_file().sync_all())
            .map_err(io("writing", temp.path()))?;
        temp.persist(&path)
            .map_err(|error| io("writing", &path)(error.error))?;
        Ok(())
    }

    /// The configuration of a top-level role (always present after `init`).
    pub fn role(&self, role: TopRole) -> Result<&RoleConfig, RepoError> {
        self.roles.get(&role).ok_or(RepoError::RoleMissing { role })
    }

    /// The delegation `name`, or an error naming the fix.
    pub fn delegation(&self, name: &str) -> Result<&Delegation, RepoError> {
        self.delegations
            .get(name)
            .ok_or_else(|| RepoError::UnknownDelegation {
                name: name.to_owned(),
            })
    }
}

/// `DIR/tufkey-repo.json`.
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}
