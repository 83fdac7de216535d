//! Everything that can go wrong talking to a Notary server or a registry, each
//! message naming the URL or file and the fix. No variant ever holds a password or
//! token.

use std::path::PathBuf;

use super::config::{ENV_PASSWORD, ENV_TOKEN, ENV_USERNAME};

#[derive(thiserror::Error, Debug)]
pub enum TransportError {
    #[error("{variable}: {problem}")]
    Environment {
        variable: &'static str,
        problem: String,
    },

    #[error("server URL {url}: {problem}")]
    BadUrl { url: String, problem: String },

    #[error("{what} {value:?}: {problem}")]
    BadName {
        what: &'static str,
        value: String,
        problem: &'static str,
    },

    #[error("cannot read {what} {}: fix the path or the file's permissions", path.display())]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },

    #[error("CA file {}: {problem}", path.display())]
    BadCa { path: PathBuf, problem: String },

    #[error("CA file {}: a certificate in it is not usable as a trust anchor", path.display())]
    CaCertificate {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },

    #[error("no usable root certificates on this system (install the ca-certificates package, or pass the server's CA file)")]
    NoSystemRoots {
        #[source]
        source: Option<rustls_native_certs::Error>,
    },

    #[error("client certificate {} with key {}: not a usable TLS client identity (the key must be the certificate's, PEM)", cert.display(), key.display())]
    ClientIdentity {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },

    #[error("TLS setup")]
    Tls(#[source] rustls::Error),

    #[error("HTTP client setup")]
    BuildClient(#[source] reqwest::Error),

    #[error("{method} {url}: {problem}")]
    Request {
        method: String,
        url: String,
        /// What went wrong and what to do, e.g. which CA file the server's
        /// certificate failed against.
        problem: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("{method} {url}: the server answered {status}: {server_says}")]
    Status {
        method: String,
        url: String,
        status: reqwest::StatusCode,
        /// The server's own error text (notary's `code: message`), truncated.
        server_says: String,
    },

    #[error("{url}: the response is larger than {limit} bytes; refusing to read it")]
    TooLarge { url: String, limit: usize },

    #[error(
        "{url} requires authentication: set {ENV_USERNAME} and {ENV_PASSWORD}, or {ENV_TOKEN}"
    )]
    CredentialsNeeded { url: String },

    #[error("{url} rejected the credentials{}: check {ENV_USERNAME}/{ENV_PASSWORD} or {ENV_TOKEN}", user.as_deref().map(|user| format!(" of user {user:?}")).unwrap_or_default())]
    Rejected { url: String, user: Option<String> },

    #[error("{url}: unusable authentication challenge {challenge:?}: {problem}")]
    BadChallenge {
        url: String,
        challenge: String,
        problem: &'static str,
    },

    #[error("token server {url}: its answer has no usable token")]
    BadTokenResponse {
        url: String,
        #[source]
        source: Option<serde_json::Error>,
    },

    #[error("{url}: the registry says the manifest is {header} but its bytes hash to {computed}; refusing it")]
    DigestMismatch {
        url: String,
        header: String,
        computed: String,
    },

    #[error("{url}: the registry sent a manifest of type {media_type:?}, not an OCI or Docker v2 manifest or index")]
    ManifestType { url: String, media_type: String },
}
