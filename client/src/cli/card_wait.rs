//! Getting a key ready right before a command asks tufkeyd to sign with it. A key
//! on a YubiKey needs its card in a reader, the card's PIN given to the daemon, and
//! (depending on the slot's touch policy) a touch during the signature: a release
//! manager signing root from an offline card should be told which card to insert,
//! asked for its PIN once, and told when to touch it, instead of getting an error
//! and rerunning the command. Software keys need none of this.
//!
//! `tufkey repo` calls [`ready_to_sign`] before each role it signs; `tufkey sign` and
//! `sign-raw` call it with `--wait`, and otherwise only [`announce_touch`].

use super::session::{prompt_secret, read_stdin_lines};
use clap::Args;
use secrecy::SecretString;
use tufkey::{proto, Client, Error, Result};

/// Where YubiKey PINs come from.
#[derive(Debug, Args)]
pub struct PinArgs {
    /// Read YubiKey PINs from stdin, one line per card as they are needed
    /// [default: prompt without echo].
    #[arg(long)]
    pin_stdin: bool,
}

impl PinArgs {
    pub fn source(&self) -> PinSource {
        if self.pin_stdin {
            PinSource::stdin()
        } else {
            PinSource::prompt()
        }
    }
}

/// Where PINs come from: a no-echo prompt, or one line of stdin per card, read as
/// the cards need them.
#[derive(Debug)]
pub enum PinSource {
    Prompt,
    Stdin,
}

impl PinSource {
    pub fn prompt() -> Self {
        PinSource::Prompt
    }

    pub fn stdin() -> Self {
        PinSource::Stdin
    }

    /// The PIN of `card`, read off the terminal (no echo) or stdin on a blocking
    /// thread, so the connection to the daemon keeps being served meanwhile.
    async fn pin_for(&self, card: &Card<'_>) -> Result<SecretString> {
        let read = match self {
            PinSource::Prompt => {
                let prompt = format!("PIN of {}: ", card.described());
                tokio::task::spawn_blocking(move || prompt_secret(&prompt, "--pin-stdin")).await
            }
            PinSource::Stdin => {
                tokio::task::spawn_blocking(|| read_stdin_lines(1).map(|mut lines| lines.remove(0)))
                    .await
            }
        };
        // The reading thread only ends early by panicking: carry the panic on.
        match read.unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic())) {
            Err(Error::Usage(reason)) => Err(Error::Usage(format!(
                "the PIN of YubiKey {}: {reason}",
                card.serial
            ))),
            read => read,
        }
    }
}

/// The card a signature needs, and what to call it when talking to the user.
struct Card<'a> {
    keyid: &'a str,
    /// The serial the key's location names (a key copied onto several cards is
    /// ready on any of them).
    serial: u32,
    label: Option<&'a str>,
    /// What the signature is for: a role, or "with KEYID".
    purpose: &'a str,
}

impl Card<'_> {
    /// "YubiKey 1002 (release card) to sign targets".
    fn described(&self) -> String {
        match self.label {
            Some(label) => format!("YubiKey {} ({label}) to sign {}", self.serial, self.purpose),
            None => format!("YubiKey {} to sign {}", self.serial, self.purpose),
        }
    }

    /// The present card holding the key, if any: the one its location names
    /// first, else any other card with a copy.
    async fn present(&self, client: &mut Client) -> Result<Option<proto::Device>> {
        let mut holders: Vec<proto::Device> = client
            .list_devices()
            .await?
            .into_iter()
            .filter(|device| device.keys.iter().any(|key| key.keyid == self.keyid))
            .collect();
        let named = holders
            .iter()
            .position(|device| device.serial == self.serial);
        Ok(match named {
            Some(index) => Some(holders.swap_remove(index)),
            None => holders.into_iter().next(),
        })
    }

    /// Says which card to insert and waits until one holding the key arrives.
    async fn wait_until_present(&self, client: &mut Client) -> Result<proto::Device> {
        eprintln!("insert {}", self.described());
        let mut events = client.watch_devices().await?;
        // The watch is subscribed now: a card that arrived since the first look is
        // found by this one, and any later one by an event.
        if let Some(device) = self.present(client).await? {
            return Ok(device);
        }
        while let Some(event) = events.message().await? {
            let inserted = event.kind == proto::device_event::Kind::Inserted as i32;
            if inserted {
                if let Some(device) = self.present(client).await? {
                    return Ok(device);
                }
            }
        }
        Err(Error::Rpc(tonic::Status::unavailable(format!(
            "tufkeyd stopped while waiting for YubiKey {}: start it again and rerun the command",
            self.serial
        ))))
    }
}

