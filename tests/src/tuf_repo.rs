//! A small TUF repository builder for the end-to-end tests.
//!
//! [`RepoBuilder::build`] writes a complete, non-consistent-snapshot TUF repository
//! into a directory:
//!
//! ```text
//! DIR/metadata/1.root.json   trusted root (what clients are bootstrapped with)
//! DIR/metadata/root.json     same bytes as 1.root.json
//! DIR/metadata/targets.json
//! DIR/metadata/snapshot.json
//! DIR/metadata/timestamp.json
//! DIR/targets/<name>         the target files
//! DIR/unsigned/<role>.json   the unsigned documents handed to the signer (kept for debugging)
//! ```
//!
//! Signing is pluggable: for each role the builder writes the UNSIGNED document
//! `{"signed": {...}, "signatures": []}` and calls the signer closure with
//! `(unsigned_in, signed_out, keyids)`; the closure must write the signed document to
//! `signed_out` (for example by running `tufkey sign --key ID IN --out OUT` once per key
//! ID, feeding each output into the next call). Roles are signed in dependency order:
//! root, targets, snapshot (which records the signed targets.json's version, and by
//! default its length and hashes), timestamp (likewise for snapshot.json).
//!
//! Every metadata document has spec_version "1.0.31", version 1 and a fixed far-future
//! `expires` (2099-01-01T00:00:00Z), so the output is deterministic apart from the keys
//! and signatures.
//!
//! Notes for verifiers:
//! - tough re-serialises the parsed `signed` to check signatures and drops empty
//!   optional fields (an empty target `custom` object, `delegations: null`, ...);
//!   the builder never emits those, so a signature over the canonical form of the
//!   document as written verifies in both python-tuf and tough.
//! - Use plain ASCII target names (see DESIGN.md §2 on canonical JSON pitfalls).

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256, Sha512};
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Error type of this module: anything goes (`io::Error`, `String`, ...).
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The signer callback: `(unsigned_in, signed_out, keyids)`. It must write to
/// `signed_out` the document from `unsigned_in` with one signature per key ID appended
/// to `signatures` and `signed` unchanged.
pub type SignFn<'a> = dyn FnMut(&Path, &Path, &[String]) -> Result<(), Error> + 'a;

pub const SPEC_VERSION: &str = "1.0.31";
pub const DEFAULT_EXPIRES: &str = "2099-01-01T00:00:00Z";

/// One signing key: its TUF key ID and its TUF key JSON
/// (`{"keytype":"ecdsa","scheme":"ecdsa-sha2-nistp256","keyval":{"public":PEM}}`).
#[derive(Debug, Clone, PartialEq)]
pub struct RoleKey {
    pub keyid: String,
    pub key: Value,
}

impl RoleKey {
    pub fn new(keyid: impl Into<String>, key: Value) -> Self {
        Self {
            keyid: keyid.into(),
            key,
        }
    }
}

/// The keys of one role and how many of them must sign.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleKeys {
    pub keys: Vec<RoleKey>,
    pub threshold: u32,
}

impl RoleKeys {
    /// Several keys with a threshold.
    pub fn new(keys: Vec<RoleKey>, threshold: u32) -> Self {
        Self { keys, threshold }
    }

    /// One key, threshold 1.
    pub fn single(key: RoleKey) -> Self {
        Self {
            keys: vec![key],
            threshold: 1,
        }
    }

    /// The key IDs, in order (this is what the signer callback receives).
    pub fn keyids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.keyid.clone()).collect()
    }
}

impl From<RoleKey> for RoleKeys {
    fn from(key: RoleKey) -> Self {
        Self::single(key)
    }
}

/// The keys of the four top-level roles.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoKeys {
    pub root: RoleKeys,
    pub targets: RoleKeys,
    pub snapshot: RoleKeys,
    pub timestamp: RoleKeys,
}

impl RepoKeys {
    /// One key per role, threshold 1 everywhere.
    pub fn single(root: RoleKey, targets: RoleKey, snapshot: RoleKey, timestamp: RoleKey) -> Self {
        Self {
            root: root.into(),
            targets: targets.into(),
            snapshot: snapshot.into(),
            timestamp: timestamp.into(),
        }
    }
}

/// What [`RepoBuilder::build`] produced.
#[derive(Debug, Clone)]
pub struct BuiltRepo {
    /// The repository directory (the one passed to `build`).
    pub dir: PathBuf,
    /// `dir/metadata`
    pub metadata_dir: PathBuf,
    /// `dir/targets`
    pub targets_dir: PathBuf,
    /// The target names, in the order they were added.
    pub target_names: Vec<String>,
}

