//! Tests of `super` (kept apart so the module itself reads as one job).

use super::*;
use x509_cert::builder::{Builder, Profile};
use x509_cert::der::asn1::OctetString;
use x509_cert::der::{Decode, DecodePem};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

fn metadata(gun: &str, role: &str) -> KeyMetadata {
    KeyMetadata {
        gun: gun.parse().unwrap(),
        role: role.parse().unwrap(),
        touch_policy: TouchPolicy::Cached,
        pin_policy: PinPolicy::Always,
        origin: Origin::GeneratedOnDevice,
    }
}

/// A subject of UTF8String attributes, one per RDN, in the given order: the
/// way both releases write it.
fn utf8_name(attributes: &[(ObjectIdentifier, &str)]) -> Name {
    RdnSequence(
        attributes
            .iter()
            .map(|(oid, text)| {
                let value = Any::from(Utf8StringRef::new(text).unwrap());
                let attribute = AttributeTypeAndValue { oid: *oid, value };
                RelativeDistinguishedName(SetOfVec::try_from(vec![attribute]).unwrap())
            })
            .collect(),
    )
}

/// The subject the first release wrote.
fn old_form_subject(role: &str, gun: &str, description: &str) -> Name {
    utf8_name(&[
        (ORGANIZATION, MARKER),
        (ORGANIZATIONAL_UNIT, role),
        (COMMON_NAME, gun),
        (DESCRIPTION, description),
    ])
}

/// A real certificate, self-signed by a fresh P-256 key (as on a card), with
/// whatever extensions `extend` adds; returned after a DER round trip so the
/// tests read what a card would hand back.
fn certificate(
    subject: Name,
    extend: impl FnOnce(
        &mut CertificateBuilder<'_, p256::ecdsa::SigningKey>,
    ) -> x509_cert::der::Result<()>,
) -> x509_cert::Certificate {
    let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).unwrap();
    let mut builder = CertificateBuilder::new(
        Profile::Manual { issuer: None },
        x509_cert::serial_number::SerialNumber::from(7u32),
        x509_cert::time::Validity::from_now(VALIDITY).unwrap(),
        subject,
        spki,
        &key,
    )
    .unwrap();
    extend(&mut builder).unwrap();
    let built = builder.build::<p256::ecdsa::DerSignature>().unwrap();
    x509_cert::Certificate::from_der(&built.to_der().unwrap()).unwrap()
}

fn no_extensions(
    _: &mut CertificateBuilder<'_, p256::ecdsa::SigningKey>,
) -> x509_cert::der::Result<()> {
    Ok(())
}

/// A tufkey certificate as this release writes it.
fn new_form_certificate(metadata: &KeyMetadata) -> x509_cert::Certificate {
    certificate(metadata.subject().unwrap(), |builder| {
        metadata.add_policy_extension(builder)
    })
}

fn push_raw_policy_extension(certificate: &mut x509_cert::Certificate, value: &[u8]) {
    certificate
        .tbs_certificate
        .extensions
        .get_or_insert_with(Vec::new)
        .push(Extension {
            extn_id: POLICY_EXTENSION,
            critical: false,
            extn_value: OctetString::new(value).unwrap(),
        });
}

#[test]
fn metadata_round_trips_through_a_certificate_even_with_rdn_special_characters() {
    for (gun, role, pin_policy, touch_policy) in [
        (
            "docker.io/acme/app",
            "root",
            PinPolicy::Always,
            TouchPolicy::Cached,
        ),
        (
            "example.com/a,b+c=d\"e<f>;g\\h#i",
            "targets/releases",
            PinPolicy::Once,
            TouchPolicy::Never,
        ),
        (
            "example.com/ünïcödé",
            "timestamp",
            PinPolicy::Once,
            TouchPolicy::Always,
        ),
    ] {
        let original = KeyMetadata {
            pin_policy,
            touch_policy,
            ..metadata(gun, role)
        };
        let certificate = new_form_certificate(&original);
        assert_eq!(
            KeyMetadata::from_certificate(&certificate)
                .unwrap()
                .unwrap(),
            original
        );
    }
}

