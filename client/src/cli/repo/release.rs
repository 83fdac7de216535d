//! The published release in `DIR/metadata/` and `DIR/targets/`: reading the current
//! one, and writing a new one atomically. New files get new names (consistent
//! snapshots: `N.root.json`, `N.targets.json`, `N.<delegation>.json`,
//! `N.snapshot.json`, `<sha256>.<name>`), so writing them disturbs nothing a client
//! can see; `timestamp.json` is renamed into place last, so a crash at any point
//! leaves the previous release whole and valid.

use super::error::RepoError;
use jiff::Timestamp as Time;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use tough::editor::signed::SignedRole;
use tough::schema::{Hashes, Metafile, Role, Root, Signed, Snapshot, Target, Targets, Timestamp};
use tough::TargetName;

/// The TUF specification version tough writes and reads.
pub const SPEC_VERSION: &str = "1.0.0";

/// The release clients see now.
#[derive(Debug, Clone)]
pub struct Release {
    pub root: Signed<Root>,
    pub timestamp: Signed<Timestamp>,
    pub snapshot: Signed<Snapshot>,
    pub targets: Signed<Targets>,
    /// Delegated targets roles, by name.
    pub delegated: BTreeMap<String, Signed<Targets>>,
}

/// `DIR/metadata`.
pub fn metadata_dir(dir: &Path) -> PathBuf {
    dir.join("metadata")
}

/// `DIR/targets`.
pub fn targets_dir(dir: &Path) -> PathBuf {
    dir.join("targets")
}

/// The newest `N.root.json` in `DIR/metadata`.
pub fn latest_root(dir: &Path) -> Result<Signed<Root>, RepoError> {
    let metadata = metadata_dir(dir);
    let entries = std::fs::read_dir(&metadata).map_err(RepoError::io("listing", &metadata))?;
    let mut newest = None;
    for entry in entries {
        let entry = entry.map_err(RepoError::io("listing", &metadata))?;
        let name = entry.file_name();
        let version = name
            .to_str()
            .and_then(|name| name.strip_suffix(".root.json"))
            .and_then(|number| number.parse::<u64>().ok());
        if let Some(version) = version {
            newest = newest.max(Some(version));
        }
    }
    let version = newest.ok_or_else(|| RepoError::MetadataMissing {
        path: metadata.join("1.root.json"),
    })?;
    read_json(&metadata.join(format!("{version}.root.json")))
}

/// The current release: `timestamp.json` and everything it leads to.
pub fn load(dir: &Path) -> Result<Release, RepoError> {
    let metadata = metadata_dir(dir);
    let root = latest_root(dir)?;
    let timestamp: Signed<Timestamp> = read_json(&metadata.join("timestamp.json"))?;
    let snapshot_version = meta_version(&timestamp.signed.meta, "snapshot.json", &metadata)?;
    let snapshot: Signed<Snapshot> =
        read_json(&metadata.join(format!("{snapshot_version}.snapshot.json")))?;
    let mut targets = None;
    let mut delegated = BTreeMap::new();
    for (file, meta) in &snapshot.signed.meta {
        let Some(name) = file.strip_suffix(".json") else {
            continue;
        };
        let role: Signed<Targets> =
            read_json(&metadata.join(format!("{}.{name}.json", meta.version)))?;
        if name == "targets" {
            targets = Some(role);
        } else {
            delegated.insert(name.to_owned(), role);
        }
    }
    let targets = targets.ok_or_else(|| RepoError::MetadataMissing {
        path: metadata.join("N.targets.json (listed in the snapshot)"),
    })?;
    Ok(Release {
        root,
        timestamp,
        snapshot,
        targets,
        delegated,
    })
}

fn meta_version(
    meta: &HashMap<String, Metafile>,
    file: &str,
    metadata: &Path,
) -> Result<NonZeroU64, RepoError> {
    meta.get(file)
        .map(|entry| entry.version)
        .ok_or_else(|| RepoError::MetadataMissing {
            path: metadata.join(format!("{file} (in timestamp.json)")),
        })
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, RepoError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(RepoError::MetadataMissing {
                path: path.to_path_buf(),
            })
        }
        Err(source) => return Err(RepoError::io("reading", path)(source)),
    };
    serde_json::from_slice(&bytes).map_err(|source| RepoError::Metadata {
        path: path.to_path_buf(),
        source,
    })
}

