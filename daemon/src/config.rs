//! Configuration: command-line flags over an optional TOML file over defaults.

use crate::error::{Error, Result};
use crate::transport::unix::default_socket_path;
use clap::Parser;
use serde::Deserialize;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default request/response size limit: admits a ~15 MB targets.json with room to spare.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
const DEFAULT_IDLE_LOCK_SECS: u64 = 15 * 60;
const DEFAULT_PIN_CACHE_SECS: u64 = 15 * 60;

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
    /// idle_lock_secs, keyring, listen_tcp, tls_cert, tls_key, tls_client_ca,
    /// tls_allowed_subjects, pin_cache_secs, yubikey. Flags override it.
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

    /// Also listen on TCP with mutual TLS (e.g. 127.0.0.1:7899), serving the native
    /// API and the Notary signer API; needs --tls-cert, --tls-key and --tls-client-ca.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen_tcp: Option<String>,

    /// PEM certificate (chain) the TCP listener presents.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificate(s): TCP clients must present a certificate issued by one.
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,

    /// A client certificate subject common name allowed over TCP (repeatable)
    /// [default: any certificate from --tls-client-ca].
    #[arg(long = "tls-allow-subject", value_name = "CN")]
    pub tls_allowed_subjects: Vec<String>,

    /// Forget a YubiKey PIN this many seconds after `tufkey unlock --serial` [default: 900].
    #[arg(long, value_name = "SECS")]
    pub pin_cache_secs: Option<u64>,

    /// Do not use YubiKeys (by default they are used whenever pcscd is reachable).
    #[arg(long)]
    pub no_yubikey: bool,

    /// Where keys created through the Notary signer API live [default: software].
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub notary_backend: Option<NotaryBackend>,

    /// With `--notary-backend yubikey`: the YubiKey to use when several are plugged in.
    #[arg(long, value_name = "SERIAL")]
    pub notary_yubikey_serial: Option<u32>,
}

/// The backend for keys that notary-server creates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NotaryBackend {
    #[default]
    Software,
    Yubikey,
}

/// Where the Notary signer API puts the keys it creates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotaryKeys {
    pub backend: NotaryBackend,
    pub yubikey_serial: Option<u32>,
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
    listen_tcp: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    tls_allowed_subjects: Option<Vec<String>>,
    pin_cache_secs: Option<u64>,
    yubikey: Option<bool>,
    notary_backend: Option<NotaryBackend>,
    notary_yubikey_serial: Option<u32>,
}

/// The optional TCP listener: address, TLS identity, and who may connect.
#[derive(Clone, Debug, PartialEq)]
pub struct TcpListenerConfig {
    pub listen: SocketAddr,
    /// PEM certificate chain the listener presents.
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
    /// PEM CA certificates that client certificates must chain to.
    pub client_ca: PathBuf,
    /// Client certificate subject CNs allowed; empty allows any certificate from `client_ca`.
    pub allowed_subjects: Vec<String>,
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
    /// `None`: no TCP listener (the default).
    pub tcp: Option<TcpListenerConfig>,
    /// How long a YubiKey PIN stays cached.
    pub pin_cache: Duration,
    /// Whether to use YubiKeys (when pcscd is reachable).
    pub yubikey: bool,
    /// Where keys created through the Notary signer API live.
    pub notary_keys: NotaryKeys,
}

impl Config {
    /// Resolves flags, then the config file, then defaults.
    pub fn resolve(args: Args) -> Result<Self> {
        let file = match &args.config {
            Some(path) => read_file_config(path)?,
            None => FileConfig::default(),
        };
        let tcp = resolve_tcp(
            args.listen_tcp.or(file.listen_tcp),
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
            args.tls_client_ca.or(file.tls_client_ca),
            if args.tls_allowed_subjects.is_empty() {
                file.tls_allowed_subjects.unwrap_or_default()
            } else {
                args.tls_allowed_subjects
            },
        )?;
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
            tcp,
            pin_cache: Duration::from_secs(
                args.pin_cache_secs
                    .or(file.pin_cache_secs)
                    .unwrap_or(DEFAULT_PIN_CACHE_SECS),
            ),
            yubikey: !args.no_yubikey && file.yubikey.unwrap_or(true),
            notary_keys: NotaryKeys {
                backend: args
                    .notary_backend
                    .or(file.notary_backend)
                    .unwrap_or_default(),
                yubikey_serial: args.notary_yubikey_serial.or(file.notary_yubikey_serial),
            },
        })
    }
}

