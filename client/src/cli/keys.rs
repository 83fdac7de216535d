//! `tufkey key ...`: generate, list, show, delete, attest.

use super::output::{key_json, key_line, key_text, print};
use clap::{Subcommand, ValueEnum};
use serde_json::Value;
use tufkey::{proto, Client, Error, Result};

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
        /// Ask for an exportable key explicitly (the default for software keys; refused
        /// for YubiKey keys, which never leave the device).
        #[arg(long, conflicts_with = "no_export")]
        exportable: bool,
        /// Seal the key in for good: it can never be backed up, transferred, exported or
        /// moved (software keys are exportable otherwise, so they can be backed up).
        #[arg(long)]
        no_export: bool,
        /// Where the key lives [default: the daemon's default, software].
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
        /// YubiKey: the device's serial [default: the only YubiKey plugged in].
        #[arg(long, requires = "backend")]
        serial: Option<u32>,
        /// YubiKey: the PIV slot, 9c or 82..95 [default: 9c for root, else the first free retired slot].
        #[arg(long, requires = "backend")]
        slot: Option<String>,
        /// YubiKey: whether each signature needs a touch [default: always for root
        /// keys and slot 9c, else never].
        #[arg(long, value_enum, requires = "backend")]
        touch: Option<TouchArg>,
        /// YubiKey: generate even though the device still has the factory management
        /// key (better: run `tufkey device init` first).
        #[arg(long, requires = "backend")]
        allow_default_mgmt_key: bool,
    },
    /// Show the attestation chain of a YubiKey key, verified by the daemon up to
    /// Yubico's PIV root (proof the key was generated on the device).
    Attest { keyid: String },
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
    /// Move a software key onto a YubiKey (and spares): import it into a PIV slot
    /// on each card, check a signature from each, then delete the software copy.
    /// Refused unless a backup covers the key (`tufkey backup`) or
    /// --no-backup-needed. The cards need their PIN unlocked (`tufkey unlock --serial`).
    Move {
        keyid: String,
        /// Move onto YubiKeys (the only destination today).
        #[arg(long, required = true)]
        to_yubikey: bool,
        /// The primary card.
        #[arg(long)]
        serial: u32,
        /// A spare card that gets the same key; repeat for more.
        #[arg(long, value_name = "SERIAL")]
        also_serial: Vec<u32>,
        /// The PIV slot, 9c or 82..95 [default: 9c for root, else the first free retired slot].
        #[arg(long)]
        slot: Option<String>,
        /// Whether each signature needs a touch.
        #[arg(long, value_enum)]
        touch: Option<TouchArg>,
        /// Move even though no backup covers the key.
        #[arg(long)]
        no_backup_needed: bool,
        /// Keep the encrypted software copy too.
        #[arg(long)]
        keep_software: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BackendArg {
    Software,
    Yubikey,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TouchArg {
    Never,
    /// One touch covers signatures for 15 seconds.
    Cached,
    Always,
}

pub async fn run(mut client: Client, command: KeyCommand, json: bool) -> Result<()> {
    match command {
        KeyCommand::Generate {
            gun,
            role,
            exportable,
            no_export,
            backend,
            serial,
            slot,
            touch,
            allow_default_mgmt_key,
        } => {
            use proto::generate_key_request::Placement;
            let touch_policy = touch_policy(touch);
            let placement = match backend {
                None => None,
                Some(BackendArg::Software) => {
                    Some(Placement::Software(proto::SoftwarePlacement {}))
                }
                Some(BackendArg::Yubikey) => Some(Placement::Yubikey(proto::YubiKeyPlacement {
                    serial: serial.unwrap_or(0),
                    slot: slot.unwrap_or_default(),
                    touch_policy: touch_policy as i32,
                    allow_default_mgmt_key,
                })),
            };
            let request = proto::GenerateKeyRequest {
                gun,
                role,
                exportable: match (exportable, no_export) {
                    (_, true) => Some(false),
                    (true, false) => Some(true),
                    (false, false) => None,
                },
                placement,
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
        KeyCommand::Move {
            keyid,
            to_yubikey: _,
            serial,
            also_serial,
            slot,
            touch,
            no_backup_needed,
            keep_software,
        } => {
            let reply = client
                .move_to_yubikey(proto::MoveToYubiKeyRequest {
                    keyid,
                    serials: std::iter::once(serial).chain(also_serial).collect(),
                    slot: slot.unwrap_or_default(),
                    no_backup_needed,
                    keep_software,
                    touch_policy: touch_policy(touch) as i32,
                })
                .await?;
            print(
                json,
                serde_json::json!({
                    "keys": reply.keys.iter().map(key_json).collect::<Vec<_>>(),
                    "software_copy_deleted": reply.software_copy_deleted,
                }),
                || {
                    let mut text = String::new();
                    for key in &reply.keys {
                        text.push_str(&format!("moved onto {}\n", key_line(key)));
                    }
                    text.push_str(if reply.software_copy_deleted {
                        "the software copy is deleted"
                    } else {
                        "the software copy is kept"
                    });
                    text
                },
            );
        }
        KeyCommand::Attest { keyid } => {
            let attestation = client.attest_key(&keyid).await?;
            let chain: Vec<String> = attestation
                .chain
                .iter()
                .map(|der| pem_certificate(der))
                .collect();
            print(
                json,
                serde_json::json!({
                    "keyid": attestation.keyid,
                    "serial": attestation.serial,
                    "slot": attestation.slot,
                    "chain_pem": chain,
                    "root": attestation.root_subject,
                }),
                || {
                    format!(
                        "key {} in slot {} of YubiKey {}: attestation verified up to {}\n{}",
                        attestation.keyid,
                        attestation.slot,
                        attestation.serial,
                        attestation.root_subject,
                        chain.concat().trim_end()
                    )
                },
            );
        }
    }
    Ok(())
}

/// A DER certificate as PEM.
fn pem_certificate(der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

fn touch_policy(touch: Option<TouchArg>) -> proto::TouchPolicy {
    match touch {
        None => proto::TouchPolicy::Unspecified,
        Some(TouchArg::Never) => proto::TouchPolicy::Never,
        Some(TouchArg::Cached) => proto::TouchPolicy::Cached,
        Some(TouchArg::Always) => proto::TouchPolicy::Always,
    }
}
