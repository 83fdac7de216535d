//! Who is calling: a [`Caller`] built from what the transport can prove, never from
//! anything the caller says about itself. On the Unix socket that is the kernel's
//! SO_PEERCRED (uid, gid, pid at connect) plus the executable `/proc/<pid>/exe`
//! points to (best effort: the process may be gone, or /proc hidden); over TCP it is
//! the client certificate the TLS handshake verified against the client CA.
//!
//! The interceptors in `peer.rs` and `tls.rs` put the result into every request's
//! extensions; the policy decides on it and the audit log records it.

use crate::access::Caller;
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::PathBuf;
use tonic::transport::server::UdsConnectInfo;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;

/// The caller behind a Unix-socket connection.
pub fn unix_caller(info: &UdsConnectInfo) -> Result<Caller> {
    let credentials = info
        .peer_cred
        .ok_or_else(|| Error::PeerUnknown("the socket gave no peer credentials".into()))?;
    let pid = credentials.pid();
    Ok(Caller::Unix {
        uid: credentials.uid(),
        gid: credentials.gid(),
        pid,
        exe: pid.and_then(executable),
    })
}

/// What `/proc/<pid>/exe` points to, if it can be read (a process of another uid
/// usually cannot be inspected unless the daemon runs as root or that uid).
fn executable(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// The caller a (verified) DER client certificate identifies: its subject common
/// name, DNS and URI subject alternative names, and the SHA-256 of its
/// SubjectPublicKeyInfo (stable across re-issued certificates for the same key).
pub fn certificate_caller(der: &[u8]) -> Result<Caller> {
    let unparsable = |error: x509_cert::der::Error| {
        Error::PeerUnknown(format!("unparsable client certificate: {error}"))
    };
    let certificate = x509_cert::Certificate::from_der(der).map_err(unparsable)?;
    let tbs = &certificate.tbs_certificate;
    let common_name = tbs
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|attribute| attribute.oid == x509_cert::der::oid::db::rfc4519::CN)
        .find_map(|attribute| directory_string(&attribute.value));
    let sans = match tbs.get::<SubjectAltName>().map_err(unparsable)? {
        Some((_, SubjectAltName(names))) => names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DnsName(name) => Some(name.to_string()),
                GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
                _ => None,
            })
            .collect(),
        None => Vec::new(),
    };
    let spki = tbs.subject_public_key_info.to_der().map_err(unparsable)?;
    Ok(Caller::Tls {
        common_name,
        sans,
        spki_sha256: hex::encode(Sha256::digest(spki)),
    })
}

fn directory_string(value: &x509_cert::der::Any) -> Option<String> {
    use x509_cert::der::asn1::{PrintableStringRef, Utf8StringRef};
    if let Ok(text) = value.decode_as::<Utf8StringRef<'_>>() {
        return Some(text.as_str().to_owned());
    }
    value
        .decode_as::<PrintableStringRef<'_>>()
        .ok()
        .map(|text| text.as_str().to_owned())
}

/// The short name a denial starts with: `uid 1000`, `TLS client CN=notary-server`.
pub fn short_name(caller: &Caller) -> String {
    match caller {
        Caller::Unix { uid, .. } => format!("uid {uid}"),
        Caller::Tls {
            common_name: Some(name),
            ..
        } => format!("TLS client CN={name}"),
        Caller::Tls { spki_sha256, .. } => format!("TLS client with key SHA-256 {spki_sha256}"),
    }
}

