//! Collection names (GUNs) and image references, checked before anything is sent.
//!
//! Docker names a collection after the fully qualified repository: `acme/app`
//! becomes `docker.io/acme/app`, `alpine` becomes `docker.io/library/alpine`, and a
//! name whose first part has a `.` or `:` or is `localhost` keeps its registry
//! (`localhost:5000/acme/app`). A tag is Docker's `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.

use super::error::DctError;
use std::fmt;

/// A collection name as Docker derives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gun(String);

impl Gun {
    /// Checks `text` and qualifies it as Docker does.
    pub fn parse(text: &str) -> Result<Gun, DctError> {
        let bad = |why: &str| DctError::Usage(format!("{text:?} is not a repository name: {why}"));
        if text.is_empty() || text.len() > 255 {
            return Err(bad("it must have 1 to 255 characters"));
        }
        let parts: Vec<&str> = text.split('/').collect();
        let host_given = parts.len() > 1
            && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost");
        let path = if host_given { &parts[1..] } else { &parts[..] };
        for part in path {
            let allowed = !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && part
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric());
            if !allowed {
                return Err(bad("each path part is lowercase letters, digits and . _ -, starting with a letter or digit"));
            }
        }
        if host_given
            && !parts[0]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        {
            return Err(bad(
                "the registry host has characters a host name cannot have",
            ));
        }
        let qualified = match (host_given, path.len()) {
            (true, _) => text.to_owned(),
            (false, 1) => format!("docker.io/library/{text}"),
            (false, _) => format!("docker.io/{text}"),
        };
        Ok(Gun(qualified))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The registry host and the repository path within it.
    pub fn registry_and_repository(&self) -> (&str, &str) {
        self.0.split_once('/').unwrap_or(("docker.io", &self.0))
    }
}

impl fmt::Display for Gun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `GUN:TAG`.
#[derive(Clone, Debug, PartialEq)]
pub struct TaggedName {
    pub gun: Gun,
    pub tag: String,
}

impl TaggedName {
    pub fn parse(text: &str) -> Result<TaggedName, DctError> {
        let (name, tag) = match split_tag(text) {
            (name, Some(tag)) => (name, tag),
            (_, None) => {
                return Err(DctError::Usage(format!(
                    "{text:?} names no tag: write REPOSITORY:TAG, e.g. docker.io/acme/app:v1"
                )))
            }
        };
        Ok(TaggedName {
            gun: Gun::parse(name)?,
            tag: check_tag(tag)?.to_owned(),
        })
    }
}

/// `NAME:TAG` split at a colon after the last `/` (the one of a registry port is
/// not a tag's).
pub fn split_tag(text: &str) -> (&str, Option<&str>) {
    let last_part = text.rfind('/').map_or(0, |slash| slash + 1);
    match text[last_part..].rfind(':') {
        Some(colon) => (
            &text[..last_part + colon],
            Some(&text[last_part + colon + 1..]),
        ),
        None => (text, None),
    }
}

/// A Docker tag.
pub fn check_tag(tag: &str) -> Result<&str, DctError> {
    let valid = (1..=128).contains(&tag.len())
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if valid {
        Ok(tag)
    } else {
        Err(DctError::Usage(format!(
            "{tag:?} is not a tag: use up to 128 letters, digits, _ . and -, not starting with . or -"
        )))
    }
}

/// A signer's name: the `<name>` of `targets/<name>`, as `docker trust signer` allows.
pub fn check_signer(name: &str) -> Result<&str, DctError> {
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && name != "releases";
    if valid {
        Ok(name)
    } else {
        Err(DctError::Usage(format!(
            "{name:?} is not a signer name: use letters, digits, _ . and -, starting with a letter or digit (\"releases\" is reserved)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_qualified_as_docker_does() {
        assert_eq!(
            Gun::parse("alpine").unwrap().as_str(),
            "docker.io/library/alpine"
        );
        assert_eq!(
            Gun::parse("acme/app").unwrap().as_str(),
            "docker.io/acme/app"
        );
        assert_eq!(
            Gun::parse("localhost:5000/acme/app").unwrap().as_str(),
            "localhost:5000/acme/app"
        );
        assert_eq!(
            Gun::parse("127.0.0.1:5000/app")
                .unwrap()
                .registry_and_repository(),
            ("127.0.0.1:5000", "app")
        );
        for bad in [
            "",
            "Acme/app",
            "acme//app",
            "acme/../app",
            "acme/app?x",
            "acme/app name",
        ] {
            assert!(Gun::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn tagged_names_split_at_the_last_colon_after_the_host() {
        let name = TaggedName::parse("localhost:5000/acme/app:v1.2").unwrap();
        assert_eq!(
            (name.gun.as_str(), name.tag.as_str()),
            ("localhost:5000/acme/app", "v1.2")
        );
        assert!(TaggedName::parse("localhost:5000/acme/app").is_err());
        assert!(TaggedName::parse("acme/app:-x").is_err());
        assert!(check_signer("releases").is_err());
        assert!(check_signer("alice").is_ok());
    }
}
