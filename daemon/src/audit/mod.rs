//! The audit log: who did what with which key, and how it turned out.
//!
//! One JSON Lines record per signature, key generation or deletion, key transfer,
//! keystore unlock and lock, device initialisation and PIN unlock, and per policy
//! denial ([`record`]). Records form a hash chain and each carries an HMAC under a
//! key derived from the keystore's secret ([`key`]), so someone who can write the
//! files but does not hold that secret cannot rewrite history unnoticed
//! ([`verify`] names the first bad record). A record is on disk (fsynced) before the
//! call it records answers; when it cannot be written the call fails instead
//! ([`log`], fail closed). The current file rotates by size and the chain runs on
//! across files ([`files`], [`writer`]).

mod files;
mod key;
mod log;
mod record;
mod verify;
mod writer;

pub use key::AuditKey;
pub use log::{AuditConfig, AuditLog, Committer, Expected, Snapshot};
pub use record::{Record, GENESIS, OK};
pub use verify::{verify, BadRecord, LogFile, Verified};
pub use writer::Head;
