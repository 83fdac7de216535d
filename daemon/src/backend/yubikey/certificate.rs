//! The self-signed certificate tufkey writes into a slot next to each key. It
//! records who the key belongs to, so any host rediscovers tufkey keys from the
//! device alone (the software store is not needed):
//!
//! ```text
//! subject      O=tufkey, OU=<role>, CN=<gun>[, description=origin=imported]
//!              (each a UTF8String; CN = GUN as in Notary's root certificates)
//! extension    1.3.6.1.4.1.41482.3.8 (non-critical): PIN policy, touch policy
//! notBefore    the key's creation time
//! public key   the slot's key; the certificate is signed by it (on the device)
//! ```
//!
//! The policies sit in Yubico's own PIN/touch policy extension, the one YubiKeys
//! put in their PIV attestation certificates (an OCTET STRING holding two bytes,
//! PIN policy then touch policy, numbered as in the PIV commands: PIN 1 never,
//! 2 once, 3 always; touch 1 never, 2 always, 3 cached). Tools that read a key's
//! policies from its attestation understand it, age-plugin-yubikey records its
//! own keys' policies the same way, and it keeps the subject a plain name.
//!
//! The first release wrote the policies into the subject instead, as
//! `description=touch=<policy>;pin=<policy>`. Cards carry those certificates
//! for as long as the key lives, so they are still read: the extension wins
//! when present, the description is the fallback. A tufkey certificate with
//! neither is damaged.
//!
//! A key imported onto the card (moved from software, or put on a spare card)
//! says so with `description=origin=imported`, so every host reports its origin
//! and never presents it as attestable. Only certificates with the policy
//! extension read the description this way; a certificate without it (the first
//! release's, all generated on the card) and one without a description are of
//! keys generated on the device. The origin goes in the subject because tufkey
//! owns no OID arc for an extension of its own (and `2.25.<UUID>` arcs are too
//! large for the `der` crate); a reader that knows the extension but not the
//! origin (the daemon before imports existed) ignores the description and still
//! reads the key, as generated on the device.
//!
//! Certificates whose subject lacks `O=tufkey` belong to other tools and are left
//! alone.

use super::slots;
use crate::keys::{Gun, KeyRecord, Origin, PinPolicy, PivSlot, Role, TouchPolicy, YubiKeyLocation};
use std::time::Duration;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::CertificateBuilder;
use x509_cert::der::asn1::{SetOfVec, Utf8StringRef};
use x509_cert::der::oid::{AssociatedOid, ObjectIdentifier};
use x509_cert::der::{Any, Encode, Length, Tag, Tagged, Writer};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::spki::{DynSignatureAlgorithmIdentifier, EncodePublicKey};

const ORGANIZATION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
const ORGANIZATIONAL_UNIT: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
/// Only read: where the first release kept the policies.
const DESCRIPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.13");
/// Yubico's PIN and touch policy extension (PIV attestation).
const POLICY_EXTENSION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");
const MARKER: &str = "tufkey";
/// The description of an imported key's certificate (the only one written).
const IMPORTED: &str = "origin=imported";
/// Long enough to never matter; TUF metadata carries its own expiry.
pub const VALIDITY: Duration = Duration::from_secs(20 * 365 * 24 * 60 * 60);

/// What the certificate says about its key.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyMetadata {
    pub gun: Gun,
    pub role: Role,
    pub touch_policy: TouchPolicy,
    pub pin_policy: PinPolicy,
    /// Generated on the device, or imported onto it (never [`Origin::Generated`],
    /// which is software's).
    pub origin: Origin,
}