/// Makes sure `keyid` can sign for `role` now. A software key is ready at once.
/// For a key on a YubiKey: when no card holding it is present, prints "insert
/// YubiKey SERIAL (LABEL) to sign ROLE" on stderr and waits for it (Ctrl-C ends the
/// wait); when the daemon has no PIN for the card, asks `pins` for it and gives it
/// to the daemon (a wrong PIN fails with the daemon's message and the tries left,
/// and is never retried); then, when the slot needs a touch, prints "touch YubiKey
/// SERIAL (slot S) to sign ROLE". `label` is the name the user gave the card.
pub async fn ready_to_sign(
    client: &mut Client,
    keyid: &str,
    role: &str,
    label: Option<&str>,
    pins: &mut PinSource,
) -> Result<()> {
    let key = client.get_key(keyid).await?;
    let Some(proto::key::Location::Yubikey(at)) = &key.location else {
        return Ok(());
    };
    let card = Card {
        keyid: &key.keyid,
        serial: at.serial,
        label,
        purpose: role,
    };
    let device = match card.present(client).await? {
        Some(device) => device,
        None => card.wait_until_present(client).await?,
    };
    // Every YubiKey key needs the PIN: the daemon verifies it right before each
    // signature (and slot 9c's "always" policy is enforced by the card itself).
    if !device.pin_cached {
        let pin = pins.pin_for(&card).await?;
        client
            .unlock_device(device.serial, &pin, false, false)
            .await?;
    }
    if let Some(line) = touch_line(at, device.serial, role) {
        eprintln!("{line}");
    }
    Ok(())
}

/// Tells the user on stderr to touch each YubiKey whose key needs a touch to sign
/// (`tufkey sign` without `--wait`). Called right before the signing request;
/// lookup failures are left for it to report.
pub async fn announce_touch(client: &mut Client, keyids: &[String]) {
    for keyid in keyids {
        let Ok(key) = client.get_key(keyid).await else {
            continue;
        };
        let Some(proto::key::Location::Yubikey(at)) = &key.location else {
            continue;
        };
        // A pulled card cannot be touched: the error says to insert it.
        if !key.available {
            continue;
        }
        if let Some(line) = touch_line(at, at.serial, &format!("with {}", key.keyid)) {
            eprintln!("{line}");
        }
    }
}

/// "touch YubiKey SERIAL (slot S) to sign PURPOSE" when the slot's touch policy
/// asks for a touch (always, or cached: one touch covers 15 seconds).
fn touch_line(at: &proto::YubiKeyLocation, serial: u32, purpose: &str) -> Option<String> {
    let needs_touch = matches!(
        proto::TouchPolicy::try_from(at.touch_policy),
        Ok(proto::TouchPolicy::Cached | proto::TouchPolicy::Always)
    );
    needs_touch.then(|| {
        format!(
            "touch YubiKey {serial} (slot {}) to sign {purpose}",
            at.slot
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(touch: proto::TouchPolicy) -> proto::YubiKeyLocation {
        proto::YubiKeyLocation {
            serial: 1002,
            slot: "82".into(),
            touch_policy: touch as i32,
            pin_policy: proto::PinPolicy::Once as i32,
        }
    }

    #[test]
    fn only_slots_with_a_touch_policy_ask_for_a_touch() {
        assert_eq!(
            touch_line(&at(proto::TouchPolicy::Always), 1002, "root").as_deref(),
            Some("touch YubiKey 1002 (slot 82) to sign root")
        );
        assert!(touch_line(&at(proto::TouchPolicy::Cached), 1002, "targets").is_some());
        assert!(touch_line(&at(proto::TouchPolicy::Never), 1002, "targets").is_none());
    }

    #[test]
    fn the_card_is_named_with_its_label_when_it_has_one() {
        let mut card = Card {
            keyid: "k",
            serial: 1002,
            label: Some("release card"),
            purpose: "targets",
        };
        assert_eq!(
            card.described(),
            "YubiKey 1002 (release card) to sign targets"
        );
        card.label = None;
        assert_eq!(card.described(), "YubiKey 1002 to sign targets");
    }
}
