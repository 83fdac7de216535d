//! `tufkey import docker` / `tufkey export docker`: Docker Content Trust and Notary
//! key files in and out of tufkeyd. The CLI only moves files and passphrases: the
//! daemon decrypts, checks and imports (all or nothing), or encrypts keys the way the
//! `notary` client reads them. Passphrases come, per Notary role name, from
//! `NOTARY_<NAME>_PASSPHRASE`, then Docker's `DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE` /
//! `DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE`, then stdin or a prompt.

use super::files::{create_private_dir, read_limited, write_new_private};
use super::migrate::new_passphrase;
use super::output::{key_json, key_line, print};
use super::session::{prompt_secret, read_stdin_lines};
use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tufkey::{proto, Client, Error, Result};

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Docker Content Trust / Notary private keys: every key of a trust directory
    /// (all layouts since Notary 0.1), or a `notary key export` bundle.
    Docker(ImportDockerArgs),
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Keys as files the `notary` client and Docker read: into a trust directory's
    /// `private/`, or as one bundle for `notary key import`.
    Docker(ExportDockerArgs),
}

#[derive(Debug, Args)]
pub struct ImportDockerArgs {
    /// The trust directory [default: $DOCKER_CONFIG/trust, else ~/.docker/trust].
    #[arg(long, value_name = "DIR", conflicts_with = "bundle")]
    trust_dir: Option<PathBuf>,
    /// A `notary key export` bundle instead of a trust directory.
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// The collection for keys that name none (root and delegation keys).
    #[arg(long)]
    gun: Option<String>,
    /// Show what would be imported and which passphrases it needs; decrypt nothing.
    #[arg(long)]
    dry_run: bool,
    /// Read the passphrases not in the environment from stdin, one line each, in the
    /// order `--dry-run` lists them.
    #[arg(long)]
    passphrase_stdin: bool,
}

#[derive(Debug, Args)]
pub struct ExportDockerArgs {
    /// Every exportable key of this collection.
    #[arg(long, required_unless_present = "keys")]
    gun: Option<String>,
    /// This key (TUF or Notary key ID); repeat for more.
    #[arg(long = "key", value_name = "KEYID")]
    keys: Vec<String>,
    /// Write `private/<keyid>.key` files here [default: $DOCKER_CONFIG/trust, else
    /// ~/.docker/trust].
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    trust_dir: Option<PathBuf>,
    /// Write one bundle for `notary key import` instead.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Read the passphrase for roles without one in the environment from the first
    /// line of stdin instead of prompting twice.
    #[arg(long)]
    passphrase_stdin: bool,
}

/// Notary's passphrase names, and the Docker variable each falls back to.
const PASSPHRASE_NAMES: &[(&str, &str)] = &[
    ("root", "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE"),
    ("targets", "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE"),
    ("snapshot", "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE"),
    ("timestamp", "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE"),
    ("delegation", "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE"),
];

/// The largest key file or bundle read; Notary's are a few hundred bytes each.
const MAX_KEY_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// The most files read from a trust directory.
const MAX_TRUST_DIR_FILES: usize = 10_000;

pub async fn import(mut client: Client, command: ImportCommand, json: bool) -> Result<()> {
    let ImportCommand::Docker(args) = command;
    let files = match &args.bundle {
        Some(bundle) => vec![proto::NotaryKeyFile {
            name: bundle
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
            contents: read_limited(bundle, MAX_KEY_FILE_BYTES, "reading the bundle")?,
        }],
        None => trust_dir_files(&args.trust_dir.clone().unwrap_or_else(default_trust_dir))?,
    };
    let gun = args.gun.clone().unwrap_or_default();
    let found = client
        .import_notary_keys(proto::ImportNotaryKeysRequest {
            files: files.clone(),
            passphrases: HashMap::new(),
            gun: gun.clone(),
            dry_run: true,
        })
        .await?;
    if args.dry_run {
        print_found(&found, json);
        return Ok(());
    }
    let passphrases = collect_passphrases(&found.passphrases_needed, args.passphrase_stdin)?;
    let reply = client
        .import_notary_keys(proto::ImportNotaryKeysRequest {
            files,
            passphrases: passphrases
                .iter()
                .map(|(name, passphrase)| (name.clone(), passphrase.expose_secret().to_owned()))
                .collect(),
            gun,
            dry_run: false,
        })
        .await?;
    print_imported(&reply, json);
    Ok(())
}

