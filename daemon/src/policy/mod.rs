//! Who may do what: the daemon's access policy, the one implementation of
//! [`Authorize`].
//!
//! A policy grants identities (a uid or primary gid on the Unix socket; a TLS client
//! by certificate CN, SAN or public key) permissions, optionally only for some keys
//! (GUN and role patterns, key IDs). Without one, the defaults are safe:
//! - the daemon's owners (`--allow-uid`, by default the daemon's own uid) may do
//!   everything on the Unix socket; members of `--allow-gid` groups (system mode's
//!   clients) may sign and read keys, root keys excepted;
//! - nobody else gets anything, TLS clients included; `--tls-allow-subject CN` is
//!   shorthand for a grant of `notary` to that CN, and `--listen-tcp` refuses to start
//!   unless some TLS client is named, so an open TCP listener is never an accident;
//! - the Notary API reaches only keys it created (recorded in [`NotaryKeys`]) or
//!   that a grant lists by key ID, and never a root key unless a grant names it;
//! - a grant's patterns never reach a root key: only `roles = ["root"]` or the key
//!   ID does (owners excepted, outside the Notary API).
//!
//! The policy is TOML, in its own file (`--policy FILE`) or as `[policy]` in the
//! `--config` file, and is read again on SIGHUP: a policy that does not parse (or
//! would leave the TCP listener without a client) keeps the old one and says why.

mod notary_keys;
mod rpcs;
mod rules;
mod service;

pub use notary_keys::{NotaryKeys, FILE_NAME as NOTARY_KEYS_FILE};
pub use rpcs::{resolve as resolve_rpc, RPCS};
pub use service::PolicyService;

use crate::access::{Authorize, Caller, Permission};
use crate::config::ListenConfig;
use crate::error::{Denial, Error, Result};
use crate::keys::KeyRecord;
use crate::shutdown::Stopping;
use crate::transport::identity;
use rules::{Grant, Identity, PolicyDocument, Rules, Scope, PERMISSIONS};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// Where the policy is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySource {
    /// Its own file (`--policy FILE`): `[[grant]]` tables.
    File(PathBuf),
    /// The `[policy]` table of this `--config` file: `[[policy.grant]]` tables.
    ConfigFile(PathBuf),
}

/// What the policy is built from, besides the listeners.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyConfig {
    /// `None`: the defaults alone.
    pub source: Option<PolicySource>,
    /// Where the Notary API's keys are recorded; `None` keeps the record in memory
    /// (an embedded server without a store directory).
    pub notary_keys: Option<PathBuf>,
}

/// A decision and what made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The grant that allowed it (`policy.toml line 7: cert_cn = "x" ...`), or for a
    /// denial the grants that came closest.
    pub rule: String,
    /// Why, in a sentence.
    pub reason: String,
}

/// The loaded policy; [`Policy::reload`] swaps in a new one atomically.
pub struct Policy {
    source: Option<PolicySource>,
    /// Built-in grants: `--allow-uid` owners and `--tls-allow-subject` CNs.
    builtin: Vec<Grant>,
    /// Whether a TCP listener runs, so some TLS client must be named.
    tcp: bool,
    rules: RwLock<Arc<Rules>>,
    notary_keys: Arc<NotaryKeys>,
}

