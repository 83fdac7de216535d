//! Where a server is, how to trust it and how to log in to it: the settings shared by
//! [`NotaryServer`](super::NotaryServer) and [`Registry`](super::Registry).

use std::path::PathBuf;

use secrecy::SecretString;

use super::TransportError;

/// Username for the server's login (with [`ENV_PASSWORD`]).
pub const ENV_USERNAME: &str = "TUFKEY_DCT_USERNAME";
/// Password for [`ENV_USERNAME`].
pub const ENV_PASSWORD: &str = "TUFKEY_DCT_PASSWORD";
/// A bearer token (e.g. a registry token as Docker Hub issues), instead of a login.
pub const ENV_TOKEN: &str = "TUFKEY_DCT_TOKEN";

/// One server: its URL, the TLS trust and identity, and the login. `Debug` shows no
/// password or token (nor any the URL might carry).
#[derive(Clone)]
pub struct ServerConfig {
    /// `https://host:port` (a path prefix is kept).
    pub url: url::Url,
    /// PEM CA certificates: when set, the server (and its token service) is verified
    /// against these ONLY; when not, against the system's root certificates.
    pub ca: Option<PathBuf>,
    /// A TLS client certificate and its key (both PEM), if the server asks for one.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    pub credentials: Credentials,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("url", &redacted(&self.url))
            .field("ca", &self.ca)
            .field("client_identity", &self.client_identity)
            .field("credentials", &self.credentials)
            .finish()
    }
}

/// The login for a server's token (or basic) authentication. `Debug` shows the
/// username, never the password or token.
#[derive(Clone, Debug, Default)]
pub enum Credentials {
    #[default]
    None,
    /// Sent to the token service (HTTP basic auth) named by the server's challenge,
    /// or to the server itself when it asks for basic auth.
    Basic {
        username: String,
        password: SecretString,
    },
    /// Sent as `Authorization: Bearer` on every request.
    Token(SecretString),
}

impl Credentials {
    /// From [`ENV_USERNAME`] + [`ENV_PASSWORD`], or [`ENV_TOKEN`]; none of them set is
    /// [`Credentials::None`]. An empty variable counts as unset.
    pub fn from_env() -> Result<Credentials, TransportError> {
        let username = env_var(ENV_USERNAME)?;
        let password = env_var(ENV_PASSWORD)?;
        let token = env_var(ENV_TOKEN)?;
        match (username, password, token) {
            (None, None, None) => Ok(Credentials::None),
            (None, None, Some(token)) => Ok(Credentials::Token(token.into())),
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => Err(TransportError::Environment {
                variable: ENV_TOKEN,
                problem: format!(
                    "set either {ENV_TOKEN} or {ENV_USERNAME} and {ENV_PASSWORD}, not both: unset one"
                ),
            }),
            (Some(username), Some(password), None) => Ok(Credentials::Basic {
                username,
                password: password.into(),
            }),
            (Some(_), None, None) => Err(TransportError::Environment {
                variable: ENV_PASSWORD,
                problem: format!("not set, but {ENV_USERNAME} is: set both, or neither"),
            }),
            (None, Some(_), None) => Err(TransportError::Environment {
                variable: ENV_USERNAME,
                problem: format!("not set, but {ENV_PASSWORD} is: set both, or neither"),
            }),
        }
    }

    /// The username, for messages.
    pub(super) fn username(&self) -> Option<&str> {
        match self {
            Credentials::Basic { username, .. } => Some(username),
            _ => None,
        }
    }
}

fn env_var(variable: &'static str) -> Result<Option<String>, TransportError> {
    match std::env::var(variable) {
        Ok(value) if value.is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(TransportError::Environment {
            variable,
            problem: "not valid UTF-8: set it to a UTF-8 value".into(),
        }),
    }
}

/// `url` without any username or password in it, for messages.
pub(super) fn redacted(url: &url::Url) -> String {
    let mut shown = url.clone();
    // Only fails for URLs that cannot have credentials, which then have none.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// Docker's rule for plain-HTTP registries: only on this machine. Everything else
/// must be `https`. Credentials belong in the environment, not the URL.
pub(super) fn check_scheme(
    url: &url::Url,
    allow_loopback_http: bool,
) -> Result<(), TransportError> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TransportError::BadUrl {
            url: redacted(url),
            problem: format!(
                "has a username or password in it: remove them and set {ENV_USERNAME} and {ENV_PASSWORD}"
            ),
        });
    }
    let problem = match url.scheme() {
        "https" => return Ok(()),
        "http" if allow_loopback_http && is_loopback(url) => return Ok(()),
        "http" if allow_loopback_http => {
            "plain http is allowed only for localhost, 127.0.0.1 or ::1: use https://"
        }
        _ => "use https://",
    };
    Err(TransportError::BadUrl {
        url: redacted(url),
        problem: problem.into(),
    })
}

pub(super) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> url::Url {
        url::Url::parse(text).expect("test URL")
    }

    #[test]
    fn plain_http_only_for_loopback_when_allowed() {
        assert!(check_scheme(&url("https://notary.example.com"), false).is_ok());
        assert!(check_scheme(&url("http://localhost:5000"), true).is_ok());
        assert!(check_scheme(&url("http://127.0.0.1:5000"), true).is_ok());
        assert!(check_scheme(&url("http://[::1]:5000"), true).is_ok());
        let refused = check_scheme(&url("http://registry.example.com"), true)
            .expect_err("remote plain http")
            .to_string();
        assert!(refused.contains("only for localhost"), "{refused}");
        assert!(check_scheme(&url("http://localhost:4443"), false).is_err());
        assert!(check_scheme(&url("ftp://localhost"), true).is_err());
    }

    #[test]
    fn credentials_in_the_url_are_refused_and_never_shown() {
        let with_password = url("https://bob:pw-in-url-91@notary.example.com:4443/");
        let refused = check_scheme(&with_password, false)
            .expect_err("userinfo refused")
            .to_string();
        assert!(refused.contains(ENV_USERNAME), "{refused}");
        assert!(!refused.contains("pw-in-url-91"), "{refused}");
        let config = ServerConfig {
            url: with_password,
            ca: None,
            client_identity: None,
            credentials: Credentials::None,
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("notary.example.com"), "{shown}");
        assert!(!shown.contains("pw-in-url-91"), "{shown}");
    }

    #[test]
    fn debug_hides_secrets() {
        let basic = Credentials::Basic {
            username: "alice".into(),
            password: "hunter2-secret".to_owned().into(),
        };
        let token = Credentials::Token("tok-secret-123".to_owned().into());
        let shown = format!("{basic:?} {token:?}");
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(!shown.contains("tok-secret-123"), "{shown}");
    }
}
