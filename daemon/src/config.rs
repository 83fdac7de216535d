//! tufkeyd's settings, each declared once, in [`Settings`].
//!
//! One declaration serves every source so that they cannot drift apart: clap reads
//! a field as a flag (and documents it in `--help`), serde reads it as a TOML key
//! (the flag's name in snake_case), and its `env` attribute names its environment
//! variable (`TUFKEYD_` + the flag's name). Precedence: flag > environment > TOML
//! file (`--config FILE`) > default (clap's `default_value`, else computed below).
//!
//! Merging is generic: each source becomes a TOML table holding only the settings
//! it gives, the tables overlay key by key, and the result deserialises back into
//! [`Settings`]. Adding a field is all it takes to add a setting; the tests check
//! that every flag in `--help` works from each source and that the README's table
//! (rendered from the same declaration) is current.
//!
//! The resolved [`Config`] comes in sections, one per part of the daemon, so each
//! backend is built from its own section only.

use crate::audit::AuditConfig;
use crate::backend::software::{SecretFile, SoftwareConfig};
use crate::backend::yubikey::YubiKeyConfig;
use crate::error::{Error, Result};
use crate::policy::PolicySource;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tufkey_proto::paths;

/// Every setting of tufkeyd, each once: a flag, an environment variable and a TOML key.
///
/// Each field has a single-paragraph doc (its `--help` line); a default that depends
/// on the environment ends it as `[default: ...]`, others are clap `default_value`s.
#[derive(Debug, Parser, Serialize, Deserialize)]
#[command(
    name = "tufkeyd",
    version,
    about = "tufkeyd: keeps TUF signing keys in an encrypted keystore (or on YubiKeys) and \
             signs for other tools over gRPC. Logs go to stderr; set verbosity with RUST_LOG.",
    long_about = None,
    after_help = "Every setting is a flag, an environment variable (a list comma-separated, \
                  a BOOL true or false) and a key of the --config TOML file (the flag's name \
                  in snake_case). A flag beats the environment, which beats the file.\n\n\
                  The keystore passphrase is not a setting: it comes from --secret-file (or \
                  systemd's $CREDENTIALS_DIRECTORY/tufkey-secret), the OS keyring, \
                  TUFKEY_PASSPHRASE, or `tufkey unlock`. A new store with none of these gets \
                  a random passphrase saved in the --secret-file, else the OS keyring."
)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// TOML file of settings, keyed by flag name in snake_case (e.g. `allow_uid = [1000]`);
    /// flags and environment variables win over it
    #[arg(long, env = "TUFKEYD_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    config: Option<PathBuf>,

    /// Unix socket to listen on [default: $XDG_RUNTIME_DIR/tufkey/tufkeyd.sock, else
    /// /run/tufkey/tufkeyd.sock]
    #[arg(long, env = "TUFKEYD_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,

    /// Keystore directory [default: $STATE_DIRECTORY (systemd's StateDirectory=, e.g.
    /// /var/lib/tufkey), else $XDG_DATA_HOME/tufkey, else ~/.local/share/tufkey]
    #[arg(long, env = "TUFKEYD_STORE", value_name = "DIR")]
    store: Option<PathBuf>,

    /// A uid allowed to call over the socket (repeatable) [default: the daemon's own uid]
    #[arg(long, env = "TUFKEYD_ALLOW_UID", value_name = "UID")]
    allow_uid: Option<Vec<u32>>,

    /// A group (name or GID) whose members may call over the socket (repeatable;
    /// primary or supplementary group). The socket becomes 0660 and its directory 0750,
    /// both owned by the first such group, which the daemon's user must belong to
    #[arg(long, env = "TUFKEYD_ALLOW_GID", value_name = "GROUP")]
    allow_gid: Option<Vec<GroupSetting>>,

    /// File holding the keystore passphrase, mode 0600 and owned by the daemon's user;
    /// tried before the keyring. Missing and the keystore new: created with a random
    /// passphrase [default: $CREDENTIALS_DIRECTORY/tufkey-secret (systemd's
    /// LoadCredential=) when that is set]
    #[arg(long, env = "TUFKEYD_SECRET_FILE", value_name = "FILE")]
    secret_file: Option<PathBuf>,

    /// Largest gRPC request or response in bytes (a 100k-target targets.json is ~15 MB)
    #[arg(
        long,
        env = "TUFKEYD_MAX_MESSAGE_BYTES",
        value_name = "BYTES",
        default_value = "67108864"
    )]
    max_message_bytes: Option<usize>,

    /// Drop decrypted keys after this many seconds without a signature
    #[arg(
        long,
        env = "TUFKEYD_IDLE_LOCK_SECS",
        value_name = "SECS",
        default_value = "900"
    )]
    idle_lock_secs: Option<u64>,

    /// Never read or write the keystore passphrase or YubiKey PINs in the OS keyring
    #[arg(
        long,
        env = "TUFKEYD_NO_KEYRING",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    no_keyring: Option<bool>,

    /// Also listen on TCP with mutual TLS (e.g. 127.0.0.1:7899), serving the native API
    /// and the Notary signer API; needs --tls-cert, --tls-key and --tls-client-ca
    #[arg(long, env = "TUFKEYD_LISTEN_TCP", value_name = "HOST:PORT")]
    listen_tcp: Option<String>,

    /// PEM certificate (chain) the TCP listener presents
    #[arg(long, env = "TUFKEYD_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert
    #[arg(long, env = "TUFKEYD_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,

    /// PEM CA certificate(s): TCP clients must present a certificate issued by one
    #[arg(long, env = "TUFKEYD_TLS_CLIENT_CA", value_name = "FILE")]
    tls_client_ca: Option<PathBuf>,

    /// A client certificate subject common name granted the Notary signer API over TCP
    /// (repeatable): shorthand for a --policy grant of `notary` to `cert_cn`
    #[arg(long, env = "TUFKEYD_TLS_ALLOW_SUBJECT", value_name = "CN")]
    tls_allow_subject: Option<Vec<String>>,

    /// Access policy: a TOML file of `[[grant]]` tables (in the --config file, a
    /// `[policy]` table instead), re-read on SIGHUP; see the README's "Access policy"
    /// [default: --allow-uid callers may do everything on the Unix socket, --allow-gid
    /// members sign and read keys (root keys excepted), nobody else anything]
    #[arg(long, env = "TUFKEYD_POLICY", value_name = "FILE", value_parser = policy_file)]
    policy: Option<toml::Value>,

    /// Forget a YubiKey PIN this many seconds after `tufkey unlock --serial`
    #[arg(
        long,
        env = "TUFKEYD_PIN_CACHE_SECS",
        value_name = "SECS",
        default_value = "900"
    )]
    pin_cache_secs: Option<u64>,

    /// Do not use YubiKeys (by default they are used whenever pcscd is reachable)
    #[arg(
        long,
        env = "TUFKEYD_NO_YUBIKEY",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    no_yubikey: Option<bool>,

    /// The backend that keeps keys created through the Notary signer API: software or
    /// yubikey
    #[arg(
        long,
        env = "TUFKEYD_NOTARY_BACKEND",
        value_name = "NAME",
        default_value = "software"
    )]
    notary_backend: Option<String>,

    /// With --notary-backend yubikey: the YubiKey to use when several are plugged in
    #[arg(long, env = "TUFKEYD_NOTARY_YUBIKEY_SERIAL", value_name = "SERIAL")]
    notary_yubikey_serial: Option<u32>,

    /// Largest request in bytes to the Session, Keys and Devices services (passphrases,
    /// PINs, key names); only signing takes --max-message-bytes
    #[arg(
        long,
        env = "TUFKEYD_MAX_ADMIN_MESSAGE_BYTES",
        value_name = "BYTES",
        default_value = "65536"
    )]
    max_admin_message_bytes: Option<usize>,

    /// Largest request in bytes to the Notary signer services (notary-server sends
    /// canonical snapshot and timestamp metadata)
    #[arg(
        long,
        env = "TUFKEYD_MAX_NOTARY_MESSAGE_BYTES",
        value_name = "BYTES",
        default_value = "8388608"
    )]
    max_notary_message_bytes: Option<usize>,

    /// Memory in bytes that signing requests in flight may take (a metadata document
    /// costs up to 8 times its size while signed); beyond it requests get
    /// RESOURCE_EXHAUSTED
    #[arg(
        long,
        env = "TUFKEYD_SIGN_MEMORY_BUDGET_BYTES",
        value_name = "BYTES",
        default_value = "1073741824"
    )]
    sign_memory_budget_bytes: Option<u64>,

    /// Most connections open at once on each listener (Unix socket, TCP); further
    /// connections are closed at once
    #[arg(
        long,
        env = "TUFKEYD_MAX_CONNECTIONS",
        value_name = "COUNT",
        default_value = "256"
    )]
    max_connections: Option<usize>,

    /// Most RPCs in flight at once on one connection (HTTP/2 concurrent streams)
    #[arg(
        long,
        env = "TUFKEYD_MAX_CONCURRENT_STREAMS",
        value_name = "COUNT",
        default_value = "64"
    )]
    max_concurrent_streams: Option<u32>,

    /// Give up on an RPC after this many seconds (a YubiKey waiting for touch takes
    /// up to 30)
    #[arg(
        long,
        env = "TUFKEYD_REQUEST_TIMEOUT_SECS",
        value_name = "SECS",
        default_value = "120"
    )]
    request_timeout_secs: Option<u64>,

    /// Close a TCP connection that has not finished its TLS handshake after this many
    /// seconds
    #[arg(
        long,
        env = "TUFKEYD_TLS_HANDSHAKE_TIMEOUT_SECS",
        value_name = "SECS",
        default_value = "10"
    )]
    tls_handshake_timeout_secs: Option<u64>,

    /// Probe idle TCP connections with keepalives after this many seconds, so dead
    /// peers are noticed and their connections closed
    #[arg(
        long,
        env = "TUFKEYD_TCP_KEEPALIVE_SECS",
        value_name = "SECS",
        default_value = "60"
    )]
    tcp_keepalive_secs: Option<u64>,

    /// The audit log's current file (JSON Lines, hash-chained, MACed); rotated files
    /// sit beside it [default: STORE/audit/audit.log]
    #[arg(long, env = "TUFKEYD_AUDIT_LOG", value_name = "PATH")]
    audit_log: Option<PathBuf>,

    /// Rotate the audit log before its current file would grow past this many bytes
    /// (the chain continues in the next file)
    #[arg(
        long,
        env = "TUFKEYD_AUDIT_MAX_BYTES",
        value_name = "BYTES",
        default_value = "16777216"
    )]
    audit_max_bytes: Option<u64>,
}

