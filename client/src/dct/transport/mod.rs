//! HTTP to a Notary server and a Docker registry: what `tufkey dct` fetches and
//! publishes, over TLS verified against the given CA (or the system's roots), with
//! the token login Docker Hub uses, and with every cost a server can impose bounded
//! (bodies capped, 10 s to connect, 60 s a request, at most 5 redirects).
//!
//! Nothing here verifies TUF metadata: it moves bytes. Passwords and tokens stay in
//! [`secrecy::SecretString`] and appear in no error, log or `Debug` output.

mod auth;
mod config;
mod error;
mod http;
mod names;
mod notary;
mod registry;
mod tls;

pub use config::{Credentials, ServerConfig, ENV_PASSWORD, ENV_TOKEN, ENV_USERNAME};
pub use error::TransportError;
pub use notary::{NotaryServer, KEY_LIMIT, METADATA_LIMIT};
pub use registry::{Manifest, Registry, MANIFEST_LIMIT, MANIFEST_MEDIA_TYPES};
