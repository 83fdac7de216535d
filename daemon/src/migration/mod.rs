//! Moving keys between hosts and tools: encrypted bundles for backups and transfers
//! ([`bundle`], the `age` format), Docker/Notary key files in both directions
//! ([`notary_pem`], [`trust_dir`]), receiving identities for host-to-host transfers
//! ([`transfer`]) and the record of which keys each backup covered ([`backups`]);
//! [`Migrator`] puts them together over the key registry.
//!
//! Everything here works on private keys inside the daemon: what leaves it is
//! ciphertext (an age file, an encrypted PEM block), never a plaintext key. The
//! service layer (`crate::service::migration`) decides who may ask and audits it.

pub mod backups;
pub mod bundle;
mod error;
mod migrator;
pub mod notary_pem;
pub mod transfer;
pub mod trust_dir;

pub use error::MigrationError;
pub use migrator::{FoundBlock, Imported, Incoming, Migrator, Moved, NotaryScan, Sealed};

/// The record of backups, in the keystore directory (`crate::server` puts it there).
pub const BACKUP_LOG_FILE: &str = "backups.json";
