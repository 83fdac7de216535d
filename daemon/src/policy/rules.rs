//! The policy as written (TOML) and as evaluated ([`Rules`], [`Grant`]).
//!
//! A policy is a list of grants; each names one identity, the permissions it gets,
//! and optionally which keys they reach (GUN and role patterns, key IDs). Parsing
//! keeps each grant's line so that every decision can name the rule that made it,
//! and every mistake is reported at its line.

use crate::access::{Caller, Permission};
use crate::keys::{KeyRecord, Role};
use serde::Deserialize;

/// Every permission, for parsing and messages.
pub const PERMISSIONS: [Permission; 7] = [
    Permission::Sign,
    Permission::KeysRead,
    Permission::KeysAdmin,
    Permission::Session,
    Permission::DevicesAdmin,
    Permission::Transfer,
    Permission::Notary,
];

/// The permission called `name` in a policy.
pub fn permission_named(name: &str) -> Option<Permission> {
    PERMISSIONS
        .into_iter()
        .find(|permission| permission.as_str() == name)
}

/// Who a grant is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A Unix-socket peer with this uid.
    Uid(u32),
    /// A Unix-socket peer in this group: its primary gid (SO_PEERCRED) is this, or
    /// its uid is one of the group's members in the group database (the uids, read
    /// when the policy is loaded).
    Gid(u32, Vec<u32>),
    /// A TLS client whose certificate subject CN is this.
    CertCn(String),
    /// A TLS client whose certificate has this DNS or URI subject alternative name.
    CertSan(String),
    /// A TLS client whose certificate's SubjectPublicKeyInfo hashes to this (hex).
    CertSpki(String),
}

impl Identity {
    /// Whether `caller` is this identity.
    pub fn matches(&self, caller: &Caller) -> bool {
        match (self, caller) {
            (Identity::Uid(want), Caller::Unix { uid, .. }) => want == uid,
            (Identity::Gid(want, members), Caller::Unix { uid, gid, .. }) => {
                want == gid || members.contains(uid)
            }
            (Identity::CertCn(want), Caller::Tls { common_name, .. }) => {
                common_name.as_deref() == Some(want)
            }
            (Identity::CertSan(want), Caller::Tls { sans, .. }) => sans.contains(want),
            (Identity::CertSpki(want), Caller::Tls { spki_sha256, .. }) => {
                spki_sha256.eq_ignore_ascii_case(want)
            }
            _ => false,
        }
    }

    /// The group `gid`, its supplementary members looked up now. Only the group
    /// database is asked, never `/proc/<pid>/status`: a pid may be reused by the time
    /// it is read, a uid's membership cannot be faked by the caller.
    pub fn group(gid: u32) -> Identity {
        use nix::unistd::{Gid, Group, User};
        let members = match Group::from_gid(Gid::from_raw(gid)) {
            Ok(Some(group)) => group
                .mem
                .iter()
                .filter_map(|name| match User::from_name(name) {
                    Ok(Some(user)) => Some(user.uid.as_raw()),
                    _ => {
                        tracing::warn!(gid, member = %name, "a member of the group has no passwd entry; ignored");
                        None
                    }
                })
                .collect(),
            _ => Vec::new(),
        };
        Identity::Gid(gid, members)
    }

    /// Whether this names a TLS client (`--listen-tcp` needs at least one).
    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            Identity::CertCn(_) | Identity::CertSan(_) | Identity::CertSpki(_)
        )
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Uid(uid) => write!(f, "uid = {uid}"),
            Identity::Gid(gid, _) => write!(f, "gid = {gid}"),
            Identity::CertCn(name) => write!(f, "cert_cn = {name:?}"),
            Identity::CertSan(name) => write!(f, "cert_san = {name:?}"),
            Identity::CertSpki(hash) => write!(f, "cert_spki_sha256 = {hash:?}"),
        }
    }
}

/// One grant: an identity, its permissions, and the keys they reach.
#[derive(Clone, Debug)]
pub struct Grant {
    /// Where it was written, for decisions: `policy.toml line 7`, `--allow-uid 1000`.
    pub origin: String,
    pub identity: Identity,
    pub permissions: Vec<Permission>,
    /// GUN patterns (`*` matches any run of characters, `/` included); `None`: any.
    pub guns: Option<Vec<String>>,
    /// Role patterns; `None`: any role but root.
    pub roles: Option<Vec<String>>,
    /// TUF or Notary key IDs; `None`: any key the patterns allow.
    pub keys: Option<Vec<String>>,
    /// The daemon's owners (`--allow-uid`): everything, root keys included, except
    /// that the Notary API still reaches only its own keys.
    pub owner: bool,
}

