//! One HTTPS client per server with everything a server could make us spend bounded
//! (connect 10 s, whole request 60 s, bodies capped per call, at most 5 redirects,
//! never https to http) and the login flow: a 401 challenge is answered once (a
//! bearer token from the token service, or basic auth), tokens are cached per scope.
//!
//! Credentials never follow a redirect to another host (reqwest drops
//! `Authorization` on a cross-host redirect) and never appear in an error.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use super::auth::{normalise_scope, parse_challenge, token_from_answer, Challenge};
use super::config::{check_scheme, is_loopback, redacted, ServerConfig};
use super::{tls, Credentials, TransportError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_REDIRECTS: usize = 5;
/// Token service answers are small.
pub(super) const TOKEN_LIMIT: usize = 4 << 20;
/// How much of an error response is read to find the server's message.
const ERROR_BODY_LIMIT: usize = 64 << 10;
/// How much of the server's error text goes into an error message.
const ERROR_TEXT_CHARS: usize = 400;

/// A response read whole (within its limit).
pub(super) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// The HTTP client of one [`ServerConfig`]; cheap to clone (shares the connection
/// pool and the token cache).
#[derive(Clone)]
pub(super) struct Http {
    client: reqwest::Client,
    base: url::Url,
    ca: Option<PathBuf>,
    credentials: Credentials,
    /// Bearer tokens by normalised scope.
    tokens: Arc<Mutex<HashMap<String, SecretString>>>,
}

/// The authorization one attempt carries.
enum Authorization<'a> {
    None,
    Bearer(&'a SecretString),
    Basic(&'a str, &'a SecretString),
}

impl Http {
    /// `allow_loopback_http`: plain `http://` for localhost (registries only).
    pub fn new(config: ServerConfig, allow_loopback_http: bool) -> Result<Http, TransportError> {
        check_scheme(&config.url, allow_loopback_http)?;
        if config.url.host().is_none() {
            return Err(TransportError::BadUrl {
                url: redacted(&config.url),
                problem: "no host: use https://HOST[:PORT]".into(),
            });
        }
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let downgrade = attempt.url().scheme() != "https"
                && attempt
                    .previous()
                    .iter()
                    .any(|previous| previous.scheme() == "https");
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("more than 5 redirects")
            } else if downgrade {
                attempt.error("redirect from https to plain http")
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls::client_config(&config)?)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(redirects)
            .user_agent(concat!("tufkey/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(TransportError::BuildClient)?;
        Ok(Http {
            client,
            base: config.url,
            ca: config.ca,
            credentials: config.credentials,
            tokens: Arc::default(),
        })
    }

    pub fn base(&self) -> &url::Url {
        &self.base
    }

    /// A request on this server's client (timeouts, TLS, redirect policy).
    pub fn request(&self, method: Method, url: url::Url) -> RequestBuilder {
        self.client.request(method, url)
    }

    /// Sends the request `build` makes (called again for the one retry after a
    /// login challenge) and reads the body up to `limit` bytes. `scope` is the
    /// token scope the request needs (`repository:NAME:pull`), to reuse a cached
    /// token. Returns any status but 401; a 2xx body over `limit` is an error, an
    /// error body is cut short.
    pub async fn send(
        &self,
        method: Method,
        url: &url::Url,
        scope: &str,
        limit: usize,
        build: &(dyn Fn() -> RequestBuilder + Sync),
    ) -> Result<Response, TransportError> {
        let cached = self.cached_token(&normalise_scope(scope));
        let first = match (&self.credentials, &cached) {
            (Credentials::Token(token), _) => Authorization::Bearer(token),
            (_, Some(token)) => Authorization::Bearer(token),
            _ => Authorization::None,
        };
        let response = self.execute(&method, url, build, first).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return self.read(&method, url, response, limit).await;
        }
        if let Credentials::Token(_) = self.credentials {
            return Err(self.rejected(url));
        }
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .map(|value| parse_challenge(url.as_str(), value))
            .transpose()?;
        let retried = match challenge {
            Some(challenge) if challenge.scheme == "bearer" => {
                let token = self.fetch_token(url, &challenge).await?;
                self.execute(&method, url, build, Authorization::Bearer(&token))
                    .await?
            }
            Some(challenge) if challenge.scheme == "basic" => match &self.credentials {
                Credentials::Basic { username, password } => {
                    self.execute(
                        &method,
                        url,
                        build,
                        Authorization::Basic(username, password),
                    )
                    .await?
                }
                _ => return Err(self.credentials_needed(url)),
            },
            Some(challenge) => {
                return Err(TransportError::BadChallenge {
                    url: url.to_string(),
                    challenge: challenge.scheme,
                    problem: "only Bearer (token) and Basic authentication are supported",
                })
            }
            None => return Err(self.credentials_needed(url)),
        };
        if retried.status() == StatusCode::UNAUTHORIZED {
            return Err(self.credentials_needed(url));
        }
        self.read(&method, url, retried, limit).await
    }

    /// Turns a non-2xx response into [`TransportError::Status`] with the server's text.
    pub fn error_status(method: &Method, url: &url::Url, response: &Response) -> TransportError {
        TransportError::Status {
            method: method.to_string(),
            url: url.to_string(),
            status: response.status,
            server_says: server_error_text(&response.body),
        }
    }

    async fn execute(
        &self,
        method: &Method,
        url: &url::Url,
        build: &(dyn Fn() -> RequestBuilder + Sync),
        authorization: Authorization<'_>,
    ) -> Result<reqwest::Response, TransportError> {
        let request = match authorization {
            Authorization::None => build(),
            Authorization::Bearer(token) => build().bearer_auth(token.expose_secret()),
            Authorization::Basic(username, password) => {
                build().basic_auth(username, Some(password.expose_secret()))
            }
        };
        request
            .send()
            .await
            .map_err(|source| self.request_error(method, url, source))
    }

    /// Asks the challenge's token service for a token for its scope (basic auth with
    /// the login, if any; anonymous otherwise, as Docker does for public images).
    async fn fetch_token(
        &self,
        url: &url::Url,
        challenge: &Challenge,
    ) -> Result<SecretString, TransportError> {
        let bad = |problem| TransportError::BadChallenge {
            url: url.to_string(),
            challenge: "Bearer".into(),
            problem,
        };
        let realm = challenge
            .params
            .get("realm")
            .ok_or_else(|| bad("no realm (token service URL)"))?;
        let mut realm = url::Url::parse(realm).map_err(|_| bad("the realm is not a URL"))?;
        if !(realm.scheme() == "https" || (realm.scheme() == "http" && is_loopback(&realm))) {
            return Err(bad(
                "the token service is not https (plain http only on localhost)",
            ));
        }
        let scope = challenge.params.get("scope").cloned().unwrap_or_default();
        {
            let mut query = realm.query_pairs_mut();
            if let Some(service) = challenge.params.get("service") {
                query.append_pair("service", service);
            }
            for one in scope.split_whitespace() {
                query.append_pair("scope", one);
            }
            if let Some(username) = self.credentials.username() {
                query.append_pair("account", username);
            }
        }
        let authorization = match &self.credentials {
            Credentials::Basic { username, password } => Authorization::Basic(username, password),
            _ => Authorization::None,
        };
        let response = self
            .execute(
                &Method::GET,
                &realm,
                &|| self.client.get(realm.clone()),
                authorization,
            )
            .await?;
        if response.status() == StatusCode::UNAUTHORIZED
            || response.status() == StatusCode::FORBIDDEN
        {
            return Err(match self.credentials {
                Credentials::None => self.credentials_needed(url),
                _ => self.rejected(url),
            });
        }
        let answer = self
            .read(&Method::GET, &realm, response, TOKEN_LIMIT)
            .await?;
        if !answer.status.is_success() {
            return Err(Self::error_status(&Method::GET, &realm, &answer));
        }
        let token = token_from_answer(realm.as_str(), &answer.body)?;
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(normalise_scope(&scope), token.clone());
        Ok(token)
    }

    fn cached_token(&self, scope: &str) -> Option<SecretString> {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(scope)
            .cloned()
    }

    /// Reads the body: whole (up to `limit`) for a success, the start of it for an
    /// error (only its message is wanted).
    async fn read(
        &self,
        method: &Method,
        url: &url::Url,
        mut response: reqwest::Response,
        limit: usize,
    ) -> Result<Response, TransportError> {
        let status = response.status();
        let headers = response.headers().clone();
        let limit = if status.is_success() {
            limit
        } else {
            ERROR_BODY_LIMIT.min(limit)
        };
        let too_large = || TransportError::TooLarge {
            url: url.to_string(),
            limit,
        };
        if status.is_success()
            && response
                .content_length()
                .is_some_and(|len| len > limit as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|source| self.request_error(method, url, source))?
        {
            if body.len() + chunk.len() > limit {
                if status.is_success() {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk[..limit - body.len()]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn request_error(
        &self,
        method: &Method,
        url: &url::Url,
        source: reqwest::Error,
    ) -> TransportError {
        TransportError::Request {
            method: method.to_string(),
            url: url.to_string(),
            problem: tls::explain_failure(&source, self.ca.as_deref()),
            source,
        }
    }

    fn credentials_needed(&self, url: &url::Url) -> TransportError {
        match self.credentials {
            Credentials::None => TransportError::CredentialsNeeded {
                url: url.to_string(),
            },
            _ => self.rejected(url),
        }
    }

    fn rejected(&self, url: &url::Url) -> TransportError {
        TransportError::Rejected {
            url: url.to_string(),
            user: self.credentials.username().map(str::to_owned),
        }
    }
}

/// The server's explanation in an error body: notary-server's and registries'
/// `{"errors":[{"code","message","detail"}]}` as `CODE: message (detail)`, else the
/// text itself; control characters dropped, cut to a readable length.
pub(super) fn server_error_text(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
        detail: Option<serde_json::Value>,
    }
    let text = match serde_json::from_slice::<Errors>(body) {
        Ok(parsed) if !parsed.errors.is_empty() => parsed
            .errors
            .iter()
            .map(|entry| {
                let mut line = entry.code.clone().unwrap_or_else(|| "ERROR".into());
                if let Some(message) = &entry.message {
                    line.push_str(": ");
                    line.push_str(message);
                }
                match &entry.detail {
                    None | Some(serde_json::Value::Null) => {}
                    Some(serde_json::Value::String(detail)) => {
                        line.push_str(&format!(" ({detail})"))
                    }
                    Some(detail) => line.push_str(&format!(" ({detail})")),
                }
                line
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(body).trim().to_owned(),
    };
    let mut cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(ERROR_TEXT_CHARS)
        .collect();
    if text.chars().count() > ERROR_TEXT_CHARS {
        cleaned.push_str("...");
    }
    if cleaned.is_empty() {
        cleaned.push_str("(no error text)");
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notary_errors_show_code_and_message() {
        let body = br#"{"errors":[{"code":"INVALID_ROLE","message":"The role you are attempting to operate on is invalid.","detail":"a"}]}"#;
        assert_eq!(
            server_error_text(body),
            "INVALID_ROLE: The role you are attempting to operate on is invalid. (a)"
        );
    }

    #[test]
    fn plain_text_is_cleaned_and_cut() {
        assert_eq!(server_error_text(b"  bad\ngateway\n"), "bad gateway");
        assert_eq!(server_error_text(b""), "(no error text)");
        let long = "x".repeat(5000);
        let shown = server_error_text(long.as_bytes());
        assert_eq!(shown.len(), ERROR_TEXT_CHARS + 3);
    }
}
