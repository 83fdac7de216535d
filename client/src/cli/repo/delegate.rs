//! `repo delegate DIR NAME --key ID...`: stage a delegated targets role of the
//! top-level targets (its keys, paths and threshold); `repo publish` creates it.

use super::error::RepoError;
use super::role::TopRole;
use super::signing::lookup_key;
use super::state::{Delegation, RepoState};
use clap::Args;
use std::path::PathBuf;
use tough::schema::PathPattern;
use tufkey::Client;

#[derive(Debug, Args)]
pub struct DelegateArgs {
    /// The repository directory.
    pub dir: PathBuf,
    /// The delegated role's name.
    pub name: String,
    /// A key of the role (TUF or Notary key ID; repeatable).
    #[arg(long = "key", value_name = "KEYID", required = true)]
    pub keys: Vec<String>,
    /// Target paths the role may sign for (glob; repeatable) [default: *].
    #[arg(long = "path", value_name = "GLOB")]
    pub paths: Vec<String>,
    /// Signatures the role needs.
    #[arg(long, default_value_t = 1)]
    pub threshold: u64,
}

pub async fn delegate(client: &mut Client, args: DelegateArgs) -> Result<(), RepoError> {
    let dir = args.dir.as_path();
    let (mut state, _lock) = RepoState::load_for_update(dir)?;
    let name = args.name;
    if TopRole::parse(&name).is_some()
        || name.is_empty()
        || name.contains(['/', '\\'])
        || name.starts_with('.')
    {
        return Err(RepoError::Invalid(format!(
            "delegation name {name:?}: use a plain name that is not a top-level role (e.g. `releases`)"
        )));
    }
    if state.delegations.contains_key(&name) {
        return Err(RepoError::DelegationExists { name });
    }
    let count = args.keys.len() as u64;
    if args.threshold == 0 || args.threshold > count {
        return Err(RepoError::Invalid(format!(
            "--threshold {}: the delegation has {count} key(s); give a threshold from 1 to {count}",
            args.threshold
        )));
    }
    let mut keyids = Vec::new();
    for keyid in &args.keys {
        keyids.push(lookup_key(client, keyid, &name).await?.keyid);
    }
    let paths = if args.paths.is_empty() {
        vec!["*".to_owned()]
    } else {
        args.paths
    };
    for path in &paths {
        PathPattern::new(path.as_str())
            .map_err(RepoError::schema(format!("use the path pattern {path:?}")))?;
    }
    let expires_days = state.role(TopRole::Targets)?.expires_days;
    state.delegations.insert(
        name,
        Delegation {
            keyids,
            threshold: args.threshold,
            paths,
            expires_days,
            published: false,
        },
    );
    state.save(dir)
}
