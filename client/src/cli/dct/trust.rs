//! Fetching a collection and checking it the way the notary client does before
//! anything is signed into it: root chains from the pinned root (signed by the
//! pinned root keys and its own, never older), root certificates name the
//! collection, timestamp, snapshot, targets and each delegation carry enough valid
//! signatures by the keys their parent lists, match the hashes one level up, and
//! have not expired. What does not check out is refused and nothing is published.

use super::error::DctError;
use super::gun::Gun;
use super::keys::{certificate_facts, key_id, verifies, ECDSA_X509};
use super::metadata::{
    canonical, expiry, matches, parse_envelope, typed, DelegationRole, FileMeta, MetaList,
    PublicKey, Root, Targets,
};
use super::pins::{docker_trust_dir, notary_trust_dir_root, Pins};
use std::collections::BTreeMap;
use std::path::PathBuf;
use time::OffsetDateTime;
use tufkey::dct::transport::NotaryServer;

/// A collection as verified: each role's typed content and the bytes as served.
#[derive(Clone, Debug)]
pub struct Collection {
    pub gun: Gun,
    pub root: Root,
    pub targets: Targets,
    pub snapshot: MetaList,
    pub timestamp: MetaList,
    /// Delegated targets roles that are published, by name.
    pub delegated: BTreeMap<String, Targets>,
}

/// How the pinned root was found, for the line printed when it is first pinned.
enum PinSource {
    Pinned,
    NotaryTrustDir(PathBuf),
    FirstUse,
}

/// Fetches `gun` from `server` and verifies it against the pinned root, pinning a
/// newer root that chains from it (or the first one seen).
pub async fn fetch(
    server: &NotaryServer,
    pins: &Pins,
    notary_trust_dir: Option<&std::path::Path>,
    gun: &Gun,
) -> Result<Collection, DctError> {
    let root_bytes = server
        .metadata(gun.as_str(), "root")
        .await?
        .ok_or_else(|| DctError::NoCollection {
            gun: gun.to_string(),
            server: server.url().to_string(),
        })?;
    let (pinned, source) = match pins.root(gun)? {
        Some(bytes) => (Some(bytes), PinSource::Pinned),
        None => {
            let trust_dir = notary_trust_dir
                .map(PathBuf::from)
                .or_else(docker_trust_dir);
            match trust_dir
                .map(|dir| notary_trust_dir_root(&dir, gun))
                .transpose()?
                .flatten()
            {
                Some((path, bytes)) => (Some(bytes), PinSource::NotaryTrustDir(path)),
                None => (None, PinSource::FirstUse),
            }
        }
    };
    let root = verify_root(gun, &root_bytes, pinned.as_deref(), &pins.root_path(gun))?;
    if pinned.as_deref() != Some(&root_bytes[..]) || !matches!(source, PinSource::Pinned) {
        pins.pin_root(gun, &root_bytes)?;
        match source {
            PinSource::FirstUse => eprintln!(
                "pinned the root of {gun} on first use (root keys {}): later roots must chain from it",
                root.roles.get("root").map(|role| role.keyids.join(", ")).unwrap_or_default()
            ),
            PinSource::NotaryTrustDir(path) => eprintln!(
                "pinned the root of {gun} that {} trusts",
                path.display()
            ),
            PinSource::Pinned => {}
        }
    }

    let checker = Checker {
        server,
        gun,
        now: OffsetDateTime::now_utc(),
    };
    let timestamp: MetaList = checker
        .role(
            "timestamp",
            None,
            &root.keys,
            role_keys(gun, &root, "timestamp")?,
        )
        .await?;
    let by_timestamp = Listing {
        meta: &timestamp.meta,
        by: "timestamp",
    };
    let snapshot: MetaList = checker
        .role(
            "snapshot",
            Some(by_timestamp),
            &root.keys,
            role_keys(gun, &root, "snapshot")?,
        )
        .await?;
    let by_snapshot = Listing {
        meta: &snapshot.meta,
        by: "snapshot",
    };
    let targets: Targets = checker
        .role(
            "targets",
            Some(by_snapshot),
            &root.keys,
            role_keys(gun, &root, "targets")?,
        )
        .await?;

    let mut delegated = BTreeMap::new();
    for role in &targets.delegations.roles {
        if !snapshot.meta.contains_key(&role.name) {
            continue; // delegated, but nothing signed into it yet
        }
        let content: Targets = checker
            .role(
                &role.name,
                Some(by_snapshot),
                &targets.delegations.keys,
                role_as_keys(role),
            )
            .await?;
        delegated.insert(role.name.clone(), content);
    }

    Ok(Collection {
        gun: gun.clone(),
        root,
        targets,
        snapshot,
        timestamp,
        delegated,
    })
}

/// Fetches and checks the roles below root, one request each.
struct Checker<'a> {
    server: &'a NotaryServer,
    gun: &'a Gun,
    now: OffsetDateTime,
}

/// The metadata one level up that lists a role's hashes (`by` names it).
#[derive(Clone, Copy)]
struct Listing<'a> {
    meta: &'a BTreeMap<String, FileMeta>,
    by: &'static str,
}

impl Checker<'_> {
    /// Fetches `role`, checks it matches what `listed` says of it, carries enough
    /// signatures by its keys, and has not expired.
    async fn role<T: serde::de::DeserializeOwned + Expiring>(
        &self,
        role: &str,
        listed: Option<Listing<'_>>,
        keys: &BTreeMap<String, PublicKey>,
        role_keys: (&[String], u32),
    ) -> Result<T, DctError> {
        let gun = self.gun;
        let bytes = self
            .server
            .metadata(gun.as_str(), role)
            .await?
            .ok_or_else(|| DctError::Missing {
                gun: gun.to_string(),
                role: role.to_owned(),
                by: listed.map_or("root", |listing| listing.by),
            })?;
        if let Some(listing) = listed {
            check_listed(gun, role, &bytes, listing)?;
        }
        verify_role(gun, role, &bytes, keys, role_keys, self.now)
    }
}

