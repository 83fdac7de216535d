//! `tufkey device list | watch | init`.

use super::output::print;
use super::session::{prompt_secret, read_stdin_lines};
use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tufkey::{proto, Client, Result};

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// List the YubiKeys tufkeyd sees: serial, firmware, reader, PIN tries left, keys by slot.
    List,
    /// Print YubiKey insertions and removals as they happen (those present first).
    Watch,
    /// Replace the factory management key with a random one kept PIN-protected on
    /// the device; optionally change the PIN and PUK.
    Init(InitArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The YubiKey's serial (see `tufkey device list`).
    #[arg(long)]
    serial: u32,
    /// Also set a new PIN.
    #[arg(long)]
    change_pin: bool,
    /// Also set a new PUK.
    #[arg(long)]
    change_puk: bool,
    /// Read the secrets from stdin, one per line, instead of prompting: the PIN,
    /// then with --change-pin the new PIN, then with --change-puk the PUK and the new PUK.
    #[arg(long)]
    pin_stdin: bool,
}

pub async fn run(mut client: Client, command: DeviceCommand, json: bool) -> Result<()> {
    match command {
        DeviceCommand::List => {
            let devices = client.list_devices().await?;
            print(
                json,
                Value::Array(devices.iter().map(device_json).collect()),
                || devices_text(&devices),
            );
        }
        DeviceCommand::Watch => {
            let mut events = client.watch_devices().await?;
            while let Some(event) = events.message().await? {
                let kind = match proto::device_event::Kind::try_from(event.kind) {
                    Ok(proto::device_event::Kind::Present) => "present",
                    Ok(proto::device_event::Kind::Inserted) => "inserted",
                    Ok(proto::device_event::Kind::Removed) => "removed",
                    _ => "unknown",
                };
                print(
                    json,
                    json!({"event": kind, "serial": event.serial, "reader": event.reader}),
                    || format!("{kind} YubiKey {} ({})", event.serial, event.reader),
                );
            }
        }
        DeviceCommand::Init(args) => init(client, args, json).await?,
    }
    Ok(())
}

async fn init(mut client: Client, args: InitArgs, json: bool) -> Result<()> {
    let wanted = 1 + usize::from(args.change_pin) + 2 * usize::from(args.change_puk);
    let mut secrets = if args.pin_stdin {
        read_stdin_lines(wanted)?
    } else {
        let mut prompts = vec![format!("PIN of YubiKey {}: ", args.serial)];
        if args.change_pin {
            prompts.push("new PIN: ".into());
        }
        if args.change_puk {
            prompts.push("PUK: ".into());
            prompts.push("new PUK: ".into());
        }
        prompts
            .iter()
            .map(|prompt| prompt_secret(prompt, "--pin-stdin"))
            .collect::<Result<Vec<_>>>()?
    }
    .into_iter();
    let mut next = || {
        secrets
            .next()
            .map(|secret| secret.expose_secret().to_owned())
            .unwrap_or_default()
    };
    // Field by field: the request wipes itself on drop, so `..Default::default()`
    // (a move out of a value with a destructor) is not allowed.
    let mut request = proto::InitDeviceRequest {
        serial: args.serial,
        pin: next(),
        new_pin: String::new(),
        puk: String::new(),
        new_puk: String::new(),
    };
    if args.change_pin {
        request.new_pin = next();
    }
    if args.change_puk {
        request.puk = next();
        request.new_puk = next();
    }
    let reply = client.init_device(request).await?;
    print(
        json,
        json!({
            "serial": reply.serial,
            "management_key_algorithm": reply.management_key_algorithm,
            "management_key_storage": reply.management_key_storage,
            "pin_changed": reply.pin_changed,
            "puk_changed": reply.puk_changed,
        }),
        || {
            format!(
                "YubiKey {}: new random {} management key, {}{}{}",
                reply.serial,
                reply.management_key_algorithm,
                reply.management_key_storage,
                if reply.pin_changed {
                    "; PIN changed"
                } else {
                    ""
                },
                if reply.puk_changed {
                    "; PUK changed"
                } else {
                    ""
                },
            )
        },
    );
    Ok(())
}

fn device_json(device: &proto::Device) -> Value {
    json!({
        "serial": device.serial,
        "firmware": device.firmware,
        "reader": device.reader,
        "pin_tries_left": device.pin_tries_left,
        "pin_cached": device.pin_cached,
        "keys": device.keys.iter().map(|key| json!({
            "slot": key.slot,
            "keyid": key.keyid,
            "gun": key.gun,
            "role": key.role,
        })).collect::<Vec<_>>(),
    })
}

fn devices_text(devices: &[proto::Device]) -> String {
    if devices.is_empty() {
        return "no YubiKey present".into();
    }
    let mut text = Vec::new();
    for device in devices {
        text.push(format!(
            "YubiKey {}  firmware {}  PIN tries left {}{}  reader {}",
            device.serial,
            device.firmware,
            device.pin_tries_left,
            if device.pin_cached { " (unlocked)" } else { "" },
            device.reader
        ));
        for key in &device.keys {
            text.push(format!(
                "  slot {}  {}  {:<10} {}",
                key.slot, key.keyid, key.role, key.gun
            ));
        }
    }
    text.join("\n")
}