/// The TCP listener is all or nothing: an address needs every TLS file, and TLS
/// settings without an address are a mistake worth naming.
fn resolve_tcp(
    listen: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    allowed_subjects: Vec<String>,
) -> Result<Option<TcpListenerConfig>> {
    let Some(listen) = listen else {
        if cert.is_some() || key.is_some() || client_ca.is_some() || !allowed_subjects.is_empty() {
            return Err(Error::Config(
                "TLS settings given without --listen-tcp (listen_tcp): add the address to listen on"
                    .into(),
            ));
        }
        return Ok(None);
    };
    let required = |path: Option<PathBuf>, flag: &str| {
        path.ok_or_else(|| {
            Error::Config(format!(
                "--listen-tcp needs {flag}: TCP is only served with mutual TLS"
            ))
        })
    };
    Ok(Some(TcpListenerConfig {
        listen: resolve_address(&listen)?,
        cert: required(cert, "--tls-cert (tls_cert)")?,
        key: required(key, "--tls-key (tls_key)")?,
        client_ca: required(client_ca, "--tls-client-ca (tls_client_ca)")?,
        allowed_subjects,
    }))
}

/// `HOST:PORT` to the first address it resolves to.
fn resolve_address(text: &str) -> Result<SocketAddr> {
    let bad = |reason: String| Error::Config(format!("--listen-tcp {text:?}: {reason}"));
    text.to_socket_addrs()
        .map_err(|error| bad(format!("{error} (expected HOST:PORT, e.g. 127.0.0.1:7899)")))?
        .next()
        .ok_or_else(|| bad("resolves to no address".into()))
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
        assert_eq!(config.tcp, None, "TCP is off by default");
    }

    #[test]
    fn tcp_listener_comes_from_the_file_with_flags_winning() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tufkeyd.toml");
        std::fs::write(
            &file,
            "listen_tcp = \"127.0.0.1:7899\"\ntls_cert = \"/f/signer.crt\"\ntls_key = \"/f/signer.key\"\n\
             tls_client_ca = \"/f/ca.crt\"\ntls_allowed_subjects = [\"notary-server\"]\n",
        )
        .unwrap();
        let args = Args::parse_from([
            "tufkeyd",
            "--config",
            file.to_str().unwrap(),
            "--tls-cert",
            "/flag/signer.crt",
        ]);
        let tcp = Config::resolve(args).unwrap().tcp.unwrap();
        assert_eq!(tcp.listen, "127.0.0.1:7899".parse().unwrap());
        assert_eq!(tcp.cert, PathBuf::from("/flag/signer.crt"));
        assert_eq!(tcp.key, PathBuf::from("/f/signer.key"));
        assert_eq!(tcp.client_ca, PathBuf::from("/f/ca.crt"));
        assert_eq!(tcp.allowed_subjects, vec!["notary-server".to_string()]);
    }

    #[test]
    fn tcp_without_tls_files_or_tls_without_tcp_is_refused() {
        let missing_ca = Config::resolve(Args::parse_from([
            "tufkeyd",
            "--listen-tcp",
            "127.0.0.1:7899",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
        ]))
        .unwrap_err();
        assert!(
            missing_ca.to_string().contains("--tls-client-ca"),
            "{missing_ca}"
        );

        let no_address =
            Config::resolve(Args::parse_from(["tufkeyd", "--tls-cert", "c"])).unwrap_err();
        assert!(
            no_address.to_string().contains("--listen-tcp"),
            "{no_address}"
        );

        let bad_address =
            Config::resolve(Args::parse_from(["tufkeyd", "--listen-tcp", "nowhere"])).unwrap_err();
        assert!(
            bad_address.to_string().contains("HOST:PORT"),
            "{bad_address}"
        );
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
