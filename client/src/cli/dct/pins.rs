//! What `tufkey dct` remembers per collection, in `$XDG_DATA_HOME/tufkey/dct/<gun>/`
//! (or `--trust-dir`): the pinned root every fetched root must chain from, and the
//! server the collection lives on (so later commands need no `--server`).
//!
//! A collection seen for the first time is pinned from the publisher's Notary or
//! Docker trust dir when that holds it (`--notary-trust-dir`, else
//! `~/.docker/trust`), so keys imported with `tufkey import docker` keep signing the
//! collection their root was pinned for; else its root is trusted on first use, as
//! the notary client and Docker do, and the pin says so on stderr.

use super::error::DctError;
use super::gun::Gun;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The remembered state of one collection.
pub struct Pins {
    dir: PathBuf,
}

/// Where a collection's server is and how to trust it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct SavedServer {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

impl Pins {
    /// The pins under `trust_dir`, or the default directory.
    pub fn new(trust_dir: Option<PathBuf>) -> Pins {
        let dir = trust_dir.unwrap_or_else(|| {
            let data = std::env::var_os("XDG_DATA_HOME")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/share"))
                })
                .unwrap_or_else(|| PathBuf::from("."));
            data.join("tufkey/dct")
        });
        Pins { dir }
    }

    fn collection_dir(&self, gun: &Gun) -> PathBuf {
        self.dir.join(gun.as_str())
    }

    /// The pinned root file of `gun` (it may not exist).
    pub fn root_path(&self, gun: &Gun) -> PathBuf {
        self.collection_dir(gun).join("root.json")
    }

    /// The pinned root of `gun`, if any.
    pub fn root(&self, gun: &Gun) -> Result<Option<Vec<u8>>, DctError> {
        read_optional(&self.root_path(gun))
    }

    /// Pins `root` (the bytes as served) for `gun`.
    pub fn pin_root(&self, gun: &Gun, root: &[u8]) -> Result<(), DctError> {
        write_atomically(&self.root_path(gun), root)
    }

    fn server_path(&self, gun: &Gun) -> PathBuf {
        self.collection_dir(gun).join("server.json")
    }

    pub fn server(&self, gun: &Gun) -> Result<Option<SavedServer>, DctError> {
        let path = self.server_path(gun);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| DctError::PinDamaged { path, source })
    }

    pub fn save_server(&self, gun: &Gun, server: &SavedServer) -> Result<(), DctError> {
        let bytes = serde_json::to_vec_pretty(server).map_err(DctError::Encode)?;
        write_atomically(&self.server_path(gun), &bytes)
    }
}

/// The root of `gun` a Notary/Docker trust dir pinned, if it holds one.
pub fn notary_trust_dir_root(
    trust_dir: &Path,
    gun: &Gun,
) -> Result<Option<(PathBuf, Vec<u8>)>, DctError> {
    let path = trust_dir
        .join("tuf")
        .join(gun.as_str())
        .join("metadata/root.json");
    Ok(read_optional(&path)?.map(|bytes| (path, bytes)))
}

/// Docker's trust dir, `~/.docker/trust` (or `$DOCKER_CONFIG/trust`).
pub fn docker_trust_dir() -> Option<PathBuf> {
    if let Some(config) = std::env::var_os("DOCKER_CONFIG") {
        return Some(Path::new(&config).join("trust"));
    }
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker/trust"))
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, DctError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DctError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `bytes` to `path` through a synced temporary file renamed into place, so
/// a crash leaves the old pin or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), DctError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(DctError::io("create", parent))?;
    let mut file = tempfile::NamedTempFile::new_in(parent)
        .map_err(DctError::io("create a file in", parent))?;
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .map_err(DctError::io("write", file.path()))?;
    file.persist(path)
        .map_err(|error| DctError::io("replace", path)(error.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_servers_round_trip_per_collection() {
        let dir = tempfile::tempdir().unwrap();
        let pins = Pins::new(Some(dir.path().to_owned()));
        let gun = Gun::parse("localhost:5000/acme/app").unwrap();
        assert_eq!(pins.root(&gun).unwrap(), None);
        pins.pin_root(&gun, b"{}").unwrap();
        assert_eq!(pins.root(&gun).unwrap().as_deref(), Some(&b"{}"[..]));
        let other = Gun::parse("localhost:5000/acme/other").unwrap();
        assert_eq!(pins.root(&other).unwrap(), None);
        let server = SavedServer {
            url: "https://127.0.0.1:4443".into(),
            ca: Some("/ca.crt".into()),
        };
        pins.save_server(&gun, &server).unwrap();
        assert_eq!(pins.server(&gun).unwrap(), Some(server));
    }
}
