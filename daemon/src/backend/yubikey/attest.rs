//! Attestation: the device's proof that a slot's key was generated on it.
//!
//! The device signs an attestation certificate for the slot's public key with its
//! attestation key (slot f9), whose certificate Yubico signed at the factory. The
//! chain `[slot attestation, f9]` must end at a pinned Yubico root — the legacy
//! "Yubico PIV Root CA Serial 263751" directly, or, for firmware 5.7.4 and later,
//! "Yubico Attestation Root 1" through Yubico's published PIV intermediates
//! ("Yubico PIV Attestation A 1 / B 1" under "Yubico Attestation Intermediate
//! A 1 / B 1"), which the card does not hold and tufkey pins too. Beyond the
//! signatures: the leaf must certify the very key tufkey holds, name the card's
//! serial (Yubico extension 1.3.6.1.4.1.41482.3.7) and the PIN and touch policies
//! the key record has (1.3.6.1.4.1.41482.3.8), and must not be a CA, while every
//! certificate above it must be one (basicConstraints). Validity dates are not
//! checked: attestation is about where a key was made, not about a current identity.
//! Supported signature algorithms: sha256WithRSAEncryption and
//! sha512WithRSAEncryption (Yubico's roots, intermediates and f9 certificates) and
//! ecdsa-with-SHA256 over P-256.

use super::certificate::PolicyExtension;
use super::device::{CardError, CardResult};
use super::error::YubiKeyError;
use super::slots;
use crate::keys::{PinPolicy, PivSlot, TouchPolicy};
use p256::pkcs8::DecodePublicKey;
use x509_cert::der::oid::{AssociatedOid, ObjectIdentifier};
use x509_cert::der::{Decode, DecodePem, Encode};
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::Certificate;
use yubikey::piv;
use yubikey::YubiKey;

/// Yubico PIV Root CA Serial 263751, from
/// <https://developers.yubico.com/PIV/Introduction/piv-attestation-ca.pem>
/// (SHA-256 fingerprint 63:EC:E9:14:...:07:B5:46).
const YUBICO_PIV_ROOT_PEM: &str = include_str!("yubico-piv-root-ca.pem");
/// Yubico Attestation Root 1 (2024-12), from
/// <https://developers.yubico.com/PKI/yubico-ca-1.pem>
/// (SHA-256 fingerprint 62:76:0C:6A:...:6C:D5:A8).
const YUBICO_ATTESTATION_ROOT_1_PEM: &str = include_str!("pki/yubico-attestation-root-1.pem");
/// Its PIV branch, from <https://developers.yubico.com/PKI/yubico-intermediate.pem>:
/// Yubico Attestation Intermediate A 1 and B 1, Yubico PIV Attestation A 1 and B 1.
const YUBICO_PIV_INTERMEDIATES_PEM: &str = include_str!("pki/yubico-piv-intermediates.pem");

const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// Yubico's serial-number extension in attestation certificates (an INTEGER).
const SERIAL_EXTENSION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");
/// The most pinned intermediates a chain may pass through (Yubico's use two).
const MAX_INTERMEDIATES: usize = 4;

/// What attestation chains must end at: pinned roots, and pinned intermediates
/// that may link a card's f9 certificate to them.
pub struct TrustStore {
    pub roots: Vec<Certificate>,
    pub intermediates: Vec<Certificate>,
}

/// Yubico's pinned roots and PIV intermediates.
pub fn yubico() -> TrustStore {
    // The PEMs are compiled in and checked (fingerprints, signatures) by unit tests.
    let roots = [YUBICO_PIV_ROOT_PEM, YUBICO_ATTESTATION_ROOT_1_PEM]
        .into_iter()
        .filter_map(|pem| Certificate::from_pem(pem).ok())
        .collect();
    let intermediates =
        Certificate::load_pem_chain(YUBICO_PIV_INTERMEDIATES_PEM.as_bytes()).unwrap_or_default();
    TrustStore {
        roots,
        intermediates,
    }
}