/// A role's entry in snapshot.json or timestamp.json: version, length, SHA-256.
pub fn metafile<T: Role>(role: &SignedRole<T>) -> Metafile {
    Metafile {
        hashes: Some(Hashes {
            sha256: role.sha256().to_vec().into(),
            _extra: HashMap::new(),
        }),
        length: Some(*role.length()),
        version: role.signed().signed.version(),
        _extra: HashMap::new(),
    }
}

/// Now plus `days`, in whole seconds (TUF's `expires` has no fractions).
pub fn expiry(days: u32) -> Result<Time, RepoError> {
    Time::from_second(Time::now().as_second() + i64::from(days) * 86_400)
        .map_err(|error| RepoError::Invalid(format!("expiry of {days} days: {error}")))
}

/// The next version after `version`.
pub fn next(version: NonZeroU64) -> NonZeroU64 {
    version.saturating_add(1)
}

/// Copies every `(source, target name)` into DIR/targets (see [`copy_target`]), on
/// as many threads as there are cores, and makes the copies durable; returns their
/// descriptions in the same order.
pub async fn copy_targets(
    dir: &Path,
    files: Vec<(PathBuf, String)>,
) -> Result<Vec<Target>, RepoError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let chunk = files.len().div_ceil(threads).max(1);
        let copied: Vec<Result<Vec<Target>, RepoError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = files
                .chunks(chunk)
                .map(|part| {
                    let dir = &dir;
                    scope.spawn(move || {
                        part.iter()
                            .map(|(source, name)| copy_target(dir, source, name))
                            .collect()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| {
                    worker
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let mut targets = Vec::with_capacity(files.len());
        for part in copied {
            targets.extend(part?);
        }
        if !targets.is_empty() {
            sync_targets(&dir)?;
        }
        Ok(targets)
    })
    .await
    .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))
}

/// Copies `source` into `DIR/targets/<sha256>.<name>` (for a name with a path,
/// `DIR/targets/pkg/<sha256>.app.tar.gz`, as consistent snapshots name it), hashing
/// it as it goes, and describes it for targets metadata. The description is of the
/// bytes written, so metadata and file always agree.
fn copy_target(dir: &Path, source: &Path, name: &str) -> Result<Target, RepoError> {
    let (parent, file_name) = name.rsplit_once('/').unwrap_or(("", name));
    let targets = targets_dir(dir).join(parent);
    std::fs::create_dir_all(&targets).map_err(RepoError::io("creating", &targets))?;
    let mut temp = tempfile::NamedTempFile::new_in(&targets)
        .map_err(RepoError::io("creating a temporary file in", &targets))?;
    let mut input = std::fs::File::open(source).map_err(RepoError::io("reading", source))?;
    let mut hashing = HashingWriter {
        inner: temp.as_file_mut(),
        sha256: Sha256::new(),
        length: 0,
    };
    std::io::copy(&mut input, &mut hashing).map_err(RepoError::io("copying", source))?;
    let (digest, length) = (hashing.sha256.finalize(), hashing.length);
    let path = targets.join(format!("{}.{file_name}", hex::encode(digest)));
    // Not synced one by one: `copy_targets` syncs the filesystem once for all.
    temp.persist(&path)
        .map_err(|error| RepoError::io("writing", &path)(error.error))?;
    if !parent.is_empty() {
        link_for_tough(dir, &path, &format!("{}.{name}", hex::encode(digest)))?;
    }
    Ok(Target {
        length,
        hashes: Hashes {
            sha256: digest.to_vec().into(),
            _extra: HashMap::new(),
        },
        custom: HashMap::new(),
        _extra: HashMap::new(),
    })
}