#[test]
fn new_certificates_name_the_owner_only_and_carry_the_policies_in_a_non_critical_extension() {
    let original = metadata("docker.io/acme/app", "targets");
    let certificate = new_form_certificate(&original);
    let subject = &certificate.tbs_certificate.subject;
    assert_eq!(subject, &original.subject().unwrap());
    assert_eq!(
        subject.to_string(),
        "CN=docker.io/acme/app,OU=targets,O=tufkey"
    );
    // Extensions need an X.509 v3 certificate.
    assert_eq!(certificate.tbs_certificate.version, x509_cert::Version::V3);
    let extensions = certificate.tbs_certificate.extensions.as_deref().unwrap();
    assert_eq!(extensions.len(), 1, "{extensions:?}");
    assert_eq!(extensions[0].extn_id, POLICY_EXTENSION);
    assert!(!extensions[0].critical);
    // Without the extension the certificate is damaged: the subject alone no
    // longer says anything about policies.
    let error = KeyMetadata::from_subject(subject).unwrap().unwrap_err();
    assert!(error.contains("description"), "{error}");
}

#[test]
fn the_imported_origin_round_trips_and_generated_keys_carry_no_description() {
    for pin_policy in [PinPolicy::Once, PinPolicy::Always] {
        let imported = KeyMetadata {
            pin_policy,
            origin: Origin::Imported,
            ..metadata("docker.io/acme/app", "root")
        };
        let certificate = new_form_certificate(&imported);
        assert_eq!(
            certificate.tbs_certificate.subject.to_string(),
            "DESCRIPTION=origin=imported,CN=docker.io/acme/app,OU=root,O=tufkey"
        );
        let read = KeyMetadata::from_certificate(&certificate)
            .unwrap()
            .unwrap();
        assert_eq!(read, imported);
        let public_key = p256::SecretKey::random(&mut rand_core::OsRng).public_key();
        let record = read.into_record(
            public_key,
            "2026-01-02T03:04:05Z".into(),
            1002,
            "9c".parse().unwrap(),
        );
        assert_eq!(record.origin, Origin::Imported);
        assert_eq!(record.public_key, public_key);
        assert!(!record.exportable);
        assert_eq!(
            record.location.yubikey(),
            Some(&YubiKeyLocation {
                serial: 1002,
                slot: "9c".parse().unwrap(),
                touch_policy: TouchPolicy::Cached,
                pin_policy,
            })
        );
    }
    let generated = metadata("docker.io/acme/app", "targets");
    let certificate = new_form_certificate(&generated);
    let read = KeyMetadata::from_certificate(&certificate)
        .unwrap()
        .unwrap();
    assert_eq!(read.origin, Origin::GeneratedOnDevice);
    let record = read.into_record(
        p256::SecretKey::random(&mut rand_core::OsRng).public_key(),
        String::new(),
        1001,
        "82".parse().unwrap(),
    );
    assert_eq!(record.origin, Origin::GeneratedOnDevice);
}

#[test]
fn an_unknown_description_or_the_marker_without_the_extension_is_damaged() {
    let policies = metadata("example.com/app", "targets");
    let unknown = old_form_subject("targets", "example.com/app", "origin=stolen");
    let error = KeyMetadata::from_certificate(&certificate(unknown, |builder| {
        policies.add_policy_extension(builder)
    }))
    .unwrap()
    .unwrap_err();
    assert!(
        error.contains("unknown description \"origin=stolen\""),
        "{error}"
    );
    // The marker never stands in for the policies.
    let marker_only = old_form_subject("targets", "example.com/app", IMPORTED);
    let error = KeyMetadata::from_certificate(&certificate(marker_only, no_extensions))
        .unwrap()
        .unwrap_err();
    assert!(error.contains("unknown policy"), "{error}");
}

