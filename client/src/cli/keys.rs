//! `tufkey key ...`: generate, list, show, delete.

use super::output::{key_json, key_line, key_text, print};
use clap::Subcommand;
use serde_json::Value;
use tufkey::{Client, Error, Result};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a key; prints its TUF key ID.
    Generate {
        /// Collection, e.g. docker.io/acme/app
        #[arg(long)]
        gun: String,
        /// root, targets, snapshot, timestamp or targets/<delegation>
        #[arg(long)]
        role: String,
        /// Allow this key to be exported later as an encrypted bundle (cannot be changed later).
        #[arg(long)]
        exportable: bool,
    },
    /// List keys.
    List {
        #[arg(long)]
        gun: Option<String>,
        #[arg(long)]
        role: Option<String>,
    },
    /// Show one key (by TUF or Notary key ID).
    Show { keyid: String },
    /// Delete a key. Irreversible: requires --yes.
    Delete {
        keyid: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

pub async fn run(mut client: Client, command: KeyCommand, json: bool) -> Result<()> {
    match command {
        KeyCommand::Generate {
            gun,
            role,
            exportable,
        } => {
            let request = tufkey::proto::GenerateKeyRequest {
                gun,
                role,
                exportable,
                ..Default::default()
            };
            let key = client.generate(request).await?;
            print(json, key_json(&key), || key.keyid.clone());
        }
        KeyCommand::List { gun, role } => {
            let keys = client
                .list_keys(gun.as_deref().unwrap_or(""), role.as_deref().unwrap_or(""))
                .await?;
            print(
                json,
                Value::Array(keys.iter().map(key_json).collect()),
                || keys.iter().map(key_line).collect::<Vec<_>>().join("\n"),
            );
        }
        KeyCommand::Show { keyid } => {
            let key = client.get_key(&keyid).await?;
            print(json, key_json(&key), || key_text(&key));
        }
        KeyCommand::Delete { keyid, yes } => {
            if !yes {
                return Err(Error::Usage(format!(
                    "deleting a key cannot be undone: run `tufkey key delete {keyid} --yes`"
                )));
            }
            let key = client.delete_key(&keyid).await?;
            print(json, key_json(&key), || format!("deleted {}", key.keyid));
        }
    }
    Ok(())
}
