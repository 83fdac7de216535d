//! Files written by earlier releases (`tests/fixtures/`), for the tests proving
//! that a new release still reads them. A fixture is never used in place: it is
//! copied into a temporary directory first, so a daemon that rewrites or adds
//! files cannot damage the only copy, and its bytes are snapshotted so a test can
//! show the run left the files exactly as the old release wrote them.

use crate::verify::workspace_root;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `tests/fixtures/`.
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("tests").join("fixtures")
}

/// Copies the tree `from` into `to` (created), giving directories 0700 and files
/// 0600: the modes the daemon wants for a keystore. Git does not keep them, so a
/// checkout's fixture has whatever the umask gave.
pub fn copy_private_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    fs::set_permissions(to, fs::Permissions::from_mode(0o700))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", to.display()));
    let entries = fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            copy_private_tree(&entry.path(), &target);
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
            fs::set_permissions(&target, fs::Permissions::from_mode(0o600))
                .unwrap_or_else(|e| panic!("chmod {}: {e}", target.display()));
        } else {
            panic!(
                "{}: fixtures hold only files and directories",
                entry.path().display()
            );
        }
    }
}

/// One file as found on disk: its bytes, and what a rewrite would change even
/// with the same bytes (a new inode from an atomic rename, a new mtime).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileState {
    pub bytes: Vec<u8>,
    pub inode: u64,
    pub modified: (i64, i64),
}

/// Every file under `dir`, by its path relative to `dir`.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, FileState> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries =
            fs::read_dir(&current).unwrap_or_else(|e| panic!("read {}: {e}", current.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let metadata =
                fs::metadata(&path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
            if metadata.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("under dir").to_path_buf();
                let state = FileState {
                    bytes: fs::read(&path)
                        .unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
                    inode: metadata.ino(),
                    modified: (metadata.mtime(), metadata.mtime_nsec()),
                };
                files.insert(relative, state);
            }
        }
    }
    files
}
