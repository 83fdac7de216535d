//! Compiles the .proto files with protox (pure Rust, no system `protoc`) and generates
//! the tonic client and server code, plus a descriptor set for server reflection.

use prost::Message;
use std::path::PathBuf;

const PROTOS: &[&str] = &["tufkey/v1/tufkey.proto", "notary/signer.proto"];
/// The messages that carry a passphrase, PIN or PUK, and nothing else of size.
const SECRET_BEARING: [&str; 3] = [
    "tufkey.v1.UnlockRequest",
    "tufkey.v1.UnlockDeviceRequest",
    "tufkey.v1.InitDeviceRequest",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    std::fs::write(
        out_dir.join("tufkey_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    let mut config = tonic_prost_build::configure()
        // Passphrases, PINs and PUKs must never reach logs through a derived Debug.
        .skip_debug(SECRET_BEARING);
    // Nor linger in freed memory: these requests wipe their fields when dropped (by
    // the client once tonic has encoded them, by the daemon once handled). The
    // migration requests carry passphrases too, but the daemon moves fields out of
    // them, which a type with a destructor forbids.
    for message in SECRET_BEARING {
        config = config.type_attribute(
            message,
            "#[derive(::zeroize::Zeroize, ::zeroize::ZeroizeOnDrop)]",
        );
    }
    config.compile_fds(descriptors)?;
    for proto in PROTOS {
        println!("cargo:rerun-if-changed=proto/{proto}");
    }
    Ok(())
}