/// Everything known about the caller, for messages and logs.
impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Unix { uid, gid, pid, exe } => {
                write!(f, "uid {uid}, gid {gid}")?;
                if let Some(pid) = pid {
                    write!(f, ", pid {pid}")?;
                }
                if let Some(exe) = exe {
                    write!(f, ", {}", exe.display())?;
                }
                Ok(())
            }
            Caller::Tls {
                common_name,
                sans,
                spki_sha256,
            } => {
                write!(f, "TLS client")?;
                if let Some(name) = common_name {
                    write!(f, " CN={name}")?;
                }
                if !sans.is_empty() {
                    write!(f, " SAN {}", sans.join(","))?;
                }
                write!(f, " (SPKI SHA-256 {spki_sha256})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    /// `openssl req -x509 -subj "/O=tufkey tests/CN=notary-server"` (P-256, self-signed), DER.
    const NOTARY_SERVER_CERT: &str = "\
MIIBsjCCAVmgAwIBAgIUcJKxWT+S57Gb0A1sTnnXoEsojNIwCgYIKoZIzj0EAwIwLzEVMBMGA1UE\
CgwMdHVma2V5IHRlc3RzMRYwFAYDVQQDDA1ub3Rhcnktc2VydmVyMB4XDTI2MTEyNjIyMzcwMFoX\
DTM2MTEyMzIyMzcwMFowLzEVMBMGA1UECgwMdHVma2V5IHRlc3RzMRYwFAYDVQQDDA1ub3Rhcnkt\
c2VydmVyMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqmQCLn66fut7DqOOvbVuaZSqtHT3EvHj\
D5j6zmyhhzsiEHw0sArHt0ZQTWpQqUspY4elmDeHK9qdBYlp/Mb5c6NTMFEwHQYDVR0OBBYEFKnz\
fMazNsyXFtRa9jrqdY8T9VShMB8GA1UdIwQYMBaAFKnzfMazNsyXFtRa9jrqdY8T9VShMA8GA1Ud\
EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgCdXvy7CpPcO57KRllI3UXyvJS69ZQqHH1+tI\
VvNewEICICdHh/2vWwlbYcKbQOi0hYGR5rxvPl0PtESog0KcUyFZ";

    #[test]
    fn a_certificate_names_its_subject_cn_and_public_key_not_the_organisation() {
        let der = base64::engine::general_purpose::STANDARD
            .decode(NOTARY_SERVER_CERT)
            .unwrap();
        let Caller::Tls {
            common_name,
            sans,
            spki_sha256,
        } = certificate_caller(&der).unwrap()
        else {
            panic!("a certificate makes a TLS caller");
        };
        assert_eq!(common_name.as_deref(), Some("notary-server"));
        assert!(sans.is_empty());
        // openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum
        assert_eq!(
            spki_sha256,
            "9bb69b32dc838f05ccc71cac616470ddb9758ab018177766611171ce0b39890a"
        );
    }

    /// `openssl req -x509 -subj /CN=ci-signer -addext
    /// subjectAltName=DNS:signer.example,URI:spiffe://acme/ci,IP:127.0.0.1`, DER.
    const SAN_CERT: &str = "\
MIIBsTCCAVigAwIBAgIUIsTXgoRQJkaBPqM71b5cG1PigC4wCgYIKoZIzj0EAwIwFDESMBAGA1UE\
AwwJY2ktc2lnbmVyMB4XDTI2MTEyNzIzNDU0MloXDTM2MTEyNDIzNDU0MlowFDESMBAGA1UEAwwJ\
Y2ktc2lnbmVyMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEnnupYr8dwZSx0EvV6Ny9UBr6I8ON\
DeFaOMEvJCoy3g7kSFF6Eh2pxfnBbuqMWHHPV8fktNZ03Aj3xPj2RzA0jqOBhzCBhDAdBgNVHQ4E\
FgQU5n8EYgHq7+slpoxt78ff3ufI3kAwHwYDVR0jBBgwFoAU5n8EYgHq7+slpoxt78ff3ufI3kAw\
DwYDVR0TAQH/BAUwAwEB/zAxBgNVHREEKjAogg5zaWduZXIuZXhhbXBsZYYQc3BpZmZlOi8vYWNt\
ZS9jaYcEfwAAATAKBggqhkjOPQQDAgNHADBEAiBD2RLZedLHc3ydPdIuoZf+UKqPJ0OiOPNxW+C1\
s33qcgIgNO/loRaK9adJ+CaJDXlOIIkK3SntYcH0TocXzksgLpg=";

    #[test]
    fn dns_and_uri_sans_are_read_and_ip_sans_are_not() {
        let der = base64::engine::general_purpose::STANDARD
            .decode(SAN_CERT)
            .unwrap();
        assert_eq!(
            certificate_caller(&der).unwrap(),
            Caller::Tls {
                common_name: Some("ci-signer".into()),
                sans: vec!["signer.example".into(), "spiffe://acme/ci".into()],
                spki_sha256: "f4fe472aea5f3069231b23c0cc1751cbaee6b8f10d9b7b86b1d3266e09c75c62"
                    .into(),
            }
        );
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let error = certificate_caller(b"not DER").unwrap_err().to_string();
        assert!(error.contains("unparsable client certificate"), "{error}");
    }

    #[test]
    fn callers_describe_themselves_for_messages() {
        let unix = Caller::Unix {
            uid: 1000,
            gid: 100,
            pid: Some(42),
            exe: Some("/usr/bin/tufkey".into()),
        };
        assert_eq!(short_name(&unix), "uid 1000");
        assert_eq!(
            unix.to_string(),
            "uid 1000, gid 100, pid 42, /usr/bin/tufkey"
        );
        let tls = Caller::Tls {
            common_name: Some("notary-server".into()),
            sans: vec!["spiffe://acme/notary".into()],
            spki_sha256: "ab".into(),
        };
        assert_eq!(short_name(&tls), "TLS client CN=notary-server");
        assert_eq!(
            tls.to_string(),
            "TLS client CN=notary-server SAN spiffe://acme/notary (SPKI SHA-256 ab)"
        );
    }
}
