//! gRPC handlers: thin translations between proto messages and the domain.
//!
//! Handlers decode and validate input, call [`crate::keys::KeyManager`] or the
//! keystore, and map errors through the one `From<Error> for Status`. They never
//! touch private key material. Every handler goes through the [`Guard`]: it names
//! the caller, asks the access policy and writes the audit record before replying.

mod audit;
mod budget;
mod convert;
mod devices;
mod guard;
mod keys;
mod migration;
mod notary;
mod session;
mod signing;

pub use audit::AuditService;
pub use budget::SigningBudget;
pub use devices::DevicesService;
pub use guard::{Call, Guard, Rpc};
pub use keys::KeysService;
pub use migration::MigrationService;
pub use notary::{NotaryService, NOTARY_HEALTH_SERVICES};
pub use session::SessionService;
pub use signing::SigningService;