/// How a grant applies to one request.
pub enum Scope {
    /// It allows the request.
    Allows,
    /// It gives the permission but not for this key; why.
    Excludes(String),
}

impl Grant {
    /// Whether this grant lets its identity do `permission` to `key` (any key
    /// when `None`); `notary_created` says whether the Notary API created `key`.
    pub fn scope(
        &self,
        permission: Permission,
        key: Option<&KeyRecord>,
        notary_created: bool,
    ) -> Scope {
        let Some(key) = key else {
            return Scope::Allows;
        };
        let named = self.keys.as_ref().is_some_and(|keys| {
            keys.iter().any(|id| {
                id.eq_ignore_ascii_case(&key.keyid) || id.eq_ignore_ascii_case(&key.notary_keyid)
            })
        });
        if self.keys.is_some() && !named {
            return Scope::Excludes(format!(
                "key {} is not among the key IDs it lists",
                key.keyid
            ));
        }
        if let Some(guns) = &self.guns {
            if !guns.iter().any(|pattern| glob(pattern, key.gun.as_str())) {
                return Scope::Excludes(format!(
                    "key {} belongs to GUN {}, which none of its guns {guns:?} matches",
                    key.keyid, key.gun
                ));
            }
        }
        if let Some(roles) = &self.roles {
            if !roles.iter().any(|pattern| glob(pattern, key.role.as_str())) {
                return Scope::Excludes(format!(
                    "key {} has role {}, which none of its roles {roles:?} matches",
                    key.keyid, key.role
                ));
            }
        }
        let names_root = self
            .roles
            .as_ref()
            .is_some_and(|roles| roles.iter().any(|role| role == "root"));
        let root_allowed = named || names_root || (self.owner && permission != Permission::Notary);
        if key.role == Role::Root && !root_allowed {
            return Scope::Excludes(format!(
                "key {} is a root key, which only a grant naming it reaches (its key ID in keys, \
                 or roles = [\"root\"])",
                key.keyid
            ));
        }
        if permission == Permission::Notary && !named && !notary_created {
            return Scope::Excludes(format!(
                "key {} was not created through the Notary API, which reaches only its own keys \
                 unless a grant lists the key ID",
                key.keyid
            ));
        }
        Scope::Allows
    }
}

/// `pattern` with `*` matching any run of characters (including `/` and none).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and how much of `text` it has swallowed so far.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A whole policy, ready to evaluate.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// Where it came from (a file, or "no policy").
    pub origin: String,
    pub grants: Vec<Grant>,
}

impl Rules {
    /// Whether any grant names a TLS client.
    pub fn names_a_tls_identity(&self) -> bool {
        self.grants.iter().any(|grant| grant.identity.is_tls())
    }
}

/// A policy as TOML: `[[grant]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    #[serde(default)]
    grant: Vec<toml::Spanned<GrantEntry>>,
}

/// One `[[grant]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantEntry {
    uid: Option<u32>,
    gid: Option<u32>,
    cert_cn: Option<String>,
    cert_san: Option<String>,
    cert_spki_sha256: Option<String>,
    permissions: Vec<String>,
    guns: Option<Vec<String>>,
    roles: Option<Vec<String>>,
    keys: Option<Vec<String>>,
}

impl PolicyDocument {
    /// The grants, checked; `text` is the TOML it was read from (for line numbers)
    /// and `origin` names the file. An error names the line and the fix.
    pub fn into_grants(self, text: &str, origin: &str) -> Result<Vec<Grant>, String> {
        self.grant
            .into_iter()
            .map(|spanned| {
                let line = line_of(text, spanned.span().start);
                let at = format!("{origin} line {line}");
                spanned
                    .into_inner()
                    .into_grant(at.clone())
                    .map_err(|reason| format!("{at}: {reason}"))
            })
            .collect()
    }
}

