//! `tufkey status | unlock | lock`; `unlock --serial N` unlocks a YubiKey.

use super::output::{print, status_json, status_text};
use clap::Args;
use secrecy::SecretString;
use std::io::BufRead;
use tufkey::{Client, Error, Result};
use zeroize::Zeroizing;

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Read the passphrase from the first line of stdin instead of prompting.
    #[arg(long)]
    passphrase_stdin: bool,
    /// Unlock this YubiKey instead of the keystore: the daemon verifies its PIN
    /// and caches it (see tufkeyd --pin-cache-secs).
    #[arg(long, value_name = "SERIAL")]
    serial: Option<u32>,
    /// With --serial: read the PIN from the first line of stdin instead of prompting.
    #[arg(long, requires = "serial")]
    pin_stdin: bool,
    /// With --serial: also keep the PIN in the OS keyring, so a restarted daemon has it.
    #[arg(long, requires = "serial")]
    remember: bool,
    /// With --serial: try the PIN even when the YubiKey has one try left (a wrong PIN
    /// then blocks it until reset with the PUK); without it the daemon refuses.
    #[arg(long, requires = "serial")]
    force: bool,
}

pub async fn status(mut client: Client, json: bool) -> Result<()> {
    let status = client.status().await?;
    print(json, status_json(&status), || status_text(&status));
    Ok(())
}

pub async fn unlock(mut client: Client, args: UnlockArgs, json: bool) -> Result<()> {
    if let Some(serial) = args.serial {
        let pin = if args.pin_stdin {
            read_stdin_lines(1)?.remove(0)
        } else {
            prompt_secret(&format!("PIN of YubiKey {serial}: "), "--pin-stdin")?
        };
        let reply = client
            .unlock_device(serial, &pin, args.remember, args.force)
            .await?;
        print(
            json,
            serde_json::json!({
                "serial": reply.serial,
                "pin_tries_left": reply.pin_tries_left,
                "cache_seconds": reply.cache_seconds,
                "remembered": reply.remembered,
            }),
            || {
                format!(
                    "YubiKey {serial} unlocked for {} s{}",
                    reply.cache_seconds,
                    if reply.remembered {
                        " (PIN remembered in the OS keyring)"
                    } else {
                        ""
                    }
                )
            },
        );
        return Ok(());
    }
    let passphrase = if args.passphrase_stdin {
        read_stdin_line()?
    } else {
        let typed =
            rpassword::prompt_password("tufkey keystore passphrase: ").map_err(|error| {
                Error::Usage(format!(
                    "cannot prompt for the passphrase: {error} (use --passphrase-stdin)"
                ))
            })?;
        secret_from(typed)
    };
    let status = client.unlock(&passphrase).await?;
    print(json, status_json(&status), || "keystore unlocked".into());
    Ok(())
}

pub async fn lock(mut client: Client, json: bool) -> Result<()> {
    let status = client.lock().await?;
    print(json, status_json(&status), || "keystore locked".into());
    Ok(())
}

/// Room for a passphrase line up front: a `String` that grows while reading leaves
/// its earlier buffers behind, unwiped.
const LINE_CAPACITY: usize = 4096;

/// A typed secret as a `SecretString`, wiping the `String` it came in. (Moving the
/// `String` in would shrink it to fit, a reallocation that frees the old buffer
/// unwiped; the copy here is exactly as long as the secret, so it is not moved.)
fn secret_from(typed: String) -> SecretString {
    let typed = Zeroizing::new(typed);
    SecretString::from(typed.as_str())
}

/// Prompts without echo; `flag` names the non-interactive alternative.
pub fn prompt_secret(prompt: &str, flag: &str) -> Result<SecretString> {
    rpassword::prompt_password(prompt)
        .map(secret_from)
        .map_err(|error| Error::Usage(format!("cannot prompt: {error} (use {flag})")))
}

/// Reads `count` non-empty secrets, one per line, from stdin.
pub fn read_stdin_lines(count: usize) -> Result<Vec<SecretString>> {
    let mut stdin = std::io::stdin().lock();
    (0..count)
        .map(|index| {
            let mut line = Zeroizing::new(String::with_capacity(LINE_CAPACITY));
            stdin
                .read_line(&mut line)
                .map_err(|error| Error::Usage(format!("reading stdin: {error}")))?;
            let trimmed = line.trim_end_matches(['\n', '\r']);
            if trimmed.is_empty() {
                return Err(Error::Usage(format!(
                    "expected {count} lines on stdin, line {} is missing or empty",
                    index + 1
                )));
            }
            Ok(SecretString::from(trimmed.to_owned()))
        })
        .collect()
}

fn read_stdin_line() -> Result<SecretString> {
    let mut line = Zeroizing::new(String::with_capacity(LINE_CAPACITY));
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| Error::Usage(format!("reading the passphrase from stdin: {error}")))?;
    let trimmed = line.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(Error::Usage("no passphrase on stdin".into()));
    }
    Ok(SecretString::from(trimmed.to_owned()))
}
