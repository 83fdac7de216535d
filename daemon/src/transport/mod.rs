//! How callers reach the daemon: a Unix socket whose peers are checked by uid.

pub mod peer;
pub mod unix;
