//! Validated names: the collection a key belongs to ([`Gun`]) and its TUF [`Role`].

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// A Globally Unique Name of a collection, e.g. `docker.io/acme/app`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gun(String);

impl Gun {
    /// The GUN as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Gun {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = |reason: &str| Error::invalid("gun", format!("{text:?}: {reason}"));
        if text.is_empty() {
            return Err(bad("must not be empty"));
        }
        if text.len() > 255 {
            return Err(bad("longer than 255 bytes"));
        }
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("contains whitespace or control characters"));
        }
        if text.starts_with('/') || text.ends_with('/') {
            return Err(bad("must not start or end with '/'"));
        }
        if text
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(bad("has an empty, '.' or '..' path segment"));
        }
        Ok(Gun(text.to_owned()))
    }
}

impl fmt::Display for Gun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A TUF role. Delegations are `targets/<name>` (names may nest: `targets/a/b`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Root,
    Targets,
    Snapshot,
    Timestamp,
    /// The full delegated role name, including the `targets/` prefix.
    Delegation(String),
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "root" => Ok(Role::Root),
            "targets" => Ok(Role::Targets),
            "snapshot" => Ok(Role::Snapshot),
            "timestamp" => Ok(Role::Timestamp),
            _ => {
                let name = text.strip_prefix("targets/").ok_or_else(|| {
                    Error::invalid(
                        "role",
                        format!("{text:?}: expected root, targets, snapshot, timestamp or targets/<delegation>"),
                    )
                })?;
                let valid_segment = |segment: &str| {
                    !segment.is_empty()
                        && segment != "."
                        && segment != ".."
                        && segment
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                };
                if name.split('/').all(valid_segment) {
                    Ok(Role::Delegation(text.to_owned()))
                } else {
                    Err(Error::invalid(
                        "role",
                        format!("{text:?}: delegation names use letters, digits, '-', '_', '.' and '/' between segments"),
                    ))
                }
            }
        }
    }
}

impl Role {
    /// The role's name as TUF and Notary write it.
    pub fn as_str(&self) -> &str {
        match self {
            Role::Root => "root",
            Role::Targets => "targets",
            Role::Snapshot => "snapshot",
            Role::Timestamp => "timestamp",
            Role::Delegation(name) => name,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print_back() {
        for name in [
            "root",
            "targets",
            "snapshot",
            "timestamp",
            "targets/releases",
            "targets/a/b-1",
        ] {
            assert_eq!(name.parse::<Role>().unwrap().as_str(), name);
        }
    }

    #[test]
    fn bad_roles_are_rejected_with_the_name() {
        for name in ["", "admin", "targets/", "targets/../x", "targets/a b"] {
            let error = name.parse::<Role>().unwrap_err().to_string();
            assert!(error.contains("invalid role"), "{error}");
        }
    }

    #[test]
    fn guns_are_validated() {
        assert!("docker.io/acme/app".parse::<Gun>().is_ok());
        for bad in ["", "/abs", "a//b", "a/../b", "has space", "trailing/"] {
            assert!(bad.parse::<Gun>().is_err(), "{bad:?} accepted");
        }
    }
}
