//! The self-signed certificate tufkey writes into a slot next to each key. It
//! records who the key belongs to, so any host rediscovers tufkey keys from the
//! device alone (the software store is not needed):
//!
//! ```text
//! subject      O=tufkey, OU=<role>, CN=<gun>, description=touch=<policy>;pin=<policy>
//!              (each a UTF8String; CN = GUN as in Notary's root certificates)
//! notBefore    the key's creation time
//! public key   the slot's key; the certificate is signed by it (on the device)
//! ```
//!
//! Certificates whose subject lacks `O=tufkey` belong to other tools and are left
//! alone.

use super::slots;
use crate::keys::{Gun, PinPolicy, Role, TouchPolicy};
use std::time::Duration;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::der::asn1::{SetOfVec, Utf8StringRef};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Any, Tag, Tagged};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

const ORGANIZATION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
const ORGANIZATIONAL_UNIT: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const DESCRIPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.13");
const MARKER: &str = "tufkey";
/// Long enough to never matter; TUF metadata carries its own expiry.
pub const VALIDITY: Duration = Duration::from_secs(20 * 365 * 24 * 60 * 60);

/// What the certificate says about its key.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyMetadata {
    pub gun: Gun,
    pub role: Role,
    pub touch_policy: TouchPolicy,
    pub pin_policy: PinPolicy,
}

impl KeyMetadata {
    /// The certificate subject recording this metadata.
    pub fn subject(&self) -> Result<Name, String> {
        let policies = format!(
            "touch={};pin={}",
            self.touch_policy.as_str(),
            self.pin_policy.as_str()
        );
        let rdns = [
            (ORGANIZATION, MARKER),
            (ORGANIZATIONAL_UNIT, self.role.as_str()),
            (COMMON_NAME, self.gun.as_str()),
            (DESCRIPTION, policies.as_str()),
        ]
        .into_iter()
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

    /// Reads the metadata back from a subject: `None` if the certificate is not
    /// tufkey's, `Some(Err)` if it is but is damaged.
    pub fn from_subject(subject: &Name) -> Option<Result<Self, String>> {
        let mut organization = None;
        let mut role = None;
        let mut gun = None;
        let mut policies = None;
        for attribute in subject.0.iter().flat_map(|rdn| rdn.0.iter()) {
            let text = (attribute.value.tag() == Tag::Utf8String)
                .then(|| std::str::from_utf8(attribute.value.value()).ok())
                .flatten();
            let field = match attribute.oid {
                ORGANIZATION => &mut organization,
                ORGANIZATIONAL_UNIT => &mut role,
                COMMON_NAME => &mut gun,
                DESCRIPTION => &mut policies,
                _ => continue,
            };
            *field = text;
        }
        if organization != Some(MARKER) {
            return None;
        }
        Some(Self::parse_fields(gun, role, policies))
    }

    fn parse_fields(
        gun: Option<&str>,
        role: Option<&str>,
        policies: Option<&str>,
    ) -> Result<Self, String> {
        let gun = gun
            .ok_or("no CN (gun)")?
            .parse()
            .map_err(|e: crate::error::Error| e.to_string())?;
        let role = role
            .ok_or("no OU (role)")?
            .parse()
            .map_err(|e: crate::error::Error| e.to_string())?;
        let mut touch_policy = None;
        let mut pin_policy = None;
        for item in policies.ok_or("no description (policies)")?.split(';') {
            match item.split_once('=') {
                Some(("touch", "never")) => touch_policy = Some(TouchPolicy::Never),
                Some(("touch", "cached")) => touch_policy = Some(TouchPolicy::Cached),
                Some(("touch", "always")) => touch_policy = Some(TouchPolicy::Always),
                Some(("pin", "once")) => pin_policy = Some(PinPolicy::Once),
                Some(("pin", "always")) => pin_policy = Some(PinPolicy::Always),
                _ => return Err(format!("unknown policy {item:?}")),
            }
        }
        Ok(KeyMetadata {
            gun,
            role,
            touch_policy: touch_policy.ok_or("no touch policy")?,
            pin_policy: pin_policy.ok_or("no PIN policy")?,
        })
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

    fn metadata(gun: &str, role: &str) -> KeyMetadata {
        KeyMetadata {
            gun: gun.parse().unwrap(),
            role: role.parse().unwrap(),
            touch_policy: TouchPolicy::Cached,
            pin_policy: PinPolicy::Always,
        }
    }

    #[test]
    fn metadata_round_trips_through_the_subject_even_with_rdn_special_characters() {
        for (gun, role) in [
            ("docker.io/acme/app", "root"),
            ("example.com/a,b+c=d\"e", "targets/releases"),
        ] {
            let original = metadata(gun, role);
            let subject = original.subject().unwrap();
            assert_eq!(
                KeyMetadata::from_subject(&subject).unwrap().unwrap(),
                original
            );
        }
    }

    #[test]
    fn certificate_objects_are_unwrapped_and_empty_ones_are_no_certificate() {
        assert!(certificate_in_object(&[]).is_none());
        assert!(certificate_in_object(&[0x70, 0x00, 0x71, 0x01, 0x00]).is_none());
        let pem = include_str!("yubico-piv-root-ca.pem");
        let root = <x509_cert::Certificate as x509_cert::der::DecodePem>::from_pem(pem).unwrap();
        let der = x509_cert::der::Encode::to_der(&root).unwrap();
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

    #[test]
    fn foreign_certificates_are_not_tufkey_keys_and_damaged_ones_say_why() {
        use std::str::FromStr;
        let foreign = Name::from_str("CN=someone else,O=Acme").unwrap();
        assert!(KeyMetadata::from_subject(&foreign).is_none());
        let damaged = Name::from_str("CN=docker.io/x,OU=admin,O=tufkey").unwrap();
        let error = KeyMetadata::from_subject(&damaged).unwrap().unwrap_err();
        assert!(error.contains("role"), "{error}");
    }
}