/// Checks a served root: signed by its own root keys, by the pinned root's keys
/// when it differs from the pin, not older than the pin, not expired, and its
/// certificates name the collection.
pub fn verify_root(
    gun: &Gun,
    bytes: &[u8],
    pinned: Option<&[u8]>,
    pin_path: &std::path::Path,
) -> Result<Root, DctError> {
    let now = OffsetDateTime::now_utc();
    let envelope = parse_envelope("root", bytes)?;
    let root: Root = typed("root", &envelope.signed)?;
    let own = role_keys(gun, &root, "root")?;
    verify_role::<Root>(gun, "root", bytes, &root.keys, own, now)?;
    if let Some(pinned) = pinned.filter(|pinned| *pinned != bytes) {
        let pinned_envelope = parse_envelope("root", pinned)?;
        let pinned_root: Root = typed("root", &pinned_envelope.signed)?;
        if root.version < pinned_root.version {
            return Err(DctError::RootRollback {
                gun: gun.to_string(),
                served: root.version,
                pinned: pinned_root.version,
                pin: pin_path.to_owned(),
            });
        }
        let pinned_keys = role_keys(gun, &pinned_root, "root")?;
        let chained = valid_signatures(
            &envelope.signed,
            &envelope.signatures,
            &pinned_root.keys,
            pinned_keys.0,
        )? >= pinned_keys.1 as usize;
        if !chained || root.version == pinned_root.version {
            return Err(DctError::RootMismatch {
                gun: gun.to_string(),
                pin: pin_path.to_owned(),
            });
        }
    }
    for keyid in own.0 {
        let Some(key) = root.keys.get(keyid).filter(|key| key.keytype == ECDSA_X509) else {
            continue;
        };
        if let Some((common_name, _)) = certificate_facts(key) {
            if common_name != gun.as_str() {
                return Err(DctError::CertificateName {
                    gun: gun.to_string(),
                    keyid: keyid.clone(),
                    common_name,
                });
            }
        }
    }
    Ok(root)
}

/// A top-level role's key IDs and threshold, as root lists them.
pub fn role_keys<'r>(
    gun: &Gun,
    root: &'r Root,
    role: &str,
) -> Result<(&'r [String], u32), DctError> {
    root.roles
        .get(role)
        .map(|keys| (&keys.keyids[..], keys.threshold.max(1)))
        .ok_or_else(|| DctError::NoRole {
            gun: gun.to_string(),
            role: role.to_owned(),
        })
}

fn role_as_keys(role: &DelegationRole) -> (&[String], u32) {
    (&role.keyids, role.threshold.max(1))
}

fn check_listed(gun: &Gun, role: &str, bytes: &[u8], listing: Listing<'_>) -> Result<(), DctError> {
    let by = listing.by;
    let meta = listing.meta.get(role).ok_or_else(|| DctError::Missing {
        gun: gun.to_string(),
        role: role.to_owned(),
        by,
    })?;
    if matches(meta, bytes) {
        Ok(())
    } else {
        Err(DctError::HashMismatch {
            gun: gun.to_string(),
            role: role.to_owned(),
            by,
        })
    }
}

/// Parses, checks the type, the signatures (`threshold` distinct keys of `keyids`
/// from `keys`) and the expiry of one role.
fn verify_role<T: serde::de::DeserializeOwned + Expiring>(
    gun: &Gun,
    role: &str,
    bytes: &[u8],
    keys: &BTreeMap<String, PublicKey>,
    (keyids, threshold): (&[String], u32),
    now: OffsetDateTime,
) -> Result<T, DctError> {
    let envelope = parse_envelope(role, bytes)?;
    let content: T = typed(role, &envelope.signed)?;
    let valid = valid_signatures(&envelope.signed, &envelope.signatures, keys, keyids)?;
    if valid < threshold as usize {
        return Err(DctError::Signatures {
            gun: gun.to_string(),
            role: role.to_owned(),
            valid,
            threshold,
        });
    }
    if expiry(role, content.expires())? <= now {
        return Err(DctError::Expired {
            gun: gun.to_string(),
            role: role.to_owned(),
            expires: content.expires().to_owned(),
        });
    }
    Ok(content)
}

/// How many distinct keys of `keyids` made a valid signature over `signed`. A key
/// only counts when its ID is the hash of the key given for it.
fn valid_signatures(
    signed: &serde_json::Value,
    signatures: &[super::metadata::Signature],
    keys: &BTreeMap<String, PublicKey>,
    keyids: &[String],
) -> Result<usize, DctError> {
    let message = canonical(signed)?;
    let mut signers: Vec<&str> = Vec::new();
    for signature in signatures {
        if signers.contains(&signature.keyid.as_str()) || !keyids.contains(&signature.keyid) {
            continue;
        }
        let Some(key) = keys.get(&signature.keyid) else {
            continue;
        };
        if key_id(key)? == signature.keyid && verifies(key, signature, &message) {
            signers.push(&signature.keyid);
        }
    }
    Ok(signers.len())
}

/// Metadata with an expiry.
pub trait Expiring {
    fn expires(&self) -> &str;
}

impl Expiring for Root {
    fn expires(&self) -> &str {
        &self.expires
    }
}

impl Expiring for Targets {
    fn expires(&self) -> &str {
        &self.expires
    }
}

impl Expiring for MetaList {
    fn expires(&self) -> &str {
        &self.expires
    }
}