/// What the attestation must say about the key besides certifying it.
pub struct Expected {
    /// The card's serial.
    pub serial: u32,
    pub pin_policy: PinPolicy,
    pub touch_policy: TouchPolicy,
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

/// Verifies `chain` (DER, leaf first: the slot's attestation, then the card's f9
/// certificate) up to one of `trust`'s roots, through its intermediates where
/// needed, and that the leaf certifies `public_key` with what `expected` says.
/// Returns the subject of the root it ended at.
pub fn verify_chain(
    chain: &[Vec<u8>],
    trust: &TrustStore,
    public_key: &p256::PublicKey,
    expected: &Expected,
) -> Result<String, String> {
    let certificates = chain
        .iter()
        .enumerate()
        .map(|(index, der)| {
            Certificate::from_der(der)
                .map_err(|error| format!("certificate {index} of the chain: {error}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (leaf, issuers) = certificates
        .split_first()
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
    check_leaf(leaf, expected)?;
    if issuers.is_empty() {
        return Err("the chain has no device attestation certificate (slot f9)".into());
    }
    for issuer in issuers {
        require_ca(issuer)?;
    }
    for pair in certificates.windows(2) {
        verify_signed_by(&pair[0], &pair[1])?;
    }
    let mut last = certificates
        .last()
        .ok_or("the attestation chain is empty")?;
    for _ in 0..=MAX_INTERMEDIATES {
        let issuer = &last.tbs_certificate.issuer;
        if let Some(root) = trust
            .roots
            .iter()
            .find(|root| &root.tbs_certificate.subject == issuer)
        {
            verify_signed_by(last, root)?;
            return Ok(root.tbs_certificate.subject.to_string());
        }
        let intermediate = trust
            .intermediates
            .iter()
            .find(|candidate| &candidate.tbs_certificate.subject == issuer)
            .ok_or_else(|| {
                format!("the chain ends at {issuer}, which is not a pinned Yubico root")
            })?;
        verify_signed_by(last, intermediate)?;
        require_ca(intermediate)?;
        last = intermediate;
    }
    Err("the chain passes through too many intermediates".into())
}

/// The slot's attestation: the card's serial, the key record's policies, no CA.
fn check_leaf(leaf: &Certificate, expected: &Expected) -> Result<(), String> {
    let serial = leaf
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|extension| extension.extn_id == SERIAL_EXTENSION)
        .ok_or("the attestation names no serial number (Yubico extension 1.3.6.1.4.1.41482.3.7)")?;
    let serial = u32::from_der(serial.extn_value.as_bytes())
        .map_err(|error| format!("the attestation's serial number extension: {error}"))?;
    if serial != expected.serial {
        return Err(format!(
            "the attestation was made by YubiKey {serial}, not by YubiKey {}",
            expected.serial
        ));
    }
    let (pin_policy, touch_policy) = PolicyExtension::find(leaf).ok_or(
        "the attestation states no PIN and touch policy (Yubico extension 1.3.6.1.4.1.41482.3.8)",
    )??;
    if (pin_policy, touch_policy) != (expected.pin_policy, expected.touch_policy) {
        return Err(format!(
            "the attestation states PIN policy {} and touch policy {}, but the key was made with PIN {} and touch {}",
            pin_policy.as_str(),
            touch_policy.as_str(),
            expected.pin_policy.as_str(),
            expected.touch_policy.as_str()
        ));
    }
    if is_ca(leaf)? {
        return Err(format!(
            "the attestation {} is marked as a CA (basicConstraints CA:TRUE), which a key's attestation never is",
            leaf.tbs_certificate.subject
        ));
    }
    Ok(())
}

/// Refuses a certificate that signs others without being marked a CA.
fn require_ca(certificate: &Certificate) -> Result<(), String> {
    if is_ca(certificate)? {
        Ok(())
    } else {
        Err(format!(
            "certificate {} signs the attestation but is not marked as a CA (basicConstraints CA:TRUE missing)",
            certificate.tbs_certificate.subject
        ))
    }
}

/// Whether basicConstraints says CA:TRUE (no extension: not a CA).
fn is_ca(certificate: &Certificate) -> Result<bool, String> {
    let Some(extension) = certificate
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|extension| extension.extn_id == BasicConstraints::OID)
    else {
        return Ok(false);
    };
    BasicConstraints::from_der(extension.extn_value.as_bytes())
        .map(|constraints| constraints.ca)
        .map_err(|error| {
            format!(
                "certificate {}: basicConstraints: {error}",
                certificate.tbs_certificate.subject
            )
        })
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
    let rsa_key = || {
        rsa::RsaPublicKey::from_public_key_der(&issuer_key)
            .map_err(|error| bad(format!("issuer key is not RSA: {error}")))
    };
    use rsa::signature::Verifier;
    match certificate.signature_algorithm.oid {
        SHA256_WITH_RSA => {
            let signature = rsa::pkcs1v15::Signature::try_from(signature).map_err(invalid)?;
            rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(rsa_key()?)
                .verify(&signed, &signature)
                .map_err(invalid)
        }
        SHA512_WITH_RSA => {
            let signature = rsa::pkcs1v15::Signature::try_from(signature).map_err(invalid)?;
            rsa::pkcs1v15::VerifyingKey::<sha2::Sha512>::new(rsa_key()?)
                .verify(&signed, &signature)
                .map_err(invalid)
        }
        ECDSA_WITH_SHA256 => {
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
    use x509_cert::der::{Length, Writer};
    use x509_cert::ext::{AsExtension, Extension};
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::spki::SubjectPublicKeyInfoOwned;
    use x509_cert::time::Validity;

    const SERIAL: u32 = 1001;

    /// Yubico's serial-number extension, as a card writes it.
    struct SerialExtension(u32);

    impl AssociatedOid for SerialExtension {
        const OID: ObjectIdentifier = SERIAL_EXTENSION;
    }

    impl Encode for SerialExtension {
        fn encoded_len(&self) -> x509_cert::der::Result<Length> {
            self.0.encoded_len()
        }

        fn encode(&self, writer: &mut impl Writer) -> x509_cert::der::Result<()> {
            self.0.encode(writer)
        }
    }

    impl AsExtension for SerialExtension {
        fn critical(&self, _subject: &Name, _extensions: &[Extension]) -> bool {
            false
        }
    }

    type Extend<'a> = &'a dyn Fn(&mut CertificateBuilder<'_, SigningKey>);

    fn certificate(
        subject: &str,
        issuer: &str,
        key: &SigningKey,
        signer: &SigningKey,
        extend: Extend<'_>,
    ) -> Certificate {
        let spki_der = key.verifying_key().to_public_key_der().unwrap();
        let spki = SubjectPublicKeyInfoOwned::try_from(spki_der.as_bytes()).unwrap();
        let mut builder = CertificateBuilder::new(
            Profile::Manual {
                issuer: Some(Name::from_str(issuer).unwrap()),
            },
            SerialNumber::from(7u32),
            Validity::from_now(Duration::from_secs(3600)).unwrap(),
            Name::from_str(subject).unwrap(),
            spki,
            signer,
        )
        .unwrap();
        extend(&mut builder);
        builder.build::<DerSignature>().unwrap()
    }

    fn ca(builder: &mut CertificateBuilder<'_, SigningKey>) {
        builder
            .add_extension(&BasicConstraints {
                ca: true,
                path_len_constraint: None,
            })
            .unwrap();
    }

    fn nothing(_: &mut CertificateBuilder<'_, SigningKey>) {}

    /// What a card's slot attestation carries.
    fn attested(
        serial: u32,
        pin: PinPolicy,
        touch: TouchPolicy,
    ) -> impl Fn(&mut CertificateBuilder<'_, SigningKey>) {
        move |builder| {
            builder.add_extension(&SerialExtension(serial)).unwrap();
            builder
                .add_extension(&PolicyExtension::new(pin, touch))
                .unwrap();
        }
    }

    fn expected() -> Expected {
        Expected {
            serial: SERIAL,
            pin_policy: PinPolicy::Always,
            touch_policy: TouchPolicy::Always,
        }
    }

    /// A chain shaped like a YubiKey's: synthetic root -> device (f9) -> slot.
    struct Synthetic {
        trust: TrustStore,
        root_key: SigningKey,
        device_key: SigningKey,
        slot_key: SigningKey,
    }

    impl Synthetic {
        fn new() -> Self {
            let root_key = SigningKey::random(&mut rand_core::OsRng);
            let root = certificate(
                "CN=Test PIV Root",
                "CN=Test PIV Root",
                &root_key,
                &root_key,
                &ca,
            );
            Synthetic {
                trust: TrustStore {
                    roots: vec![root],
                    intermediates: Vec::new(),
                },
                root_key,
                device_key: SigningKey::random(&mut rand_core::OsRng),
                slot_key: SigningKey::random(&mut rand_core::OsRng),
            }
        }

        /// `[leaf, f9]` with the device and leaf extensions given.
        fn chain(&self, device: Extend<'_>, leaf: Extend<'_>) -> Vec<Vec<u8>> {
            let device = certificate(
                "CN=Test PIV Attestation",
                "CN=Test PIV Root",
                &self.device_key,
                &self.root_key,
                device,
            );
            let leaf = certificate(
                "CN=Test PIV Attestation 9c",
                "CN=Test PIV Attestation",
                &self.slot_key,
                &self.device_key,
                leaf,
            );
            vec![leaf.to_der().unwrap(), device.to_der().unwrap()]
        }

        fn good_chain(&self) -> Vec<Vec<u8>> {
            self.chain(
                &ca,
                &attested(SERIAL, PinPolicy::Always, TouchPolicy::Always),
            )
        }

        fn verify(&self, chain: &[Vec<u8>]) -> Result<String, String> {
            verify_chain(chain, &self.trust, &public(&self.slot_key), &expected())
        }
    }

    fn public(key: &SigningKey) -> p256::PublicKey {
        key.verifying_key().into()
    }

    #[test]
    fn a_chain_up_to_a_pinned_root_for_the_right_key_serial_and_policies_verifies() {
        let synthetic = Synthetic::new();
        assert_eq!(
            synthetic.verify(&synthetic.good_chain()).unwrap(),
            "CN=Test PIV Root"
        );
    }

    #[test]
    fn a_wrong_serial_or_missing_or_wrong_policies_are_refused() {
        let synthetic = Synthetic::new();
        let other_card =
            synthetic.chain(&ca, &attested(1002, PinPolicy::Always, TouchPolicy::Always));
        let error = synthetic.verify(&other_card).unwrap_err();
        assert!(
            error.contains("made by YubiKey 1002, not by YubiKey 1001"),
            "{error}"
        );

        let no_serial = synthetic.chain(&ca, &|builder| {
            builder
                .add_extension(&PolicyExtension::new(
                    PinPolicy::Always,
                    TouchPolicy::Always,
                ))
                .unwrap();
        });
        let error = synthetic.verify(&no_serial).unwrap_err();
        assert!(error.contains("no serial number"), "{error}");

        let no_policy = synthetic.chain(&ca, &|builder| {
            builder.add_extension(&SerialExtension(SERIAL)).unwrap();
        });
        let error = synthetic.verify(&no_policy).unwrap_err();
        assert!(error.contains("no PIN and touch policy"), "{error}");

        let no_touch = synthetic.chain(
            &ca,
            &attested(SERIAL, PinPolicy::Always, TouchPolicy::Never),
        );
        let error = synthetic.verify(&no_touch).unwrap_err();
        assert!(error.contains("touch policy never"), "{error}");
        let pin_once =
            synthetic.chain(&ca, &attested(SERIAL, PinPolicy::Once, TouchPolicy::Always));
        let error = synthetic.verify(&pin_once).unwrap_err();
        assert!(error.contains("PIN policy once"), "{error}");
    }

    #[test]
    fn a_ca_leaf_or_an_f9_certificate_that_is_no_ca_is_refused() {
        let synthetic = Synthetic::new();
        let policies = attested(SERIAL, PinPolicy::Always, TouchPolicy::Always);
        let ca_leaf = synthetic.chain(&ca, &|builder| {
            policies(builder);
            ca(builder);
        });
        let error = synthetic.verify(&ca_leaf).unwrap_err();
        assert!(error.contains("is marked as a CA"), "{error}");

        let plain_device = synthetic.chain(&nothing, &policies);
        let error = synthetic.verify(&plain_device).unwrap_err();
        assert!(
            error.contains(
                "CN=Test PIV Attestation signs the attestation but is not marked as a CA"
            ),
            "{error}"
        );

        let device_ca_false = synthetic.chain(
            &|builder| {
                builder
                    .add_extension(&BasicConstraints {
                        ca: false,
                        path_len_constraint: None,
                    })
                    .unwrap();
            },
            &policies,
        );
        assert!(synthetic.verify(&device_ca_false).is_err());
        // The leaf alone, without the card's f9 certificate, is not a chain.
        let error = synthetic.verify(&synthetic.good_chain()[..1]).unwrap_err();
        assert!(
            error.contains("no device attestation certificate"),
            "{error}"
        );
    }

    #[test]
    fn other_roots_other_keys_and_tampered_signatures_are_rejected() {
        let synthetic = Synthetic::new();
        let chain = synthetic.good_chain();
        let other_key = SigningKey::random(&mut rand_core::OsRng);
        let error =
            verify_chain(&chain, &synthetic.trust, &public(&other_key), &expected()).unwrap_err();
        assert!(error.contains("different key"), "{error}");

        // A chain to a root that is not pinned: Yubico's pins refuse the test root.
        let error =
            verify_chain(&chain, &yubico(), &public(&synthetic.slot_key), &expected()).unwrap_err();
        assert!(error.contains("not a pinned Yubico root"), "{error}");

        let impostor = certificate(
            "CN=Test PIV Root",
            "CN=Test PIV Root",
            &other_key,
            &other_key,
            &ca,
        );
        let impostors = TrustStore {
            roots: vec![impostor],
            intermediates: Vec::new(),
        };
        let error = verify_chain(
            &chain,
            &impostors,
            &public(&synthetic.slot_key),
            &expected(),
        )
        .unwrap_err();
        assert!(error.contains("does not verify"), "{error}");

        let mut tampered = chain.clone();
        let last = tampered[0].len() - 1;
        tampered[0][last] ^= 1;
        let error = synthetic.verify(&tampered).unwrap_err();
        assert!(error.contains("Attestation 9c"), "{error}");
    }

    #[test]
    fn a_chain_reaches_its_root_through_pinned_intermediates_only() {
        let mut synthetic = Synthetic::new();
        // root -> "Test PIV Attestation B 1" (pinned intermediate) -> f9 -> slot,
        // like firmware 5.7.4 and later.
        let intermediate_key = SigningKey::random(&mut rand_core::OsRng);
        let intermediate = certificate(
            "CN=Test PIV Attestation B 1",
            "CN=Test PIV Root",
            &intermediate_key,
            &synthetic.root_key,
            &ca,
        );
        let device = certificate(
            "CN=Test PIV Attestation",
            "CN=Test PIV Attestation B 1",
            &synthetic.device_key,
            &intermediate_key,
            &ca,
        );
        let leaf = certificate(
            "CN=Test PIV Attestation 9c",
            "CN=Test PIV Attestation",
            &synthetic.slot_key,
            &synthetic.device_key,
            &attested(SERIAL, PinPolicy::Always, TouchPolicy::Always),
        );
        let chain = vec![leaf.to_der().unwrap(), device.to_der().unwrap()];
        let error = synthetic.verify(&chain).unwrap_err();
        assert!(
            error.contains("CN=Test PIV Attestation B 1, which is not a pinned"),
            "{error}"
        );

        synthetic.trust.intermediates.push(intermediate);
        assert_eq!(synthetic.verify(&chain).unwrap(), "CN=Test PIV Root");

        // An intermediate that is not a CA does not link anything.
        let not_ca = certificate(
            "CN=Test PIV Attestation B 1",
            "CN=Test PIV Root",
            &intermediate_key,
            &synthetic.root_key,
            &nothing,
        );
        synthetic.trust.intermediates = vec![not_ca];
        let error = synthetic.verify(&chain).unwrap_err();
        assert!(error.contains("not marked as a CA"), "{error}");
    }

    fn fingerprint(certificate: &Certificate) -> String {
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            certificate.to_der().unwrap(),
        ))
    }

    #[test]
    fn the_pinned_yubico_roots_and_intermediates_are_intact_and_chain_up() {
        let trust = yubico();
        let subjects: Vec<String> = trust
            .roots
            .iter()
            .map(|root| root.tbs_certificate.subject.to_string())
            .collect();
        assert_eq!(
            subjects,
            [
                "CN=Yubico PIV Root CA Serial 263751",
                "CN=Yubico Attestation Root 1"
            ]
        );
        let fingerprints: Vec<String> = trust.roots.iter().map(fingerprint).collect();
        assert_eq!(
            fingerprints,
            [
                "63ece914e54dd87915f34033c85af4c0696ba1512f8add66ced738331207b546",
                "62760c6a6ef91679f454c8902b80fd009825b3f25da90f1fbace2ec6586cd5a8"
            ]
        );
        for root in &trust.roots {
            verify_signed_by(root, root).expect("a pinned root's own RSA signature verifies");
            assert!(is_ca(root).unwrap());
        }

        // Yubico's published fingerprints of its PIV intermediates.
        let intermediates: Vec<(String, String)> = trust
            .intermediates
            .iter()
            .map(|certificate| {
                (
                    certificate.tbs_certificate.subject.to_string(),
                    fingerprint(certificate),
                )
            })
            .collect();
        let expected = [
            (
                "CN=Yubico Attestation Intermediate A 1",
                "4698a1d3389c3ec60016c216250f1d0439922832d65142327436376dc2942b55",
            ),
            (
                "CN=Yubico Attestation Intermediate B 1",
                "d4cc3f456fdaf4e7812a21aab1dfe9d8e27d24e2fd2d6f21c9940109f0daa754",
            ),
            (
                "CN=Yubico PIV Attestation A 1",
                "6de693f05376f5d8ca29069261e1c8626c75d503bd2edbfd75354cad1f722870",
            ),
            (
                "CN=Yubico PIV Attestation B 1",
                "2d55b7998f4e42569d6d8fa382b6dc77d1dacf07358b19701163892922b17052",
            ),
        ];
        assert_eq!(
            intermediates,
            expected.map(|(subject, hash)| (subject.to_owned(), hash.to_owned()))
        );
        // Each signed by its issuer, up to Yubico Attestation Root 1.
        let root = &trust.roots[1];
        for intermediate in &trust.intermediates {
            assert!(is_ca(intermediate).unwrap());
            let issuer = trust
                .intermediates
                .iter()
                .chain(std::iter::once(root))
                .find(|issuer| {
                    issuer.tbs_certificate.subject == intermediate.tbs_certificate.issuer
                })
                .expect("the issuer is pinned");
            verify_signed_by(intermediate, issuer).unwrap();
        }
    }
}
