//! `tufkey sign` (TUF metadata documents) and `tufkey sign-raw` (arbitrary bytes).

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
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// Hex of the DER signature.
    Tuf,
    /// Base64 of raw r||s.
    Notary,
}

pub async fn sign(mut client: Client, args: SignArgs, json: bool) -> Result<()> {
    let document = read_input(&args.file)?;
    super::device::announce_touch(&mut client, &args.keys).await;
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
    let payload = read_input(&args.file)?;
    super::device::announce_touch(&mut client, std::slice::from_ref(&args.key)).await;
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
