//! [`BackupLog`]: when each key was last put into a backup, kept across restarts.
//!
//! `key show` reports it, and `key move --to-yubikey` refuses to delete a software
//! key that no backup covers. A backup is a file the daemon hands out and never sees
//! again, so the daemon remembers, per key, the newest backup that held it (its time
//! and the SHA-256 of the bundle, to match against a file the operator still has).
//! The file holds no secrets (key IDs, times, hashes) but is written owner-only and
//! atomically all the same: it is either the old or the new version, never half.

use super::MigrationError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What the file says its layout is, so a later daemon can tell old from new.
const FORMAT: &str = "tufkey-backup-log";
const VERSION: u32 = 1;

/// The record of the newest backup of each key, persisted in a small JSON file.
pub struct BackupLog {
    path: PathBuf,
    /// Guards the file too: writers hold it from reading the state to the rename.
    latest: Mutex<BTreeMap<String, Covered>>,
}

/// The newest backup that held one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Covered {
    /// When the backup was made (RFC 3339).
    at: String,
    /// SHA-256 of the bundle file, hex.
    bundle_sha256: String,
}

/// The file's JSON layout.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    format: String,
    version: u32,
    keys: BTreeMap<String, Covered>,
}

impl BackupLog {
    /// Reads the log at `path`; a missing file is an empty log (no backup made yet).
    pub fn open(path: &Path) -> Result<Self, MigrationError> {
        let latest = match std::fs::read(path) {
            Ok(bytes) => decode(&bytes, path)?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(MigrationError::BackupLogIo {
                    action: "reading",
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(BackupLog {
            path: path.to_path_buf(),
            latest: Mutex::new(latest),
        })
    }

    /// Notes that the bundle with SHA-256 `bundle_sha256`, made at `at` (RFC 3339),
    /// covers `keyids`. A key keeps its newest backup: recording an older one changes
    /// nothing for it. The file is replaced atomically before memory changes, so a
    /// failed write leaves both as they were.
    pub fn record(
        &self,
        keyids: &[String],
        bundle_sha256: &str,
        at: &str,
    ) -> Result<(), MigrationError> {
        let made = parse_time(at).map_err(|source| MigrationError::BackupTimeInvalid {
            at: at.to_string(),
            source,
        })?;
        let mut latest = self.lock();
        let mut updated = latest.clone();
        for keyid in keyids {
            let newer = updated
                .get(keyid)
                .and_then(|covered| parse_time(&covered.at).ok())
                .is_none_or(|previous| made >= previous);
            if newer {
                let covered = Covered {
                    at: at.to_string(),
                    bundle_sha256: bundle_sha256.to_string(),
                };
                updated.insert(keyid.clone(), covered);
            }
        }
        replace_atomically(&self.path, &encode(&updated)?)?;
        *latest = updated;
        Ok(())
    }

    /// When the newest backup holding `keyid` was made (RFC 3339), if any.
    pub fn last_backup(&self, keyid: &str) -> Option<String> {
        self.lock().get(keyid).map(|covered| covered.at.clone())
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Covered>> {
        // A panic while holding the lock left the map as before or fully updated.
        self.latest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn parse_time(at: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(at, &Rfc3339)
}

fn decode(bytes: &[u8], path: &Path) -> Result<BTreeMap<String, Covered>, MigrationError> {
    let damaged = |problem: String| MigrationError::BackupLogDamaged {
        path: path.to_path_buf(),
        problem,
        source: None,
    };
    let on_disk: OnDisk =
        serde_json::from_slice(bytes).map_err(|source| MigrationError::BackupLogDamaged {
            path: path.to_path_buf(),
            problem: format!("not the JSON layout of a backup log: {source}"),
            source: Some(source),
        })?;
    if on_disk.format != FORMAT {
        return Err(damaged(format!(
            "its format is {:?}, not {FORMAT:?}",
            on_disk.format
        )));
    }
    if on_disk.version != VERSION {
        return Err(damaged(format!(
            "it is version {} of the format, this daemon reads version {VERSION}",
            on_disk.version
        )));
    }
    Ok(on_disk.keys)
}

fn encode(keys: &BTreeMap<String, Covered>) -> Result<Vec<u8>, MigrationError> {
    let on_disk = OnDisk {
        format: FORMAT.to_string(),
        version: VERSION,
        keys: keys.clone(),
    };
    serde_json::to_vec_pretty(&on_disk).map_err(MigrationError::BackupLogEncode)
}

/// Replaces `path` with `bytes` so that it is always either the old or the new file:
/// temp file (0600) in the same directory -> fsync -> rename -> fsync the directory.
fn replace_atomically(path: &Path, bytes: &[u8]) -> Result<(), MigrationError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| MigrationError::BackupLogIo {
            action,
            path,
            source,
        }
    };
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-backup-log-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(io("creating a temporary file in", dir))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(io("writing", temp.path()))?;
    temp.persist(path)
        .map_err(|error| io("renaming into place", path)(error.error))?;
    std::fs::File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io("syncing directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn ids(keyids: &[&str]) -> Vec<String> {
        keyids.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn a_missing_file_is_an_empty_log_and_is_not_created_by_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backups.json");
        let log = BackupLog::open(&path).unwrap();
        assert_eq!(log.last_backup("aa"), None);
        assert!(!path.exists());
    }

    #[test]
    fn the_log_survives_a_reopen_in_an_owner_only_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backups.json");
        let log = BackupLog::open(&path).unwrap();
        log.record(&ids(&["aa", "bb"]), "11", "2025-01-02T03:04:05Z")
            .unwrap();
        drop(log);

        let reopened = BackupLog::open(&path).unwrap();
        assert_eq!(
            reopened.last_backup("aa").as_deref(),
            Some("2025-01-02T03:04:05Z")
        );
        assert_eq!(
            reopened.last_backup("bb").as_deref(),
            Some("2025-01-02T03:04:05Z")
        );
        assert_eq!(reopened.last_backup("cc"), None);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name != "backups.json")
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[test]
    fn last_backup_is_the_newest_whatever_the_order_of_recording() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backups.json");
        let log = BackupLog::open(&path).unwrap();
        log.record(&ids(&["aa", "bb"]), "11", "2025-01-02T00:00:00Z")
            .unwrap();
        log.record(&ids(&["aa"]), "22", "2025-03-04T00:00:00Z")
            .unwrap();
        // An older backup recorded late (another offset, same older instant) changes nothing.
        log.record(&ids(&["aa", "bb"]), "33", "2025-02-01T01:00:00+01:00")
            .unwrap();

        assert_eq!(
            log.last_backup("aa").as_deref(),
            Some("2025-03-04T00:00:00Z")
        );
        assert_eq!(
            log.last_backup("bb").as_deref(),
            Some("2025-02-01T01:00:00+01:00")
        );
        let reopened = BackupLog::open(&path).unwrap();
        assert_eq!(
            reopened.last_backup("aa").as_deref(),
            Some("2025-03-04T00:00:00Z")
        );
    }

    #[test]
    fn a_time_that_is_not_rfc3339_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backups.json");
        let log = BackupLog::open(&path).unwrap();
        let error = log.record(&ids(&["aa"]), "11", "yesterday").unwrap_err();
        assert!(matches!(error, MigrationError::BackupTimeInvalid { .. }));
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert_eq!(log.last_backup("aa"), None);
        assert!(!path.exists());
    }

    #[test]
    fn a_damaged_file_is_refused_naming_the_path_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backups.json");
        std::fs::write(&path, b"{\"format\": \"tufkey-backup-log\", \"vers").unwrap();
        let error = BackupLog::open(&path).err().unwrap();
        assert_eq!(error.kind(), ErrorKind::DataLoss);
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("move it aside"), "{message}");
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn a_file_of_another_format_or_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backups.json");
        std::fs::write(
            &path,
            br#"{"format": "tufkey-backup-log", "version": 2, "keys": {}}"#,
        )
        .unwrap();
        let error = BackupLog::open(&path).err().unwrap();
        assert!(error.to_string().contains("version 2"), "{error}");
        std::fs::write(&path, br#"{"format": "other", "version": 1, "keys": {}}"#).unwrap();
        let error = BackupLog::open(&path).err().unwrap();
        assert!(matches!(error, MigrationError::BackupLogDamaged { .. }));
    }

    #[test]
    fn a_failed_write_leaves_memory_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone").join("backups.json");
        let log = BackupLog::open(&path).unwrap();
        let error = log
            .record(&ids(&["aa"]), "11", "2025-01-02T03:04:05Z")
            .unwrap_err();
        assert!(matches!(error, MigrationError::BackupLogIo { .. }));
        assert!(error.to_string().contains("gone"), "{error}");
        assert_eq!(log.last_backup("aa"), None);
    }
}