impl Policy {
    /// Reads the policy (and the Notary key list) for a daemon listening as
    /// `listen` says. Refuses a policy that does not parse, naming its line, and a TCP
    /// listener without any TLS client named.
    pub fn load(config: &PolicyConfig, listen: &ListenConfig) -> Result<Self> {
        let mut builtin: Vec<Grant> = listen
            .allow_uids
            .iter()
            .map(|&uid| Grant {
                origin: format!(
                    "--allow-uid {uid} (the daemon's owners may do everything on the Unix socket)"
                ),
                identity: Identity::Uid(uid),
                permissions: PERMISSIONS.to_vec(),
                guns: None,
                roles: None,
                keys: None,
                owner: true,
            })
            .collect();
        // System mode's clients: they sign and read keys, nothing more, and like any
        // grant not with a root key; administration stays with the owners.
        builtin.extend(listen.allow_gids.iter().map(|&gid| Grant {
            origin: format!(
                "--allow-gid {gid} (members may sign and read keys on the Unix socket, \
                 root keys excepted)"
            ),
            identity: Identity::group(gid),
            permissions: vec![Permission::Sign, Permission::KeysRead],
            guns: None,
            roles: None,
            keys: None,
            owner: false,
        }));
        if let Some(tcp) = &listen.tcp {
            builtin.extend(tcp.allowed_subjects.iter().map(|name| Grant {
                origin: format!("--tls-allow-subject {name} (grants notary)"),
                identity: Identity::CertCn(name.clone()),
                permissions: vec![Permission::Notary],
                guns: None,
                roles: None,
                keys: None,
                owner: false,
            }));
        }
        let policy = Policy {
            source: config.source.clone(),
            builtin,
            tcp: listen.tcp.is_some(),
            rules: RwLock::new(Arc::new(Rules::default())),
            notary_keys: Arc::new(NotaryKeys::load(config.notary_keys.clone())?),
        };
        let rules = policy.read_rules()?;
        tracing::info!(policy = %rules.origin, grants = rules.grants.len(), "access policy loaded");
        policy.install(rules);
        Ok(policy)
    }

    /// The record of the Notary API's keys, which its handlers keep current.
    pub fn notary_keys(&self) -> &Arc<NotaryKeys> {
        &self.notary_keys
    }

    /// Reads the policy again. On any error the old policy stays in force.
    pub fn reload(&self) -> Result<()> {
        let rules = self.read_rules()?;
        tracing::info!(policy = %rules.origin, grants = rules.grants.len(), "access policy reloaded");
        self.install(rules);
        Ok(())
    }

