//! `repo init DIR --gun G`: the root (keys from tufkeyd, generated for roles given
//! none; thresholds and expiry per role; root keys may be on YubiKeys), signed and
//! published with an empty first release.

use super::build;
use super::error::RepoError;
use super::lock::lock;
use super::publish::Published;
use super::release::{self, expiry, Staging, SPEC_VERSION};
use super::role::TopRole;
use super::signing::Signer;
use super::state::{state_path, RepoState, RoleConfig};
use clap::Args;
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU64;
use std::path::PathBuf;
use tough::schema::{KeyHolder, RoleKeys, Root};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The repository directory (created if missing).
    pub dir: PathBuf,
    /// The collection the keys belong to in tufkeyd, e.g. example.com/app.
    #[arg(long)]
    pub gun: String,
    /// A root key (TUF or Notary key ID; repeatable) [default: a new software key].
    #[arg(long = "root-key", value_name = "KEYID")]
    pub root_keys: Vec<String>,
    /// A targets key (repeatable) [default: a new software key].
    #[arg(long = "targets-key", value_name = "KEYID")]
    pub targets_keys: Vec<String>,
    /// A snapshot key (repeatable) [default: a new software key].
    #[arg(long = "snapshot-key", value_name = "KEYID")]
    pub snapshot_keys: Vec<String>,
    /// A timestamp key (repeatable) [default: a new software key].
    #[arg(long = "timestamp-key", value_name = "KEYID")]
    pub timestamp_keys: Vec<String>,
    /// Signatures a role needs, e.g. root=2 [default: 1].
    #[arg(long = "threshold", value_name = "ROLE=N")]
    pub thresholds: Vec<String>,
    /// Days a role's metadata stays valid, e.g. timestamp=1 [default: root 365,
    /// targets 90, snapshot 7, timestamp 1].
    #[arg(long = "expires", value_name = "ROLE=DAYS")]
    pub expires: Vec<String>,
    /// A name for a YubiKey, used when asking for it, e.g. 1001=offline-root.
    #[arg(long = "card-label", value_name = "SERIAL=LABEL")]
    pub card_labels: Vec<String>,
}

pub async fn init(signer: &mut Signer, args: InitArgs) -> Result<Published, RepoError> {
    let dir = args.dir.as_path();
    if state_path(dir).exists() || release::metadata_dir(dir).exists() {
        return Err(RepoError::AlreadyInitialised {
            dir: dir.to_path_buf(),
        });
    }
    let thresholds = role_values(&args.thresholds, "--threshold", "ROLE=N")?;
    let expires = role_values(&args.expires, "--expires", "ROLE=DAYS")?;
    let card_labels = card_labels(&args.card_labels)?;
    signer.label_cards(card_labels.clone());
    let given = [
        (TopRole::Root, &args.root_keys),
        (TopRole::Targets, &args.targets_keys),
        (TopRole::Snapshot, &args.snapshot_keys),
        (TopRole::Timestamp, &args.timestamp_keys),
    ];
    // Check every given key before generating any.
    let mut roles = BTreeMap::new();
    for (role, keyids) in given {
        let mut resolved = Vec::new();
        for keyid in keyids {
            resolved.push(signer.key(keyid, role.name()).await?.keyid);
        }
        let threshold = thresholds.get(&role).copied().unwrap_or(1);
        let count = keyids.len().max(1) as u64;
        if threshold == 0 || threshold > count {
            return Err(RepoError::Invalid(format!(
                "--threshold {role}={threshold}: {role} has {count} key(s); give a threshold from 1 to {count}, or more --{role}-key options"
            )));
        }
        let expires_days = match expires.get(&role) {
            Some(0) => {
                return Err(RepoError::Invalid(format!(
                    "--expires {role}=0: give at least one day"
                )))
            }
            Some(days) => u32::try_from(*days).map_err(|_| {
                RepoError::Invalid(format!("--expires {role}={days}: too many days"))
            })?,
            None => role.default_expiry_days(),
        };
        roles.insert(
            role,
            RoleConfig {
                keyids: resolved,
                threshold,
                expires_days,
            },
        );
    }
    for (role, config) in &mut roles {
        if config.keyids.is_empty() {
            let key = signer.client().generate_key(&args.gun, role.name()).await?;
            config.keyids.push(key.keyid);
        }
    }
    let state = RepoState {
        gun: args.gun.clone(),
        roles,
        card_labels,
        delegations: BTreeMap::new(),
        staged: Default::default(),
    };

    let root = build_root(signer, &state, NonZeroU64::MIN).await?;
    std::fs::create_dir_all(dir).map_err(RepoError::io("creating", dir))?;
    let _lock = lock(dir)?;
    if state_path(dir).exists() || release::metadata_dir(dir).exists() {
        return Err(RepoError::AlreadyInitialised {
            dir: dir.to_path_buf(),
        });
    }
    let mut staging = Staging::new(dir)?;
    let signed_root = signer
        .sign(
            "root",
            root.clone(),
            &KeyHolder::Root(root.clone()),
            &state.role(TopRole::Root)?.keyids,
        )
        .await?;
    staging.add(&signed_root).await?;
    let mut published = build::build(signer, &state, dir, &root, None, &mut staging, true).await?;
    published.versions.insert("root".into(), root.version.get());
    staging.commit(dir)?;
    state.save(dir)?;
    Ok(published)
}

