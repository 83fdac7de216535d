//! Command-line definitions and dispatch. Every command takes `--json`; failures
//! print one line on stderr and exit non-zero.

mod bench;
mod keys;
mod output;
mod session;
mod sign;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use tufkey::{Client, Result};

/// tufkey: manage TUF keys held by tufkeyd and sign TUF metadata with them.
#[derive(Debug, Parser)]
#[command(name = "tufkey", version)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// tufkeyd's socket [default: $TUFKEY_SOCK, else $XDG_RUNTIME_DIR/tufkey/tufkeyd.sock]
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show whether the keystore is locked, how many keys it holds, and problems.
    Status,
    /// Create, list, show and delete keys.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Sign a TUF metadata document ({"signed":...,"signatures":[...]}) in place or to --out.
    Sign(sign::SignArgs),
    /// Sign raw bytes and print the signature.
    SignRaw(sign::SignRawArgs),
    /// Give tufkeyd the keystore passphrase (prompted without echo).
    Unlock(session::UnlockArgs),
    /// Make tufkeyd forget every decrypted key.
    Lock,
    /// Load-test Sign calls and report throughput and latency.
    Bench(bench::BenchArgs),
}

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self) -> Result<()> {
        let json = self.global.json;
        let socket = self
            .global
            .socket
            .clone()
            .unwrap_or_else(tufkey::default_socket_path);
        if let Command::Bench(args) = self.command {
            return bench::run(&socket, args, json).await;
        }
        let client = Client::connect_unix(&socket).await?;
        match self.command {
            Command::Status => session::status(client, json).await,
            Command::Key(command) => keys::run(client, command, json).await,
            Command::Sign(args) => sign::sign(client, args, json).await,
            Command::SignRaw(args) => sign::sign_raw(client, args, json).await,
            Command::Unlock(args) => session::unlock(client, args, json).await,
            Command::Lock => session::lock(client, json).await,
            Command::Bench(_) => unreachable!("handled above"),
        }
    }
}
