//! Real TUF verifiers for repositories written by [`crate::tuf_repo`]:
//! python-tuf (ngclient `Updater` over a loopback HTTP server, in a Python venv)
//! and tough (crates.io, in-process, file:// URLs).
//!
//! Both verifiers take a repository directory laid out as `DIR/metadata/` (with the
//! trusted `1.root.json`) and `DIR/targets/`, bootstrap trust from `1.root.json`,
//! refresh all top-level metadata and download every target listed in targets.json,
//! comparing it byte for byte with `DIR/targets/<name>`.
//!
//! The Python venv lives at `$TUFKEY_VENV`, or `<workspace>/target/tufkey-venv`; it is
//! created on first use by `tests/python/setup-venv.sh` (idempotent, `flock`-serialised,
//! needs PyPI the first time).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `tests/python/`: verify_repo.py, bench_sign.py, make_targets.py, setup-venv.sh.
pub fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// Where the venv lives: `$TUFKEY_VENV` or `<workspace>/target/tufkey-venv`.
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("TUFKEY_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => workspace_root().join("target").join("tufkey-venv"),
    }
}

/// Creates the venv if needed (once per process) and returns its `bin/python`.
pub fn venv_python() -> Result<PathBuf, String> {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            let venv = venv_dir();
            let script = python_dir().join("setup-venv.sh");
            let out = Command::new("bash")
                .arg(&script)
                .arg(&venv)
                .output()
                .map_err(|e| format!("running {}: {e}", script.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "{} {} failed ({}): {}{}",
                    script.display(),
                    venv.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok(venv.join("bin").join("python"))
        })
        .clone()
}

/// Verifies `repo` with python-tuf 7.0.1 (`tests/python/verify_repo.py`).
///
/// Ok: the script's one-line summary. Err: its error text (or a setup failure).
/// Blocking; safe to call from inside an async runtime's blocking context.
pub fn verify_with_python_tuf(repo: &Path) -> Result<String, String> {
    let python = venv_python()?;
    let script = python_dir().join("verify_repo.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(repo)
        .output()
        .map_err(|e| format!("running {} {}: {e}", python.display(), script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        let mut msg = stderr;
        if !stdout.is_empty() {
            msg = format!("{msg}\n{stdout}");
        }
        Err(format!("{msg} [{}]", out.status))
    }
}

/// Verifies `repo` with tough 0.24.
///
/// tough is async; this function runs it on a private current-thread tokio runtime in a
/// fresh OS thread, so it can be called from plain `#[test]`s and from inside a tokio
/// runtime alike (it blocks the calling thread). In async code you may prefer
/// [`verify_with_tough_async`].
pub fn verify_with_tough(repo: &Path) -> Result<(), String> {
    let repo = repo.to_path_buf();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        rt.block_on(verify_with_tough_async(&repo))
    })
    .join()
    .map_err(|_| "tough verifier thread panicked".to_owned())?
}

/// The async form of [`verify_with_tough`].
pub async fn verify_with_tough_async(repo: &Path) -> Result<(), String> {
    use tough::{
        ExpirationEnforcement, FilesystemTransport, IntoVec, RepositoryLoader, TargetName,
    };

    let repo = std::fs::canonicalize(repo).map_err(|e| format!("{}: {e}", repo.display()))?;
    let dir_url = |sub: &str| {
        // Trailing slash: these are base URLs that file names are joined onto.
        url::Url::from_directory_path(repo.join(sub))
            .map_err(|()| format!("cannot make a file:// URL of {}", repo.join(sub).display()))
    };
    let root_path = repo.join("metadata").join("1.root.json");
    let root = std::fs::read(&root_path).map_err(|e| format!("{}: {e}", root_path.display()))?;
    let datastore = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;

    let repository = RepositoryLoader::new(&root, dir_url("metadata")?, dir_url("targets")?)
        .transport(FilesystemTransport)
        .datastore(datastore.path())
        .expiration_enforcement(ExpirationEnforcement::Safe)
        .load()
        .await
        .map_err(|e| format!("tough rejected the repository: {}", error_chain(&e)))?;

    let names: Vec<String> = repository
        .all_targets()
        .map(|(n, _)| n.raw().to_owned())
        .collect();
    if names.is_empty() {
        return Err("tough: targets.json lists no targets".to_owned());
    }
    for name in names {
        let target = TargetName::new(name.clone())
            .map_err(|e| format!("tough: target name {name:?}: {e}"))?;
        let stream = repository
            .read_target(&target)
            .await
            .map_err(|e| format!("tough: reading target {name:?}: {}", error_chain(&e)))?
            .ok_or_else(|| format!("tough: target {name:?} not found"))?;
        let got = stream
            .into_vec()
            .await
            .map_err(|e| format!("tough: downloading target {name:?}: {}", error_chain(&e)))?;
        let want_path = repo.join("targets").join(&name);
        let want =
            std::fs::read(&want_path).map_err(|e| format!("{}: {e}", want_path.display()))?;
        if got != want {
            return Err(format!(
                "tough: target {name:?}: downloaded bytes differ from {}",
                want_path.display()
            ));
        }
    }
    Ok(())
}

/// The TUF key ID of a key as tough computes it (`tough::schema::key::Key::key_id`: hex
/// SHA-256 of the olpc-cjson canonical form of the parsed key, including any extra fields).
///
/// Panics with a clear message if tough cannot parse the key JSON (test helper).
pub fn tough_key_id(tuf_key_json: &serde_json::Value) -> String {
    try_tough_key_id(tuf_key_json).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`tough_key_id`], returning parse errors instead of panicking.
pub fn try_tough_key_id(tuf_key_json: &serde_json::Value) -> Result<String, String> {
    let key: tough::schema::key::Key = serde_json::from_value(tuf_key_json.clone())
        .map_err(|e| format!("tough cannot parse key JSON {tuf_key_json}: {e}"))?;
    let id = key.key_id().map_err(|e| format!("tough key_id: {e}"))?;
    Ok(hex::encode(&*id))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        // tough's (snafu) messages often already include their source's text.
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
