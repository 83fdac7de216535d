//! `tufkey status | unlock | lock`.

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
}

pub async fn status(mut client: Client, json: bool) -> Result<()> {
    let status = client.status().await?;
    print(json, status_json(&status), || status_text(&status));
    Ok(())
}

pub async fn unlock(mut client: Client, args: UnlockArgs, json: bool) -> Result<()> {
    let passphrase = if args.passphrase_stdin {
        read_stdin_line()?
    } else {
        let typed =
            rpassword::prompt_password("tufkey keystore passphrase: ").map_err(|error| {
                Error::Usage(format!(
                    "cannot prompt for the passphrase: {error} (use --passphrase-stdin)"
                ))
            })?;
        SecretString::from(typed)
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

fn read_stdin_line() -> Result<SecretString> {
    let mut line = Zeroizing::new(String::new());
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