impl KeyMetadata {
    /// The certificate subject naming this key's owner: `O=tufkey, OU=<role>,
    /// CN=<gun>`, plus `description=origin=imported` for an imported key. The
    /// policies go in the extension ([`Self::add_policy_extension`]).
    pub fn subject(&self) -> Result<Name, String> {
        let imported = (self.origin == Origin::Imported).then_some((DESCRIPTION, IMPORTED));
        let rdns = [
            (ORGANIZATION, MARKER),
            (ORGANIZATIONAL_UNIT, self.role.as_str()),
            (COMMON_NAME, self.gun.as_str()),
        ]
        .into_iter()
        .chain(imported)
        .map(|(oid, text)| {
            let value = Utf8StringRef::new(text).map_err(|error| error.to_string())?;
            let attribute = AttributeTypeAndValue {
                oid,
                value: Any::from(value),
            };
            SetOfVec::try_from(vec![attribute])
                .map(RelativeDistinguishedName)
                .map_err(|error| error.to_string())
        })
        .collect::<Result<Vec<_>, String>>()?;
        Ok(RdnSequence(rdns))
    }

    /// Adds Yubico's policy extension recording this key's PIN and touch
    /// policies. Its signature fits the `extensions` closure of `yubikey`'s
    /// `Certificate::generate_self_signed` (which wants a `der::Result`).
    pub fn add_policy_extension<S>(
        &self,
        builder: &mut CertificateBuilder<'_, S>,
    ) -> x509_cert::der::Result<()>
    where
        S: p256::ecdsa::signature::Keypair + DynSignatureAlgorithmIdentifier,
        S::VerifyingKey: EncodePublicKey,
    {
        builder
            .add_extension(&PolicyExtension::of(self))
            .map_err(|error| match error {
                x509_cert::builder::Error::Asn1(error) => error,
                // Adding an extension only encodes it; nothing else can fail.
                _ => x509_cert::der::ErrorKind::Failed.into(),
            })
    }

    /// The record of the key this metadata describes, in `slot` of card `serial`.
    pub fn into_record(
        self,
        public_key: p256::PublicKey,
        created_at: String,
        serial: u32,
        slot: PivSlot,
    ) -> KeyRecord {
        let record = KeyRecord::on_yubikey(
            public_key,
            self.gun,
            self.role,
            created_at,
            YubiKeyLocation {
                serial,
                slot,
                touch_policy: self.touch_policy,
                pin_policy: self.pin_policy,
            },
        );
        KeyRecord {
            origin: self.origin,
            ..record
        }
    }

    /// Reads the metadata back from a slot's certificate: `None` if the
    /// certificate is not tufkey's, `Some(Err)` if it is but is damaged. The
    /// policies come from Yubico's extension, or, in certificates of the first
    /// release, from the subject's description; the origin from the description
    /// next to the extension.
    pub fn from_certificate(certificate: &x509_cert::Certificate) -> Option<Result<Self, String>> {
        let tbs = &certificate.tbs_certificate;
        let mut policy_extensions = tbs
            .extensions
            .iter()
            .flatten()
            .filter(|extension| extension.extn_id == POLICY_EXTENSION);
        let Some(extension) = policy_extensions.next() else {
            return Self::from_subject(&tbs.subject);
        };
        let fields = SubjectFields::read(&tbs.subject)?;
        Some(if policy_extensions.next().is_some() {
            Err("two PIN/touch policy extensions".into())
        } else {
            PolicyExtension::read(extension).and_then(|policies| {
                let origin = parse_origin(fields.description)?;
                fields.metadata(policies, origin)
            })
        })
    }

    /// Reads the metadata from a subject alone, the way the first release wrote
    /// it (policies in `description=touch=<policy>;pin=<policy>`): `None` if
    /// the certificate is not tufkey's, `Some(Err)` if it is but is damaged.
    /// Only for certificates without the policy extension ([`Self::from_certificate`]);
    /// that release only generated keys on the device.
    fn from_subject(subject: &Name) -> Option<Result<Self, String>> {
        let fields = SubjectFields::read(subject)?;
        Some(
            fields
                .description
                .ok_or_else(|| "no PIN/touch policy extension and no description (policies)".into())
                .and_then(parse_description)
                .and_then(|policies| fields.metadata(policies, Origin::GeneratedOnDevice)),
        )
    }
}

