//! The manifest of the store's key files: `STORE/manifest.json` lists every key
//! file tufkeyd wrote, by key ID, with the SHA-256 of its bytes, under an HMAC with a
//! key derived from the store key (HKDF-SHA256, its own label, so it is independent
//! of the audit log's key and of the encryption key).
//!
//! Each key file is sealed on its own, so without a manifest a key file removed, an
//! old copy restored (e.g. one still marked exportable) or a file added behind the
//! daemon's back would go unnoticed. With it, once the store is unlocked, such files
//! are reported by name (`tufkey status`), and an unlisted or changed one is not
//! loaded. A store without a manifest (written before manifests existed) gets one at
//! its first unlock, listing the files present then.
//!
//! Limits: the manifest is checked only once the daemon has had the store key since
//! it started (its MAC key comes from it); and someone who can write the store can
//! still roll back the whole store, manifest included, or remove the manifest (the
//! next unlock records the files as they are, with a warning in the log).

use super::error::FileProblem;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The manifest's file name, in the store's root.
pub const MANIFEST_FILE: &str = "manifest.json";
const FORMAT: &str = "tufkey-key-manifest/1";
/// The HKDF `info` label that separates the manifest's key from other derived keys.
const LABEL: &[u8] = b"tufkey key manifest v1";

/// The manifest's HMAC-SHA256 key. Zeroised when the last clone is dropped; never
/// printed.
#[derive(Clone)]
pub struct ManifestKey(Arc<Zeroizing<[u8; 32]>>);

impl fmt::Debug for ManifestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ManifestKey(<redacted>)")
    }
}

impl ManifestKey {
    /// Derives the key from the store key.
    pub fn derive(secret: &[u8]) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(None, secret)
            .expand(LABEL, key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        ManifestKey(Arc::new(key))
    }

    fn hmac(&self, data: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.as_slice())
            .expect("HMAC takes a key of any length");
        mac.update(data);
        mac
    }
}

/// SHA-256 of a key file's bytes, hex: what the manifest records for it.
pub fn file_digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What the manifest records for one key file.
///
/// A key file is listed `tentative` before it is written and before it is removed,
/// and confirmed (or dropped) after: so a crash at any point leaves a manifest that
/// still describes the store (a tentative file may be there with exactly this digest,
/// or be absent), and a crash never reads as tampering.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub sha256: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tentative: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Entry {
    /// The entry of a file about to be written or removed.
    pub fn tentative(sha256: String) -> Self {
        Entry {
            sha256,
            tentative: true,
        }
    }
}

/// Key ID -> what its file must be.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub keys: BTreeMap<String, Entry>,
}

/// What the MAC covers.
#[derive(Serialize)]
struct Body<'a> {
    format: &'a str,
    keys: &'a BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize)]
struct File {
    format: String,
    keys: BTreeMap<String, Entry>,
    mac: String,
}

impl Manifest {
    /// The file's bytes, MACed with `key`.
    pub fn encode(&self, key: &ManifestKey) -> Vec<u8> {
        let body = body(&self.keys);
        let mac = hex::encode(key.hmac(&body).finalize().into_bytes());
        let file = File {
            format: FORMAT.into(),
            keys: self.keys.clone(),
            mac,
        };
        serde_json::to_vec_pretty(&file).expect("strings serialise")
    }

    /// Parses the file and checks its MAC with `key`.
    pub fn decode(bytes: &[u8], key: &ManifestKey) -> Result<Self, FileProblem> {
        let file: File = serde_json::from_slice(bytes).map_err(|source| FileProblem::NotJson {
            what: "key manifest",
            source,
        })?;
        if file.format != FORMAT {
            return Err(FileProblem::UnsupportedFormat(file.format));
        }
        let tag = hex::decode(&file.mac).map_err(|_| FileProblem::ManifestMac)?;
        key.hmac(&body(&file.keys))
            .verify_slice(&tag)
            .map_err(|_| FileProblem::ManifestMac)?;
        Ok(Manifest { keys: file.keys })
    }

    /// Whether the file `bytes` of key `keyid` is the one listed.
    pub fn check(&self, keyid: &str, bytes: &[u8]) -> Result<(), FileProblem> {
        match self.keys.get(keyid) {
            None => Err(FileProblem::NotInManifest),
            Some(listed) if listed.sha256 != file_digest(bytes) => {
                Err(FileProblem::ChangedSinceManifest)
            }
            Some(_) => Ok(()),
        }
    }
}