#[test]
fn the_extension_encodes_each_policy_combination_in_yubicos_numbering() {
    // (ours, Yubico's number, the `yubikey` crate's policy with that number)
    let pins = [
        (PinPolicy::Once, 2u8, yubikey::PinPolicy::Once),
        (PinPolicy::Always, 3, yubikey::PinPolicy::Always),
    ];
    let touches = [
        (TouchPolicy::Never, 1u8, yubikey::TouchPolicy::Never),
        (TouchPolicy::Always, 2, yubikey::TouchPolicy::Always),
        (TouchPolicy::Cached, 3, yubikey::TouchPolicy::Cached),
    ];
    for (pin_policy, pin_byte, yubikey_pin) in pins {
        for (touch_policy, touch_byte, yubikey_touch) in touches {
            assert_eq!(u8::from(yubikey_pin), pin_byte);
            assert_eq!(u8::from(yubikey_touch), touch_byte);
            let metadata = KeyMetadata {
                pin_policy,
                touch_policy,
                ..metadata("example.com/app", "targets")
            };
            let certificate = new_form_certificate(&metadata);
            let extension = &certificate.tbs_certificate.extensions.as_deref().unwrap()[0];
            // SEQUENCE { OID 1.3.6.1.4.1.41482.3.8, OCTET STRING { pin, touch } }
            // (critical FALSE is the default, so DER leaves it out).
            assert_eq!(
                extension.to_der().unwrap(),
                [
                    0x30, 0x10, 0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xc4, 0x0a, 0x03,
                    0x08, 0x04, 0x02, pin_byte, touch_byte
                ],
                "{pin_policy:?} {touch_policy:?}"
            );
            assert_eq!(
                PolicyExtension::read(extension),
                Ok((pin_policy, touch_policy))
            );
        }
    }
}

#[test]
fn certificates_of_the_first_release_still_load_from_the_subject_description() {
    for (description, pin_policy, touch_policy) in [
        ("touch=never;pin=once", PinPolicy::Once, TouchPolicy::Never),
        (
            "touch=cached;pin=always",
            PinPolicy::Always,
            TouchPolicy::Cached,
        ),
        (
            "pin=once;touch=always",
            PinPolicy::Once,
            TouchPolicy::Always,
        ),
    ] {
        let certificate = certificate(
            old_form_subject("targets", "example.com/legacy", description),
            no_extensions,
        );
        assert_eq!(
            KeyMetadata::from_certificate(&certificate)
                .unwrap()
                .unwrap(),
            KeyMetadata {
                gun: "example.com/legacy".parse().unwrap(),
                role: Role::Targets,
                touch_policy,
                pin_policy,
                origin: Origin::GeneratedOnDevice,
            },
            "{description}"
        );
    }
}

#[test]
fn the_extension_wins_over_a_contradicting_description() {
    let certificate = certificate(
        old_form_subject("root", "example.com/app", "touch=never;pin=once"),
        |builder| {
            builder
                .add_extension(&PolicyExtension([3, 3]))
                .map_err(|_| x509_cert::der::ErrorKind::Failed.into())
        },
    );
    let read = KeyMetadata::from_certificate(&certificate)
        .unwrap()
        .unwrap();
    assert_eq!(read.pin_policy, PinPolicy::Always);
    assert_eq!(read.touch_policy, TouchPolicy::Cached);
    assert_eq!(read.role, Role::Root);
    assert_eq!(read.origin, Origin::GeneratedOnDevice);
    // A damaged extension is reported, not silently replaced by the description.
    let mut damaged = certificate.clone();
    damaged.tbs_certificate.extensions = None;
    push_raw_policy_extension(&mut damaged, &[3, 9]);
    let error = KeyMetadata::from_certificate(&damaged)
        .unwrap()
        .unwrap_err();
    assert!(error.contains("touch policy 9"), "{error}");
}

