//! The Docker registry token flow as notary-server and registries speak it: parse a
//! `WWW-Authenticate` challenge, ask the named token service for a bearer token for
//! the challenge's scope, and key cached tokens by a normalised scope.
//!
//! The challenge parser is a few lines of RFC 7235 `auth-param` syntax (quoted
//! strings with backslash escapes, or tokens), as Docker's own client has.

use std::collections::BTreeMap;

use secrecy::SecretString;

use super::TransportError;

/// One `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Challenge {
    /// Lower-cased: `bearer`, `basic`, ...
    pub scheme: String,
    /// Parameter names lower-cased.
    pub params: BTreeMap<String, String>,
}

/// Parses `Scheme name="value",name=token,...` (one challenge a header).
pub(super) fn parse_challenge(url: &str, header: &str) -> Result<Challenge, TransportError> {
    let bad = |problem| TransportError::BadChallenge {
        url: url.to_owned(),
        challenge: header.chars().take(200).collect(),
        problem,
    };
    let header = header.trim();
    let (scheme, mut rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.is_empty() || !scheme.chars().all(is_token_char) {
        return Err(bad("no authentication scheme"));
    }
    let mut params = BTreeMap::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| bad("a parameter without '='"))?;
        let name = name.trim();
        if name.is_empty() || !name.chars().all(is_token_char) {
            return Err(bad("a parameter name that is not a token"));
        }
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((index, c)) = chars.next() {
                match c {
                    '\\' => value.push(chars.next().ok_or_else(|| bad("unterminated escape"))?.1),
                    '"' => {
                        end = Some(index + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let end = end.ok_or_else(|| bad("unterminated quoted string"))?;
            (value, &quoted[end..])
        } else {
            let end = after.find([',', ' ', '\t']).unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        params.insert(name.to_ascii_lowercase(), value);
        rest = remaining;
    }
    Ok(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A scope (`repository:NAME:pull,push`, several separated by spaces) with its
/// actions and scopes sorted, so that the scope a caller needs and the scope a
/// server's challenge names compare equal whatever order the server lists them in
/// (notary-server's order comes from a Go map). NAME may itself contain ':'
/// (`localhost:5000/acme/app`).
pub(super) fn normalise_scope(scope: &str) -> String {
    let mut scopes: Vec<String> = scope
        .split_whitespace()
        .map(|one| match (one.split_once(':'), one.rsplit_once(':')) {
            (Some((kind, _)), Some((head, actions))) if head.len() > kind.len() => {
                let mut actions: Vec<&str> = actions.split(',').collect();
                actions.sort_unstable();
                actions.dedup();
                format!("{head}:{}", actions.join(","))
            }
            _ => one.to_owned(),
        })
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes.join(" ")
}

/// The token service's answer: Docker's spec names the field `token`, OAuth2's
/// `access_token`; either is accepted.
#[derive(serde::Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}

/// The bearer token in a token service's JSON answer.
pub(super) fn token_from_answer(url: &str, body: &[u8]) -> Result<SecretString, TransportError> {
    let answer: TokenAnswer =
        serde_json::from_slice(body).map_err(|source| TransportError::BadTokenResponse {
            url: url.to_owned(),
            source: Some(source),
        })?;
    answer
        .token
        .filter(|token| !token.is_empty())
        .or(answer.access_token.filter(|token| !token.is_empty()))
        .map(SecretString::from)
        .ok_or_else(|| TransportError::BadTokenResponse {
            url: url.to_owned(),
            source: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn parses_notary_server_challenge() {
        let challenge = parse_challenge(
            "https://n",
            r#"Bearer realm="https://auth.example.com/token",service="notary-server",scope="repository:localhost:5000/acme/app:push,pull",error="invalid_token""#,
        )
        .expect("parses");
        assert_eq!(challenge.scheme, "bearer");
        assert_eq!(challenge.params["realm"], "https://auth.example.com/token");
        assert_eq!(challenge.params["service"], "notary-server");
        assert_eq!(
            challenge.params["scope"],
            "repository:localhost:5000/acme/app:push,pull"
        );
        assert_eq!(challenge.params["error"], "invalid_token");
    }

    #[test]
    fn parses_basic_and_escapes_and_tokens() {
        let challenge =
            parse_challenge("u", r#"Basic realm="say \"hi\"", charset=UTF-8"#).expect("parses");
        assert_eq!(challenge.scheme, "basic");
        assert_eq!(challenge.params["realm"], r#"say "hi""#);
        assert_eq!(challenge.params["charset"], "UTF-8");
        assert!(parse_challenge("u", r#"Bearer realm="open"#).is_err());
        assert!(parse_challenge("u", "Bearer realm").is_err());
    }

    #[test]
    fn scopes_compare_whatever_the_action_order() {
        assert_eq!(
            normalise_scope("repository:localhost:5000/acme/app:push,pull"),
            normalise_scope("repository:localhost:5000/acme/app:pull,push")
        );
        assert_eq!(
            normalise_scope("repository:b:pull repository:a:push,pull"),
            "repository:a:pull,push repository:b:pull"
        );
        assert_ne!(
            normalise_scope("repository:a:pull"),
            normalise_scope("repository:a:pull,push")
        );
    }

    #[test]
    fn token_or_access_token() {
        let token = token_from_answer("u", br#"{"token":"abc","expires_in":60}"#).expect("token");
        assert_eq!(token.expose_secret(), "abc");
        let token = token_from_answer("u", br#"{"access_token":"xyz"}"#).expect("access_token");
        assert_eq!(token.expose_secret(), "xyz");
        assert!(token_from_answer("u", br#"{"token":""}"#).is_err());
        assert!(token_from_answer("u", b"not json").is_err());
    }
}