fn body(keys: &BTreeMap<String, Entry>) -> Vec<u8> {
    serde_json::to_vec(&Body {
        format: FORMAT,
        keys,
    })
    .expect("strings serialise")
}

/// How far the daemon can trust the manifest right now.
#[derive(Debug)]
pub enum Trust {
    /// No store key since the daemon started, so no MAC key: nothing is checked
    /// yet; the keys deleted meanwhile are taken off the manifest once it is.
    Unknown { deleted: BTreeSet<String> },
    /// The manifest verified (or was just created) and is kept up to date.
    Trusted {
        key: ManifestKey,
        manifest: Manifest,
    },
    /// The manifest on disk does not verify: the reason, reported with every scan;
    /// the file is left as it is.
    Untrusted(String),
}

impl Trust {
    /// Whether the file `bytes` of key `keyid` may be loaded: always, unless a
    /// trusted manifest lists it otherwise or not at all.
    pub fn check(&self, keyid: &str, bytes: &[u8]) -> Result<(), FileProblem> {
        match self {
            Trust::Trusted { manifest, .. } => manifest.check(keyid, bytes),
            Trust::Unknown { .. } | Trust::Untrusted(_) => Ok(()),
        }
    }

    /// The problems to report besides the files found: each listed key whose file
    /// is not `present` (unless tentative), or why the manifest is not trusted.
    pub fn missing(&self, present: &BTreeSet<String>) -> Vec<String> {
        match self {
            Trust::Trusted { manifest, .. } => manifest
                .keys
                .iter()
                .filter(|(keyid, entry)| !entry.tentative && !present.contains(*keyid))
                .map(|(keyid, _)| format!("{keyid}.key: {}", FileProblem::MissingSinceManifest))
                .collect(),
            Trust::Untrusted(problem) => vec![problem.clone()],
            Trust::Unknown { .. } => Vec::new(),
        }
    }
}

impl Default for Trust {
    fn default() -> Self {
        Trust::Unknown {
            deleted: BTreeSet::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut manifest = Manifest::default();
        manifest.keys.insert(
            "aa".into(),
            Entry {
                sha256: file_digest(b"key file aa"),
                tentative: false,
            },
        );
        manifest
            .keys
            .insert("bb".into(), Entry::tentative(file_digest(b"key file bb")));
        manifest
    }

    #[test]
    fn a_manifest_verifies_only_unchanged_and_under_its_own_key() {
        let key = ManifestKey::derive(&[1; 32]);
        let bytes = sample().encode(&key);
        assert_eq!(Manifest::decode(&bytes, &key).unwrap(), sample());
        let other = ManifestKey::derive(&[2; 32]);
        assert!(matches!(
            Manifest::decode(&bytes, &other),
            Err(FileProblem::ManifestMac)
        ));
        let mut edited: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        edited["keys"]["cc"] = serde_json::json!({ "sha256": file_digest(b"planted") });
        let edited = serde_json::to_vec(&edited).unwrap();
        assert!(matches!(
            Manifest::decode(&edited, &key),
            Err(FileProblem::ManifestMac)
        ));
        assert_eq!(format!("{key:?}"), "ManifestKey(<redacted>)");
    }

    #[test]
    fn a_file_is_accepted_only_as_listed() {
        let manifest = sample();
        assert!(manifest.check("aa", b"key file aa").is_ok());
        assert!(matches!(
            manifest.check("aa", b"an older key file aa"),
            Err(FileProblem::ChangedSinceManifest)
        ));
        assert!(matches!(
            manifest.check("cc", b"anything"),
            Err(FileProblem::NotInManifest)
        ));
        let trust = Trust::Trusted {
            key: ManifestKey::derive(&[1; 32]),
            manifest,
        };
        let missing = trust.missing(&BTreeSet::new());
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(
            missing[0].starts_with("aa.key: listed in the key manifest but gone"),
            "a tentative entry may lack its file (a crash): {missing:?}"
        );
    }

    #[test]
    fn the_key_is_hkdf_sha256_with_its_own_label() {
        let key = ManifestKey::derive(b"store key");
        let mut expected = [0u8; 32];
        Hkdf::<Sha256>::new(None, b"store key")
            .expand(b"tufkey key manifest v1", &mut expected)
            .unwrap();
        assert_eq!(key.0.as_slice(), &expected);
        let audit = crate::audit::AuditKey::derive(b"store key");
        assert_ne!(
            audit.mac(b"x"),
            hex::encode(key.hmac(b"x").finalize().into_bytes()),
            "independent of the audit log's key"
        );
    }
}
