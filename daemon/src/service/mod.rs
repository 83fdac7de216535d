//! gRPC handlers: thin translations between proto messages and the domain.
//!
//! Handlers decode and validate input, call [`crate::keys::KeyManager`] or the
//! keystore, and map errors through the one `From<Error> for Status`. They never
//! touch private key material.

mod convert;
mod devices;
mod keys;
mod notary;
mod session;
mod signing;

pub use devices::DevicesService;
pub use keys::KeysService;
pub use notary::{NotaryService, NOTARY_HEALTH_SERVICES};
pub use session::SessionService;
pub use signing::SigningService;
