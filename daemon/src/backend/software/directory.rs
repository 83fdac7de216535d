//! The store directory on disk: where each file goes, and the blocking reads and
//! writes the backend hands to [`crate::blocking::run`] so no async worker ever
//! waits on the disk or an fsync.

use super::durable::{Disk, OsDisk};
use super::error::{FileProblem, Result, SoftwareError};
use super::files;
use super::key_file::{StoreFile, StoredKey};
use super::manifest::{file_digest, Entry, Manifest, ManifestKey, Trust, MANIFEST_FILE};
use super::private_dir;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

const STORE_FILE: &str = "store.json";
const KEYS_DIR: &str = "keys";
const KEY_SUFFIX: &str = ".key";
/// Where a new manifest is written before it replaces the old one.
const MANIFEST_STAGED: &str = "manifest.json.new";

/// The keystore's directory layout; files are written through `D` (the real
/// filesystem, or in tests a crash model).
#[derive(Clone, Debug)]
pub struct StoreDir<D = OsDisk> {
    root: PathBuf,
    keys: PathBuf,
    disk: D,
    /// The key manifest ([`super::manifest`]); held while key files are written or
    /// scanned, so a scan never sees a key file its manifest entry has yet to follow.
    trust: Arc<Mutex<Trust>>,
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
        private_dir::ensure_private_dir(root)?;
        private_dir::ensure_private_dir(&keys)?;
        Ok(StoreDir::on(OsDisk, root))
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

