//! GUNs, role names, repositories and tags go into URL paths as they are (notary
//! puts `localhost:5000/acme/app` and `targets/releases` into its paths unescaped),
//! so each is checked first: nothing that could climb out of the path, start a
//! query or fragment, or be read differently by the server.

use super::TransportError;

/// Checks a GUN, role, or repository name that becomes part of a URL path.
pub(super) fn check_path_name(what: &'static str, value: &str) -> Result<(), TransportError> {
    let problem = if value.is_empty() {
        Some("empty")
    } else if value.split('/').any(|part| part == ".." || part == ".") {
        Some("must not contain '.' or '..' path segments")
    } else if value.contains("..") {
        Some("must not contain '..'")
    } else if value.starts_with('/') || value.ends_with('/') || value.contains("//") {
        Some("must not start or end with '/' or contain '//'")
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("must not contain whitespace or control characters")
    } else if value.contains(['?', '#', '%', '\\', '"']) {
        Some("must not contain '?', '#', '%', '\\' or '\"'")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(TransportError::BadName {
            what,
            value: value.chars().take(200).collect(),
            problem,
        }),
        None => Ok(()),
    }
}

/// A Docker tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`) or a `sha256:<64 hex>` digest.
pub(super) fn check_reference(tag: &str) -> Result<(), TransportError> {
    let is_tag = tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    let is_digest = tag.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
    });
    if is_tag || is_digest {
        Ok(())
    } else {
        Err(TransportError::BadName {
            what: "tag",
            value: tag.chars().take(200).collect(),
            problem:
                "not a Docker tag ([A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128) or sha256:<hex> digest",
        })
    }
}

/// `base` with `path` (already checked, starting with `/v2/`) appended to its path.
pub(super) fn join(base: &url::Url, path: &str) -> url::Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}{path}"));
    url.set_query(None);
    url.set_fragment(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guns_and_roles_as_notary_uses_them() {
        for good in [
            "localhost:5000/acme/app",
            "docker.io/library/alpine",
            "targets/releases",
            "timestamp",
        ] {
            assert!(check_path_name("GUN", good).is_ok(), "{good}");
        }
        for bad in [
            "", "../etc", "a/../b", "a..b", "a?x", "a#x", "a b", "a\tb", "/a", "a/", "a//b", "a%2e",
        ] {
            assert!(check_path_name("GUN", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tags_and_digests() {
        assert!(check_reference("v1.2_rc-3").is_ok());
        assert!(check_reference(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(check_reference(".hidden").is_err());
        assert!(check_reference("a/b").is_err());
        assert!(check_reference(&"a".repeat(129)).is_err());
        assert!(check_reference("sha256:ABC").is_err());
    }

    #[test]
    fn joins_under_a_base_path_unescaped() {
        let base = url::Url::parse("https://h:4443/prefix/").expect("url");
        let url = join(
            &base,
            "/v2/localhost:5000/acme/app/_trust/tuf/targets/releases.json",
        );
        assert_eq!(
            url.as_str(),
            "https://h:4443/prefix/v2/localhost:5000/acme/app/_trust/tuf/targets/releases.json"
        );
    }
}
