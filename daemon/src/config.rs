//! Configuration: command-line flags over an optional TOML file over defaults.

use crate::error::{Error, Result};
use crate::transport::unix::default_socket_path;
use clap::Parser;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default request/response size limit: admits a ~15 MB targets.json with room to spare.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
const DEFAULT_IDLE_LOCK_SECS: u64 = 15 * 60;

/// tufkeyd: keeps TUF signing keys in an encrypted keystore (or on YubiKeys) and
/// signs for other tools over gRPC. Logs go to stderr; set verbosity with RUST_LOG.
///
/// The keystore passphrase comes from the OS keyring, TUFKEY_PASSPHRASE, or
/// `tufkey unlock`. A new store with none of these gets a random passphrase saved
/// in the OS keyring.
#[derive(Debug, Parser)]
#[command(name = "tufkeyd", version)]
pub struct Args {
    /// TOML file with any of: socket, store, allow_uids, max_message_bytes,
    /// idle_lock_secs, keyring. Flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Unix socket to listen on [default: $XDG_RUNTIME_DIR/tufkey/tufkeyd.sock,
    /// else /run/tufkey/tufkeyd.sock].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Keystore directory [default: $XDG_DATA_HOME/tufkey, else ~/.local/share/tufkey].
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// A uid allowed to call over the socket (repeatable) [default: the daemon's own uid].
    #[arg(long = "allow-uid", value_name = "UID")]
    pub allow_uids: Vec<u32>,

    /// Largest gRPC request or response in bytes [default: 67108864].
    #[arg(long, value_name = "BYTES")]
    pub max_message_bytes: Option<usize>,

    /// Drop decrypted keys after this many seconds without a signature [default: 900].
    #[arg(long, value_name = "SECS")]
    pub idle_lock_secs: Option<u64>,

    /// Never read or write the keystore passphrase in the OS keyring.
    #[arg(long)]
    pub no_keyring: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    socket: Option<PathBuf>,
    store: Option<PathBuf>,
    allow_uids: Option<Vec<u32>>,
    max_message_bytes: Option<usize>,
    idle_lock_secs: Option<u64>,
    keyring: Option<bool>,
}

/// The daemon's resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub socket: PathBuf,
    pub store: PathBuf,
    pub allow_uids: Vec<u32>,
    pub max_message_bytes: usize,
    pub idle_timeout: Duration,
    pub use_keyring: bool,
}

impl Config {
    /// Resolves flags, then the config file, then defaults.
    pub fn resolve(args: Args) -> Result<Self> {
        let file = match &args.config {
            Some(path) => read_file_config(path)?,
            None => FileConfig::default(),
        };
        let allow_uids = if !args.allow_uids.is_empty() {
            args.allow_uids
        } else {
            file.allow_uids
                .unwrap_or_else(|| vec![nix::unistd::getuid().as_raw()])
        };
        Ok(Config {
            socket: args
                .socket
                .or(file.socket)
                .unwrap_or_else(default_socket_path),
            store: args
                .store
                .or(file.store)
                .map_or_else(default_store_dir, Ok)?,
            allow_uids,
            max_message_bytes: args
                .max_message_bytes
                .or(file.max_message_bytes)
                .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES),
            idle_timeout: Duration::from_secs(
                args.idle_lock_secs
                    .or(file.idle_lock_secs)
                    .unwrap_or(DEFAULT_IDLE_LOCK_SECS),
            ),
            use_keyring: !args.no_keyring && file.keyring.unwrap_or(true),
        })
    }
}

fn read_file_config(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).map_err(Error::io("reading config", path))?;
    toml::from_str(&text).map_err(|error| Error::Config(format!("{}: {error}", path.display())))
}

/// `$XDG_DATA_HOME/tufkey`, else `~/.local/share/tufkey`.
fn default_store_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir).join("tufkey"));
    }
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join(".local/share/tufkey"))
        .ok_or_else(|| {
            Error::Config("neither XDG_DATA_HOME nor HOME is set: pass --store DIR".into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_the_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tufkeyd.toml");
        std::fs::write(
            &file,
            "store = \"/from/file\"\nidle_lock_secs = 5\nkeyring = false\n",
        )
        .unwrap();
        let args = Args::parse_from([
            "tufkeyd",
            "--config",
            file.to_str().unwrap(),
            "--socket",
            "/s.sock",
        ]);
        let config = Config::resolve(args).unwrap();
        assert_eq!(config.store, PathBuf::from("/from/file"));
        assert_eq!(config.socket, PathBuf::from("/s.sock"));
        assert_eq!(config.idle_timeout, Duration::from_secs(5));
        assert!(!config.use_keyring);
        assert_eq!(config.max_message_bytes, DEFAULT_MAX_MESSAGE_BYTES);
    }

    #[test]
    fn unknown_config_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tufkeyd.toml");
        std::fs::write(&file, "sokcet = \"/x\"\n").unwrap();
        let error = Config::resolve(Args::parse_from([
            "tufkeyd",
            "--config",
            file.to_str().unwrap(),
        ]))
        .unwrap_err();
        assert!(error.to_string().contains("sokcet"), "{error}");
    }
}
