//! Command-line definitions and dispatch. Every command takes `--json`; failures
//! print one line on stderr and exit non-zero.

mod audit;
mod bench;
mod card_wait;
mod dct;
mod device;
mod docker;
mod docs;
mod doctor;
mod files;
mod keys;
mod migrate;
mod output;
mod policy;
mod repo;
mod session;
mod sign;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use tufkey::{Client, Error, Result, ServerUid};

/// tufkey: manage TUF keys held by tufkeyd and sign TUF metadata with them.
#[derive(Debug, Parser)]
#[command(name = "tufkey", version)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// tufkeyd's socket [default: $TUFKEY_SOCK, else $XDG_RUNTIME_DIR/tufkey/tufkeyd.sock]
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The uid (or user name) tufkeyd runs as; the CLI sends nothing to a socket
    /// whose listener runs as anyone else [default: $TUFKEY_SERVER_UID, else your own
    /// uid; system mode: `tufkey`]
    #[arg(long, global = true, value_name = "UID|USER")]
    server_uid: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
}

/// TCP + mutual TLS instead of the Unix socket. These go before the command
/// (`tufkey --addr ... key list`); `bench` also takes them after its name. The TLS
/// files are `--tls-*` (like tufkeyd's own), so `--key` only ever names a signing key.
#[derive(Clone, Debug, Default, Args)]
pub struct TlsArgs {
    /// Reach tufkeyd over TCP with mutual TLS (needs --tls-ca, --tls-cert, --tls-key).
    /// Repeat it for replicas (a DNS name with several addresses counts as one per
    /// address): calls fail over to the next one that answers; requests that must
    /// not run twice (generate, delete, unlock, imports) are never resent.
    #[arg(long, value_name = "https://HOST:PORT")]
    addr: Vec<String>,
    /// PEM CA certificate that verifies the server's TLS certificate.
    #[arg(long = "tls-ca", value_name = "FILE")]
    ca: Option<PathBuf>,
    /// PEM client certificate to present.
    #[arg(long = "tls-cert", value_name = "FILE")]
    cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long = "tls-key", value_name = "FILE")]
    key: Option<PathBuf>,
}

impl TlsArgs {
    /// These settings, each falling back to `outer`'s.
    pub fn or(self, outer: TlsArgs) -> TlsArgs {
        TlsArgs {
            addr: if self.addr.is_empty() {
                outer.addr
            } else {
                self.addr
            },
            ca: self.ca.or(outer.ca),
            cert: self.cert.or(outer.cert),
            key: self.key.or(outer.key),
        }
    }
}

/// Where tufkeyd (or, for `bench --protocol notary`, any Notary signer) listens.
#[derive(Clone, Debug)]
pub enum Target {
    Unix { socket: PathBuf, server: ServerUid },
    Tls(TlsTarget),
}

/// TCP addresses (one per replica, at least one) and the files for mutual TLS.
#[derive(Clone, Debug)]
pub struct TlsTarget {
    pub addrs: Vec<String>,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsTarget {
    /// A new TLS connection to the `index`th address (modulo their number; channels
    /// are not shared between callers of this).
    pub async fn channel(&self, index: usize) -> Result<tonic::transport::Channel> {
        let addr = &self.addrs[index % self.addrs.len()];
        Client::tls_channel(addr, &self.ca, Some((&self.cert, &self.key))).await
    }

    /// Every address, with DNS names of several addresses expanded.
    pub async fn endpoints(&self) -> Result<tufkey::TlsEndpoints> {
        tufkey::TlsEndpoints::resolve(&self.addrs, &self.ca, &self.cert, &self.key).await
    }
}

impl Target {
    /// A new connection to tufkeyd's native API (failing over between replicas).
    pub async fn connect(&self) -> Result<Client> {
        self.connect_from(0).await
    }

    /// [`Target::connect`], its calls going first to the `first`th endpoint (modulo
    /// their number): how `bench` spreads connections.
    pub async fn connect_from(&self, first: usize) -> Result<Client> {
        match self {
            Target::Unix { socket, server } => Client::connect_unix_as(socket, *server).await,
            Target::Tls(tls) => tls.endpoints().await?.connect_from(first).await,
        }
    }

