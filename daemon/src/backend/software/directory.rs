//! The store directory on disk: where each file goes, and the blocking reads and
//! writes the backend hands to [`crate::blocking::run`] so no async worker ever
//! waits on the disk or an fsync.

use super::error::{FileProblem, Result, SoftwareError};
use super::files;
use super::key_file::{StoreFile, StoredKey};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const STORE_FILE: &str = "store.json";
const KEYS_DIR: &str = "keys";
const KEY_SUFFIX: &str = ".key";

/// The keystore's directory layout.
#[derive(Clone, Debug)]
pub struct StoreDir {
    root: PathBuf,
    keys: PathBuf,
}

/// What a scan of `keys/` found.
pub struct Scan {
    pub keys: HashMap<String, Arc<StoredKey>>,
    /// Files that could not be used, each "NAME: reason", sorted.
    pub unreadable: Vec<String>,
}

impl StoreDir {
    /// Creates the directories (mode 0700) if needed.
    pub fn open(root: &Path) -> Result<Self> {
        let keys = root.join(KEYS_DIR);
        files::ensure_private_dir(root)?;
        files::ensure_private_dir(&keys)?;
        Ok(StoreDir {
            root: root.to_path_buf(),
            keys,
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `store.json` exists.
    pub fn has_store_file(&self) -> bool {
        self.root.join(STORE_FILE).exists()
    }

    /// Reads `store.json`; `None` for a new store.
    pub fn read_store_file(&self) -> Result<Option<StoreFile>> {
        let path = self.root.join(STORE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => StoreFile::parse(&bytes)
                .map(Some)
                .map_err(|problem| SoftwareError::Unreadable { path, problem }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(SoftwareError::io("reading", path)(error)),
        }
    }

    /// Writes a new `store.json` (never replacing one).
    pub fn write_store_file(&self, bytes: &[u8]) -> Result<()> {
        files::write_new_file_atomically(&self.root, STORE_FILE, bytes)
    }

    /// The file of key `keyid`.
    pub fn key_path(&self, keyid: &str) -> PathBuf {
        self.keys.join(format!("{keyid}{KEY_SUFFIX}"))
    }

    /// Writes a new key file (never replacing one).
    pub fn write_key(&self, keyid: &str, bytes: &[u8]) -> Result<()> {
        files::write_new_file_atomically(&self.keys, &format!("{keyid}{KEY_SUFFIX}"), bytes)
    }

    /// Removes a key file durably.
    pub fn remove_key(&self, keyid: &str) -> Result<()> {
        files::remove_file_durably(&self.key_path(keyid))
    }

    /// Reads one key file by its key ID; `None` when there is no such file.
    pub fn read_key(&self, keyid: &str) -> Result<Option<StoredKey>> {
        let path = self.key_path(keyid);
        match std::fs::read(&path) {
            Ok(bytes) => StoredKey::parse(&bytes, keyid)
                .map(Some)
                .map_err(|problem| SoftwareError::Unreadable { path, problem }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(SoftwareError::io("reading", path)(error)),
        }
    }

    /// Reads every key file; damaged or foreign files are reported by name and
    /// skipped, temporary files of interrupted writes removed.
    pub fn scan(&self) -> Result<Scan> {
        let entries =
            std::fs::read_dir(&self.keys).map_err(SoftwareError::io("reading", &self.keys))?;
        let mut keys = HashMap::new();
        let mut unreadable = Vec::new();
        for entry in entries {
            let entry = entry.map_err(SoftwareError::io("reading", &self.keys))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(files::TEMP_PREFIX) {
                tracing::info!(file = %path.display(), "removing a temporary file left by an interrupted write");
                files::remove_file_durably(&path)?;
                continue;
            }
            let Some(keyid) = name.strip_suffix(KEY_SUFFIX) else {
                tracing::warn!(file = %path.display(), "ignoring a file that is not a key file");
                continue;
            };
            let parsed = std::fs::read(&path)
                .map_err(FileProblem::Read)
                .and_then(|bytes| StoredKey::parse(&bytes, keyid));
            match parsed {
                Ok(key) => {
                    keys.insert(keyid.to_owned(), Arc::new(key));
                }
                Err(problem) => {
                    tracing::error!(file = %path.display(), %problem, "skipping unreadable key file");
                    unreadable.push(format!("{name}: {problem}"));
                }
            }
        }
        unreadable.sort();
        Ok(Scan { keys, unreadable })
    }
}