/// The subject attributes tufkey reads, each as text if it is a UTF8String.
struct SubjectFields<'a> {
    role: Option<&'a str>,
    gun: Option<&'a str>,
    description: Option<&'a str>,
}

impl<'a> SubjectFields<'a> {
    /// `None` unless the subject carries tufkey's `O=tufkey` marker.
    fn read(subject: &'a Name) -> Option<Self> {
        let mut organization = None;
        let mut fields = SubjectFields {
            role: None,
            gun: None,
            description: None,
        };
        for attribute in subject.0.iter().flat_map(|rdn| rdn.0.iter()) {
            let text = (attribute.value.tag() == Tag::Utf8String)
                .then(|| std::str::from_utf8(attribute.value.value()).ok())
                .flatten();
            let field = match attribute.oid {
                ORGANIZATION => &mut organization,
                ORGANIZATIONAL_UNIT => &mut fields.role,
                COMMON_NAME => &mut fields.gun,
                DESCRIPTION => &mut fields.description,
                _ => continue,
            };
            *field = text;
        }
        (organization == Some(MARKER)).then_some(fields)
    }

    fn metadata(
        &self,
        (pin_policy, touch_policy): Policies,
        origin: Origin,
    ) -> Result<KeyMetadata, String> {
        let gun = self
            .gun
            .ok_or("no CN (gun)")?
            .parse()
            .map_err(|error: <Gun as std::str::FromStr>::Err| error.to_string())?;
        let role = self
            .role
            .ok_or("no OU (role)")?
            .parse()
            .map_err(|error: <Role as std::str::FromStr>::Err| error.to_string())?;
        Ok(KeyMetadata {
            gun,
            role,
            touch_policy,
            pin_policy,
            origin,
        })
    }
}

type Policies = (PinPolicy, TouchPolicy);

/// The origin a description next to the policy extension records: [`IMPORTED`]
/// for an imported key; none (or first-release policies, which the extension
/// overrides) for a key generated on the device.
fn parse_origin(description: Option<&str>) -> Result<Origin, String> {
    match description {
        Some(IMPORTED) => Ok(Origin::Imported),
        None => Ok(Origin::GeneratedOnDevice),
        Some(policies) if parse_description(policies).is_ok() => Ok(Origin::GeneratedOnDevice),
        Some(other) => Err(format!(
            "unknown description {other:?} (tufkey writes only {IMPORTED:?})"
        )),
    }
}

/// The first release's `touch=<policy>;pin=<policy>`.
fn parse_description(description: &str) -> Result<Policies, String> {
    let mut touch_policy = None;
    let mut pin_policy = None;
    for item in description.split(';') {
        match item.split_once('=') {
            Some(("touch", "never")) => touch_policy = Some(TouchPolicy::Never),
            Some(("touch", "cached")) => touch_policy = Some(TouchPolicy::Cached),
            Some(("touch", "always")) => touch_policy = Some(TouchPolicy::Always),
            Some(("pin", "once")) => pin_policy = Some(PinPolicy::Once),
            Some(("pin", "always")) => pin_policy = Some(PinPolicy::Always),
            _ => return Err(format!("unknown policy {item:?}")),
        }
    }
    Ok((
        pin_policy.ok_or("no PIN policy")?,
        touch_policy.ok_or("no touch policy")?,
    ))
}

/// Yubico's policy extension. Its value is the two policy bytes themselves
/// (the extension's OCTET STRING holds them directly, no inner DER), so the
/// `Encode` here writes exactly those bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
struct PolicyExtension([u8; 2]);

impl PolicyExtension {
    fn of(metadata: &KeyMetadata) -> Self {
        // Yubico's numbering (the same bytes PIV GENERATE takes in tags AA/AB).
        let pin = match metadata.pin_policy {
            PinPolicy::Once => 2,
            PinPolicy::Always => 3,
        };
        let touch = match metadata.touch_policy {
            TouchPolicy::Never => 1,
            TouchPolicy::Always => 2,
            TouchPolicy::Cached => 3,
        };
        PolicyExtension([pin, touch])
    }

