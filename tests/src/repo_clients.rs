//! Clients updating from a repository written by `tufkey repo` (consistent snapshots,
//! delegations), trusting a root of the caller's choice (an old one walks the root
//! chain) and downloading chosen targets: python-tuf's ngclient
//! (`tests/python/update_repo.py`) and tough's `RepositoryLoader` (file:// URLs).

use crate::verify::{python_dir, venv_python};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A target to download and the file it must equal.
pub type Wanted<'a> = (&'a str, &'a Path);

/// python-tuf: the trusted versions after the update, by role (file) name.
pub fn python_update(
    repo: &Path,
    trusted_root: &Path,
    wanted: &[Wanted<'_>],
) -> Result<BTreeMap<String, u64>, String> {
    let python = venv_python()?;
    let script = python_dir().join("update_repo.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(repo)
        .arg(trusted_root)
        .args(
            wanted
                .iter()
                .map(|(name, file)| format!("{name}={}", file.display())),
        )
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("update_repo.py output: {e}"))
}

/// tough: the trusted root, targets, snapshot and timestamp versions after the update.
pub fn tough_update(
    repo: &Path,
    trusted_root: &Path,
    wanted: &[Wanted<'_>],
) -> Result<BTreeMap<String, u64>, String> {
    let repo = repo.to_path_buf();
    let trusted_root = trusted_root.to_path_buf();
    let wanted: Vec<(String, PathBuf)> = wanted
        .iter()
        .map(|(name, file)| ((*name).to_owned(), file.to_path_buf()))
        .collect();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?
            .block_on(tough_update_async(&repo, &trusted_root, &wanted))
    })
    .join()
    .map_err(|_| "tough client thread panicked".to_owned())?
}

async fn tough_update_async(
    repo: &Path,
    trusted_root: &Path,
    wanted: &[(String, PathBuf)],
) -> Result<BTreeMap<String, u64>, String> {
    use tough::{
        ExpirationEnforcement, FilesystemTransport, IntoVec, RepositoryLoader, TargetName,
    };

    let repo = std::fs::canonicalize(repo).map_err(|e| format!("{}: {e}", repo.display()))?;
    let url = |sub: &str| {
        url::Url::from_directory_path(repo.join(sub))
            .map_err(|()| format!("no file:// URL for {}", repo.join(sub).display()))
    };
    let root =
        std::fs::read(trusted_root).map_err(|e| format!("{}: {e}", trusted_root.display()))?;
    let datastore = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let repository = RepositoryLoader::new(&root, url("metadata")?, url("targets")?)
        .transport(FilesystemTransport)
        .datastore(datastore.path())
        .expiration_enforcement(ExpirationEnforcement::Safe)
        .load()
        .await
        .map_err(|e| format!("tough rejected the repository: {e}"))?;
    for (name, expected) in wanted {
        let target = TargetName::new(name.clone()).map_err(|e| format!("{name}: {e}"))?;
        let stream = repository
            .read_target(&target)
            .await
            .map_err(|e| format!("tough: reading {name}: {e}"))?
            .ok_or_else(|| format!("tough: target {name} not found"))?;
        let got = stream
            .into_vec()
            .await
            .map_err(|e| format!("tough: downloading {name}: {e}"))?;
        let want = std::fs::read(expected).map_err(|e| format!("{}: {e}", expected.display()))?;
        if got != want {
            return Err(format!("tough: target {name}: downloaded bytes differ"));
        }
    }
    Ok(BTreeMap::from([
        ("root".to_owned(), repository.root().signed.version.get()),
        (
            "targets".to_owned(),
            repository.targets().signed.version.get(),
        ),
        (
            "snapshot".to_owned(),
            repository.snapshot().signed.version.get(),
        ),
        (
            "timestamp".to_owned(),
            repository.timestamp().signed.version.get(),
        ),
    ]))
}
