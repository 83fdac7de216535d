//! Attestation: the device's proof that a slot's key was generated on it.
//!
//! The device signs an attestation certificate for the slot's public key with its
//! attestation key (slot f9), whose certificate Yubico signed at the factory. The
//! chain `[slot attestation, f9]` must end at the pinned Yubico PIV root and the
//! leaf must certify the very key tufkey holds. Validity dates are not checked:
//! attestation is about where a key was made, not about a current identity.
//! Supported signature algorithms: sha256WithRSAEncryption (Yubico's root and f9
//! certificates) and ecdsa-with-SHA256 over P-256.

use super::device::{CardError, CardResult};
use super::error::YubiKeyError;
use super::slots;
use crate::keys::PivSlot;
use p256::pkcs8::DecodePublicKey;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{DecodePem, Encode};
use x509_cert::Certificate;
use yubikey::piv;
use yubikey::YubiKey;

/// Yubico PIV Root CA Serial 263751, from
/// <https://developers.yubico.com/PIV/Introduction/piv-attestation-ca.pem>
/// (SHA-256 fingerprint 63:EC:E9:14:...:07:B5:46).
const YUBICO_PIV_ROOT_PEM: &str = include_str!("yubico-piv-root-ca.pem");

const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// The pinned roots attestation chains must end at.
pub fn yubico_roots() -> Vec<Certificate> {
    // The PEM is compiled in and checked by a unit test.
    Certificate::from_pem(YUBICO_PIV_ROOT_PEM)
        .map(|root| vec![root])
        .unwrap_or_default()
}

/// Reads the attestation chain (DER, leaf first) for a slot from the device.
pub fn fetch_chain(yubikey: &mut YubiKey, serial: u32, slot: PivSlot) -> CardResult<Vec<Vec<u8>>> {
    let not_supported = || {
        CardError::Decided(YubiKeyError::NotSupported {
            serial,
            what: "attestation",
        })
    };
    let leaf = piv::attest(yubikey, slot.into()).map_err(|error| match error {
        yubikey::Error::NotSupported
        | yubikey::Error::GenericError
        | yubikey::Error::InvalidObject => not_supported(),
        error => CardError::Card(error),
    })?;
    let device_certificate =
        super::certificate::read(yubikey, slots::ATTESTATION).ok_or_else(not_supported)?;
    let device_der = device_certificate.to_der().map_err(|source| {
        CardError::Decided(YubiKeyError::Certificate {
            serial,
            what: "encoding the device's attestation certificate",
            source,
        })
    })?;
    Ok(vec![leaf.to_vec(), device_der])
}

