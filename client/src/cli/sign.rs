//! `tufkey sign` (TUF metadata documents) and `tufkey sign-raw` (arbitrary bytes); with
//! `--wait` they wait for absent YubiKeys and ask for PINs first (`card_wait`).

use super::card_wait::{announce_touch, ready_to_sign, PinSource};
use super::output::print;
use clap::{Args, ValueEnum};
use serde_json::json;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tufkey::{proto, Client, Error, Result};

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Key to sign with, by TUF or Notary key ID (repeatable).
    #[arg(long = "key", value_name = "KEYID", required = true)]
    keys: Vec<String>,
    /// The metadata document; `-` reads stdin.
    file: PathBuf,
    /// Where to write the signed document [default: back to FILE; stdout if FILE is `-`].
    #[arg(long, value_name = "OUT")]
    out: Option<PathBuf>,
    #[command(flatten)]
    cards: CardArgs,
}

/// Waiting for YubiKeys instead of failing when one is absent or locked.
#[derive(Debug, Args)]
struct CardArgs {
    /// When a key's YubiKey is absent, say which to insert and wait for it; when
    /// tufkeyd has no PIN for it, ask for the PIN (no echo) [default: fail and say so].
    #[arg(long)]
    wait: bool,
    /// With --wait: read PINs from stdin, one line per YubiKey that needs one,
    /// instead of prompting (not with FILE `-`).
    #[arg(long, requires = "wait")]
    pin_stdin: bool,
}

impl CardArgs {
    /// Where PINs come from with --wait (`None` without it); checked before FILE is
    /// read, since `-` takes stdin.
    fn pin_source(&self, file: &Path) -> Result<Option<PinSource>> {
        match (self.wait, self.pin_stdin) {
            (false, _) => Ok(None),
            (true, false) => Ok(Some(PinSource::prompt())),
            (true, true) if file == Path::new("-") => Err(Error::Usage(
                "--pin-stdin needs stdin for the PINs: give the input as a file, not `-`".into(),
            )),
            (true, true) => Ok(Some(PinSource::stdin())),
        }
    }
}

/// With --wait, gets every key ready (card inserted, PIN given, touch announced);
/// without it, only says which cards need a touch.
async fn prepare(client: &mut Client, keyids: &[String], pins: Option<PinSource>) -> Result<()> {
    let Some(mut pins) = pins else {
        announce_touch(client, keyids).await;
        return Ok(());
    };
    for keyid in keyids {
        ready_to_sign(client, keyid, &format!("with {keyid}"), None, &mut pins).await?;
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct SignRawArgs {
    /// Key to sign with.
    #[arg(long = "key", value_name = "KEYID")]
    key: String,
    /// Signature encoding.
    #[arg(long, value_enum, default_value = "tuf")]
    format: Format,
    /// The bytes to sign; `-` reads stdin.
    file: PathBuf,
    #[command(flatten)]
    cards: CardArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// Hex of the DER signature.
    Tuf,
    /// Base64 of raw r||s.
    Notary,
}

pub async fn sign(mut client: Client, args: SignArgs, json: bool) -> Result<()> {
    let pins = args.cards.pin_source(&args.file)?;
    let document = read_input(&args.file)?;
    prepare(&mut client, &args.keys, pins).await?;
    let signed = client.sign_metadata(document, args.keys.clone()).await?;
    let out = args.out.unwrap_or_else(|| args.file.clone());
    write_output(&out, &signed)?;
    if json {
        print(
            true,
            json!({"signed_by": args.keys, "out": out}),
            String::new,
        );
    }
    Ok(())
}

pub async fn sign_raw(mut client: Client, args: SignRawArgs, json: bool) -> Result<()> {
    let pins = args.cards.pin_source(&args.file)?;
    let payload = read_input(&args.file)?;
    prepare(&mut client, std::slice::from_ref(&args.key), pins).await?;
    let format = match args.format {
        Format::Tuf => proto::SignatureFormat::Tuf,
        Format::Notary => proto::SignatureFormat::Notary,
    };
    let reply = client.sign_raw(&args.key, payload, format).await?;
    let format_name = match args.format {
        Format::Tuf => "tuf",
        Format::Notary => "notary",
    };
    print(
        json,
        json!({"keyid": reply.keyid, "format": format_name, "signature": reply.signature}),
        || reply.signature.clone(),
    );
    Ok(())
}

fn read_input(path: &Path) -> Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(Error::io("reading", "stdin"))?;
        Ok(bytes)
    } else {
        std::fs::read(path).map_err(Error::io("reading", path))
    }
}

/// Writes atomically (temp file + rename) so a failure never leaves half a document.
fn write_output(path: &Path, bytes: &[u8]) -> Result<()> {
    if path == Path::new("-") {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(bytes)
            .and_then(|()| stdout.flush())
            .map_err(Error::io("writing", "stdout"));
    }
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .map_err(Error::io("creating a temporary file in", dir))?;
    temp.write_all(bytes)
        .map_err(Error::io("writing", temp.path()))?;
    // Metadata is public: keep the permissions of the file being replaced, else 0644.
    let permissions = std::fs::metadata(path)
        .map(|existing| existing.permissions())
        .unwrap_or_else(|_| std::fs::Permissions::from_mode(0o644));
    temp.as_file()
        .set_permissions(permissions)
        .map_err(Error::io("setting permissions on", temp.path()))?;
    temp.persist(path)
        .map_err(|error| Error::io("writing", path)(error.error))?;
    Ok(())
}