/// A group as a setting names it: a GID, or a name looked up when the daemon
/// starts (so a unit file can say `--allow-gid tufkey-clients` whatever GID
/// sysusers picked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum GroupSetting {
    Id(u32),
    Name(String),
}

impl std::str::FromStr for GroupSetting {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        Ok(text
            .parse()
            .map_or_else(|_| GroupSetting::Name(text.to_owned()), GroupSetting::Id))
    }
}

impl GroupSetting {
    /// The GID, looking a name up in the group database.
    fn resolve(&self) -> Result<u32> {
        let name = match self {
            GroupSetting::Id(gid) => return Ok(*gid),
            GroupSetting::Name(name) => name,
        };
        match nix::unistd::Group::from_name(name) {
            Ok(Some(group)) => Ok(group.gid.as_raw()),
            Ok(None) => Err(Error::Config(format!(
                "--allow-gid {name}: no such group; create it (`groupadd --system {name}`, or \
                 udev/tufkey.sysusers) or give a numeric GID"
            ))),
            Err(error) => Err(Error::Config(format!(
                "--allow-gid {name}: looking the group up failed: {error}"
            ))),
        }
    }
}

/// TOML keys that were renamed when every setting got one name; the error for the
/// old key says the new spelling.
const RENAMED_KEYS: &[(&str, &str)] = &[
    ("keyring", "`keyring = false` is now `no_keyring = true`"),
    ("yubikey", "`yubikey = false` is now `no_yubikey = true`"),
    ("allow_uids", "`allow_uids` is now `allow_uid` (a list)"),
    (
        "tls_allowed_subjects",
        "`tls_allowed_subjects` is now `tls_allow_subject` (a list)",
    ),
];

