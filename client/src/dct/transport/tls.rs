//! The rustls client configuration, built here (not by reqwest) so the workspace's
//! one crypto provider, ring, is used and the trust anchors are exactly the given CA
//! file, or else the system's roots (read with `rustls-native-certs`, the store
//! `docker` and `curl` use on Linux).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use super::{ServerConfig, TransportError};

/// TLS for one server: its trust anchors and, if configured, the client identity.
pub(super) fn client_config(config: &ServerConfig) -> Result<ClientConfig, TransportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TransportError::Tls)?
        .with_root_certificates(root_store(config.ca.as_deref())?);
    let mut tls = match &config.client_identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = read_certificates(cert, "client certificate")?;
            let private_key =
                PrivateKeyDer::from_pem_file(key).map_err(|source| TransportError::ReadFile {
                    what: "client key",
                    path: key.clone(),
                    source,
                })?;
            builder
                .with_client_auth_cert(chain, private_key)
                .map_err(|source| TransportError::ClientIdentity {
                    cert: cert.clone(),
                    key: key.clone(),
                    source,
                })?
        }
    };
    // reqwest is built without HTTP/2.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

fn root_store(ca: Option<&Path>) -> Result<RootCertStore, TransportError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for certificate in read_certificates(path, "CA file")? {
                roots
                    .add(certificate)
                    .map_err(|source| TransportError::CaCertificate {
                        path: path.to_path_buf(),
                        source,
                    })?;
            }
        }
        None => {
            let mut found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(TransportError::NoSystemRoots {
                    source: found.errors.pop(),
                });
            }
        }
    }
    Ok(roots)
}

fn read_certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let read_error = |source| TransportError::ReadFile {
        what,
        path: path.to_path_buf(),
        source,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(read_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    if certificates.is_empty() {
        return Err(TransportError::BadCa {
            path: path.to_path_buf(),
            problem: format!("no PEM CERTIFICATE in this {what}: give the PEM file"),
        });
    }
    Ok(certificates)
}

/// What to tell the user about a failed request: for a certificate the server sent
/// that does not verify, which anchors it was checked against and the fix.
pub(super) fn explain_failure(error: &reqwest::Error, ca: Option<&Path>) -> String {
    if let Some(rustls::Error::InvalidCertificate(why)) = rustls_cause(error) {
        return match ca {
            Some(path) => format!(
                "the server's TLS certificate does not verify against the CA file {} ({why:?}): give the CA that issued the server's certificate",
                path.display()
            ),
            None => format!(
                "the server's TLS certificate does not verify against the system's root certificates ({why:?}): give the server's CA file"
            ),
        };
    }
    if error.is_timeout() {
        "timed out (connect 10 s, whole request 60 s): check the server is up and reachable".into()
    } else if error.is_connect() {
        "could not connect: check the URL and that the server is up".into()
    } else if error.is_redirect() {
        "too many or unsafe redirects (more than 5, or https to http)".into()
    } else {
        "the request failed".into()
    }
}

/// The rustls error behind a request failure. `io::Error::source` skips the error
/// it wraps, so each `io::Error` is also opened with `get_ref`.
fn rustls_cause<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(wrapped) = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(found) = rustls_cause(wrapped) {
                return Some(found);
            }
        }
        current = error.source();
    }
    None
}
