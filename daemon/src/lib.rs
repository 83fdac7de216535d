//! tufkeyd: a gRPC daemon that holds TUF signing keys and signs for other tools.
//!
//! Data flow for a signature: socket ([`transport`]) -> gRPC handler ([`service`])
//! -> key registry ([`keys`]) -> backend ([`backend`]) -> signature encoding
//! ([`tuf`]). See `docs/ARCHITECTURE.md`.
#![forbid(unsafe_code)]

pub mod access;
pub mod audit;
pub mod backend;
pub mod blocking;
pub mod config;
pub mod error;
pub mod keys;
pub mod migration;
pub mod policy;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod transport;
pub mod tuf;
