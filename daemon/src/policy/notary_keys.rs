//! Which keys the Notary API created: the only keys it may reach unless a policy
//! grant lists a key ID.
//!
//! The record lives with the daemon, not with the keys: a list of TUF key IDs in
//! `STORE/notary-keys.json`, rewritten atomically (temp file, fsync, rename, fsync the
//! directory) on every change. Keeping it out of `KeyRecord` means no backend has to
//! persist a field it does not otherwise need (a YubiKey slot has no room for one),
//! and a key that leaves its backend leaves this list only by `DeleteKey`, which
//! also removes it here. Keys created through the Notary API before this list
//! existed are not in it; grant them with `keys = [...]` in the policy.

use crate::blocking;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The file's name under the store directory.
pub const FILE_NAME: &str = "notary-keys.json";

/// The Notary API's keys, by TUF key ID.
#[derive(Debug)]
pub struct NotaryKeys {
    /// `None`: kept in memory only (an embedded server without a store).
    file: Option<PathBuf>,
    ids: RwLock<Arc<BTreeSet<String>>>,
    /// Serialises writers so that two changes cannot lose one another.
    writing: tokio::sync::Mutex<()>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    /// TUF key IDs of the keys the Notary API created.
    keys: BTreeSet<String>,
}

impl NotaryKeys {
    /// The list in `file` (empty if the file does not exist yet); `None` keeps it in
    /// memory only.
    pub fn load(file: Option<PathBuf>) -> Result<Self> {
        let ids = match &file {
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => {
                    serde_json::from_slice::<OnDisk>(&bytes)
                        .map_err(|error| {
                            Error::Config(format!(
                            "{}: not a list of the Notary API's keys ({error}); restore it from a \
                                 backup, or move it away to start an empty list (the Notary API \
                                 then reaches no existing key until a policy grant lists it)",
                            path.display()
                        ))
                        })?
                        .keys
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
                Err(source) => {
                    return Err(Error::Io {
                        action: "reading",
                        path: path.clone(),
                        source,
                    })
                }
            },
            None => BTreeSet::new(),
        };
        Ok(NotaryKeys {
            file,
            ids: RwLock::new(Arc::new(ids)),
            writing: tokio::sync::Mutex::new(()),
        })
    }

    /// Whether the Notary API created the key with this TUF key ID.
    pub fn contains(&self, keyid: &str) -> bool {
        self.snapshot().contains(keyid)
    }

    /// Records that the Notary API created `keyid`; durable when this returns.
    pub async fn add(&self, keyid: &str) -> Result<()> {
        self.change(|ids| {
            ids.insert(keyid.to_owned());
        })
        .await
    }

    /// Forgets `keyid` (its key was deleted); durable when this returns.
    pub async fn remove(&self, keyid: &str) -> Result<()> {
        self.change(|ids| {
            ids.remove(keyid);
        })
        .await
    }

    fn snapshot(&self) -> Arc<BTreeSet<String>> {
        match self.ids.read() {
            Ok(ids) => ids.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    async fn change(&self, edit: impl FnOnce(&mut BTreeSet<String>)) -> Result<()> {
        let _writing = self.writing.lock().await;
        let mut ids = (*self.snapshot()).clone();
        edit(&mut ids);
        if let Some(file) = &self.file {
            let bytes = serde_json::to_vec_pretty(&OnDisk { keys: ids.clone() })
                .map_err(|error| Error::Config(format!("encoding the Notary key list: {error}")))?;
            let file = file.clone();
            blocking::run(move || replace_atomically(&file, &bytes)).await?;
        }
        match self.ids.write() {
            Ok(mut current) => *current = Arc::new(ids),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(ids),
        }
        Ok(())
    }
}

/// Replaces `path` with `bytes` so that it is always either the old or the new file.
fn replace_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-notary-keys-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(Error::io("creating a temporary file in", dir))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(Error::io("writing", temp.path().to_path_buf()))?;
    temp.persist(path)
        .map_err(|error| Error::io("renaming into place", path)(error.error))?;
    std::fs::File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(Error::io("syncing directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_list_survives_a_restart_and_forgets_deleted_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        let keys = NotaryKeys::load(Some(file.clone())).unwrap();
        assert!(!keys.contains("aa"));
        keys.add("aa").await.unwrap();
        keys.add("bb").await.unwrap();
        keys.remove("aa").await.unwrap();
        let reloaded = NotaryKeys::load(Some(file.clone())).unwrap();
        assert!(!reloaded.contains("aa"));
        assert!(reloaded.contains("bb"));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name != FILE_NAME)
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_damaged_list_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        std::fs::write(&file, b"{\"keys\": 3}").unwrap();
        let error = NotaryKeys::load(Some(file)).unwrap_err().to_string();
        assert!(
            error.contains("not a list of the Notary API's keys"),
            "{error}"
        );
        assert!(error.contains("move it away"), "{error}");
    }
}