/// tufkeyd's command line, parsed; [`Config::resolve`] merges it with the
/// environment and the TOML file.
#[derive(Debug)]
pub struct Args(ArgMatches);

impl Args {
    /// The process's arguments. `--help`, `--version` and usage errors print and
    /// exit here, as in any clap program.
    pub fn parse() -> Self {
        Args(parser().get_matches())
    }

    /// `argv` (program name first); a usage error, `--help` included, is an `Err`.
    pub fn try_parse_from<I, T>(argv: I) -> Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        parser()
            .try_get_matches_from(argv)
            .map(Args)
            .map_err(|error| Error::Config(clap_message(&error)))
    }
}

/// The daemon's resolved configuration, one section per part of the daemon.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: ListenConfig,
    pub software: SoftwareConfig,
    /// `None` with `--no-yubikey`.
    pub yubikey: Option<YubiKeyConfig>,
    pub notary: NotaryConfig,
    pub limits: LimitsConfig,
    /// Where the access policy is written; `None`: the defaults alone.
    pub policy: Option<PolicySource>,
    pub audit: AuditConfig,
}

/// What one caller can make the daemon spend: connections, streams, time, message
/// sizes, memory for documents being signed. The defaults here are the settings'
/// defaults (a test checks that they agree).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Largest request to Session, Keys and Devices.
    pub max_admin_message_bytes: usize,
    /// Largest request to the Notary signer services.
    pub max_notary_message_bytes: usize,
    /// Memory that signing requests in flight may take.
    pub sign_memory_budget_bytes: u64,
    /// Connections open at once, per listener.
    pub max_connections: usize,
    /// RPCs in flight at once on one connection.
    pub max_concurrent_streams: u32,
    /// Deadline of every RPC.
    pub request_timeout: Duration,
    /// Deadline of a TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Idle time before TCP keepalive probes.
    pub tcp_keepalive: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_admin_message_bytes: 64 * 1024,
            max_notary_message_bytes: 8 * 1024 * 1024,
            sign_memory_budget_bytes: 1024 * 1024 * 1024,
            max_connections: 256,
            max_concurrent_streams: 64,
            request_timeout: Duration::from_secs(120),
            tls_handshake_timeout: Duration::from_secs(10),
            tcp_keepalive: Duration::from_secs(60),
        }
    }
}

/// Where and for whom the daemon listens.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenConfig {
    pub socket: PathBuf,
    /// Uids allowed to call over the socket.
    pub allow_uids: Vec<u32>,
    /// Groups whose members may call over the socket; the first owns the socket.
    pub allow_gids: Vec<u32>,
    /// Largest gRPC request or response, in bytes.
    pub max_message_bytes: usize,
    /// `None`: no TCP listener (the default).
    pub tcp: Option<TcpListenerConfig>,
}

/// Where the Notary signer API puts the keys it creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotaryConfig {
    /// A backend's name (`software` unless set); the daemon checks it against the
    /// backends it runs.
    pub backend: String,
    /// With the `yubikey` backend: which card, when several are plugged in.
    pub yubikey_serial: Option<u32>,
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

impl Config {
    /// Merges `args` over the environment (`env` looks a variable up; `main` passes
    /// `|name| std::env::var_os(name)`) over the `--config` file over defaults.
    pub fn resolve(args: &Args, env: impl Fn(&str) -> Option<OsString>) -> Result<Self> {
        let flags = Layer::given(&args.0)?;
        let environment = Layer::from_env(&env)?;
        let mut merged = defaults()?;
        let config_file = flags.config.or(environment.config);
        if let Some(file) = &config_file {
            merged.extend(read_file(file)?);
        }
        merged.extend(environment.settings);
        merged.extend(flags.settings);
        let settings: Settings = merged
            .try_into()
            .map_err(|error| Error::Config(format!("merging settings: {error}")))?;
        Self::from_settings(settings, config_file, &env)
    }