    /// One client per endpoint, each talking to that endpoint alone: for work that
    /// concerns each replica itself (`audit verify`). A replica that cannot be reached
    /// is its own `Err`.
    pub async fn connect_each(&self) -> Result<Vec<(String, Result<Client>)>> {
        match self {
            Target::Unix { socket, server } => Ok(vec![(
                socket.display().to_string(),
                Client::connect_unix_as(socket, *server).await,
            )]),
            Target::Tls(tls) => {
                let endpoints = tls.endpoints().await?;
                let mut each = Vec::with_capacity(endpoints.len());
                for (index, name) in endpoints.names().enumerate() {
                    each.push((name.to_owned(), endpoints.connect_only(index).await));
                }
                Ok(each)
            }
        }
    }
}

/// The socket, or TCP with every TLS file; never a mix.
fn resolve_target(
    socket: Option<PathBuf>,
    server_uid: Option<&str>,
    tls: TlsArgs,
) -> Result<Target> {
    if tls.addr.is_empty() {
        if tls.ca.is_some() || tls.cert.is_some() || tls.key.is_some() {
            return Err(Error::Usage(
                "--tls-ca, --tls-cert and --tls-key only apply with --addr https://HOST:PORT"
                    .into(),
            ));
        }
        let server = match server_uid {
            Some(text) => ServerUid::parse(text)?,
            None => ServerUid::from_env()?,
        };
        return Ok(Target::Unix {
            socket: socket.unwrap_or_else(tufkey::default_socket_path),
            server,
        });
    }
    if socket.is_some() {
        return Err(Error::Usage(
            "use either --socket or --addr, not both".into(),
        ));
    }
    let required = |file: Option<PathBuf>, flag: &str| {
        file.ok_or_else(|| {
            Error::Usage(format!(
                "--addr needs {flag}: tufkeyd's TCP listener requires mutual TLS"
            ))
        })
    };
    Ok(Target::Tls(TlsTarget {
        addrs: tls.addr,
        ca: required(tls.ca, "--tls-ca")?,
        cert: required(tls.cert, "--tls-cert")?,
        key: required(tls.key, "--tls-key")?,
    }))
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show whether the keystore is locked, how many keys it holds, and problems.
    Status,
    /// Check the setup (daemon, socket, store, keyring, pcscd, cards, policy, audit
    /// log, --repo metadata) and name the fix for each problem; exit 1 if any fails.
    Doctor(doctor::DoctorArgs),
    /// Create, list, show and delete keys.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Sign a TUF metadata document ({"signed":...,"signatures":[...]}) in place or to --out.
    Sign(sign::SignArgs),
    /// Sign raw bytes and print the signature.
    SignRaw(sign::SignRawArgs),
    /// Give tufkeyd the keystore passphrase, or with --serial a YubiKey PIN (prompted without echo).
    Unlock(session::UnlockArgs),
    /// Make tufkeyd forget every decrypted key.
    Lock,
    /// YubiKeys: list, watch insertions and removals, initialise.
    #[command(subcommand)]
    Device(device::DeviceCommand),
    /// Load-test Sign calls and report throughput and latency.
    Bench(bench::BenchArgs),
    /// The daemon's access policy: explain what it decides for a caller.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// The audit log: verify its chain and MACs, or show its latest records.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Wrap keys into an encrypted age file (a backup) to restore on any host.
    Backup(migrate::BackupArgs),
    /// Import the keys of a backup: all or nothing; keys already present are skipped.
    Restore(migrate::RestoreArgs),
    /// Move keys to another host's tufkeyd without a plaintext key or passphrase.
    #[command(subcommand)]
    Transfer(migrate::TransferCommand),
    /// Import keys from other tools (Docker Content Trust / Notary).
    #[command(subcommand)]
    Import(docker::ImportCommand),
    /// Export keys for other tools (Docker Content Trust / Notary).
    #[command(subcommand)]
    Export(docker::ExportCommand),
    /// Sign releases of a TUF repository: init, add, delegate, publish, refresh, rotate, status.
    #[command(subcommand)]
    Repo(repo::RepoCommand),
    /// Docker Content Trust: sign image tags into a Notary server with keys in tufkeyd.
    #[command(subcommand)]
    Dct(dct::DctCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Print the man page, or write every page (one per subcommand) with --out DIR.
    Man(docs::ManArgs),
}

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self) -> Result<()> {
        let json = self.global.json;
        let socket = self.global.socket;
        let server_uid = self.global.server_uid.as_deref();
        if let Command::Bench(mut args) = self.command {
            let tls = std::mem::take(&mut args.tls).or(self.tls);
            return bench::run(&resolve_target(socket, server_uid, tls)?, args, json).await;
        }
        if let Command::Audit(command) = self.command {
            return audit::run(
                &resolve_target(socket, server_uid, self.tls)?,
                command,
                json,
            )
            .await;
        }
        if let Command::Doctor(args) = self.command {
            return doctor::run(&resolve_target(socket, server_uid, self.tls)?, args, json).await;
        }
        match &self.command {
            Command::Completions(args) => return docs::completions(args),
            Command::Man(args) => return docs::man(args),
            _ => {}
        }
        let client = resolve_target(socket, server_uid, self.tls)?
            .connect()
            .await?;
        match self.command {
            Command::Status => session::status(client, json).await,
            Command::Key(command) => keys::run(client, command, json).await,
            Command::Sign(args) => sign::sign(client, args, json).await,
            Command::SignRaw(args) => sign::sign_raw(client, args, json).await,
            Command::Unlock(args) => session::unlock(client, args, json).await,
            Command::Lock => session::lock(client, json).await,
            Command::Device(command) => device::run(client, command, json).await,
            Command::Policy(command) => policy::run(client, command, json).await,
            Command::Backup(args) => migrate::backup(client, args, json).await,
            Command::Restore(args) => migrate::restore(client, args, json).await,
            Command::Transfer(command) => migrate::transfer(client, command, json).await,
            Command::Import(command) => docker::import(client, command, json).await,
            Command::Export(command) => docker::export(client, command, json).await,
            Command::Repo(command) => repo::run(client, command, json).await,
            Command::Dct(command) => dct::run(client, command, json).await,
            Command::Bench(_)
            | Command::Doctor(_)
            | Command::Audit(_)
            | Command::Completions(_)
            | Command::Man(_) => {
                unreachable!("handled above")
            }
        }
    }
}
