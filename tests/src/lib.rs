//! Shared harness for the end-to-end tests: starting the real daemon, running the
//! real CLI, building TUF repositories and handing them to real verifiers.

pub mod daemon;
pub mod dct;
pub mod fixtures;
pub mod leak_scan;
pub mod memory_backend;
pub mod notary;
pub mod postgres;
pub mod repo_clients;
pub mod running;
pub mod soak;
pub mod tuf_repo;
pub mod vcard;
pub mod verify;
