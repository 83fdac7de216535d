//! How callers reach the daemon: a Unix socket whose peers are checked by uid, and
//! an optional TCP listener with mutual TLS whose peers are checked by certificate;
//! each listener with a cap on its connections.

pub mod activation;
pub mod authority;
pub mod identity;
pub mod limits;
pub mod peer;
pub mod tls;
pub mod unix;