pub async fn export(mut client: Client, command: ExportCommand, json: bool) -> Result<()> {
    let ExportCommand::Docker(args) = command;
    let mut passphrases: HashMap<String, SecretString> = PASSPHRASE_NAMES
        .iter()
        .filter_map(|(name, _)| passphrase_from_env(name).map(|p| ((*name).to_owned(), p)))
        .collect();
    if args.passphrase_stdin {
        passphrases.insert("default".into(), read_stdin_lines(1)?.remove(0));
    } else if passphrases.is_empty() {
        passphrases.insert("default".into(), new_passphrase("key file")?);
    }
    let reply = client
        .export_notary_keys(proto::ExportNotaryKeysRequest {
            keyids: args.keys,
            gun: args.gun.unwrap_or_default(),
            passphrases: passphrases
                .iter()
                .map(|(name, passphrase)| (name.clone(), passphrase.expose_secret().to_owned()))
                .collect(),
            bundle: args.out.is_some(),
        })
        .await?;
    let written: Vec<PathBuf> = match &args.out {
        Some(out) => {
            let bundle: Vec<u8> = reply
                .files
                .iter()
                .flat_map(|file| file.contents.iter().copied())
                .collect();
            write_new_private(out, &bundle)?;
            vec![out.clone()]
        }
        None => {
            let dir = args.trust_dir.unwrap_or_else(default_trust_dir);
            write_key_files(&dir, &reply.files)?
        }
    };
    print(
        json,
        json!({
            "files": written,
            "keys": reply.keys.iter().map(key_json).collect::<Vec<_>>(),
        }),
        || {
            let mut text = String::new();
            for path in &written {
                text.push_str(&format!("wrote {}\n", path.display()));
            }
            for key in &reply.keys {
                text.push_str(&format!("  {}\n", key_line(key)));
            }
            text.trim_end().to_owned()
        },
    );
    Ok(())
}

/// Docker's trust directory: `$DOCKER_CONFIG/trust`, else `~/.docker/trust`.
fn default_trust_dir() -> PathBuf {
    match std::env::var_os("DOCKER_CONFIG").filter(|dir| !dir.is_empty()) {
        Some(config) => PathBuf::from(config).join("trust"),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".docker")
            .join("trust"),
    }
}

/// Every file under `dir/private`, named relative to `dir`.
fn trust_dir_files(dir: &Path) -> Result<Vec<proto::NotaryKeyFile>> {
    let private = dir.join("private");
    let mut files = Vec::new();
    let mut pending = vec![private.clone()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .map_err(Error::io("reading the trust directory", &current))?;
        for entry in entries {
            let path = entry
                .map_err(Error::io("reading the trust directory", &current))?
                .path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if files.len() == MAX_TRUST_DIR_FILES {
                return Err(Error::Usage(format!(
                    "{} holds more than {MAX_TRUST_DIR_FILES} files: not a trust directory",
                    private.display()
                )));
            }
            let name = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let contents = read_limited(&path, MAX_KEY_FILE_BYTES, "reading a key file")?;
            files.push(proto::NotaryKeyFile { name, contents });
        }
    }
    if files.is_empty() {
        return Err(Error::Usage(format!(
            "{} holds no key files: is this a Docker trust directory (--trust-dir)?",
            private.display()
        )));
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// The passphrase named `name` from the environment, Notary's variable first.
fn passphrase_from_env(name: &str) -> Option<SecretString> {
    let notary = format!("NOTARY_{}_PASSPHRASE", name.to_ascii_uppercase());
    let docker = PASSPHRASE_NAMES
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, docker)| *docker);
    std::iter::once(notary.as_str())
        .chain(docker)
        .find_map(|variable| {
            std::env::var(variable)
                .ok()
                .filter(|value| !value.is_empty())
        })
        .map(SecretString::from)
}