impl BuiltRepo {
    /// Path of a metadata file, e.g. `metadata("timestamp.json")`.
    pub fn metadata(&self, file: &str) -> PathBuf {
        self.metadata_dir.join(file)
    }
}

#[derive(Debug, Clone)]
struct TargetFile {
    name: String,
    content: Vec<u8>,
    custom: Option<Value>,
}

/// Builds a small TUF repository; see the module docs.
#[derive(Debug, Clone)]
pub struct RepoBuilder {
    keys: RepoKeys,
    targets: Vec<TargetFile>,
    expires: String,
    meta_hashes: bool,
}

impl RepoBuilder {
    pub fn new(keys: RepoKeys) -> Self {
        Self {
            keys,
            targets: Vec::new(),
            expires: DEFAULT_EXPIRES.to_owned(),
            meta_hashes: true,
        }
    }

    /// Adds a target file. `name` is a relative `/`-separated path (plain ASCII
    /// recommended, e.g. `pkg/app-1.0.tar.gz`).
    pub fn target(mut self, name: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        self.targets.push(TargetFile {
            name: name.into(),
            content: content.into(),
            custom: None,
        });
        self
    }

    /// Adds a target file with a `custom` object in its targets.json entry.
    /// (Must be a non-empty JSON object: tough drops an empty one.)
    pub fn target_with_custom(
        mut self,
        name: impl Into<String>,
        content: impl Into<Vec<u8>>,
        custom: Value,
    ) -> Self {
        self.targets.push(TargetFile {
            name: name.into(),
            content: content.into(),
            custom: Some(custom),
        });
        self
    }

    /// Overrides `expires` for all four roles (format `YYYY-MM-DDTHH:MM:SSZ`).
    pub fn expires(mut self, expires: impl Into<String>) -> Self {
        self.expires = expires.into();
        self
    }

    /// Whether snapshot.json / timestamp.json record `length` and `hashes` of the
    /// signed targets.json / snapshot.json files (default true). With them, clients
    /// check those files' bytes against the hashes before their signatures: a tampered
    /// snapshot.json or targets.json is then rejected for a hash mismatch rather than for
    /// its signature. Turn them off to test signature checks on those two files.
    pub fn meta_hashes(mut self, on: bool) -> Self {
        self.meta_hashes = on;
        self
    }

    /// The unsigned `signed` part of root.json.
    pub fn root_signed(&self) -> Value {
        let mut keys = Map::new();
        for role in [
            &self.keys.root,
            &self.keys.targets,
            &self.keys.snapshot,
            &self.keys.timestamp,
        ] {
            for k in &role.keys {
                keys.entry(k.keyid.clone()).or_insert_with(|| k.key.clone());
            }
        }
        let role = |r: &RoleKeys| json!({ "keyids": r.keyids(), "threshold": r.threshold });
        json!({
            "_type": "root",
            "spec_version": SPEC_VERSION,
            "version": 1,
            "expires": self.expires,
            "consistent_snapshot": false,
            "keys": keys,
            "roles": {
                "root": role(&self.keys.root),
                "targets": role(&self.keys.targets),
                "snapshot": role(&self.keys.snapshot),
                "timestamp": role(&self.keys.timestamp),
            },
        })
    }

    /// The unsigned `signed` part of targets.json.
    pub fn targets_signed(&self) -> Value {
        let mut targets = Map::new();
        for t in &self.targets {
            let mut entry = json!({
                "length": t.content.len(),
                "hashes": {
                    "sha256": hex::encode(Sha256::digest(&t.content)),
                    "sha512": hex::encode(Sha512::digest(&t.content)),
                },
            });
            if let Some(custom) = &t.custom {
                entry["custom"] = custom.clone();
            }
            targets.insert(t.name.clone(), entry);
        }
        json!({
            "_type": "targets",
            "spec_version": SPEC_VERSION,
            "version": 1,
            "expires": self.expires,
            "targets": targets,
        })
    }

    /// Writes the repository into `dir` (created if needed; existing `metadata/`,
    /// `targets/` and `unsigned/` contents are overwritten), calling `sign` for root,
    /// targets, snapshot and timestamp in that order. After each call the signed file is
    /// checked: it must parse, keep `signed` unchanged and carry a signature for each key ID.
    pub fn build(&self, dir: &Path, sign: &mut SignFn<'_>) -> Result<BuiltRepo, Error> {
        self.validate()?;
        let metadata_dir = dir.join("metadata");
        let targets_dir = dir.join("targets");
        let unsigned_dir = dir.join("unsigned");
        for d in [&metadata_dir, &targets_dir, &unsigned_dir] {
            fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        }

        for t in &self.targets {
            let path = targets_dir.join(&t.name);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&path, &t.content).map_err(|e| format!("writing {}: {e}", path.display()))?;
        }

