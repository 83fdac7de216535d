//! TUF and Notary wire formats: canonical JSON, key JSON and key IDs, signature
//! encodings, and signing a metadata document. Pure functions, no I/O.

pub mod canonical;
pub mod key_json;
pub mod metadata;
pub mod signature;