#[test]
fn tufkey_certificates_without_policies_or_with_bad_ones_are_damaged_and_say_why() {
    let owner_only = utf8_name(&[
        (ORGANIZATION, MARKER),
        (ORGANIZATIONAL_UNIT, "targets"),
        (COMMON_NAME, "example.com/app"),
    ]);
    let error = KeyMetadata::from_certificate(&certificate(owner_only.clone(), no_extensions))
        .unwrap()
        .unwrap_err();
    assert!(error.contains("policy extension"), "{error}");

    for (value, reason) in [
        (&[2u8][..], "1 bytes, not 2"),
        (&[2, 1, 0][..], "3 bytes, not 2"),
        (&[1, 1][..], "PIN policy never"),
        (&[0, 1][..], "unknown PIN policy 0"),
        (&[2, 0][..], "unknown touch policy 0"),
    ] {
        let mut certificate = certificate(owner_only.clone(), no_extensions);
        push_raw_policy_extension(&mut certificate, value);
        let error = KeyMetadata::from_certificate(&certificate)
            .unwrap()
            .unwrap_err();
        assert!(error.contains(reason), "{value:?}: {error}");
    }

    let mut twice = new_form_certificate(&metadata("example.com/app", "targets"));
    push_raw_policy_extension(&mut twice, &[2, 1]);
    let error = KeyMetadata::from_certificate(&twice).unwrap().unwrap_err();
    assert!(error.contains("two"), "{error}");

    let bad_description = old_form_subject("targets", "example.com/app", "touch=sometimes");
    let error = KeyMetadata::from_certificate(&certificate(bad_description, no_extensions))
        .unwrap()
        .unwrap_err();
    assert!(error.contains("sometimes"), "{error}");

    let bad_role = utf8_name(&[
        (ORGANIZATION, MARKER),
        (ORGANIZATIONAL_UNIT, "admin"),
        (COMMON_NAME, "example.com/app"),
    ]);
    let policies = metadata("example.com/app", "targets");
    let certificate = certificate(bad_role, |builder| policies.add_policy_extension(builder));
    let error = KeyMetadata::from_certificate(&certificate)
        .unwrap()
        .unwrap_err();
    assert!(error.contains("role"), "{error}");
}

#[test]
fn foreign_certificates_are_not_tufkey_keys_even_with_yubicos_extension() {
    use std::str::FromStr;
    let foreign = Name::from_str("CN=someone else,O=Acme").unwrap();
    assert!(KeyMetadata::from_subject(&foreign).is_none());
    assert!(KeyMetadata::from_certificate(&certificate(foreign.clone(), no_extensions)).is_none());
    let mut with_policies = certificate(foreign, no_extensions);
    push_raw_policy_extension(&mut with_policies, &[2, 1]);
    assert!(KeyMetadata::from_certificate(&with_policies).is_none());
    // Yubico's own root CA: no tufkey marker either.
    let root = x509_cert::Certificate::from_pem(include_str!("../yubico-piv-root-ca.pem")).unwrap();
    assert!(KeyMetadata::from_certificate(&root).is_none());
}

/// `add_policy_extension` is what the `extensions` closure of `yubikey`'s
/// `Certificate::generate_self_signed` calls: this only has to compile.
#[test]
fn the_policy_extension_fits_the_closure_yubikey_generate_self_signed_takes() {
    fn takes_generate_self_signed_closure<F>(_: F)
    where
        F: FnOnce(
            &mut CertificateBuilder<
                '_,
                yubikey::certificate::yubikey_signer::Signer<'_, p256::NistP256>,
            >,
        ) -> x509_cert::der::Result<()>,
    {
    }
    let metadata = metadata("example.com/app", "root");
    takes_generate_self_signed_closure(|builder| metadata.add_policy_extension(builder));
}

#[test]
fn certificate_objects_are_unwrapped_and_empty_ones_are_no_certificate() {
    assert!(certificate_in_object(&[]).is_none());
    assert!(certificate_in_object(&[0x70, 0x00, 0x71, 0x01, 0x00]).is_none());
    let pem = include_str!("../yubico-piv-root-ca.pem");
    let root = x509_cert::Certificate::from_pem(pem).unwrap();
    let der = root.to_der().unwrap();
    let mut object = vec![0x70, 0x82];
    object.extend_from_slice(&u16::try_from(der.len()).unwrap().to_be_bytes());
    object.extend_from_slice(&der);
    object.extend_from_slice(&[0x71, 0x01, 0x00, 0xfe, 0x00]);
    assert_eq!(certificate_in_object(&object), Some(root));
    assert_eq!(object_id(0x9c), 0x5fc10a);
    assert_eq!(object_id(0x82), 0x5fc10d);
    assert_eq!(object_id(0x95), 0x5fc120);
    assert_eq!(object_id(0xf9), 0x5fff01);
}
