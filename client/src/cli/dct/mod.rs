//! `tufkey dct`: Docker Content Trust publishing. Signs image tags into a Notary
//! server's collections with root, repository and signer keys held in tufkeyd, so
//! no private key file sits on the publisher's machine.
//!
//! Every command fetches the collection and verifies it against the pinned root
//! (`trust`) before it signs anything; it then signs only the roles it changes
//! (`signing`, waiting for YubiKeys as `tufkey repo` does) and uploads them in one
//! atomic update, leaving snapshot and timestamp to the server as Docker does.

mod certificate;
mod commands;
mod error;
mod gun;
mod inspect;
mod keys;
mod metadata;
mod pins;
mod signing;
mod trust;

use super::card_wait::PinArgs;
use super::output::print;
use clap::{Args, Subcommand};
use error::{into_cli_error, DctError};
use gun::Gun;
use pins::{Pins, SavedServer};
use signing::RoleSigner;
use std::path::PathBuf;
use tufkey::dct::transport::{Credentials, NotaryServer, ServerConfig};
use tufkey::{Client, Result};

#[derive(Debug, Subcommand)]
pub enum DctCommand {
    /// Create a collection: root (a certificate key, optionally on a YubiKey) and
    /// repository key in tufkeyd, snapshot and timestamp keys on the server.
    Init(commands::InitArgs),
    /// Sign a tag: GUN:TAG with --digest and --size, or REGISTRY/REPO:TAG read from
    /// the registry.
    Sign(commands::SignArgs),
    /// Remove a tag's signatures (from every role tufkeyd can sign).
    Revoke(commands::RevokeArgs),
    /// Add or remove signers (`targets/releases` plus `targets/<name>`).
    #[command(subcommand)]
    Signer(commands::SignerCommand),
    /// Rotate a key.
    #[command(subcommand)]
    Key(commands::KeyCommand),
    /// What is signed, by which keys, and where those keys are.
    Inspect(inspect::InspectArgs),
}

/// The Notary server, the pins, and how to reach both.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The Notary server, https://HOST:PORT [default: the one the collection was
    /// created on, else $DOCKER_CONTENT_TRUST_SERVER].
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// CA certificate (PEM) to verify the server with [default: the one saved at
    /// init, else the system's roots].
    #[arg(long, value_name = "FILE")]
    server_ca: Option<PathBuf>,
    /// Client certificate (PEM) for servers that ask for one.
    #[arg(long, value_name = "FILE", requires = "server_key")]
    server_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, value_name = "FILE", requires = "server_cert")]
    server_key: Option<PathBuf>,
    /// Where tufkey keeps pinned roots [default: $XDG_DATA_HOME/tufkey/dct].
    #[arg(long, value_name = "DIR")]
    trust_dir: Option<PathBuf>,
    /// A Notary/Docker trust dir whose pinned roots to adopt for collections tufkey
    /// has not pinned yet [default: ~/.docker/trust].
    #[arg(long, value_name = "DIR")]
    notary_trust_dir: Option<PathBuf>,
    #[command(flatten)]
    pins: PinArgs,
}

/// What every `dct` command works with.
pub struct Session {
    pub server: NotaryServer,
    pub pins: Pins,
    pub notary_trust_dir: Option<PathBuf>,
    pub signer: RoleSigner,
    saved: SavedServer,
}

impl Session {
    /// Connects to the server for `gun`: `--server`, the saved one, or Docker's
    /// variable.
    fn open(client: Client, args: &ServerArgs, gun: &Gun) -> Result<Session, DctError> {
        let pins = Pins::new(args.trust_dir.clone());
        let saved = pins.server(gun)?;
        let url = args
            .server
            .clone()
            .or_else(|| saved.as_ref().map(|saved| saved.url.clone()))
            .or_else(|| std::env::var("DOCKER_CONTENT_TRUST_SERVER").ok())
            .ok_or_else(|| {
                DctError::Usage(format!(
                    "no Notary server for {gun}: pass --server https://HOST:PORT (or set DOCKER_CONTENT_TRUST_SERVER)"
                ))
            })?;
        // Saved as an absolute path: later commands may run from anywhere.
        let ca = args
            .server_ca
            .clone()
            .map(|ca| std::path::absolute(&ca).unwrap_or(ca))
            .or_else(|| saved.as_ref().and_then(|saved| saved.ca.clone()));
        let parsed = url::Url::parse(&url).map_err(|error| {
            DctError::Usage(format!(
                "--server {url:?} is not a URL ({error}): write https://HOST:PORT"
            ))
        })?;
        let server = NotaryServer::new(ServerConfig {
            url: parsed,
            ca: ca.clone(),
            client_identity: args.server_cert.clone().zip(args.server_key.clone()),
            credentials: Credentials::from_env()?,
        })?;
        Ok(Session {
            server,
            pins,
            notary_trust_dir: args.notary_trust_dir.clone(),
            signer: RoleSigner::new(client, args.pins.source()),
            saved: SavedServer { url, ca },
        })
    }

    /// Fetches and verifies `gun`.
    async fn collection(&self, gun: &Gun) -> Result<trust::Collection, DctError> {
        trust::fetch(
            &self.server,
            &self.pins,
            self.notary_trust_dir.as_deref(),
            gun,
        )
        .await
    }

    /// Remembers the server for `gun`, so later commands need no `--server`.
    fn remember_server(&self, gun: &Gun) -> Result<(), DctError> {
        self.pins.save_server(gun, &self.saved)
    }
}

pub async fn run(client: Client, command: DctCommand, json: bool) -> Result<()> {
    dispatch(client, command, json)
        .await
        .map_err(into_cli_error)
}

async fn dispatch(client: Client, command: DctCommand, json: bool) -> Result<(), DctError> {
    let report = match command {
        DctCommand::Init(args) => {
            let gun = Gun::parse(&args.gun)?;
            let mut session = Session::open(client, &args.server, &gun)?;
            commands::init(&mut session, &gun, &args).await?
        }
        DctCommand::Sign(args) => {
            let name = gun::TaggedName::parse(&args.reference)?;
            let mut session = Session::open(client, &args.server, &name.gun)?;
            commands::sign(&mut session, &name, &args).await?
        }
        DctCommand::Revoke(args) => {
            let name = gun::TaggedName::parse(&args.reference)?;
            let mut session = Session::open(client, &args.server, &name.gun)?;
            commands::revoke(&mut session, &name, &args).await?
        }
        DctCommand::Signer(command) => {
            let (guns, server) = command.collections();
            let mut reports = Vec::new();
            for text in guns {
                let gun = Gun::parse(text)?;
                let mut session = Session::open(client.clone(), server, &gun)?;
                reports.push(commands::signer(&mut session, &gun, &command).await?);
            }
            commands::Report::merge(reports)
        }
        DctCommand::Key(command) => {
            let gun = Gun::parse(command.gun())?;
            let mut session = Session::open(client, command.server(), &gun)?;
            commands::rotate(&mut session, &gun, &command).await?
        }
        DctCommand::Inspect(args) => {
            let (gun, tag) = inspect::parse_target(&args.target)?;
            let mut session = Session::open(client, &args.server, &gun)?;
            let inspected = inspect::inspect(&mut session, &gun, tag.as_deref()).await?;
            print(json, inspected.json(), || inspected.text());
            return Ok(());
        }
    };
    print(json, report.json(), || report.text());
    Ok(())
}
