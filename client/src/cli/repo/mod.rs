//! `tufkey repo`: a TUF repository workflow (init, add/remove, delegate, publish,
//! refresh, rotate, status) on tough's editor, every role signed through tufkeyd.
//! The layout of DIR: `tufkey-repo.json` (workflow state), `metadata/` and
//! `targets/` (what clients fetch; consistent snapshots).

mod build;
mod delegate;
mod error;
mod init;
mod lock;
mod publish;
mod release;
mod role;
mod rotate;
mod signing;
mod stage;
mod state;
mod status;

use super::card_wait::PinArgs;
use super::output::print;
use clap::Subcommand;
use error::{into_cli_error, RepoError};
use serde_json::json;
use signing::Signer;
use std::path::PathBuf;
use tufkey::{Client, Result};

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create a repository: root with keys from tufkeyd (new software keys for roles
    /// given none), signed, with an empty first release.
    Init {
        #[command(flatten)]
        args: init::InitArgs,
        #[command(flatten)]
        pins: PinArgs,
    },
    /// Stage files as targets (published under their file names); nothing is signed yet.
    Add {
        /// The repository directory.
        dir: PathBuf,
        /// Files to publish.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Put them in this delegated role instead of the top-level targets.
        #[arg(long, value_name = "NAME")]
        delegation: Option<String>,
        /// Name each target by its path below this directory (`pkg/app.tar.gz`)
        /// instead of its file name.
        #[arg(long, value_name = "BASE")]
        relative_to: Option<PathBuf>,
    },
    /// Stage the removal of published targets.
    Remove {
        /// The repository directory.
        dir: PathBuf,
        /// Target names.
        #[arg(required = true)]
        targets: Vec<String>,
        /// Remove them from this delegated role.
        #[arg(long, value_name = "NAME")]
        delegation: Option<String>,
    },
    /// Stage a delegated targets role (created by the next publish).
    Delegate(delegate::DelegateArgs),
    /// Sign and publish a release: staged changes, new targets/snapshot/timestamp.
    Publish {
        /// The repository directory.
        dir: PathBuf,
        #[command(flatten)]
        pins: PinArgs,
    },
    /// Re-sign just the timestamp (or snapshot and timestamp) with a new expiry.
    Refresh {
        /// The repository directory.
        dir: PathBuf,
        /// timestamp or snapshot.
        #[arg(long, value_enum)]
        role: role::TopRole,
        #[command(flatten)]
        pins: PinArgs,
    },
    /// Replace a role's key: a new root signed by the old and new root keys.
    Rotate {
        /// The repository directory.
        dir: PathBuf,
        /// root, targets, snapshot or timestamp.
        #[arg(value_enum)]
        role: role::TopRole,
        /// The new key [default: a new software key].
        #[arg(long, value_name = "KEYID")]
        key: Option<String>,
        #[command(flatten)]
        pins: PinArgs,
    },
    /// Versions, expiry, where the keys are, and what is missing (`--json` too).
    Status {
        /// The repository directory.
        dir: PathBuf,
    },
}

pub async fn run(client: Client, command: RepoCommand, json: bool) -> Result<()> {
    dispatch(client, command, json)
        .await
        .map_err(into_cli_error)
}

async fn dispatch(client: Client, command: RepoCommand, json: bool) -> Result<(), RepoError> {
    let signer =
        |client: Client, pins: &PinArgs, labels| Signer::new(client, pins.source(), labels);
    let labels_of =
        |dir: &std::path::Path| state::RepoState::load(dir).map(|state| state.card_labels);
    match command {
        RepoCommand::Init { args, pins } => {
            let labels = Default::default();
            let mut signer = signer(client, &pins, labels);
            let published = init::init(&mut signer, args).await?;
            print(json, published.json(), || published.text());
        }
        RepoCommand::Add {
            dir,
            files,
            delegation,
            relative_to,
        } => {
            let staged = stage::add(&dir, &files, delegation.as_deref(), relative_to.as_deref())?;
            print(json, json!({"staged": staged}), || {
                format!(
                    "{staged} change(s) staged: publish with `tufkey repo publish {}`",
                    dir.display()
                )
            });
        }
        RepoCommand::Remove {
            dir,
            targets,
            delegation,
        } => {
            let staged = stage::remove(&dir, &targets, delegation.as_deref())?;
            print(json, json!({"staged": staged}), || {
                format!(
                    "{staged} change(s) staged: publish with `tufkey repo publish {}`",
                    dir.display()
                )
            });
        }
        RepoCommand::Delegate(args) => {
            let mut client = client;
            let (dir, name) = (args.dir.clone(), args.name.clone());
            delegate::delegate(&mut client, args).await?;
            print(json, json!({"delegation": name, "staged": true}), || {
                format!(
                    "delegation {name} staged: publish with `tufkey repo publish {}`",
                    dir.display()
                )
            });
        }
        RepoCommand::Publish { dir, pins } => {
            let mut signer = signer(client, &pins, labels_of(&dir)?);
            let published = publish::publish(&mut signer, &dir).await?;
            print(json, published.json(), || published.text());
        }
        RepoCommand::Refresh { dir, role, pins } => {
            let mut signer = signer(client, &pins, labels_of(&dir)?);
            let published = publish::refresh(&mut signer, &dir, role).await?;
            print(json, published.json(), || published.text());
        }
        RepoCommand::Rotate {
            dir,
            role,
            key,
            pins,
        } => {
            let mut signer = signer(client, &pins, labels_of(&dir)?);
            let published = rotate::rotate(&mut signer, &dir, role, key.as_deref()).await?;
            print(json, published.json(), || published.text());
        }
        RepoCommand::Status { dir } => {
            let mut client = client;
            let report = status::status(&mut client, &dir).await?;
            print(json, report.clone(), || status::text(&report));
        }
    }
    Ok(())
}
