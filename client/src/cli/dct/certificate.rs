//! The root certificate Notary wants in root.json: its root keys are `ecdsa-x509`,
//! a self-signed certificate whose common name is the collection (the notary
//! client and Docker refuse a root certificate for another name). The root key
//! stays in tufkeyd, possibly on a YubiKey, so the certificate is built here with
//! x509-cert and only its to-be-signed bytes go to tufkeyd to be signed.

use super::error::DctError;
use super::gun::Gun;
use super::keys::spki_of;
use super::signing::RoleSigner;
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256};
use std::str::FromStr;
use std::time::Duration;
use tufkey::proto;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::oid::db::rfc5280::ID_KP_CODE_SIGNING;
use x509_cert::der::oid::db::rfc5912::ECDSA_WITH_SHA_256;
use x509_cert::der::{DecodePem, EncodePem};
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, SignatureBitStringEncoding,
    SubjectPublicKeyInfoOwned,
};
use x509_cert::time::Validity;
use x509_cert::Certificate;

/// Notary's root certificate lifetime: 10 years, as the root metadata's.
pub const ROOT_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// The public half of a key tufkeyd holds, standing in as the builder's signer:
/// the builder only asks it for its key and algorithm; the signature is made by
/// tufkeyd over the bytes `finalize` returns.
struct HeldKey(VerifyingKey);

impl p256::ecdsa::signature::Keypair for HeldKey {
    type VerifyingKey = VerifyingKey;

    fn verifying_key(&self) -> VerifyingKey {
        self.0
    }
}

impl DynSignatureAlgorithmIdentifier for HeldKey {
    fn signature_algorithm_identifier(&self) -> x509_cert::spki::Result<AlgorithmIdentifierOwned> {
        Ok(AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA_256,
            parameters: None,
        })
    }
}

/// A self-signed certificate for `key` naming `gun`, signed by tufkeyd (which asks
/// for the card, PIN and touch when the key is on a YubiKey). Returns PEM.
pub async fn root_certificate(
    signer: &mut RoleSigner,
    key: &proto::Key,
    gun: &Gun,
) -> Result<String, DctError> {
    let failed = |source| DctError::Certificate {
        gun: gun.to_string(),
        source,
    };
    let spki_der = spki_of(key)?;
    let held =
        HeldKey(
            VerifyingKey::from_public_key_der(&spki_der).map_err(|_| DctError::BadKey {
                keytype: "tufkeyd".into(),
                why: "its public key is not P-256",
            })?,
        );
    let spki = SubjectPublicKeyInfoOwned::from_key(held.0).map_err(|error| failed(error.into()))?;
    let subject = Name::from_str(&format!("CN={gun}")).map_err(|error| failed(error.into()))?;
    let validity = Validity::from_now(ROOT_VALIDITY).map_err(|error| failed(error.into()))?;
    let mut builder = CertificateBuilder::new(
        Profile::Leaf {
            issuer: subject.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
            include_subject_key_identifier: true,
        },
        serial_number(&spki_der).map_err(|error| failed(error.into()))?,
        validity,
        subject,
        spki,
        &held,
    )
    .map_err(failed)?;
    builder
        .add_extension(&ExtendedKeyUsage(vec![ID_KP_CODE_SIGNING]))
        .map_err(failed)?;
    let to_sign = builder.finalize().map_err(|error| failed(error.into()))?;
    let purpose = format!("the root certificate of {gun}");
    let signature_hex = signer
        .sign_bytes(key, &purpose, &to_sign, proto::SignatureFormat::Tuf)
        .await?;
    let der =
        hex::decode(&signature_hex).map_err(|_| DctError::BadSignature(signature_hex.clone()))?;
    let signature =
        DerSignature::from_bytes(&der).map_err(|_| DctError::BadSignature(signature_hex))?;
    let certificate = builder
        .assemble(
            signature
                .to_bitstring()
                .map_err(|error| failed(error.into()))?,
        )
        .map_err(failed)?;
    certificate
        .to_pem(x509_cert::der::pem::LineEnding::LF)
        .map_err(|error| failed(error.into()))
}

/// A positive 16-byte serial, unique per key and moment.
fn serial_number(spki_der: &[u8]) -> x509_cert::der::Result<SerialNumber> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut digest = Sha256::new();
    digest.update(spki_der);
    digest.update(now.to_be_bytes());
    let mut bytes: [u8; 16] = [0; 16];
    bytes.copy_from_slice(&digest.finalize()[..16]);
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::new(&bytes)
}

/// Whether `pem` is a certificate whose signature its own key verifies (a check
/// that tufkeyd signed what was built).
pub fn self_signed(pem: &str) -> bool {
    use p256::ecdsa::signature::Verifier;
    use x509_cert::der::Encode;
    let Ok(certificate) = Certificate::from_pem(pem) else {
        return false;
    };
    let Ok(spki) = certificate.tbs_certificate.subject_public_key_info.to_der() else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_public_key_der(&spki) else {
        return false;
    };
    let Ok(tbs) = certificate.tbs_certificate.to_der() else {
        return false;
    };
    let Some(signature) = certificate.signature.as_bytes() else {
        return false;
    };
    let Ok(signature) = DerSignature::from_bytes(signature) else {
        return false;
    };
    key.verify(&tbs, &signature).is_ok()
}