/// Verifies `chain` (DER, leaf first) up to one of `roots`, and that the leaf
/// certifies `public_key`. Returns the subject of the root it ended at.
pub fn verify_chain(
    chain: &[Vec<u8>],
    roots: &[Certificate],
    public_key: &p256::PublicKey,
) -> Result<String, String> {
    use x509_cert::der::Decode;
    let certificates = chain
        .iter()
        .enumerate()
        .map(|(index, der)| {
            Certificate::from_der(der)
                .map_err(|error| format!("certificate {index} of the chain: {error}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = certificates
        .first()
        .ok_or("the attestation chain is empty")?;
    let leaf_key = spki_der(leaf)?;
    let attested = p256::PublicKey::from_public_key_der(&leaf_key)
        .map_err(|_| "the attestation certifies a key that is not P-256".to_string())?;
    if &attested != public_key {
        return Err(
            "the attestation certifies a different key than the one tufkey holds in that slot"
                .into(),
        );
    }
    for pair in certificates.windows(2) {
        verify_signed_by(&pair[0], &pair[1])?;
    }
    let last = certificates
        .last()
        .ok_or("the attestation chain is empty")?;
    let root = roots
        .iter()
        .find(|root| root.tbs_certificate.subject == last.tbs_certificate.issuer)
        .ok_or_else(|| {
            format!(
                "the chain ends at {}, which is not a pinned Yubico root",
                last.tbs_certificate.issuer
            )
        })?;
    verify_signed_by(last, root)?;
    Ok(root.tbs_certificate.subject.to_string())
}

/// Checks that `issuer` signed `certificate` (itself, for a self-signed one).
pub fn verify_signed_by(certificate: &Certificate, issuer: &Certificate) -> Result<(), String> {
    let subject = certificate.tbs_certificate.subject.to_string();
    let bad = |reason: String| format!("certificate {subject}: {reason}");
    if certificate.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return Err(bad(format!(
            "issued by {}, not by {}",
            certificate.tbs_certificate.issuer, issuer.tbs_certificate.subject
        )));
    }
    let signed = certificate
        .tbs_certificate
        .to_der()
        .map_err(|error| bad(error.to_string()))?;
    let signature = certificate
        .signature
        .as_bytes()
        .ok_or_else(|| bad("signature has unused bits".into()))?;
    let issuer_key = spki_der(issuer)?;
    let invalid = |error: p256::ecdsa::Error| bad(format!("signature does not verify ({error})"));
    match certificate.signature_algorithm.oid {
        SHA256_WITH_RSA => {
            use rsa::signature::Verifier;
            let key = rsa::RsaPublicKey::from_public_key_der(&issuer_key)
                .map_err(|error| bad(format!("issuer key is not RSA: {error}")))?;
            let signature = rsa::pkcs1v15::Signature::try_from(signature).map_err(invalid)?;
            rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key)
                .verify(&signed, &signature)
                .map_err(invalid)
        }
        ECDSA_WITH_SHA256 => {
            use p256::ecdsa::signature::Verifier;
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(&issuer_key)
                .map_err(|error| bad(format!("issuer key is not P-256: {error}")))?;
            let signature = p256::ecdsa::Signature::from_der(signature).map_err(invalid)?;
            key.verify(&signed, &signature).map_err(invalid)
        }
        other => Err(bad(format!("unsupported signature algorithm {other}"))),
    }
}

fn spki_der(certificate: &Certificate) -> Result<Vec<u8>, String> {
    certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::{DerSignature, SigningKey};
    use p256::pkcs8::EncodePublicKey;
    use std::str::FromStr;
    use std::time::Duration;
    use x509_cert::builder::{Builder, CertificateBuilder, Profile};
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::spki::SubjectPublicKeyInfoOwned;
    use x509_cert::time::Validity;

    fn certificate(
        subject: &str,
        issuer: &str,
        key: &SigningKey,
        signer: &SigningKey,
    ) -> Certificate {
        let spki_der = key.verifying_key().to_public_key_der().unwrap();
        let spki = SubjectPublicKeyInfoOwned::try_from(spki_der.as_bytes()).unwrap();
        CertificateBuilder::new(
            Profile::Manual {
                issuer: Some(Name::from_str(issuer).unwrap()),
            },
            SerialNumber::from(7u32),
            Validity::from_now(Duration::from_secs(3600)).unwrap(),
            Name::from_str(subject).unwrap(),
            spki,
            signer,
        )
        .unwrap()
        .build::<DerSignature>()
        .unwrap()
    }

    /// A chain shaped like a YubiKey's: synthetic root -> device (f9) -> slot.
    struct Synthetic {
        root: Certificate,
        chain: Vec<Vec<u8>>,
        slot_key: SigningKey,
    }

    fn synthetic() -> Synthetic {
        let root_key = SigningKey::random(&mut rand_core::OsRng);
        let device_key = SigningKey::random(&mut rand_core::OsRng);
        let slot_key = SigningKey::random(&mut rand_core::OsRng);
        let root = certificate("CN=Test PIV Root", "CN=Test PIV Root", &root_key, &root_key);
        let device = certificate(
            "CN=Test PIV Attestation",
            "CN=Test PIV Root",
            &device_key,
            &root_key,
        );
        let leaf = certificate(
            "CN=Test PIV Attestation 9c",
            "CN=Test PIV Attestation",
            &slot_key,
            &device_key,
        );
        Synthetic {
            root,
            chain: vec![leaf.to_der().unwrap(), device.to_der().unwrap()],
            slot_key,
        }
    }

    fn public(key: &SigningKey) -> p256::PublicKey {
        key.verifying_key().into()
    }

    #[test]
    fn a_chain_up_to_a_pinned_root_for_the_right_key_verifies() {
        let synthetic = synthetic();
        let root = verify_chain(
            &synthetic.chain,
            std::slice::from_ref(&synthetic.root),
            &public(&synthetic.slot_key),
        )
        .unwrap();
        assert_eq!(root, "CN=Test PIV Root");
    }

    #[test]
    fn other_roots_other_keys_and_tampered_signatures_are_rejected() {
        let synthetic = synthetic();
        let other_key = SigningKey::random(&mut rand_core::OsRng);
        let error = verify_chain(
            &synthetic.chain,
            std::slice::from_ref(&synthetic.root),
            &public(&other_key),
        )
        .unwrap_err();
        assert!(error.contains("different key"), "{error}");

        let error = verify_chain(
            &synthetic.chain,
            &yubico_roots(),
            &public(&synthetic.slot_key),
        )
        .unwrap_err();
        assert!(error.contains("not a pinned Yubico root"), "{error}");

        let impostor = certificate(
            "CN=Test PIV Root",
            "CN=Test PIV Root",
            &other_key,
            &other_key,
        );
        let error =
            verify_chain(&synthetic.chain, &[impostor], &public(&synthetic.slot_key)).unwrap_err();
        assert!(error.contains("does not verify"), "{error}");

        let mut tampered = synthetic.chain.clone();
        let last = tampered[0].len() - 1;
        tampered[0][last] ^= 1;
        let error = verify_chain(
            &tampered,
            std::slice::from_ref(&synthetic.root),
            &public(&synthetic.slot_key),
        )
        .unwrap_err();
        assert!(error.contains("Attestation 9c"), "{error}");
    }

    #[test]
    fn the_pinned_yubico_root_is_intact_and_self_signed() {
        let roots = yubico_roots();
        assert_eq!(roots.len(), 1);
        let root = &roots[0];
        assert_eq!(
            root.tbs_certificate.subject.to_string(),
            "CN=Yubico PIV Root CA Serial 263751"
        );
        verify_signed_by(root, root).expect("the pinned root's own RSA signature verifies");
        let fingerprint = <sha2::Sha256 as sha2::Digest>::digest(root.to_der().unwrap());
        assert_eq!(
            hex::encode(fingerprint),
            "63ece914e54dd87915f34033c85af4c0696ba1512f8add66ced738331207b546"
        );
    }
}