    /// Reads one key file by its key ID; `None` when there is no such file. A file
    /// the manifest does not list as it is is refused.
    pub fn read_key(&self, keyid: &str) -> Result<Option<StoredKey>> {
        let path = self.key_path(keyid);
        match std::fs::read(&path) {
            Ok(bytes) => StoredKey::parse(&bytes, keyid)
                .and_then(|key| self.lock_trust().check(keyid, &bytes).map(|()| key))
                .map(Some)
                .map_err(|problem| SoftwareError::Unreadable { path, problem }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(SoftwareError::io("reading", path)(error)),
        }
    }

    /// Reads every key file; damaged or foreign files, and files the manifest does
    /// not list as they are, are reported by name and skipped, as are key files the
    /// manifest lists that are gone; temporary files of interrupted writes removed.
    pub fn scan(&self) -> Result<Scan> {
        let trust = self.lock_trust();
        let entries =
            std::fs::read_dir(&self.keys).map_err(SoftwareError::io("reading", &self.keys))?;
        let mut keys = HashMap::new();
        let mut unreadable = Vec::new();
        let mut present = BTreeSet::new();
        for entry in entries {
            let entry = entry.map_err(SoftwareError::io("reading", &self.keys))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(files::TEMP_PREFIX) {
                tracing::info!(file = %path.display(), "removing a temporary file left by an interrupted write");
                files::remove_file_durably(&self.disk, &path)?;
                continue;
            }
            let Some(keyid) = name.strip_suffix(KEY_SUFFIX) else {
                tracing::warn!(file = %path.display(), "ignoring a file that is not a key file");
                continue;
            };
            present.insert(keyid.to_owned());
            let parsed = std::fs::read(&path)
                .map_err(FileProblem::Read)
                .and_then(|bytes| {
                    let key = StoredKey::parse(&bytes, keyid)?;
                    trust.check(keyid, &bytes)?;
                    Ok(key)
                });
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
        for problem in trust.missing(&present) {
            tracing::error!(store = %self.root.display(), %problem, "key manifest");
            unreadable.push(problem);
        }
        unreadable.sort();
        Ok(Scan { keys, unreadable })
    }
}

/// Writing: every step goes through the [`Disk`].
impl<D: Disk> StoreDir<D> {
    /// The layout under `root` (whose directories exist), written through `disk`.
    pub fn on(disk: D, root: &Path) -> Self {
        StoreDir {
            root: root.to_path_buf(),
            keys: root.join(KEYS_DIR),
            disk,
            trust: Arc::default(),
        }
    }

    /// Writes a new `store.json` (never replacing one).
    pub fn write_store_file(&self, bytes: &[u8]) -> Result<()> {
        files::write_new_file_atomically(&self.disk, &self.root, STORE_FILE, bytes)
    }

    /// The file of key `keyid`.
    pub fn key_path(&self, keyid: &str) -> PathBuf {
        self.keys.join(format!("{keyid}{KEY_SUFFIX}"))
    }

    /// Writes a new key file (never replacing one), listed in the manifest: first
    /// as tentative, then confirmed once the file is durable.
    pub fn write_key(&self, keyid: &str, bytes: &[u8]) -> Result<()> {
        let mut trust = self.lock_trust();
        if let Trust::Trusted { key, manifest } = &mut *trust {
            let entry = Entry::tentative(file_digest(bytes));
            manifest.keys.insert(keyid.to_owned(), entry);
            if let Err(error) = self.write_manifest(&manifest.encode(key)) {
                manifest.keys.remove(keyid);
                return Err(error);
            }
        }
        // On failure the tentative entry stays: it allows the file to be absent.
        files::write_new_file_atomically(
            &self.disk,
            &self.keys,
            &format!("{keyid}{KEY_SUFFIX}"),
            bytes,
        )?;
        if let Trust::Trusted { key, manifest } = &mut *trust {
            if let Some(entry) = manifest.keys.get_mut(keyid) {
                entry.tentative = false;
            }
            self.confirm(&manifest.encode(key));
        }
        Ok(())
    }

    /// Removes a key file durably, taking it off the manifest: marked tentative
    /// before the file goes, dropped after.
    pub fn remove_key(&self, keyid: &str) -> Result<()> {
        let mut trust = self.lock_trust();
        match &mut *trust {
            Trust::Trusted { key, manifest } => {
                if let Some(entry) = manifest.keys.get_mut(keyid) {
                    if !entry.tentative {
                        entry.tentative = true;
                        if let Err(error) = self.write_manifest(&manifest.encode(key)) {
                            if let Some(entry) = manifest.keys.get_mut(keyid) {
                                entry.tentative = false;
                            }
                            // Deleting keys is how a full disk is freed, and the
                            // manifest cannot be rewritten before something is: the
                            // file goes first then. A crash before the manifest
                            // follows leaves it listing a file that is gone, which
                            // the next start reports; no key is lost.
                            if !matches!(error, SoftwareError::NoSpace { .. }) {
                                return Err(error);
                            }
                            tracing::warn!(%error, keyid, "disk full: removing the key file before updating the key manifest");
                        }
                    }
                }
            }
            Trust::Unknown { deleted } => {
                deleted.insert(keyid.to_owned());
            }
            Trust::Untrusted(_) => {}
        }
        files::remove_file_durably(&self.disk, &self.key_path(keyid))?;
        if let Trust::Trusted { key, manifest } = &mut *trust {
            if manifest.keys.remove(keyid).is_some() {
                self.confirm(&manifest.encode(key));
            }
        }
        Ok(())
    }

    /// Writes a manifest that only settles tentative entries: the one on disk already
    /// describes the store, so a failure here is logged, not returned.
    fn confirm(&self, bytes: &[u8]) {
        if let Err(error) = self.write_manifest(bytes) {
            tracing::warn!(%error, "could not update the key manifest; it is settled at the next key change or start");
        }
    }

    /// Checks the manifest with the MAC key derived from the store key, the first
    /// time the daemon has that key: a store without a manifest gets one listing
    /// its key files as they are now, and entries an interrupted write or delete
    /// left tentative are settled by what is on disk. Returns whether this call
    /// established it (a scan then applies it to the keys already loaded).
    pub fn establish_manifest(&self, key: ManifestKey) -> Result<bool> {
        let mut trust = self.lock_trust();
        let Trust::Unknown { deleted } = &*trust else {
            return Ok(false);
        };
        let path = self.root.join(MANIFEST_FILE);
        let established = match std::fs::read(&path) {
            Ok(bytes) => match Manifest::decode(&bytes, &key) {
                Ok(mut manifest) => {
                    let before = manifest.clone();
                    manifest.keys.retain(|keyid, _| !deleted.contains(keyid));
                    self.settle_tentative(&mut manifest)?;
                    if manifest != before {
                        self.write_manifest(&manifest.encode(&key))?;
                    }
                    Trust::Trusted { key, manifest }
                }
                Err(problem) => {
                    let problem = SoftwareError::Unreadable { path, problem }.to_string();
                    tracing::error!(%problem, "key manifest not trusted: key files are loaded unchecked");
                    Trust::Untrusted(problem)
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let manifest = self.manifest_of_present_files()?;
                if manifest.keys.is_empty() {
                    tracing::info!(store = %self.root.display(), "created the key manifest");
                } else {
                    tracing::warn!(store = %self.root.display(), keys = manifest.keys.len(), "the store had no key manifest: recorded the key files present now (expected once for a store made before manifests; otherwise someone removed it)");
                }
                self.write_manifest(&manifest.encode(&key))?;
                Trust::Trusted { key, manifest }
            }
            Err(error) => return Err(SoftwareError::io("reading", path)(error)),
        };
        *trust = established;
        Ok(true)
    }

    /// A tentative entry becomes a plain one if its file is there with its digest,
    /// and goes if the file is absent (the write or delete it announced was cut
    /// short); a file with other bytes keeps it tentative, and the scan reports it.
    fn settle_tentative(&self, manifest: &mut Manifest) -> Result<()> {
        let mut absent = Vec::new();
        for (keyid, entry) in manifest.keys.iter_mut().filter(|(_, e)| e.tentative) {
            let path = self.key_path(keyid);
            match std::fs::read(&path) {
                Ok(bytes) if file_digest(&bytes) == entry.sha256 => entry.tentative = false,
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    absent.push(keyid.clone());
                }
                Err(error) => return Err(SoftwareError::io("reading", path)(error)),
            }
        }
        for keyid in absent {
            manifest.keys.remove(&keyid);
        }
        Ok(())
    }

    /// A manifest of the key files in `keys/` now.
    fn manifest_of_present_files(&self) -> Result<Manifest> {
        let mut manifest = Manifest::default();
        let entries =
            std::fs::read_dir(&self.keys).map_err(SoftwareError::io("reading", &self.keys))?;
        for entry in entries {
            let entry = entry.map_err(SoftwareError::io("reading", &self.keys))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(keyid) = name.strip_suffix(KEY_SUFFIX) else {
                continue;
            };
            if name.starts_with(files::TEMP_PREFIX) {
                continue;
            }
            let path = entry.path();
            let bytes = std::fs::read(&path).map_err(SoftwareError::io("reading", &path))?;
            let entry = Entry {
                sha256: file_digest(&bytes),
                tentative: false,
            };
            manifest.keys.insert(keyid.to_owned(), entry);
        }
        Ok(manifest)
    }

    /// Replaces `manifest.json` atomically and durably: the new bytes are written
    /// as a new file (the atomic write path), renamed over the old manifest, and
    /// the directory synced.
    fn write_manifest(&self, bytes: &[u8]) -> Result<()> {
        let staged = self.root.join(MANIFEST_STAGED);
        match self.disk.remove_file(&staged) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(SoftwareError::io("removing", staged)(error)),
        }
        files::write_new_file_atomically(&self.disk, &self.root, MANIFEST_STAGED, bytes)?;
        let target = self.root.join(MANIFEST_FILE);
        self.disk
            .rename(&staged, &target)
            .map_err(SoftwareError::io("renaming into place", &target))?;
        self.disk
            .sync_dir(&self.root)
            .map_err(SoftwareError::io("syncing directory", &self.root))
    }

    fn lock_trust(&self) -> MutexGuard<'_, Trust> {
        self.trust.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ManifestKey {
        ManifestKey::derive(&[9; 32])
    }

    fn manifest_on_disk(root: &Path) -> Manifest {
        let bytes = std::fs::read(root.join(MANIFEST_FILE)).unwrap();
        Manifest::decode(&bytes, &key()).unwrap()
    }

    #[test]
    fn key_files_are_listed_when_written_and_unlisted_when_removed() {
        let root = tempfile::tempdir().unwrap();
        let dir = StoreDir::open(root.path()).unwrap();
        dir.write_key("aa", b"before the manifest").unwrap();
        assert!(
            !root.path().join(MANIFEST_FILE).exists(),
            "no manifest without its key"
        );
        assert!(dir.establish_manifest(key()).unwrap());
        assert!(!dir.establish_manifest(key()).unwrap(), "only once");
        dir.write_key("bb", b"file bb").unwrap();
        let listed = manifest_on_disk(root.path());
        assert_eq!(
            listed.keys.keys().collect::<Vec<_>>(),
            ["aa", "bb"],
            "the file present at the first unlock, and the new one"
        );
        assert!(listed.keys.values().all(|entry| !entry.tentative));
        assert_eq!(listed.keys["bb"].sha256, file_digest(b"file bb"));
        dir.remove_key("aa").unwrap();
        assert_eq!(
            manifest_on_disk(root.path())
                .keys
                .keys()
                .collect::<Vec<_>>(),
            ["bb"]
        );
        assert!(!root.path().join(MANIFEST_STAGED).exists());
    }

    #[test]
    fn an_interrupted_write_or_delete_reads_as_a_crash_not_as_tampering() {
        let root = tempfile::tempdir().unwrap();
        let dir = StoreDir::open(root.path()).unwrap();
        dir.establish_manifest(key()).unwrap();
        dir.write_key("aa", b"file aa").unwrap();
        dir.write_key("bb", b"file bb").unwrap();
        // Killed after announcing a new key "cc" but before writing its file, and
        // after announcing the deletion of "bb" but before unlinking it.
        let mut manifest = manifest_on_disk(root.path());
        manifest
            .keys
            .insert("cc".into(), Entry::tentative(file_digest(b"file cc")));
        manifest.keys.get_mut("bb").unwrap().tentative = true;
        std::fs::write(root.path().join(MANIFEST_FILE), manifest.encode(&key())).unwrap();

        let restarted = StoreDir::open(root.path()).unwrap();
        restarted.establish_manifest(key()).unwrap();
        let settled = manifest_on_disk(root.path());
        assert_eq!(settled.keys.keys().collect::<Vec<_>>(), ["aa", "bb"]);
        assert!(settled.keys.values().all(|entry| !entry.tentative));

        // Whereas a listed file removed behind the daemon's back is reported.
        std::fs::remove_file(restarted.key_path("aa")).unwrap();
        let scan = restarted.scan().unwrap();
        assert!(
            scan.unreadable
                .iter()
                .any(|line| line.starts_with("aa.key: listed in the key manifest but gone")),
            "{:?}",
            scan.unreadable
        );
        assert!(
            !scan
                .unreadable
                .iter()
                .any(|line| line.starts_with("cc.key")),
            "{:?}",
            scan.unreadable
        );
    }
}