        // root: signed into 1.root.json, copied to root.json.
        let root_path = metadata_dir.join("1.root.json");
        self.sign_role(
            &unsigned_dir,
            &root_path,
            "root",
            self.root_signed(),
            &self.keys.root,
            sign,
        )?;
        fs::copy(&root_path, metadata_dir.join("root.json"))?;

        let targets_path = metadata_dir.join("targets.json");
        let targets = self.targets_signed();
        self.sign_role(
            &unsigned_dir,
            &targets_path,
            "targets",
            targets,
            &self.keys.targets,
            sign,
        )?;

        let snapshot_path = metadata_dir.join("snapshot.json");
        let snapshot = json!({
            "_type": "snapshot",
            "spec_version": SPEC_VERSION,
            "version": 1,
            "expires": self.expires,
            "meta": { "targets.json": self.meta_entry(&targets_path)? },
        });
        self.sign_role(
            &unsigned_dir,
            &snapshot_path,
            "snapshot",
            snapshot,
            &self.keys.snapshot,
            sign,
        )?;

        let timestamp_path = metadata_dir.join("timestamp.json");
        let timestamp = json!({
            "_type": "timestamp",
            "spec_version": SPEC_VERSION,
            "version": 1,
            "expires": self.expires,
            "meta": { "snapshot.json": self.meta_entry(&snapshot_path)? },
        });
        self.sign_role(
            &unsigned_dir,
            &timestamp_path,
            "timestamp",
            timestamp,
            &self.keys.timestamp,
            sign,
        )?;

        Ok(BuiltRepo {
            dir: dir.to_path_buf(),
            metadata_dir,
            targets_dir,
            target_names: self.targets.iter().map(|t| t.name.clone()).collect(),
        })
    }

    fn validate(&self) -> Result<(), Error> {
        if self.targets.is_empty() {
            return Err("RepoBuilder: add at least one target".into());
        }
        for (role, keys) in [
            ("root", &self.keys.root),
            ("targets", &self.keys.targets),
            ("snapshot", &self.keys.snapshot),
            ("timestamp", &self.keys.timestamp),
        ] {
            if keys.keys.is_empty()
                || keys.threshold == 0
                || keys.threshold as usize > keys.keys.len()
            {
                return Err(format!(
                    "RepoBuilder: role {role} has {} keys and threshold {}",
                    keys.keys.len(),
                    keys.threshold
                )
                .into());
            }
        }
        let mut seen = std::collections::HashSet::new();
        for t in &self.targets {
            let p = Path::new(&t.name);
            let safe = !t.name.is_empty()
                && !t.name.contains('\\')
                && p.components().all(|c| matches!(c, Component::Normal(_)));
            if !safe {
                return Err(format!("RepoBuilder: unsafe target name {:?}", t.name).into());
            }
            if !seen.insert(&t.name) {
                return Err(format!("RepoBuilder: duplicate target name {:?}", t.name).into());
            }
            if matches!(&t.custom, Some(c) if c.as_object().is_none_or(|o| o.is_empty())) {
                return Err(format!(
                    "RepoBuilder: custom of {:?} must be a non-empty object",
                    t.name
                )
                .into());
            }
        }
        Ok(())
    }

    /// `{"version": V}` plus, with meta_hashes, `length` and `hashes.sha256` of the file.
    fn meta_entry(&self, signed_file: &Path) -> Result<Value, Error> {
        let doc = read_json(signed_file)?;
        let version = doc["signed"]["version"].as_u64().ok_or_else(|| {
            format!(
                "{}: signed.version is not an integer",
                signed_file.display()
            )
        })?;
        if !self.meta_hashes {
            return Ok(json!({ "version": version }));
        }
        let bytes = fs::read(signed_file)?;
        Ok(json!({
            "version": version,
            "length": bytes.len(),
            "hashes": { "sha256": hex::encode(Sha256::digest(&bytes)) },
        }))
    }

    fn sign_role(
        &self,
        unsigned_dir: &Path,
        out: &Path,
        role: &str,
        signed: Value,
        keys: &RoleKeys,
        sign: &mut SignFn<'_>,
    ) -> Result<(), Error> {
        let unsigned = unsigned_dir.join(format!("{role}.json"));
        let doc = json!({ "signed": signed, "signatures": [] });
        let mut text = serde_json::to_string_pretty(&doc)?;
        text.push('\n');
        fs::write(&unsigned, text).map_err(|e| format!("writing {}: {e}", unsigned.display()))?;
        let _ = fs::remove_file(out);

        let keyids = keys.keyids();
        sign(&unsigned, out, &keyids).map_err(|e| format!("signing {role}.json: {e}"))?;

        // Catch signer mistakes here, with a clear message, rather than as a
        // verifier's "threshold not met" later.
        let got = read_json(out).map_err(|e| format!("signer output for {role}: {e}"))?;
        if got.get("signed") != doc.get("signed") {
            return Err(format!(
                "signer changed the `signed` part of {role} ({})",
                out.display()
            )
            .into());
        }
        let sigs = got["signatures"]
            .as_array()
            .ok_or_else(|| format!("{}: `signatures` is not an array", out.display()))?;
        for id in &keyids {
            if !sigs.iter().any(|s| s["keyid"].as_str() == Some(id)) {
                return Err(format!("{}: no signature by key {id}", out.display()).into());
            }
        }
        Ok(())
    }
}