/// Each needed passphrase: from the environment, else stdin (one line each, in
/// order), else a prompt.
fn collect_passphrases(
    needed: &[String],
    from_stdin: bool,
) -> Result<HashMap<String, SecretString>> {
    let from_env: Vec<Option<SecretString>> = needed
        .iter()
        .map(|name| passphrase_from_env(name))
        .collect();
    let mut typed = if from_stdin {
        read_stdin_lines(from_env.iter().filter(|found| found.is_none()).count())?
    } else {
        Vec::new()
    };
    typed.reverse();
    needed
        .iter()
        .zip(from_env)
        .map(|(name, found)| {
            let passphrase = match found.or_else(|| typed.pop()) {
                Some(passphrase) => passphrase,
                None => prompt_secret(
                    &format!("passphrase of the Notary {name} keys: "),
                    "--passphrase-stdin or NOTARY_<ROLE>_PASSPHRASE",
                )?,
            };
            Ok((name.clone(), passphrase))
        })
        .collect()
}

/// Writes `private/<keyid>.key` files under `dir` (0600 in a 0700 `private/`), none
/// if any already exists.
fn write_key_files(dir: &Path, files: &[proto::NotaryKeyFile]) -> Result<Vec<PathBuf>> {
    let paths: Vec<PathBuf> = files.iter().map(|file| dir.join(&file.name)).collect();
    if let Some(present) = paths.iter().find(|path| path.exists()) {
        return Err(Error::Usage(format!(
            "{} already exists: nothing was written (move it away, or export to another --trust-dir)",
            present.display()
        )));
    }
    for (path, file) in paths.iter().zip(files) {
        if let Some(parent) = path.parent() {
            create_private_dir(parent)?;
        }
        write_new_private(path, &file.contents)?;
    }
    Ok(paths)
}

fn print_found(found: &proto::ImportNotaryKeysResponse, json: bool) {
    print(
        json,
        json!({
            "dry_run": true,
            "keys": found.keys.iter().map(|key| json!({
                "file": key.file, "role": key.role, "gun": key.gun, "encrypted": key.encrypted,
            })).collect::<Vec<_>>(),
            "skipped": found.skipped.iter().map(|skip| json!({"file": skip.file, "reason": skip.reason})).collect::<Vec<_>>(),
            "passphrases_needed": found.passphrases_needed,
        }),
        || {
            let mut text = format!("would import {} keys", found.keys.len());
            for key in &found.keys {
                text.push_str(&format!("\n  {}  {} {}", key.file, key.role, key.gun));
            }
            for skip in &found.skipped {
                text.push_str(&format!("\n  skipped {}: {}", skip.file, skip.reason));
            }
            if !found.passphrases_needed.is_empty() {
                text.push_str(&format!(
                    "\npassphrases needed: {}",
                    found.passphrases_needed.join(", ")
                ));
            }
            text
        },
    );
}

fn print_imported(reply: &proto::ImportNotaryKeysResponse, json: bool) {
    print(
        json,
        json!({
            "keys": reply.keys.iter().map(|found| json!({
                "file": found.file,
                "already_present": found.already_present,
                "key": found.key.as_ref().map(key_json),
            })).collect::<Vec<_>>(),
            "skipped": reply.skipped.iter().map(|skip| json!({"file": skip.file, "reason": skip.reason})).collect::<Vec<_>>(),
        }),
        || {
            let imported = reply.keys.iter().filter(|key| !key.already_present).count();
            let mut text = format!(
                "imported {imported} keys, {} already present, {} files skipped",
                reply.keys.len() - imported,
                reply.skipped.len()
            );
            for found in &reply.keys {
                if let Some(key) = &found.key {
                    let state = if found.already_present {
                        "present"
                    } else {
                        "imported"
                    };
                    text.push_str(&format!("\n  {state}: {} <- {}", key_line(key), found.file));
                }
            }
            for skip in &reply.skipped {
                text.push_str(&format!("\n  skipped {}: {}", skip.file, skip.reason));
            }
            text
        },
    );
}
