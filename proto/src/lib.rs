//! gRPC types and stubs for tufkey, generated from the files under `proto/`.
//!
//! - [`v1`]: the native `tufkey.v1` API (keys, signing, session, devices).
//! - [`notary`]: the Notary signer API (`package proto`), wire-compatible with
//!   notary-signer so notary-server can use tufkeyd as its trust service.
#![forbid(unsafe_code)]

/// The native tufkey API.
pub mod v1 {
    #![allow(missing_docs)]
    tonic::include_proto!("tufkey.v1");

    impl std::fmt::Debug for UnlockRequest {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("UnlockRequest")
                .field("passphrase", &"<redacted>")
                .finish()
        }
    }

    impl std::fmt::Debug for UnlockDeviceRequest {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("UnlockDeviceRequest")
                .field("serial", &self.serial)
                .field("pin", &"<redacted>")
                .field("remember", &self.remember)
                .finish()
        }
    }

    impl std::fmt::Debug for InitDeviceRequest {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("InitDeviceRequest")
                .field("serial", &self.serial)
                .field("pin", &"<redacted>")
                .field("new_pin", &"<redacted>")
                .field("puk", &"<redacted>")
                .field("new_puk", &"<redacted>")
                .finish()
        }
    }
}

/// The Notary signer API (wire package `proto`).
pub mod notary {
    #![allow(missing_docs)]
    tonic::include_proto!("proto");
}

/// Encoded `FileDescriptorSet` of every service, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tufkey_descriptor.bin"));