/// A writer that passes bytes on and hashes and counts them.
struct HashingWriter<W> {
    inner: W,
    sha256: Sha256,
    length: u64,
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.sha256.update(&bytes[..written]);
        self.length += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// tough fetches a consistent-snapshot target with a path at `<sha256>.<path>` (the
/// hash before the directories), where the TUF specification, python-tuf and go-tuf
/// fetch `<directories>/<sha256>.<file name>`: a hard link to the same file serves both.
fn link_for_tough(dir: &Path, stored: &Path, tough_name: &str) -> Result<(), RepoError> {
    let link = targets_dir(dir).join(tough_name);
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent).map_err(RepoError::io("creating", parent))?;
    }
    match std::fs::hard_link(stored, &link) {
        Err(error) if error.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(RepoError::io("linking", &link)(error))
        }
        _ => Ok(()),
    }
}

/// Makes the target files copied by [`copy_target`] durable, with one `syncfs` of
/// the filesystem under `DIR/targets` instead of one fsync per file (a release of
/// 10,000 files spent most of its time in those).
fn sync_targets(dir: &Path) -> Result<(), RepoError> {
    let targets = targets_dir(dir);
    let handle = std::fs::File::open(&targets).map_err(RepoError::io("opening", &targets))?;
    nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&handle))
        .map_err(|errno| RepoError::io("syncing", &targets)(std::io::Error::from(errno)))
}

/// New metadata files, written under a private directory in DIR, moved into
/// `DIR/metadata` by [`Staging::commit`].
pub struct Staging {
    dir: tempfile::TempDir,
    /// File names, in the order written.
    files: Vec<String>,
}

impl Staging {
    pub fn new(dir: &Path) -> Result<Self, RepoError> {
        let dir = tempfile::Builder::new()
            .prefix(".tufkey-staging-")
            .tempdir_in(dir)
            .map_err(RepoError::io("creating a staging directory in", dir))?;
        Ok(Staging {
            dir,
            files: Vec::new(),
        })
    }

    /// Writes one signed role (its consistent-snapshot file name).
    pub async fn add<T: Role + serde::Serialize>(
        &mut self,
        role: &SignedRole<T>,
    ) -> Result<(), RepoError> {
        let name = role.signed().signed.filename(true);
        role.write(self.dir.path(), true)
            .await
            .map_err(RepoError::tough(format!("write {name}")))?;
        self.files.push(name);
        Ok(())
    }

    /// Moves every file into `DIR/metadata`, `timestamp.json` last. Refuses (before
    /// moving anything) to replace a versioned file that already exists.
    pub fn commit(self, dir: &Path) -> Result<(), RepoError> {
        let metadata = metadata_dir(dir);
        std::fs::create_dir_all(&metadata).map_err(RepoError::io("creating", &metadata))?;
        let (last, versioned): (Vec<&String>, Vec<&String>) = self
            .files
            .iter()
            .partition(|name| name.as_str() == "timestamp.json");
        for name in &versioned {
            let path = metadata.join(name);
            if path.exists() {
                return Err(RepoError::Exists { path });
            }
        }
        // The versioned files first, durable before timestamp.json points at them.
        for name in versioned {
            self.move_into(name, &metadata)?;
        }
        sync_dir(&metadata)?;
        for name in last {
            self.move_into(name, &metadata)?;
        }
        sync_dir(&metadata)?;
        Ok(())
    }

    fn move_into(&self, name: &str, metadata: &Path) -> Result<(), RepoError> {
        let from = self.dir.path().join(name);
        std::fs::File::open(&from)
            .and_then(|file| file.sync_all())
            .map_err(RepoError::io("writing", &from))?;
        let to = metadata.join(name);
        std::fs::rename(&from, &to).map_err(RepoError::io("moving into place", &to))
    }
}

fn sync_dir(dir: &Path) -> Result<(), RepoError> {
    std::fs::File::open(dir)
        .and_then(|file| file.sync_all())
        .map_err(RepoError::io("syncing", dir))
}

/// Whether `expires` is within a third of a `lifetime_days` lifetime from now (8 hours
/// for a 1-day timestamp): time to re-sign.
pub fn expires_soon(expires: Time, lifetime_days: u32) -> bool {
    let lifetime = i64::from(lifetime_days) * 86_400;
    expires.as_second() - Time::now().as_second() < lifetime / 3
}

/// A target name tough accepts.
pub fn target_name(name: &str) -> Result<TargetName, RepoError> {
    TargetName::new(name).map_err(RepoError::tough(format!("use the target name {name:?}")))
}
