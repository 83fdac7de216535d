//! Client library for tufkeyd, the TUF key daemon.
//!
//! [`Client`] speaks the `tufkey.v1` gRPC API over the daemon's Unix socket; the
//! `tufkey` binary in this crate is a CLI on top of it.
#![forbid(unsafe_code)]

mod client;
#[cfg(feature = "dct")]
pub mod dct;
mod error;
mod failover;
mod server_uid;
mod tls_endpoints;
#[cfg(feature = "tough")]
mod tough_key_source;

pub use client::{default_socket_path, Client};
pub use error::{with_causes, Error, Result};
pub use failover::{FailoverError, Rpc};
pub use server_uid::{ServerUid, SERVER_UID_ENV};
pub use tls_endpoints::TlsEndpoints;
#[cfg(feature = "tough")]
pub use tough_key_source::{KeySourceError, TufkeyKeySource};
/// The generated `tufkey.v1` messages.
pub use tufkey_proto::v1 as proto;