/// A root listing every role's keys from `state`, with consistent snapshots.
pub async fn build_root(
    signer: &mut Signer,
    state: &RepoState,
    version: NonZeroU64,
) -> Result<Root, RepoError> {
    let mut root = Root {
        spec_version: SPEC_VERSION.into(),
        consistent_snapshot: true,
        version,
        expires: expiry(state.role(TopRole::Root)?.expires_days)?,
        keys: HashMap::new(),
        roles: HashMap::new(),
        _extra: HashMap::new(),
    };
    for (role, config) in &state.roles {
        let keys = signer.tuf_keys(&config.keyids, role.name()).await?;
        let threshold = NonZeroU64::new(config.threshold)
            .ok_or_else(|| RepoError::Invalid(format!("{role}: threshold 0")))?;
        root.roles.insert(
            role.role_type(),
            RoleKeys {
                keyids: keys.keys().cloned().collect(),
                threshold,
                _extra: HashMap::new(),
            },
        );
        root.keys.extend(keys);
    }
    Ok(root)
}

/// `ROLE=N` options, by role.
fn role_values(
    values: &[String],
    flag: &str,
    shape: &str,
) -> Result<BTreeMap<TopRole, u64>, RepoError> {
    let mut parsed = BTreeMap::new();
    for value in values {
        let bad = || {
            RepoError::Invalid(format!(
                "{flag} {value:?}: expected {shape} with ROLE one of root, targets, snapshot, timestamp and a positive number"
            ))
        };
        let (role, number) = value.split_once('=').ok_or_else(bad)?;
        let role = TopRole::parse(role).ok_or_else(bad)?;
        let number = number.parse::<u64>().map_err(|_| bad())?;
        parsed.insert(role, number);
    }
    Ok(parsed)
}

/// `SERIAL=LABEL` options.
fn card_labels(values: &[String]) -> Result<BTreeMap<u32, String>, RepoError> {
    let mut labels = BTreeMap::new();
    for value in values {
        let bad = || {
            RepoError::Invalid(format!(
                "--card-label {value:?}: expected SERIAL=LABEL, e.g. 1001=offline-root"
            ))
        };
        let (serial, label) = value.split_once('=').ok_or_else(bad)?;
        let serial = serial.parse::<u32>().map_err(|_| bad())?;
        if label.is_empty() {
            return Err(bad());
        }
        labels.insert(serial, label.to_owned());
    }
    Ok(labels)
}
