//! A crash-consistency model of a POSIX filesystem behind [`Disk`], for tests.
//!
//! POSIX promises little about a crash: a file's data is durable only once the file
//! was fsynced, and a directory entry created, renamed or removed only once its
//! directory was fsynced. Everything else may or may not reach the disk, in any
//! order (ext4 without `data=ordered`, XFS, btrfs and others really do persist a
//! rename before the renamed file's data). The model records every operation and,
//! before each one, a snapshot from which [`Snapshot::crash_states`] builds the
//! file trees a crash at that point may leave: durable directory entries plus any
//! prefix of the pending directory changes, each combined with file data that kept
//! only its fsynced bytes, a torn part of the rest, or all of it. A step can also be
//! made to fail with ENOSPC, as a full disk would.

use super::Disk;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// What a file's data looks like after the crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKept {
    /// Only fsynced bytes survive.
    Synced,
    /// Fsynced bytes and half of the rest: a torn write.
    Torn,
    /// Every byte written reached the disk.
    Written,
}

/// One file tree a crash may leave: path -> contents.
pub type Tree = BTreeMap<PathBuf, Vec<u8>>;

/// A crash state with its description.
pub struct CrashState {
    /// "N of M pending directory changes persisted, data Synced" and the like.
    pub label: String,
    pub tree: Tree,
}

#[derive(Clone, Default)]
struct Inode {
    written: Vec<u8>,
    synced: usize,
}

impl Inode {
    fn contents(&self, kept: DataKept) -> Vec<u8> {
        let len = match kept {
            DataKept::Synced => self.synced,
            DataKept::Torn => self.synced + (self.written.len() - self.synced) / 2,
            DataKept::Written => self.written.len(),
        };
        self.written[..len].to_vec()
    }
}

/// A directory change not yet made durable.
#[derive(Clone, Debug)]
enum Change {
    Link {
        path: PathBuf,
        inode: usize,
    },
    /// Replaces `to` if it exists.
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    Unlink {
        path: PathBuf,
    },
}

impl Change {
    fn dir(&self) -> &Path {
        let path = match self {
            Change::Link { path, .. } | Change::Unlink { path } => path,
            Change::Rename { to, .. } => to,
        };
        path.parent().unwrap_or(Path::new("/"))
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, usize>) {
        match self {
            Change::Link { path, inode } => {
                names.insert(path.clone(), *inode);
            }
            Change::Rename { from, to } => {
                if let Some(inode) = names.remove(from) {
                    names.insert(to.clone(), inode);
                }
            }
            Change::Unlink { path } => {
                names.remove(path);
            }
        }
    }
}

/// The model's state at one instant: what a crash right then works from.
#[derive(Clone, Default)]
pub struct Snapshot {
    inodes: Vec<Inode>,
    /// The names the running process sees.
    live: BTreeMap<PathBuf, usize>,
    /// The names that survive any crash.
    durable: BTreeMap<PathBuf, usize>,
    /// Directory changes since the last fsync of their directory, in order.
    pending: Vec<Change>,
}

impl Snapshot {
    /// Every distinct file tree a crash at this instant may leave.
    pub fn crash_states(&self) -> Vec<CrashState> {
        let mut seen = BTreeSet::new();
        let mut states = Vec::new();
        let total = self.pending.len();
        for persisted in 0..=total {
            let mut names = self.durable.clone();
            for change in &self.pending[..persisted] {
                change.apply(&mut names);
            }
            for kept in [DataKept::Synced, DataKept::Torn, DataKept::Written] {
                let tree = self.tree(&names, kept);
                if seen.insert(tree.clone()) {
                    states.push(CrashState {
                        label: format!(
                            "{persisted} of {total} pending directory changes persisted, data {kept:?}"
                        ),
                        tree,
                    });
                }
            }
        }
        states
    }

    /// What the running process sees (no crash).
    pub fn live_tree(&self) -> Tree {
        self.tree(&self.live, DataKept::Written)
    }

    fn tree(&self, names: &BTreeMap<PathBuf, usize>, kept: DataKept) -> Tree {
        names
            .iter()
            .map(|(path, inode)| (path.clone(), self.inodes[*inode].contents(kept)))
            .collect()
    }
}

#[derive(Default)]
struct Recorder {
    now: Snapshot,
    /// `before[k]`: the state just before step k.
    before: Vec<Snapshot>,
    /// The step that fails with ENOSPC, if any.
    fail_at: Option<usize>,
}

/// The model filesystem; clones share one state.
#[derive(Clone, Default)]
pub struct CrashModel(Arc<Mutex<Recorder>>);

/// An open model file.
pub struct ModelFile(usize);

fn no_space() -> io::Error {
    io::Error::from(io::ErrorKind::StorageFull)
}

impl CrashModel {
    /// A model whose step `fail_at` (counting from 0) fails with ENOSPC.
    pub fn failing_at(fail_at: Option<usize>) -> Self {
        let model = CrashModel::default();
        model.lock().fail_at = fail_at;
        model
    }

    /// The number of steps taken so far.
    pub fn steps(&self) -> usize {
        self.lock().before.len()
    }

