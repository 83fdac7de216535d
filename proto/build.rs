//! Compiles the .proto files with protox (pure Rust, no system `protoc`) and generates
//! the tonic client and server code, plus a descriptor set for server reflection.

use prost::Message;
use std::path::PathBuf;

const PROTOS: &[&str] = &["tufkey/v1/tufkey.proto", "notary/signer.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    std::fs::write(
        out_dir.join("tufkey_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        // Passphrases, PINs and PUKs must never reach logs through a derived Debug.
        .skip_debug([
            "tufkey.v1.UnlockRequest",
            "tufkey.v1.UnlockDeviceRequest",
            "tufkey.v1.InitDeviceRequest",
        ])
        .compile_fds(descriptors)?;
    for proto in PROTOS {
        println!("cargo:rerun-if-changed=proto/{proto}");
    }
    Ok(())
}
