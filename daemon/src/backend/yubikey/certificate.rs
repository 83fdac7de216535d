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

pub(super) type Policies = (PinPolicy, TouchPolicy);

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
/// The card writes the same extension into its attestation certificates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct PolicyExtension([u8; 2]);

impl PolicyExtension {
    fn of(metadata: &KeyMetadata) -> Self {
        Self::new(metadata.pin_policy, metadata.touch_policy)
    }

    /// Yubico's numbering (the same bytes PIV GENERATE takes in tags AA/AB).
    pub(super) fn new(pin_policy: PinPolicy, touch_policy: TouchPolicy) -> Self {
        let pin = match pin_policy {
            PinPolicy::Once => 2,
            PinPolicy::Always => 3,
        };
        let touch = match touch_policy {
            TouchPolicy::Never => 1,
            TouchPolicy::Always => 2,
            TouchPolicy::Cached => 3,
        };
        PolicyExtension([pin, touch])
    }

    /// The policies in `certificate`'s policy extension, if it has one.
    pub(super) fn find(certificate: &x509_cert::Certificate) -> Option<Result<Policies, String>> {
        let mut found = certificate
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .filter(|extension| extension.extn_id == POLICY_EXTENSION);
        let extension = found.next()?;
        Some(match found.next() {
            Some(_) => Err("two PIN/touch policy extensions".into()),
            None => Self::read(extension),
        })
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
mod tests;
