//! The optional TCP listener: mutual TLS (rustls through tonic), and an optional
//! allow-list of client certificate subjects checked on every request.
//!
//! The handshake itself refuses clients without a certificate from the configured
//! CA. No SNI is needed: notary-server sends none when it dials an IP address.

use crate::config::TcpListenerConfig;
use crate::error::{Error, Result};
use std::path::Path;
use std::sync::Arc;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Status};
use x509_cert::der::Decode;

/// The server side of mutual TLS: our identity, and the CA every client must chain to.
pub fn server_tls_config(config: &TcpListenerConfig) -> Result<ServerTlsConfig> {
    // Fails only when a provider is already installed, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = read_pem(&config.cert, "reading TLS certificate")?;
    let key = read_pem(&config.key, "reading TLS key")?;
    let client_ca = read_pem(&config.client_ca, "reading TLS client CA")?;
    Ok(ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .client_ca_root(Certificate::from_pem(client_ca))
        .client_auth_optional(false))
}

/// Binds the TCP listener (Nagle off: every RPC is a small request/response).
pub fn bind(config: &TcpListenerConfig) -> Result<TcpIncoming> {
    let incoming = TcpIncoming::bind(config.listen).map_err(|source| Error::Io {
        action: "listening on TCP",
        path: config.listen.to_string().into(),
        source,
    })?;
    Ok(incoming.with_nodelay(Some(true)))
}

fn read_pem(path: &Path, action: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(Error::io(action, path))
}

/// Client certificate subjects (common names) allowed over TCP; empty allows any
/// certificate the TLS handshake accepted.
#[derive(Clone, Debug)]
pub struct SubjectAllowList {
    common_names: Arc<[String]>,
}

impl SubjectAllowList {
    /// Allows exactly `common_names` (or every verified client when empty).
    pub fn new(common_names: Vec<String>) -> Self {
        SubjectAllowList {
            common_names: common_names.into(),
        }
    }

    /// A tonic interceptor: passes callers whose certificate subject is allowed.
    pub fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        let certificates = request.peer_certs().ok_or_else(|| {
            Error::PeerUnknown("the TLS connection carries no client certificate".into())
        })?;
        if self.common_names.is_empty() {
            return Ok(request);
        }
        let leaf = certificates.first().ok_or_else(|| {
            Error::PeerUnknown("the TLS connection carries no client certificate".into())
        })?;
        let presented = subject_common_names(leaf.as_ref())?;
        if presented
            .iter()
            .any(|name| self.common_names.contains(name))
        {
            return Ok(request);
        }
        tracing::warn!(subject = ?presented, "refused a TLS client whose subject is not on the allow-list");
        Err(Error::SubjectNotAllowed {
            subject: presented.join(", "),
            allowed: self.common_names.join(", "),
        }
        .into())
    }
}

/// The subject common names of a DER certificate.
fn subject_common_names(der: &[u8]) -> Result<Vec<String>> {
    let certificate = x509_cert::Certificate::from_der(der)
        .map_err(|error| Error::PeerUnknown(format!("unparsable client certificate: {error}")))?;
    let names = certificate
        .tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|attribute| attribute.oid == x509_cert::der::oid::db::rfc4519::CN)
        .filter_map(|attribute| directory_string(&attribute.value))
        .collect();
    Ok(names)
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
    fn common_names_are_read_from_the_subject_not_the_organisation() {
        let der = base64::engine::general_purpose::STANDARD
            .decode(NOTARY_SERVER_CERT)
            .unwrap();
        assert_eq!(subject_common_names(&der).unwrap(), vec!["notary-server"]);
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let error = subject_common_names(b"not DER").unwrap_err().to_string();
        assert!(error.contains("unparsable client certificate"), "{error}");
    }
}