    /// [`Config::resolve`] from an argv (program name first) and an environment
    /// lookup, leaving the process environment alone: for tests.
    pub fn resolve_from<I, T>(argv: I, env: impl Fn(&str) -> Option<OsString>) -> Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Self::resolve(&Args::try_parse_from(argv)?, env)
    }

    fn from_settings(
        settings: Settings,
        config_file: Option<PathBuf>,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Self> {
        let policy = resolve_policy(settings.policy.clone(), config_file)?;
        let use_keyring = !defaulted(settings.no_keyring, "no_keyring")?;
        let pin_cache = Duration::from_secs(defaulted(settings.pin_cache_secs, "pin_cache_secs")?);
        let tcp = resolve_tcp(
            settings.listen_tcp,
            settings.tls_cert,
            settings.tls_key,
            settings.tls_client_ca,
            settings.tls_allow_subject.unwrap_or_default(),
        )?;
        let audit = AuditConfig {
            path: match settings.audit_log.clone() {
                Some(path) => path,
                None => settings
                    .store
                    .clone()
                    .map_or_else(|| default_store_dir(env), Ok)?
                    .join("audit")
                    .join("audit.log"),
            },
            max_bytes: defaulted(settings.audit_max_bytes, "audit_max_bytes")?,
        };
        Ok(Config {
            listen: ListenConfig {
                socket: settings
                    .socket
                    .unwrap_or_else(|| paths::default_socket_path(env)),
                allow_uids: settings
                    .allow_uid
                    .unwrap_or_else(|| vec![nix::unistd::getuid().as_raw()]),
                allow_gids: settings
                    .allow_gid
                    .unwrap_or_default()
                    .iter()
                    .map(GroupSetting::resolve)
                    .collect::<Result<_>>()?,
                max_message_bytes: defaulted(settings.max_message_bytes, "max_message_bytes")?,
                tcp,
            },
            software: SoftwareConfig {
                dir: settings.store.map_or_else(|| default_store_dir(env), Ok)?,
                use_keyring,
                secret_file: settings.secret_file.map(SecretFile::Setting).or_else(|| {
                    env("CREDENTIALS_DIRECTORY")
                        .filter(|dir| !dir.is_empty())
                        .map(|dir| SecretFile::credential_in(Path::new(&dir)))
                }),
                idle_timeout: Duration::from_secs(defaulted(
                    settings.idle_lock_secs,
                    "idle_lock_secs",
                )?),
            },
            yubikey: (!defaulted(settings.no_yubikey, "no_yubikey")?).then_some(YubiKeyConfig {
                pin_cache,
                use_keyring,
            }),
            notary: NotaryConfig {
                backend: defaulted(settings.notary_backend, "notary_backend")?,
                yubikey_serial: settings.notary_yubikey_serial,
            },
            policy,
            audit,
            limits: LimitsConfig {
                max_admin_message_bytes: defaulted(
                    settings.max_admin_message_bytes,
                    "max_admin_message_bytes",
                )?,
                max_notary_message_bytes: defaulted(
                    settings.max_notary_message_bytes,
                    "max_notary_message_bytes",
                )?,
                sign_memory_budget_bytes: defaulted(
                    settings.sign_memory_budget_bytes,
                    "sign_memory_budget_bytes",
                )?,
                max_connections: at_least_one(
                    defaulted(settings.max_connections, "max_connections")?,
                    "--max-connections",
                )?,
                max_concurrent_streams: at_least_one(
                    defaulted(settings.max_concurrent_streams, "max_concurrent_streams")?,
                    "--max-concurrent-streams",
                )?,
                request_timeout: seconds(
                    defaulted(settings.request_timeout_secs, "request_timeout_secs")?,
                    "--request-timeout-secs",
                )?,
                tls_handshake_timeout: seconds(
                    defaulted(
                        settings.tls_handshake_timeout_secs,
                        "tls_handshake_timeout_secs",
                    )?,
                    "--tls-handshake-timeout-secs",
                )?,
                tcp_keepalive: seconds(
                    defaulted(settings.tcp_keepalive_secs, "tcp_keepalive_secs")?,
                    "--tcp-keepalive-secs",
                )?,
            },
        })
    }
}

/// Settings from one source, as a TOML table of the keys it gives, plus the
/// `--config` file it names (the file cannot name itself).
#[derive(Default)]
struct Layer {
    config: Option<PathBuf>,
    settings: toml::Table,
}

impl Layer {
    /// What `matches` got from its arguments.
    fn given(matches: &ArgMatches) -> Result<Self> {
        let (settings, table) = from_source(matches, ValueSource::CommandLine)?;
        Ok(Layer {
            config: settings.config,
            settings: table,
        })
    }

    /// Each setting's environment variable, parsed as its flag would be; a list is
    /// comma-separated and an empty variable counts as unset.
    fn from_env(env: &dyn Fn(&str) -> Option<OsString>) -> Result<Self> {
        let mut layer = Layer::default();
        for arg in Settings::command().get_arguments() {
            let (Some(name), Some(long)) =
                (arg.get_env().and_then(|name| name.to_str()), arg.get_long())
            else {
                continue;
            };
            let Some(value) = env(name).filter(|value| !value.is_empty()) else {
                continue;
            };
            let value = value.into_string().map_err(|value| {
                Error::Config(format!("{name}={value:?}: not UTF-8; use --{long} instead"))
            })?;
            let values: Vec<&str> = match arg.get_action() {
                ArgAction::Append => value.split(',').map(str::trim).collect(),
                _ => vec![value.as_str()],
            };
            let argv = std::iter::once("tufkeyd".to_string())
                .chain(values.iter().map(|value| format!("--{long}={value}")));
            let matches = parser().try_get_matches_from(argv).map_err(|error| {
                Error::Config(format!("{name}={value:?}: {}", clap_message(&error)))
            })?;
            let one = Layer::given(&matches)?;
            layer.config = layer.config.or(one.config);
            layer.settings.extend(one.settings);
        }
        Ok(layer)
    }
}

/// The command-line parser. The environment is a layer of its own (so its errors
/// name the variable), so clap must not read it; `--help` still lists each variable.
fn parser() -> clap::Command {
    let help = Settings::command()
        .mut_args(|arg| arg.hide_env_values(true))
        .render_help();
    Settings::command()
        .mut_args(|arg| arg.env(None::<&str>))
        .override_help(help)
}

