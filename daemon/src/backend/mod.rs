//! Homes for private keys, each implementing [`crate::keys::KeyBackend`].

pub mod software;
pub mod yubikey;
