//! Checking and converting single setting values into what the daemon uses:
//! counts and timeouts that may not be zero, the all-or-nothing TCP listener, the
//! policy as a file or inline tables, group names, and the default store directory.

use super::TcpListenerConfig;
use crate::backend::software::postgres::PostgresConfig;
use crate::backend::software::SoftwareError;
use crate::error::{Error, Result};
use crate::policy::PolicySource;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// A group as a setting names it: a GID, or a name looked up when the daemon
/// starts (so a unit file can say `--allow-gid tufkey-clients` whatever GID
/// sysusers picked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum GroupSetting {
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
    pub(super) fn resolve(&self) -> Result<u32> {
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

/// A setting clap always fills in from its `default_value`.
pub(super) fn defaulted<T>(value: Option<T>, key: &str) -> Result<T> {
    value.ok_or_else(|| {
        Error::Config(format!(
            "setting {key} has no value: give it a default_value in tufkeyd's config::Settings"
        ))
    })
}

/// A count limit of 0 would refuse everything: name the setting instead.
pub(super) fn at_least_one<T: PartialEq + Default>(value: T, flag: &str) -> Result<T> {
    if value == T::default() {
        return Err(Error::Config(format!(
            "{flag} 0 would refuse every caller: give at least 1"
        )));
    }
    Ok(value)
}

/// A timeout of 0 seconds would cut everything off: name the setting instead.
pub(super) fn seconds(value: u64, flag: &str) -> Result<Duration> {
    at_least_one(value, flag).map(Duration::from_secs)
}

/// The TCP listener is all or nothing: an address needs every TLS file, and TLS
/// settings without an address are a mistake worth naming.
pub(super) fn resolve_tcp(
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

/// The keystore in PostgreSQL: a URL (without a password), and the password file and
/// CA only with one.
pub(super) fn resolve_postgres(
    url: Option<String>,
    password_file: Option<PathBuf>,
    ca: Option<PathBuf>,
) -> Result<Option<PostgresConfig>> {
    let Some(url) = url else {
        for (flag, path) in [
            ("--postgres-password-file", &password_file),
            ("--postgres-ca", &ca),
        ] {
            if let Some(path) = path {
                return Err(Error::Config(format!(
                    "{flag} {} given without --postgres-url (postgres_url): add the database's URL, or drop {flag}",
                    path.display()
                )));
            }
        }
        return Ok(None);
    };
    PostgresConfig::new(url, password_file, ca)
        .map(Some)
        .map_err(|error| SoftwareError::from(error).into())
}

/// `--policy FILE` as the TOML value the `policy` key holds when it names a file.
pub(super) fn policy_file(text: &str) -> std::result::Result<toml::Value, String> {
    if text.is_empty() {
        return Err("empty: name a policy file".into());
    }
    Ok(toml::Value::String(text.to_owned()))
}

/// The `policy` setting: a file path (flag, environment or TOML string), or a
/// `[policy]` table, which only the `--config` file can hold.
pub(super) fn resolve_policy(
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
pub(super) fn default_store_dir(env: &dyn Fn(&str) -> Option<OsString>) -> Result<PathBuf> {
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