/// Adapts a one-key signer into a [`SignFn`]: signs with each key ID in turn, feeding
/// each output into the next call (through `OUT.partN` files next to `signed_out`,
/// removed afterwards). `tests/verifiers_selfcheck.rs` uses it with in-process keys:
/// `builder.build(dir, &mut tuf_repo::per_key(|input, output, keyid| sign_one(...)))`.
pub fn per_key<'a>(
    mut sign_one: impl FnMut(&Path, &Path, &str) -> Result<(), Error> + 'a,
) -> impl FnMut(&Path, &Path, &[String]) -> Result<(), Error> + 'a {
    move |input: &Path, output: &Path, keyids: &[String]| {
        let mut current = input.to_path_buf();
        let mut parts = Vec::new();
        for (n, id) in keyids.iter().enumerate() {
            let out = if n + 1 == keyids.len() {
                output.to_path_buf()
            } else {
                let mut name = output.as_os_str().to_owned();
                name.push(format!(".part{n}"));
                PathBuf::from(name)
            };
            sign_one(&current, &out, id).map_err(|e| format!("key {id}: {e}"))?;
            if out != output {
                parts.push(out.clone());
            }
            current = out;
        }
        for p in parts {
            let _ = fs::remove_file(p);
        }
        Ok(())
    }
}

/// Reads and parses a JSON file, naming it in errors.
pub fn read_json(path: &Path) -> Result<Value, Error> {
    let bytes = fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("parsing {}: {e}", path.display()).into())
}

/// Corrupts the first signature in a signed metadata file by flipping the last hex digit
/// of its `sig` (still valid hex, still valid DER: only the last byte of `s` changes).
///
/// The file is edited in place, byte for byte, so its length and every other byte stay
/// the same. Its hashes do change: if the file is listed with hashes in snapshot.json or
/// timestamp.json (see [`RepoBuilder::meta_hashes`]) clients reject it for that first.
/// Root and timestamp are never listed with hashes, so tampering them always tests the
/// signature check. Returns the (old, new) signature hex.
pub fn tamper_signature(file: &Path) -> Result<(String, String), Error> {
    let doc = read_json(file)?;
    let sig = doc["signatures"][0]["sig"]
        .as_str()
        .ok_or_else(|| format!("{}: no signatures[0].sig string", file.display()))?
        .to_owned();
    if sig.is_empty() || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{}: signatures[0].sig is not hex: {sig:?}", file.display()).into());
    }
    let mut bytes = fs::read(file)?;
    let needle = format!("\"{sig}\"");
    let positions: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle.as_bytes())
        .map(|(i, _)| i)
        .collect();
    let [pos] = positions[..] else {
        return Err(format!(
            "{}: expected the signature text to occur once (unescaped), found {} times",
            file.display(),
            positions.len()
        )
        .into());
    };
    let last = pos + needle.len() - 2; // the last hex digit, before the closing quote
    bytes[last] = flip_hex_digit(bytes[last]);
    fs::write(file, &bytes)?;
    let new = String::from_utf8(bytes[pos + 1..pos + needle.len() - 1].to_vec())?;
    Ok((sig, new))
}

fn flip_hex_digit(b: u8) -> u8 {
    let v = (b as char).to_digit(16).expect("hex digit") ^ 1;
    let c = std::char::from_digit(v, 16).expect("a hex digit xor 1 is a hex digit");
    if b.is_ascii_uppercase() {
        c.to_ascii_uppercase() as u8
    } else {
        c as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_keeps_hex_and_case() {
        for b in b"0123456789abcdefABCDEF" {
            let f = flip_hex_digit(*b);
            assert_ne!(f, *b);
            assert!(f.is_ascii_hexdigit());
            assert_eq!(f.is_ascii_uppercase(), b.is_ascii_uppercase());
        }
    }
}