    /// Reloads the policy on every SIGHUP until `stopping` fires. The handler is
    /// installed before this returns, so a SIGHUP right after start cannot kill the
    /// daemon; spawn the future it returns.
    pub fn reload_on_sighup(
        self: Arc<Self>,
        mut stopping: Stopping,
    ) -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = signal(SignalKind::hangup()).map_err(|error| {
            Error::Config(format!("cannot watch SIGHUP to reload the policy: {error}"))
        })?;
        Ok(async move {
            loop {
                tokio::select! {
                    () = stopping.stopped() => return,
                    received = hangups.recv() => {
                        if received.is_none() {
                            return;
                        }
                        if let Err(error) = self.reload() {
                            tracing::error!(%error, "SIGHUP: the policy was not reloaded; the previous policy stays in force");
                        }
                    }
                }
            }
        })
    }

    /// What the policy decides for `caller` doing `permission` (to `key`).
    pub fn decide(
        &self,
        caller: &Caller,
        permission: Permission,
        key: Option<&KeyRecord>,
    ) -> Decision {
        let rules = self.current();
        let notary_created = key.is_some_and(|key| self.notary_keys.contains(&key.keyid));
        let mut excluded = Vec::new();
        let mut granted_elsewhere = false;
        for grant in self.builtin.iter().chain(&rules.grants) {
            if !grant.identity.matches(caller) {
                continue;
            }
            if !grant.permissions.contains(&permission) {
                granted_elsewhere = true;
                continue;
            }
            match grant.scope(permission, key, notary_created) {
                Scope::Allows => {
                    return Decision {
                        allowed: true,
                        rule: describe(grant),
                        reason: format!(
                            "{} grants {} `{}`{}",
                            grant.origin,
                            identity::short_name(caller),
                            permission.as_str(),
                            on_key(key)
                        ),
                    }
                }
                Scope::Excludes(why) => excluded.push((grant, why)),
            }
        }
        let who = identity::short_name(caller);
        let (rule, reason) = match excluded.first() {
            Some((grant, why)) => (
                describe(grant),
                format!(
                    "{} gives {who} `{}` but not for this key: {why}",
                    grant.origin,
                    permission.as_str()
                ),
            ),
            None => (
                format!(
                    "no grant for {who} includes `{}` ({})",
                    permission.as_str(),
                    rules.origin
                ),
                format!(
                    "no grant gives {who} `{}`{}; add one to the policy, e.g. [[grant]] {} \
                     permissions = [\"{}\"]",
                    permission.as_str(),
                    if granted_elsewhere {
                        " (its grants give other permissions)"
                    } else {
                        ""
                    },
                    suggested_identity(caller),
                    permission.as_str()
                ),
            ),
        };
        Decision {
            allowed: false,
            rule,
            reason,
        }
    }

    fn current(&self) -> Arc<Rules> {
        match self.rules.read() {
            Ok(rules) => rules.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn install(&self, rules: Rules) {
        match self.rules.write() {
            Ok(mut current) => *current = Arc::new(rules),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(rules),
        }
    }

    /// The policy from its source, checked against the listeners.
    fn read_rules(&self) -> Result<Rules> {
        let rules = match &self.source {
            None => Rules {
                origin: "no policy (defaults)".into(),
                grants: Vec::new(),
            },
            Some(PolicySource::File(path)) => {
                let text = read(path)?;
                let origin = path.display().to_string();
                let document: PolicyDocument = toml::from_str(&text)
                    .map_err(|error| bad_policy(&origin, &error.to_string()))?;
                Rules {
                    grants: document
                        .into_grants(&text, &origin)
                        .map_err(|reason| bad_policy(&origin, &reason))?,
                    origin,
                }
            }
            Some(PolicySource::ConfigFile(path)) => {
                /// The config file, read for its `[policy]` alone.
                #[derive(Deserialize)]
                struct WithPolicy {
                    policy: PolicyDocument,
                }
                let text = read(path)?;
                let origin = path.display().to_string();
                let document: WithPolicy = toml::from_str(&text)
                    .map_err(|error| bad_policy(&origin, &error.to_string()))?;
                Rules {
                    grants: document
                        .policy
                        .into_grants(&text, &origin)
                        .map_err(|reason| bad_policy(&origin, &reason))?,
                    origin: format!("[policy] in {origin}"),
                }
            }
        };
        let names_tls = rules.names_a_tls_identity()
            || self.builtin.iter().any(|grant| grant.identity.is_tls());
        if self.tcp && !names_tls {
            return Err(Error::Config(format!(
                "--listen-tcp serves TLS clients, but {} names none, so none could do anything; \
                 name the ones you trust in a policy file passed with --policy FILE, e.g.\n  \
                 [[grant]]\n  cert_cn = \"notary-server\"\n  permissions = [\"notary\"]\n\
                 (or pass --tls-allow-subject notary-server, which grants exactly that)",
                rules.origin
            )));
        }
        Ok(rules)
    }
}

impl Authorize for Policy {
    fn authorize(
        &self,
        caller: &Caller,
        permission: Permission,
        key: Option<&KeyRecord>,
    ) -> Result<()> {
        let decision = self.decide(caller, permission, key);
        if decision.allowed {
            return Ok(());
        }
        Err(Error::PermissionDenied(Box::new(Denial {
            caller: identity::short_name(caller),
            permission: permission.as_str(),
            key: key.map(|key| key.keyid.clone()),
            reason: decision.reason,
            details: caller.to_string(),
        })))
    }
}

fn read(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(Error::io("reading the policy", path))
}

fn bad_policy(origin: &str, reason: &str) -> Error {
    Error::Config(format!("policy {origin}: {reason}"))
}

/// A grant as one line: where it is, who, what and for which keys.
fn describe(grant: &Grant) -> String {
    let mut text = format!(
        "{}: {} permissions = [{}]",
        grant.origin,
        grant.identity,
        grant
            .permissions
            .iter()
            .map(|permission| format!("\"{}\"", permission.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (field, values) in [
        ("guns", &grant.guns),
        ("roles", &grant.roles),
        ("keys", &grant.keys),
    ] {
        if let Some(values) = values {
            text.push_str(&format!(" {field} = {values:?}"));
        }
    }
    text
}

fn on_key(key: Option<&KeyRecord>) -> String {
    key.map(|key| format!(" on key {} ({} {})", key.keyid, key.gun, key.role))
        .unwrap_or_default()
}

/// How a grant for `caller` would name it.
fn suggested_identity(caller: &Caller) -> String {
    match caller {
        Caller::Unix { uid, .. } => format!("uid = {uid}"),
        Caller::Tls {
            common_name: Some(name),
            ..
        } => format!("cert_cn = {name:?}"),
        Caller::Tls { spki_sha256, .. } => format!("cert_spki_sha256 = {spki_sha256:?}"),
    }
}

#[cfg(test)]
mod tests;
