//! The card's attestation certificate (slot f9, data object `5FFF01`), which a
//! YubiKey has from the factory and which tells two cards apart even when they
//! report the same serial. The card makes one on its first start — a fresh P-256
//! key, self-signed, naming the serial — and keeps it next to its state file
//! (`STATE.f9.der`), so it stays the same across restarts while a card started on
//! a fresh state file (a look-alike) shows a different one. No slot attestation
//! (INS `F9`): only the certificate object.

use std::{path::Path, str::FromStr, time::Duration};

use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use x509_cert::{
    builder::{Builder, CertificateBuilder, Profile},
    der::Encode,
    name::Name,
    serial_number::SerialNumber,
    spki::SubjectPublicKeyInfoOwned,
    time::Validity,
};

/// GET DATA's object list for the attestation certificate (`5C 03 5F FF 01`).
pub const GET_ATTESTATION: [u8; 5] = [0x5C, 0x03, 0x5F, 0xFF, 0x01];

/// The certificate's DER: read from `STATE.f9.der`, else made (and saved there).
pub fn load_or_create(state_file: Option<&Path>, serial: u32) -> std::io::Result<Vec<u8>> {
    let path = state_file.map(|state| {
        let mut name = state.as_os_str().to_owned();
        name.push(".f9.der");
        std::path::PathBuf::from(name)
    });
    if let Some(path) = &path {
        match std::fs::read(path) {
            Ok(der) => return Ok(der),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let der = make(serial).map_err(std::io::Error::other)?;
    if let Some(path) = &path {
        std::fs::write(path, &der)?;
        log::info!("created attestation certificate {}", path.display());
    }
    Ok(der)
}

fn make(serial: u32) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
    let key = SigningKey::random(&mut rand_core::OsRng);
    let spki_der = key.verifying_key().to_public_key_der()?;
    let spki = SubjectPublicKeyInfoOwned::try_from(spki_der.as_bytes())?;
    let subject = Name::from_str(&format!("CN=tufkey-vcard PIV Attestation {serial}"))?;
    let certificate = CertificateBuilder::new(
        Profile::Root,
        SerialNumber::from(serial),
        Validity::from_now(Duration::from_secs(20 * 365 * 24 * 3600))?,
        subject,
        spki,
        &key,
    )?
    .build::<DerSignature>()?;
    Ok(certificate.to_der()?)
}

/// GET DATA's answer: `53 L { 70 L <certificate> 71 01 00 FE 00 }`.
pub fn object(certificate: &[u8]) -> Vec<u8> {
    let mut inner = vec![0x70];
    push_length(&mut inner, certificate.len());
    inner.extend_from_slice(certificate);
    inner.extend_from_slice(&[0x71, 0x01, 0x00, 0xFE, 0x00]);
    let mut object = vec![0x53];
    push_length(&mut object, inner.len());
    object.extend_from_slice(&inner);
    object
}

/// A BER-TLV length (short form, or 81 / 82 long form).
fn push_length(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        _ => {
            out.push(0x82);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
    }
}
