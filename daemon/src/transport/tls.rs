//! The optional TCP listener: mutual TLS (rustls through tonic), and the caller's
//! identity taken from its verified client certificate for every request.
//!
//! The handshake itself refuses clients without a certificate from the configured
//! CA, and must finish within `--tls-handshake-timeout-secs` (tonic runs it under
//! that deadline), so a client that connects and sends nothing holds its connection
//! slot only that long. No SNI is needed: notary-server sends none when it dials an
//! IP address.

use super::identity;
use crate::access::Caller;
use crate::config::TcpListenerConfig;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tonic::service::Interceptor;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Status};

/// The server side of mutual TLS: our identity, the CA every client must chain to,
/// and the deadline for the handshake.
pub fn server_tls_config(
    config: &TcpListenerConfig,
    handshake_timeout: Duration,
) -> Result<ServerTlsConfig> {
    // Fails only when a provider is already installed, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = read_pem(&config.cert, "reading TLS certificate")?;
    let key = read_pem(&config.key, "reading TLS key")?;
    let client_ca = read_pem(&config.client_ca, "reading TLS client CA")?;
    Ok(ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .client_ca_root(Certificate::from_pem(client_ca))
        .client_auth_optional(false)
        .timeout(handshake_timeout))
}

/// Binds the TCP listener (Nagle off: every RPC is a small request/response), with
/// keepalive probes after `keepalive` of silence so dead peers free their slots.
pub fn bind(config: &TcpListenerConfig, keepalive: Duration) -> Result<TcpIncoming> {
    let incoming = TcpIncoming::bind(config.listen).map_err(|source| Error::Io {
        action: "listening on TCP",
        path: config.listen.to_string().into(),
        source,
    })?;
    Ok(incoming
        .with_nodelay(Some(true))
        .with_keepalive(Some(keepalive)))
}

fn read_pem(path: &Path, action: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(Error::io(action, path))
}

/// The most client certificates [`Identify`] remembers; when full it starts over.
const REMEMBERED_CERTIFICATES: usize = 256;

/// A tonic interceptor: puts the [`Caller`] the verified client certificate names
/// into each request's extensions. What it may do is the policy's decision, per RPC.
/// A certificate is parsed once: callers are remembered by the certificate's exact
/// bytes (a bounded set, forgotten all at once when full), so requests on a
/// connection do not each parse it again.
#[derive(Clone, Default)]
pub struct Identify {
    remembered: Arc<Mutex<HashMap<Vec<u8>, Caller>>>,
}

impl Interceptor for Identify {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = {
            let certificates = request.peer_certs().ok_or_else(|| {
                Error::PeerUnknown("the TLS connection carries no client certificate".into())
            })?;
            let leaf = certificates.first().ok_or_else(|| {
                Error::PeerUnknown("the TLS connection carries no client certificate".into())
            })?;
            self.caller(leaf.as_ref())?
        };
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

impl Identify {
    fn caller(&self, der: &[u8]) -> Result<Caller> {
        if let Some(caller) = self.remembered().get(der) {
            return Ok(caller.clone());
        }
        let caller = identity::certificate_caller(der)?;
        let mut remembered = self.remembered();
        if remembered.len() >= REMEMBERED_CERTIFICATES {
            remembered.clear();
        }
        remembered.insert(der.to_vec(), caller.clone());
        Ok(caller)
    }

    fn remembered(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Caller>> {
        self.remembered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
