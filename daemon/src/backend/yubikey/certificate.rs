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
    fn foreign_certificates_are_not_tufkey_keys_and_damaged_ones_say_why() {
        use std::str::FromStr;
        let foreign = Name::from_str("CN=someone else,O=Acme").unwrap();
        assert!(KeyMetadata::from_subject(&foreign).is_none());
        let damaged = Name::from_str("CN=docker.io/x,OU=admin,O=tufkey").unwrap();
        let error = KeyMetadata::from_subject(&damaged).unwrap().unwrap_err();
        assert!(error.contains("role"), "{error}");
    }
}
