//! The `dct` commands that change a collection. Each one verifies the collection
//! first, signs only what it changes and uploads it in one update; its [`Report`]
//! says what was published.

mod init;
mod publish;
mod rotate;
mod signers;
mod tags;

use super::ServerArgs;
use clap::{Args, Subcommand};
use serde_json::Value;

pub use init::init;
pub use rotate::rotate;
pub use signers::signer;
pub use tags::{revoke, sign};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The collection, e.g. docker.io/acme/app or localhost:5000/acme/app.
    pub gun: String,
    /// Generate the root key on this YubiKey (slot 9c) [default: in software].
    #[arg(long, value_name = "SERIAL", conflicts_with = "root_key")]
    pub root_on_yubikey: Option<u32>,
    /// With --root-on-yubikey: generate even though the card still has the factory
    /// management key (otherwise run `tufkey device init` first).
    #[arg(long, requires = "root_on_yubikey")]
    pub allow_default_mgmt_key: bool,
    /// Use this tufkeyd key as root (TUF or Notary key ID).
    #[arg(long, value_name = "KEYID")]
    pub root_key: Option<String>,
    /// Use this tufkeyd key as the repository (targets) key [default: a new
    /// software key].
    #[arg(long, value_name = "KEYID")]
    pub targets_key: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// GUN:TAG, or REGISTRY/REPO:TAG to read the manifest from the registry.
    pub reference: String,
    /// The manifest digest, sha256:HEX [default: read from the registry].
    #[arg(long, value_name = "sha256:HEX", requires = "size")]
    pub digest: Option<String>,
    /// The manifest size in bytes (with --digest).
    #[arg(long, value_name = "BYTES")]
    pub size: Option<u64>,
    /// The registry to read the manifest from, http(s)://HOST[:PORT] [default:
    /// https://HOST of the name, http:// for a loopback host]. With --digest, the
    /// registry is asked only when this is given, and must agree.
    #[arg(long, value_name = "URL")]
    pub registry: Option<String>,
    /// CA certificate (PEM) to verify the registry with.
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Option<std::path::PathBuf>,
    /// Sign as this signer (into targets/releases and targets/NAME) [default: with
    /// the repository key, into targets].
    #[arg(long, value_name = "NAME")]
    pub signer: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// GUN:TAG.
    pub reference: String,
    /// Only as this signer [default: every role tufkeyd can sign].
    #[arg(long, value_name = "NAME")]
    pub signer: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum SignerCommand {
    /// Let NAME sign tags with the given keys: adds them to targets/releases and
    /// creates targets/NAME, as `docker trust signer add` does.
    Add {
        name: String,
        /// tufkeyd key(s) of the signer (TUF or Notary key ID).
        #[arg(long = "key", value_name = "KEYID", required = true)]
        keys: Vec<String>,
        /// The collections.
        #[arg(required = true)]
        guns: Vec<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Remove NAME: deletes targets/NAME and takes its keys out of targets/releases.
    Remove {
        name: String,
        #[arg(required = true)]
        guns: Vec<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

impl SignerCommand {
    pub fn collections(&self) -> (&[String], &ServerArgs) {
        match self {
            SignerCommand::Add { guns, server, .. }
            | SignerCommand::Remove { guns, server, .. } => (guns, server),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Replace the repository (targets) key, or have the server replace its
    /// snapshot or timestamp key; root is re-signed by the root key.
    Rotate {
        gun: String,
        #[arg(value_enum)]
        role: rotate::RotatedRole,
        /// The server makes the new key (snapshot, timestamp).
        #[arg(long)]
        server_managed: bool,
        /// The new targets key [default: a new software key].
        #[arg(long, value_name = "KEYID")]
        key: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

impl KeyCommand {
    pub fn gun(&self) -> &str {
        let KeyCommand::Rotate { gun, .. } = self;
        gun
    }

    pub fn server(&self) -> &ServerArgs {
        let KeyCommand::Rotate { server, .. } = self;
        server
    }
}

/// What a command published: lines for people, JSON for tools.
pub struct Report {
    lines: Vec<String>,
    json: Value,
}

impl Report {
    pub fn new(lines: Vec<String>, json: Value) -> Report {
        Report { lines, json }
    }

    /// Several collections' reports as one (a JSON array).
    pub fn merge(reports: Vec<Report>) -> Report {
        let lines = reports
            .iter()
            .flat_map(|report| report.lines.clone())
            .collect();
        let json = Value::Array(reports.into_iter().map(|report| report.json).collect());
        Report { lines, json }
    }

    pub fn json(&self) -> Value {
        self.json.clone()
    }

    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}
