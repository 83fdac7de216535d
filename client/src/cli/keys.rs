//! `tufkey key ...`: generate, list, show, delete, attest.

use super::output::{key_json, key_line, key_text, print};
use clap::{Subcommand, ValueEnum};
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
        /// Where the key lives [default: the daemon's default, software].
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
        /// YubiKey: the device's serial [default: the only YubiKey plugged in].
        #[arg(long, requires = "backend")]
        serial: Option<u32>,
        /// YubiKey: the PIV slot, 9c or 82..95 [default: 9c for root, else the first free retired slot].
        #[arg(long, requires = "backend")]
        slot: Option<String>,
        /// YubiKey: whether each signature needs a touch.
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
    use tufkey::proto;
    match command {
        KeyCommand::Generate {
            gun,
            role,
            exportable,
            backend,
            serial,
            slot,
            touch,
            allow_default_mgmt_key,
        } => {
            use proto::generate_key_request::Placement;
            let touch_policy = match touch {
                None => proto::TouchPolicy::Unspecified,
                Some(TouchArg::Never) => proto::TouchPolicy::Never,
                Some(TouchArg::Cached) => proto::TouchPolicy::Cached,
                Some(TouchArg::Always) => proto::TouchPolicy::Always,
            };
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
                exportable,
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