/// Every clap `default_value`: the bottom layer.
fn defaults() -> Result<toml::Table> {
    let matches = parser()
        .try_get_matches_from(["tufkeyd"])
        .map_err(|error| Error::Config(clap_message(&error)))?;
    Ok(from_source(&matches, ValueSource::DefaultValue)?.1)
}

/// The settings in `matches`, and those that came from `source` as a table.
fn from_source(matches: &ArgMatches, source: ValueSource) -> Result<(Settings, toml::Table)> {
    let settings =
        Settings::from_arg_matches(matches).map_err(|error| Error::Config(clap_message(&error)))?;
    let mut table = to_table(&settings)?;
    table.retain(|key, _| matches.value_source(key) == Some(source));
    Ok((settings, table))
}

/// clap's message without its `error: ` prefix and `--help` hint.
fn clap_message(error: &clap::Error) -> String {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// The settings that are set, as a TOML table (unset ones are left out).
fn to_table(settings: &Settings) -> Result<toml::Table> {
    toml::Table::try_from(settings)
        .map_err(|error| Error::Config(format!("a setting does not fit in TOML: {error}")))
}

/// A setting clap always fills in from its `default_value`.
fn defaulted<T>(value: Option<T>, key: &str) -> Result<T> {
    value.ok_or_else(|| {
        Error::Config(format!(
            "setting {key} has no value: give it a default_value in tufkeyd's config::Settings"
        ))
    })
}

/// A count limit of 0 would refuse everything: name the setting instead.
fn at_least_one<T: PartialEq + Default>(value: T, flag: &str) -> Result<T> {
    if value == T::default() {
        return Err(Error::Config(format!(
            "{flag} 0 would refuse every caller: give at least 1"
        )));
    }
    Ok(value)
}

/// A timeout of 0 seconds would cut everything off: name the setting instead.
fn seconds(value: u64, flag: &str) -> Result<Duration> {
    at_least_one(value, flag).map(Duration::from_secs)
}

/// The `--config` file's settings, checked against [`Settings`].
fn read_file(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(Error::io("reading config", path))?;
    file_settings(&text).map_err(|reason| Error::Config(format!("{}: {reason}", path.display())))
}

fn file_settings(text: &str) -> std::result::Result<toml::Table, String> {
    let settings: Settings = toml::from_str(text).map_err(|error| {
        let keys: toml::Table = toml::from_str(text).unwrap_or_default();
        RENAMED_KEYS
            .iter()
            .find(|(old, _)| keys.contains_key(*old))
            .map_or_else(|| error.to_string(), |(_, hint)| hint.to_string())
    })?;
    to_table(&settings).map_err(|error| error.to_string())
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

/// `--policy FILE` as the TOML value the `policy` key holds when it names a file.
fn policy_file(text: &str) -> std::result::Result<toml::Value, String> {
    if text.is_empty() {
        return Err("empty: name a policy file".into());
    }
    Ok(toml::Value::String(text.to_owned()))
}

/// The `policy` setting: a file path (flag, environment or TOML string), or a
/// `[policy]` table, which only the `--config` file can hold.
fn resolve_policy(
    value: Option<toml::Value>,
    config_file: Option<PathBuf>,
) -> Result<Option<PolicySource>> {
    match (value, config_file) {
        (None, _) => Ok(None),
        (Some(toml::Value::String(path)), _) => Ok(Some(PolicySource::File(path.into()))),
        (Some(toml::Value::Table(_)), Some(file)) => Ok(Some(PolicySource::ConfigFile(file))),
        (Some(other), _) => Err(Error::Config(format!(
            "policy = {other}: expected a file path (policy = \"/etc/tufkey/policy.toml\") or \
             [[policy.grant]] tables in the --config file"
        ))),
    }
}

/// `HOST:PORT` to the first address it resolves to.
fn resolve_address(text: &str) -> Result<SocketAddr> {
    let bad = |reason: String| Error::Config(format!("--listen-tcp {text:?}: {reason}"));
    text.to_socket_addrs()
        .map_err(|error| bad(format!("{error} (expected HOST:PORT, e.g. 127.0.0.1:7899)")))?
        .next()
        .ok_or_else(|| bad("resolves to no address".into()))
}

/// `$STATE_DIRECTORY` (a system service's, from systemd; the first if several),
/// else `$XDG_DATA_HOME/tufkey`, else `~/.local/share/tufkey`.
fn default_store_dir(env: &dyn Fn(&str) -> Option<OsString>) -> Result<PathBuf> {
    if let Some(dirs) = env("STATE_DIRECTORY").filter(|dirs| !dirs.is_empty()) {
        if let Some(first) = std::env::split_paths(&dirs).next() {
            return Ok(first);
        }
    }
    if let Some(dir) = env("XDG_DATA_HOME").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir).join("tufkey"));
    }
    env("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join(".local/share/tufkey"))
        .ok_or_else(|| {
            Error::Config("neither XDG_DATA_HOME nor HOME is set: pass --store DIR".into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Write;

    /// A fixed environment plus `vars`, so no test reads (or races on) the process's.
    fn env_with(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let mut map: HashMap<String, OsString> = HashMap::new();
        for (name, value) in [("XDG_RUNTIME_DIR", "/run/user/7"), ("HOME", "/home/test")]
            .iter()
            .chain(vars)
        {
            map.insert(name.to_string(), value.into());
        }
        move |name| map.get(name).cloned()
    }

    fn resolve(argv: &[&str], vars: &[(&str, &str)]) -> Result<Config> {
        Config::resolve_from(
            std::iter::once("tufkeyd").chain(argv.iter().copied()),
            env_with(vars),
        )
    }

    /// A `--config` file holding `text`.
    fn toml_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    fn path_of(file: &tempfile::NamedTempFile) -> &str {
        file.path().to_str().unwrap()
    }

    #[test]
    fn nothing_configured_gives_the_defaults() {
        let config = resolve(&[], &[]).unwrap();
        assert_eq!(
            config.listen,
            ListenConfig {
                socket: PathBuf::from("/run/user/7/tufkey/tufkeyd.sock"),
                allow_uids: vec![nix::unistd::getuid().as_raw()],
                allow_gids: vec![],
                max_message_bytes: 64 * 1024 * 1024,
                tcp: None,
            }
        );
        assert_eq!(
            config.software.dir,
            PathBuf::from("/home/test/.local/share/tufkey")
        );
        assert!(config.software.use_keyring);
        assert_eq!(config.software.secret_file, None);
        assert_eq!(config.software.idle_timeout, Duration::from_secs(900));
        let yubikey = config.yubikey.expect("YubiKeys are on by default");
        assert_eq!(yubikey.pin_cache, Duration::from_secs(900));
        assert!(yubikey.use_keyring);
        assert_eq!(
            config.notary,
            NotaryConfig {
                backend: "software".into(),
                yubikey_serial: None
            }
        );
    }

    #[test]
    fn the_limits_section_defaults_are_the_settings_defaults() {
        assert_eq!(resolve(&[], &[]).unwrap().limits, LimitsConfig::default());
    }

    #[test]
    fn zero_limits_are_refused_naming_the_setting() {
        for flag in [
            "--max-connections",
            "--max-concurrent-streams",
            "--request-timeout-secs",
            "--tls-handshake-timeout-secs",
            "--tcp-keepalive-secs",
        ] {
            let error = resolve(&[flag, "0"], &[]).unwrap_err().to_string();
            assert!(
                error.contains(flag) && error.contains("at least 1"),
                "{error}"
            );
        }
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let file = toml_file(
            "store = \"/file\"\nsocket = \"/file.sock\"\nidle_lock_secs = 5\nno_keyring = true\n",
        );
        let config = resolve(
            &["--config", path_of(&file), "--socket", "/flag.sock"],
            &[("TUFKEYD_STORE", "/env"), ("TUFKEYD_SOCKET", "/env.sock")],
        )
        .unwrap();
        assert_eq!(config.listen.socket, PathBuf::from("/flag.sock"));
        assert_eq!(config.software.dir, PathBuf::from("/env"));
        assert_eq!(config.software.idle_timeout, Duration::from_secs(5));
        assert!(!config.software.use_keyring);
        assert!(!config.yubikey.unwrap().use_keyring);
    }

    #[test]
    fn switches_work_bare_and_with_a_value() {
        let config = resolve(&["--no-keyring", "--no-yubikey"], &[]).unwrap();
        assert!(!config.software.use_keyring);
        assert!(config.yubikey.is_none());

        let config = resolve(&[], &[("TUFKEYD_NO_YUBIKEY", "1")]).unwrap();
        assert!(config.yubikey.is_none());
        let config = resolve(&["--no-yubikey=false"], &[("TUFKEYD_NO_YUBIKEY", "true")]).unwrap();
        assert!(config.yubikey.is_some(), "the flag beats the environment");
    }

    #[test]
    fn lists_repeat_as_flags_and_are_comma_separated_in_the_environment() {
        let config = resolve(&["--allow-uid", "1000", "--allow-uid", "1001"], &[]).unwrap();
        assert_eq!(config.listen.allow_uids, vec![1000, 1001]);
        let config = resolve(&[], &[("TUFKEYD_ALLOW_UID", "1000, 1001")]).unwrap();
        assert_eq!(config.listen.allow_uids, vec![1000, 1001]);
    }

    #[test]
    fn a_system_service_gets_systemds_directories_and_credential() {
        let systemd = [
            ("STATE_DIRECTORY", "/var/lib/tufkey"),
            ("CREDENTIALS_DIRECTORY", "/run/credentials/tufkeyd.service"),
        ];
        let config = resolve(&["--allow-gid", "990", "--allow-gid", "991"], &systemd).unwrap();
        assert_eq!(config.software.dir, PathBuf::from("/var/lib/tufkey"));
        assert_eq!(
            config.software.secret_file,
            Some(SecretFile::Credential(PathBuf::from(
                "/run/credentials/tufkeyd.service/tufkey-secret"
            )))
        );
        assert_eq!(config.listen.allow_gids, vec![990, 991]);
        let config = resolve(&["--allow-gid", "root"], &[]).unwrap();
        assert_eq!(
            config.listen.allow_gids,
            vec![0],
            "a group name is looked up"
        );
        let error = resolve(&["--allow-gid", "no-such-group-tufkey"], &[])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--allow-gid no-such-group-tufkey: no such group"),
            "{error}"
        );
        let config = resolve(&["--secret-file", "/etc/tufkey/secret"], &systemd).unwrap();
        assert_eq!(
            config.software.secret_file,
            Some(SecretFile::Setting(PathBuf::from("/etc/tufkey/secret"))),
            "--secret-file beats the systemd credential"
        );
    }

    #[test]
    fn a_bad_environment_value_names_the_variable() {
        let error = resolve(&[], &[("TUFKEYD_IDLE_LOCK_SECS", "soon")]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("TUFKEYD_IDLE_LOCK_SECS=\"soon\""),
            "{error}"
        );
    }

    #[test]
    fn the_config_file_comes_from_the_flag_else_the_environment() {
        let from_env = toml_file("store = \"/from-env-file\"\n");
        let from_flag = toml_file("store = \"/from-flag-file\"\n");
        let env = [("TUFKEYD_CONFIG", path_of(&from_env))];
        assert_eq!(
            resolve(&[], &env).unwrap().software.dir,
            PathBuf::from("/from-env-file")
        );
        assert_eq!(
            resolve(&["--config", path_of(&from_flag)], &env)
                .unwrap()
                .software
                .dir,
            PathBuf::from("/from-flag-file")
        );
    }

    #[test]
    fn tcp_listener_comes_from_the_file_with_flags_winning() {
        let file = toml_file(
            "listen_tcp = \"127.0.0.1:7899\"\ntls_cert = \"/f/signer.crt\"\ntls_key = \"/f/signer.key\"\n\
             tls_client_ca = \"/f/ca.crt\"\ntls_allow_subject = [\"notary-server\"]\n",
        );
        let tcp = resolve(
            &["--config", path_of(&file), "--tls-cert", "/flag/signer.crt"],
            &[],
        )
        .unwrap()
        .listen
        .tcp
        .unwrap();
        assert_eq!(tcp.listen, "127.0.0.1:7899".parse().unwrap());
        assert_eq!(tcp.cert, PathBuf::from("/flag/signer.crt"));
        assert_eq!(tcp.key, PathBuf::from("/f/signer.key"));
        assert_eq!(tcp.client_ca, PathBuf::from("/f/ca.crt"));
        assert_eq!(tcp.allowed_subjects, vec!["notary-server".to_string()]);
    }

    #[test]
    fn tcp_without_tls_files_or_tls_without_tcp_is_refused() {
        let missing_ca = resolve(
            &[
                "--listen-tcp",
                "127.0.0.1:7899",
                "--tls-cert",
                "c",
                "--tls-key",
                "k",
            ],
            &[],
        )
        .unwrap_err();
        assert!(
            missing_ca.to_string().contains("--tls-client-ca"),
            "{missing_ca}"
        );
        let no_address = resolve(&["--tls-cert", "c"], &[]).unwrap_err();
        assert!(
            no_address.to_string().contains("--listen-tcp"),
            "{no_address}"
        );
        let bad_address = resolve(&["--listen-tcp", "nowhere"], &[]).unwrap_err();
        assert!(
            bad_address.to_string().contains("HOST:PORT"),
            "{bad_address}"
        );
    }

    #[test]
    fn unknown_config_keys_are_named() {
        let file = toml_file("sokcet = \"/x\"\n");
        let error = resolve(&["--config", path_of(&file)], &[]).unwrap_err();
        assert!(error.to_string().contains("sokcet"), "{error}");
    }

    #[test]
    fn old_config_keys_name_their_new_spelling() {
        for (old, new) in [
            ("keyring = false", "no_keyring = true"),
            ("yubikey = false", "no_yubikey = true"),
            ("allow_uids = [1]", "allow_uid"),
            ("tls_allowed_subjects = [\"a\"]", "tls_allow_subject"),
        ] {
            let file = toml_file(old);
            let error = resolve(&["--config", path_of(&file)], &[]).unwrap_err();
            assert!(error.to_string().contains(new), "{old}: {error}");
        }
    }

    /// The settings `tufkeyd --help` shows, `--config` included.
    fn settings_in_help() -> Vec<clap::Arg> {
        let mut command = Settings::command();
        command.build();
        command
            .get_arguments()
            .filter(|arg| {
                !arg.is_hide_set()
                    && !matches!(
                        arg.get_action(),
                        ArgAction::Help
                            | ArgAction::HelpShort
                            | ArgAction::HelpLong
                            | ArgAction::Version
                    )
            })
            .cloned()
            .collect()
    }

    fn long(arg: &clap::Arg) -> &str {
        arg.get_long().expect("every setting has a --flag")
    }

    fn env_name(arg: &clap::Arg) -> &str {
        arg.get_env()
            .and_then(|name| name.to_str())
            .unwrap_or_else(|| panic!("--{}: declare env = \"TUFKEYD_...\"", long(arg)))
    }

    fn repeatable(arg: &clap::Arg) -> bool {
        matches!(arg.get_action(), ArgAction::Append)
    }

    /// A switch: `--no-keyring` alone means true.
    fn switch(arg: &clap::Arg) -> bool {
        arg.get_num_args()
            .is_some_and(|count| count.min_values() == 0)
    }

    #[test]
    fn every_setting_is_named_by_one_rule() {
        for arg in settings_in_help() {
            let long = long(&arg);
            assert_eq!(
                env_name(&arg),
                format!("TUFKEYD_{}", long.replace('-', "_").to_uppercase()),
                "--{long}: environment variable"
            );
            assert_eq!(
                arg.get_id().as_str(),
                long.replace('-', "_"),
                "--{long}: the field (and TOML key) must be the flag's name in snake_case"
            );
            assert!(
                arg.get_help().is_some() && arg.get_long_help().is_none(),
                "--{long}: document it in one paragraph, its --help line and README description"
            );
        }
    }

    /// Two different values of a setting; the first is not its default.
    fn samples(arg: &clap::Arg) -> [&'static str; 2] {
        let value_name = arg
            .get_value_names()
            .and_then(|names| names.first())
            .map_or("", |name| name.as_str());
        match value_name {
            "PATH" | "DIR" | "FILE" => ["/first/x", "/second/x"],
            "UID" | "GROUP" => ["4242", "4343"],
            "BYTES" => ["1000", "2000"],
            "SECS" => ["11", "22"],
            "BOOL" => ["true", "false"],
            "HOST:PORT" => ["127.0.0.1:7001", "127.0.0.1:7002"],
            "CN" => ["alice", "bob"],
            "NAME" => ["yubikey", "elsewhere"],
            "SERIAL" => ["111", "222"],
            "COUNT" => ["7", "9"],
            other => panic!(
                "--{}: add two sample values for {other:?} to `samples`",
                long(arg)
            ),
        }
    }

    /// `sample` as a TOML value for `arg`'s key.
    fn toml_value(arg: &clap::Arg, sample: &str) -> String {
        let scalar = if sample.parse::<i64>().is_ok() || sample.parse::<bool>().is_ok() {
            sample.to_string()
        } else {
            format!("{sample:?}")
        };
        if repeatable(arg) {
            format!("[{scalar}]")
        } else {
            scalar
        }
    }

    /// A complete TCP listener, so the TLS settings can be set one at a time.
    const TCP_LISTENER: [(&str, &str); 4] = [
        ("listen-tcp", "127.0.0.1:7899"),
        ("tls-cert", "/base/signer.crt"),
        ("tls-key", "/base/signer.key"),
        ("tls-client-ca", "/base/ca.crt"),
    ];

    #[test]
    fn every_setting_in_help_works_from_each_source_and_flag_beats_env_beats_file() {
        let settings = settings_in_help();
        assert!(settings.len() > 10, "{} settings", settings.len());
        for arg in settings.iter().filter(|arg| long(arg) != "config") {
            let long = long(arg);
            let env_name = env_name(arg);
            let key = arg.get_id().as_str();
            let [a, b] = samples(arg);
            let base: Vec<String> = TCP_LISTENER
                .iter()
                .filter(|(flag, _)| *flag != long)
                .map(|(flag, value)| format!("--{flag}={value}"))
                .collect();
            // The resolved Config (or error), as text, from the given sources.
            let run = |flag: Option<&str>, env: Option<&str>, file: Option<&str>| {
                let mut argv = base.clone();
                argv.extend(flag.map(|value| format!("--{long}={value}")));
                let file =
                    file.map(|value| toml_file(&format!("{key} = {}\n", toml_value(arg, value))));
                argv.extend(
                    file.as_ref()
                        .map(|file| format!("--config={}", path_of(file))),
                );
                let vars: Vec<(&str, &str)> =
                    env.map(|value| (env_name, value)).into_iter().collect();
                let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                format!("{:?}", resolve(&argv, &vars))
            };
            let from_flag = run(Some(a), None, None);
            assert_ne!(
                from_flag,
                run(None, None, None),
                "--{long}={a} changes nothing"
            );
            assert_ne!(
                from_flag,
                run(Some(b), None, None),
                "--{long}: {a} and {b} resolve alike"
            );
            assert_eq!(run(None, Some(a), None), from_flag, "{env_name}={a} alone");
            assert_eq!(
                run(None, None, Some(a)),
                from_flag,
                "TOML {key} = {a} alone"
            );
            assert_eq!(
                run(Some(a), Some(b), None),
                from_flag,
                "--{long} beats {env_name}"
            );
            assert_eq!(
                run(None, Some(a), Some(b)),
                from_flag,
                "{env_name} beats TOML {key}"
            );
            assert_eq!(
                run(Some(a), Some(b), Some(b)),
                from_flag,
                "--{long} beats both"
            );
        }
    }

    /// The README's table of settings, rendered from [`Settings`].
    fn settings_table() -> String {
        let mut table = String::from(
            "| flag | environment variable | TOML key | default | what it does |\n|---|---|---|---|---|\n",
        );
        for arg in settings_in_help() {
            let long = long(&arg);
            let flag = match arg.get_value_names().and_then(|names| names.first()) {
                Some(value) if !switch(&arg) => format!("`--{long} {value}`"),
                _ => format!("`--{long}`"),
            };
            let mut env = format!("`{}`", env_name(&arg));
            let mut key = format!("`{}`", arg.get_id());
            if repeatable(&arg) {
                env.push_str(" (comma-separated)");
                key.push_str(" (list)");
            }
            if switch(&arg) {
                env = format!("`{}=true`", env_name(&arg));
                key = format!("`{} = true`", arg.get_id());
            }
            if long == "config" {
                key = "—".into();
            }
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let (what, default_in_help) = match help.split_once(" [default: ") {
                Some((what, default)) => (what.to_string(), default.strip_suffix(']')),
                None => (help.clone(), None),
            };
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|value| format!("`{}`", value.to_string_lossy()))
                .collect();
            let default = match (defaults.is_empty(), default_in_help) {
                (false, _) => defaults.join(", "),
                (true, Some(text)) => text.to_string(),
                (true, None) => "none".to_string(),
            };
            let row = [flag, env, key, default, what].map(|cell| cell.replace('|', "\\|"));
            table.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        table
    }

    #[test]
    fn readme_settings_table_is_current() {
        const START: &str = "<!-- settings-table:start -->\n";
        const END: &str = "<!-- settings-table:end -->";
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let start = readme
            .find(START)
            .expect("README.md lacks the settings-table:start marker")
            + START.len();
        let end = start
            + readme[start..]
                .find(END)
                .expect("README.md lacks the settings-table:end marker");
        let table = settings_table();
        if readme[start..end] == table {
            return;
        }
        if std::env::var_os("UPDATE_SETTINGS_TABLE").is_some() {
            std::fs::write(
                &path,
                format!("{}{table}{}", &readme[..start], &readme[end..]),
            )
            .unwrap();
            return;
        }
        panic!(
            "README.md's settings table differs from the declaration in daemon/src/config.rs.\n\
             Regenerate it: UPDATE_SETTINGS_TABLE=1 cargo test -p tufkeyd --lib readme_settings_table\n\
             It should read:\n{table}"
        );
    }
}
