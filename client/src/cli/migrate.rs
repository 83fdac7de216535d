//! `tufkey backup | restore | transfer`: keys out of one daemon and into another,
//! always as an age file (to a passphrase, or to a receiving daemon's X25519
//! recipient). The daemon wraps and unwraps; this only moves files.

use super::files::{read_limited, write_new_private};
use super::output::{key_json, key_line, print};
use super::session::{prompt_secret, read_stdin_lines};
use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::path::PathBuf;
use tufkey::{proto, Client, Error, Result};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the age file (it must not exist yet; written 0600).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Every exportable key of this collection.
    #[arg(long)]
    gun: Option<String>,
    /// This key (TUF or Notary key ID); repeat for more. With neither --key nor
    /// --gun: every exportable key.
    #[arg(long = "key", value_name = "KEYID")]
    keys: Vec<String>,
    /// Read the passphrase from the first line of stdin instead of prompting twice.
    #[arg(long, conflicts_with = "recipient")]
    passphrase_stdin: bool,
    /// Wrap to this age X25519 recipient (age1...) instead of a passphrase.
    #[arg(long, value_name = "age1...")]
    recipient: Option<String>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The age file `tufkey backup` wrote.
    file: PathBuf,
    /// Open and check everything, import nothing.
    #[arg(long)]
    dry_run: bool,
    /// Read the passphrase from the first line of stdin instead of prompting.
    #[arg(long)]
    passphrase_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum TransferCommand {
    /// On the receiving host: a fresh recipient that lives only in this daemon's
    /// memory until it is used once or expires; compare its fingerprint with the
    /// sender's out of band.
    Receive,
    /// On the sending host: wrap keys to the receiving host's recipient.
    Send {
        /// The recipient `tufkey transfer receive` printed on the receiving host.
        #[arg(long, value_name = "age1...")]
        to: String,
        /// Every exportable key of this collection.
        #[arg(long)]
        gun: Option<String>,
        /// This key; repeat for more.
        #[arg(long = "key", value_name = "KEYID")]
        keys: Vec<String>,
        /// Where to write the bundle (must not exist yet).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// On the receiving host: import a bundle made for this daemon's recipient.
    Accept {
        file: PathBuf,
        /// Open and check everything, import nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// The largest bundle read from disk; the daemon has its own limit.
const MAX_BUNDLE_FILE_BYTES: u64 = 64 * 1024 * 1024;

pub async fn backup(mut client: Client, args: BackupArgs, json: bool) -> Result<()> {
    let wrap = match args.recipient {
        Some(recipient) => proto::backup_request::Wrap::Recipient(recipient),
        None => {
            let passphrase = if args.passphrase_stdin {
                read_stdin_lines(1)?.remove(0)
            } else {
                new_passphrase("backup")?
            };
            proto::backup_request::Wrap::Passphrase(passphrase.expose_secret().to_owned())
        }
    };
    let reply = client
        .backup(proto::BackupRequest {
            keyids: args.keys,
            gun: args.gun.unwrap_or_default(),
            wrap: Some(wrap),
        })
        .await?;
    write_new_private(&args.out, &reply.bundle)?;
    print(
        json,
        json!({
            "file": args.out,
            "sha256": reply.sha256,
            "keys": reply.keys.iter().map(key_json).collect::<Vec<_>>(),
        }),
        || {
            let mut text = format!(
                "wrote {} ({} keys, SHA-256 {})",
                args.out.display(),
                reply.keys.len(),
                reply.sha256
            );
            for key in &reply.keys {
                text.push_str(&format!("\n  {}", key_line(key)));
            }
            text
        },
    );
    Ok(())
}

pub async fn restore(mut client: Client, args: RestoreArgs, json: bool) -> Result<()> {
    let bundle = read_limited(&args.file, MAX_BUNDLE_FILE_BYTES, "reading the backup")?;
    let passphrase = if args.passphrase_stdin {
        read_stdin_lines(1)?.remove(0)
    } else {
        prompt_secret("backup passphrase: ", "--passphrase-stdin")?
    };
    let reply = client
        .restore(proto::RestoreRequest {
            bundle,
            passphrase: passphrase.expose_secret().to_owned(),
            dry_run: args.dry_run,
        })
        .await?;
    print_restored(&reply, args.dry_run, json);
    Ok(())
}

pub async fn transfer(mut client: Client, command: TransferCommand, json: bool) -> Result<()> {
    match command {
        TransferCommand::Receive => {
            let reply = client.receive_transfer().await?;
            print(
                json,
                json!({
                    "recipient": reply.recipient,
                    "fingerprint": reply.fingerprint,
                    "expires_at": reply.expires_at,
                }),
                || {
                    format!(
                        "{}\nfingerprint {} (compare it with the sending host's); expires {}",
                        reply.recipient, reply.fingerprint, reply.expires_at
                    )
                },
            );
        }
        TransferCommand::Send { to, gun, keys, out } => {
            let reply = client
                .backup(proto::BackupRequest {
                    keyids: keys,
                    gun: gun.unwrap_or_default(),
                    wrap: Some(proto::backup_request::Wrap::Recipient(to)),
                })
                .await?;
            write_new_private(&out, &reply.bundle)?;
            print(
                json,
                json!({
                    "file": out,
                    "sha256": reply.sha256,
                    "recipient_fingerprint": reply.recipient_fingerprint,
                    "keys": reply.keys.iter().map(key_json).collect::<Vec<_>>(),
                }),
                || {
                    format!(
                        "wrote {} ({} keys) for the recipient with fingerprint {}: check it is the one the receiving host showed",
                        out.display(),
                        reply.keys.len(),
                        reply.recipient_fingerprint
                    )
                },
            );
        }
        TransferCommand::Accept { file, dry_run } => {
            let bundle = read_limited(&file, MAX_BUNDLE_FILE_BYTES, "reading the transfer")?;
            let reply = client
                .accept_transfer(proto::AcceptTransferRequest { bundle, dry_run })
                .await?;
            print_restored(&reply, dry_run, json);
        }
    }
    Ok(())
}

fn print_restored(reply: &proto::RestoreResponse, dry_run: bool, json: bool) {
    print(
        json,
        json!({
            "dry_run": dry_run,
            "imported": reply.imported.iter().map(key_json).collect::<Vec<_>>(),
            "skipped": reply.skipped.iter().map(key_json).collect::<Vec<_>>(),
        }),
        || {
            let verb = if dry_run { "would import" } else { "imported" };
            let mut text = format!(
                "{verb} {} keys; {} already present (left as they are)",
                reply.imported.len(),
                reply.skipped.len()
            );
            for key in &reply.imported {
                text.push_str(&format!("\n  {verb}: {}", key_line(key)));
            }
            for key in &reply.skipped {
                text.push_str(&format!("\n  present: {}", key_line(key)));
            }
            text
        },
    );
}

/// A new passphrase, typed twice.
pub fn new_passphrase(what: &str) -> Result<SecretString> {
    let first = prompt_secret(&format!("new {what} passphrase: "), "--passphrase-stdin")?;
    let second = prompt_secret(
        &format!("repeat the {what} passphrase: "),
        "--passphrase-stdin",
    )?;
    if first.expose_secret() != second.expose_secret() {
        return Err(Error::Usage(
            "the passphrases differ; nothing was written".into(),
        ));
    }
    if first.expose_secret().is_empty() {
        return Err(Error::Usage("the passphrase must not be empty".into()));
    }
    Ok(first)
}