    fn read(extension: &Extension) -> Result<Policies, String> {
        let [pin, touch] = extension.extn_value.as_bytes() else {
            return Err(format!(
                "the PIN/touch policy extension holds {} bytes, not 2",
                extension.extn_value.as_bytes().len()
            ));
        };
        let pin_policy = match pin {
            2 => PinPolicy::Once,
            3 => PinPolicy::Always,
            1 => return Err("PIN policy never, which tufkey keys never have".into()),
            other => return Err(format!("unknown PIN policy {other}")),
        };
        let touch_policy = match touch {
            1 => TouchPolicy::Never,
            2 => TouchPolicy::Always,
            3 => TouchPolicy::Cached,
            other => return Err(format!("unknown touch policy {other}")),
        };
        Ok((pin_policy, touch_policy))
    }
}

impl AssociatedOid for PolicyExtension {
    const OID: ObjectIdentifier = POLICY_EXTENSION;
}

impl Encode for PolicyExtension {
    fn encoded_len(&self) -> x509_cert::der::Result<Length> {
        Length::try_from(self.0.len())
    }

    fn encode(&self, writer: &mut impl Writer) -> x509_cert::der::Result<()> {
        writer.write(&self.0)
    }
}

impl AsExtension for PolicyExtension {
    /// Non-critical: a verifier that does not know Yubico's extension may still
    /// accept the certificate.
    fn critical(&self, _subject: &Name, _extensions: &[Extension]) -> bool {
        false
    }
}

/// The certificate in `slot`, if there is one. Reads the data object itself:
/// `yubikey` 0.8's `Certificate::read` panics on an emptied object (what
/// `Certificate::delete` leaves behind).
pub fn read(yubikey: &mut yubikey::YubiKey, slot: u8) -> Option<x509_cert::Certificate> {
    let object = yubikey.fetch_object(object_id(slot)).ok()?;
    certificate_in_object(&object)
}

/// The PIV data object holding a slot's certificate (SP 800-73-4, table 3).
fn object_id(slot: u8) -> u32 {
    match slot {
        slots::SIGNATURE => 0x005f_c10a,
        slots::ATTESTATION => 0x005f_ff01,
        retired => 0x005f_c10d + u32::from(retired.saturating_sub(*slots::RETIRED.start())),
    }
}

/// A certificate object is `70 <certificate> 71 <info> FE <lrc>`; empty when deleted.
fn certificate_in_object(object: &[u8]) -> Option<x509_cert::Certificate> {
    use x509_cert::der::{asn1::AnyRef, Decode, Reader, SliceReader};
    let mut reader = SliceReader::new(object).ok()?;
    if reader.peek_byte()? != 0x70 {
        return None;
    }
    let wrapped = AnyRef::decode(&mut reader).ok()?;
    x509_cert::Certificate::from_der(wrapped.value()).ok()
}

/// The certificate's notBefore as RFC 3339 UTC: the key's creation time.
pub fn created_at(certificate: &x509_cert::Certificate) -> String {
    let since_epoch = certificate
        .tbs_certificate
        .validity
        .not_before
        .to_unix_duration();
    i64::try_from(since_epoch.as_secs())
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
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
                        0x30, 0x10, 0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xc4, 0x0a,
                        0x03, 0x08, 0x04, 0x02, pin_byte, touch_byte
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
        assert!(
            KeyMetadata::from_certificate(&certificate(foreign.clone(), no_extensions)).is_none()
        );
        let mut with_policies = certificate(foreign, no_extensions);
        push_raw_policy_extension(&mut with_policies, &[2, 1]);
        assert!(KeyMetadata::from_certificate(&with_policies).is_none());
        // Yubico's own root CA: no tufkey marker either.
        let root =
            x509_cert::Certificate::from_pem(include_str!("yubico-piv-root-ca.pem")).unwrap();
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
        let pem = include_str!("yubico-piv-root-ca.pem");
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
}