    /// The crash points: the state before each step, and after the last.
    pub fn crash_points(&self) -> Vec<Snapshot> {
        let recorder = self.lock();
        let mut points = recorder.before.clone();
        points.push(recorder.now.clone());
        points
    }

    /// The state now.
    pub fn now(&self) -> Snapshot {
        self.lock().now.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Recorder> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a step; `Err` when it is the one set to fail (it then does nothing, or
    /// for a write, half of it).
    fn step<T>(&self, apply: impl FnOnce(&mut Snapshot, bool) -> io::Result<T>) -> io::Result<T> {
        let mut recorder = self.lock();
        let snapshot = recorder.now.clone();
        recorder.before.push(snapshot);
        let fail = recorder.fail_at == Some(recorder.before.len() - 1);
        apply(&mut recorder.now, fail)
    }
}

impl Disk for CrashModel {
    type File = ModelFile;

    fn create_new(&self, path: &Path) -> io::Result<ModelFile> {
        self.step(|state, fail| {
            if fail {
                return Err(no_space());
            }
            if state.live.contains_key(path) {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            let inode = state.inodes.len();
            state.inodes.push(Inode::default());
            let change = Change::Link {
                path: path.to_path_buf(),
                inode,
            };
            change.apply(&mut state.live);
            state.pending.push(change);
            Ok(ModelFile(inode))
        })
    }

    fn write_all(&self, file: &mut ModelFile, bytes: &[u8]) -> io::Result<()> {
        self.step(|state, fail| {
            let written = &mut state.inodes[file.0].written;
            if fail {
                written.extend_from_slice(&bytes[..bytes.len() / 2]);
                return Err(no_space());
            }
            written.extend_from_slice(bytes);
            Ok(())
        })
    }

    fn sync_file(&self, file: &mut ModelFile) -> io::Result<()> {
        self.step(|state, fail| {
            if fail {
                return Err(no_space());
            }
            let inode = &mut state.inodes[file.0];
            inode.synced = inode.written.len();
            Ok(())
        })
    }

    fn rename_noclobber(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.step(|state, fail| {
            if fail {
                return Err(no_space());
            }
            if state.live.contains_key(to) {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            if !state.live.contains_key(from) {
                return Err(io::ErrorKind::NotFound.into());
            }
            let change = Change::Rename {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
            };
            change.apply(&mut state.live);
            state.pending.push(change);
            Ok(())
        })
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.step(|state, fail| {
            if fail {
                return Err(no_space());
            }
            if !state.live.contains_key(from) {
                return Err(io::ErrorKind::NotFound.into());
            }
            let change = Change::Rename {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
            };
            change.apply(&mut state.live);
            state.pending.push(change);
            Ok(())
        })
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.step(|state, fail| {
            if fail {
                return Err(no_space());
            }
            if !state.live.contains_key(path) {
                return Err(io::ErrorKind::NotFound.into());
            }
            let change = Change::Unlink {
                path: path.to_path_buf(),
            };
            change.apply(&mut state.live);
            state.pending.push(change);
            Ok(())
        })
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.step(|state, fail| {
            if fail {
                return Err(no_space());
            }
            let (now_durable, still_pending): (Vec<Change>, Vec<Change>) = state
                .pending
                .drain(..)
                .partition(|change| change.dir() == dir);
            for change in &now_durable {
                change.apply(&mut state.durable);
            }
            state.pending = still_pending;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> PathBuf {
        Path::new("/d").join(name)
    }

    #[test]
    fn only_fsynced_data_and_entries_survive_every_crash() {
        let disk = CrashModel::default();
        let mut file = disk.create_new(&path("a")).unwrap();
        disk.write_all(&mut file, b"0123").unwrap();
        disk.sync_file(&mut file).unwrap();
        disk.write_all(&mut file, b"4567").unwrap();
        let now = disk.now();
        let states = now.crash_states();
        // Nothing durable in the directory yet: one state has no file at all.
        assert!(states.iter().any(|state| state.tree.is_empty()));
        let contents: BTreeSet<Vec<u8>> = states
            .iter()
            .filter_map(|state| state.tree.get(&path("a")).cloned())
            .collect();
        let expected: BTreeSet<Vec<u8>> = [&b"0123"[..], b"012345", b"01234567"]
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(contents, expected);

        disk.sync_dir(Path::new("/d")).unwrap();
        disk.rename_noclobber(&path("a"), &path("b")).unwrap();
        let states = disk.now().crash_states();
        let names: BTreeSet<Vec<PathBuf>> = states
            .iter()
            .map(|state| state.tree.keys().cloned().collect())
            .collect();
        assert_eq!(names, [vec![path("a")], vec![path("b")]].into());
        assert_eq!(disk.steps(), 6);
        assert_eq!(disk.crash_points().len(), 7);
    }

    #[test]
    fn the_chosen_step_fails_with_enospc_and_a_write_there_is_torn() {
        let disk = CrashModel::failing_at(Some(1));
        let mut file = disk.create_new(&path("a")).unwrap();
        let error = disk.write_all(&mut file, b"0123").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
        assert_eq!(disk.now().live_tree()[&path("a")], b"01");
        disk.write_all(&mut file, b"45").unwrap();
    }
}