impl GrantEntry {
    fn into_grant(self, origin: String) -> Result<Grant, String> {
        let mut identities = Vec::new();
        identities.extend(self.uid.map(Identity::Uid));
        identities.extend(self.gid.map(Identity::group));
        identities.extend(self.cert_cn.map(Identity::CertCn));
        identities.extend(self.cert_san.map(Identity::CertSan));
        if let Some(hash) = self.cert_spki_sha256 {
            let hash = hash.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "cert_spki_sha256 = {hash:?} is not 64 hex digits (openssl x509 -pubkey -noout \
                     -in CERT | openssl pkey -pubin -outform DER | sha256sum)"
                ));
            }
            identities.push(Identity::CertSpki(hash));
        }
        let identity = match <[Identity; 1]>::try_from(identities) {
            Ok([identity]) => identity,
            Err(identities) => {
                return Err(format!(
                    "a grant names exactly one of uid, gid, cert_cn, cert_san, cert_spki_sha256 \
                     (this one names {}); write one [[grant]] per identity",
                    identities.len()
                ))
            }
        };
        if self.permissions.is_empty() {
            return Err("permissions is empty: list what the identity may do".into());
        }
        let permissions = self
            .permissions
            .iter()
            .map(|name| {
                permission_named(name).ok_or_else(|| {
                    format!(
                        "unknown permission {name:?} (one of {})",
                        PERMISSIONS.map(Permission::as_str).join(", ")
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (field, patterns) in [
            ("guns", &self.guns),
            ("roles", &self.roles),
            ("keys", &self.keys),
        ] {
            if patterns.as_ref().is_some_and(Vec::is_empty) {
                return Err(format!(
                    "{field} = [] reaches nothing: leave it out to mean any, or list some"
                ));
            }
        }
        Ok(Grant {
            origin,
            identity,
            permissions,
            guns: self.guns,
            roles: self.roles,
            keys: self.keys,
            owner: false,
        })
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names_with_star_spanning_slashes() {
        assert!(glob("docker.io/acme/*", "docker.io/acme/app"));
        assert!(glob("docker.io/acme/*", "docker.io/acme/app/sub"));
        assert!(!glob("docker.io/acme/*", "docker.io/acme"));
        assert!(!glob("docker.io/acme/*", "docker.io/other/app"));
        assert!(glob("*", "anything"));
        assert!(glob("targets/*", "targets/releases"));
        assert!(!glob("targets", "targets/releases"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(glob("*app", "docker.io/acme/app"));
        assert!(!glob("docker.io/acme/app", "docker.io/acme/apps"));
    }

    fn parse(text: &str) -> Result<Vec<Grant>, String> {
        toml::from_str::<PolicyDocument>(text)
            .map_err(|error| error.to_string())?
            .into_grants(text, "p.toml")
    }

    #[test]
    fn grants_parse_with_their_lines() {
        let grants = parse(
            "# notary-server\n[[grant]]\ncert_cn = \"notary-server\"\npermissions = [\"notary\"]\n\n\
             [[grant]]\nuid = 1001\npermissions = [\"sign\", \"keys_read\"]\nroles = [\"targets\"]\n",
        )
        .unwrap();
        assert_eq!(grants.len(), 2);
        assert_eq!(grants[0].origin, "p.toml line 2");
        assert_eq!(grants[0].identity, Identity::CertCn("notary-server".into()));
        assert_eq!(grants[1].origin, "p.toml line 6");
        assert_eq!(
            grants[1].permissions,
            [Permission::Sign, Permission::KeysRead]
        );
        assert_eq!(
            grants[1].roles.as_deref(),
            Some(&["targets".to_string()][..])
        );
    }

    #[test]
    fn mistakes_are_named_at_their_line() {
        let cases = [
            (
                "[[grant]]\nuid = 1\npermissions = [\"sgin\"]\n",
                "p.toml line 1: unknown permission \"sgin\"",
            ),
            (
                "\n[[grant]]\nuid = 1\ncert_cn = \"x\"\npermissions = [\"sign\"]\n",
                "p.toml line 2: a grant names exactly one of",
            ),
            (
                "[[grant]]\npermissions = [\"sign\"]\n",
                "(this one names 0)",
            ),
            (
                "[[grant]]\nuid = 1\npermissions = []\n",
                "permissions is empty",
            ),
            (
                "[[grant]]\nuid = 1\npermissions = [\"sign\"]\nguns = []\n",
                "guns = [] reaches nothing",
            ),
            (
                "[[grant]]\ncert_spki_sha256 = \"abc\"\npermissions = [\"notary\"]\n",
                "not 64 hex digits",
            ),
            ("[[grant]]\nuid = 1\npermisions = [\"sign\"]\n", "line 3"),
            (
                "[[grant]]\nuid = \"me\"\npermissions = [\"sign\"]\n",
                "line 2",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }
}
