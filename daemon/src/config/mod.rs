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
use crate::backend::software::postgres::PostgresConfig;
use crate::backend::software::{SecretFile, SoftwareConfig};
use crate::backend::yubikey::YubiKeyConfig;
use crate::error::{Error, Result};
use crate::policy::PolicySource;
use clap::{ArgMatches, Parser};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tufkey_proto::paths;

mod manual;
mod sources;
mod values;

use sources::{clap_message, defaults, parser, read_file, Layer};
use values::{
    at_least_one, default_store_dir, defaulted, policy_file, resolve_policy, resolve_postgres,
    resolve_tcp, seconds, GroupSetting,
};

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

    /// Keep the keystore's keys in PostgreSQL instead of STORE/keys, shared by replicas
    /// (same sealing and unlock: give every replica the same --secret-file; --store still
    /// holds local state): postgres://USER@HOST:PORT/DB, with no password in it
    #[arg(long, env = "TUFKEYD_POSTGRES_URL", value_name = "URL")]
    postgres_url: Option<String>,

    /// File holding the --postgres-url database password, mode 0600 and owned by the
    /// daemon's user [default: TUFKEYD_POSTGRES_PASSWORD, taken out of the environment at
    /// start]
    #[arg(long, env = "TUFKEYD_POSTGRES_PASSWORD_FILE", value_name = "FILE")]
    postgres_password_file: Option<PathBuf>,

    /// PEM CA certificate(s) that issued the database's TLS certificate: TLS to
    /// --postgres-url is then required and verified
    #[arg(long, env = "TUFKEYD_POSTGRES_CA", value_name = "FILE")]
    postgres_ca: Option<PathBuf>,

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

    /// Largest request in bytes to the Migration service (backup bundles, Docker /
    /// Notary key files being imported)
    #[arg(
        long,
        env = "TUFKEYD_MAX_MIGRATION_MESSAGE_BYTES",
        value_name = "BYTES",
        default_value = "8388608"
    )]
    max_migration_message_bytes: Option<usize>,

    /// How long a receiving identity from `tufkey transfer receive` lives (it lives
    /// only in memory and is forgotten once used)
    #[arg(
        long,
        env = "TUFKEYD_TRANSFER_TTL_SECS",
        value_name = "SECS",
        default_value = "900"
    )]
    transfer_ttl_secs: Option<u64>,

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
    /// (the chain continues in the next file; records synced together stay in one file)
    #[arg(
        long,
        env = "TUFKEYD_AUDIT_MAX_BYTES",
        value_name = "BYTES",
        default_value = "16777216"
    )]
    audit_max_bytes: Option<u64>,
}

/// tufkeyd's command line, parsed; [`Config::resolve`] merges it with the
/// environment and the TOML file.
#[derive(Debug)]
pub struct Args(ArgMatches);

impl Args {
    /// The process's arguments. `--help`, `--version` and usage errors print and
    /// exit here, as in any clap program, and so do the hidden `--print-completions
    /// SHELL` and `--print-man`.
    pub fn parse() -> Self {
        let matches = manual::with_generators(parser()).get_matches();
        manual::print_if_asked(&matches);
        Args(matches)
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
    /// `Some` with `--postgres-url`: the software keystore's keys are in PostgreSQL.
    pub postgres: Option<PostgresConfig>,
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
    /// Largest request to the Migration service.
    pub max_migration_message_bytes: usize,
    /// Lifetime of a receiving identity for a transfer.
    pub transfer_ttl: Duration,
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
            max_migration_message_bytes: 8 * 1024 * 1024,
            transfer_ttl: Duration::from_secs(900),
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
        let postgres = resolve_postgres(
            settings.postgres_url,
            settings.postgres_password_file,
            settings.postgres_ca,
        )?;
        Ok(Config {
            postgres,
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
                // Not a setting: `tufkeyd`'s main takes it out of the environment
                // before the configuration is read (daemon/src/hardening.rs).
                environment_passphrase: None,
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
                max_migration_message_bytes: defaulted(
                    settings.max_migration_message_bytes,
                    "max_migration_message_bytes",
                )?,
                transfer_ttl: seconds(
                    defaulted(settings.transfer_ttl_secs, "transfer_ttl_secs")?,
                    "--transfer-ttl-secs",
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

#[cfg(test)]
mod tests;
