//! [`TlsEndpoints`]: the tufkeyd replicas a client may use over TCP with mutual TLS,
//! all trusting one CA and accepting one client certificate, so that a [`Client`]
//! can fail over between them (see the `failover` module).

use crate::client::{tls_endpoint, Client};
use crate::error::{with_causes, Error, Result};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, Uri};

/// One replica's address: the URL to connect to, and the TLS name to verify when
/// that URL holds one of a DNS name's addresses instead of the name.
#[derive(Clone, Debug)]
struct Address {
    name: String,
    url: String,
    tls_name: Option<String>,
}

/// Several tufkeyd endpoints (`https://HOST:PORT`) sharing one CA, client
/// certificate and key. A DNS name with several addresses counts as one endpoint per
/// address (resolved once, by [`TlsEndpoints::resolve`]).
///
/// ```no_run
/// # async fn example() -> tufkey::Result<()> {
/// let replicas = tufkey::TlsEndpoints::resolve(
///     &["https://signer1:7443".into(), "https://signer2:7443".into()],
///     "ca.crt".as_ref(), "client.crt".as_ref(), "client.key".as_ref(),
/// ).await?;
/// let mut client = replicas.connect_from(0).await?;
/// let keys = client.list_keys("", "").await?; // from signer2 if signer1 is down
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct TlsEndpoints {
    addresses: Vec<Address>,
    tls: ClientTlsConfig,
}

impl TlsEndpoints {
    /// Checks that each of `addrs` (at least one) is `https://HOST:PORT`, expands a
    /// DNS name with several addresses into one endpoint per address, and reads the
    /// TLS files: `ca` verifies the servers, `cert` + `key` (PEM) identify this client.
    pub async fn resolve(addrs: &[String], ca: &Path, cert: &Path, key: &Path) -> Result<Self> {
        if addrs.is_empty() {
            return Err(Error::Usage(
                "no tufkeyd address: give --addr https://HOST:PORT".into(),
            ));
        }
        let mut addresses = Vec::new();
        for addr in addrs {
            addresses.extend(expand(addr).await?);
        }
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(ca, "reading the TLS CA")?))
            .identity(Identity::from_pem(
                read(cert, "reading the TLS client certificate")?,
                read(key, "reading the TLS client key")?,
            ));
        Ok(TlsEndpoints { addresses, tls })
    }

    /// The endpoints' names, in order (an address of a DNS name reads
    /// `https://NAME:PORT (ADDRESS)`).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.addresses.iter().map(|address| address.name.as_str())
    }

    /// How many endpoints there are.
    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    /// Always false: there is at least one endpoint.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// A client on new connections to every endpoint, its calls going to endpoint
    /// `first` (modulo [`len`](Self::len)) until that fails. It connects to `first`
    /// now, or to the next endpoint that accepts when `first` does not; the others
    /// connect when first used.
    pub async fn connect_from(&self, first: usize) -> Result<Client> {
        let count = self.addresses.len();
        let mut unreachable = Vec::new();
        for step in 0..count {
            let index = (first + step) % count;
            let address = &self.addresses[index];
            match self.endpoint(address)?.connect().await {
                Ok(channel) => {
                    let mut channels = Vec::with_capacity(count);
                    for (other, address) in self.addresses.iter().enumerate() {
                        let channel = if other == index {
                            channel.clone()
                        } else {
                            self.endpoint(address)?.connect_lazy()
                        };
                        channels.push((address.name.clone(), channel));
                    }
                    return Ok(Client::from_endpoints(channels, index));
                }
                Err(error) => unreachable.push(format!(
                    "{}: {}",
                    address.name,
                    with_causes(error.to_string(), std::error::Error::source(&error))
                )),
            }
        }
        Err(Error::Usage(format!(
            "cannot reach tufkeyd at {} (check --addr, --tls-ca, --tls-cert and --tls-key)",
            unreachable.join("; ")
        )))
    }

    /// A client of endpoint `index` alone (no failover), for work that concerns
    /// each replica itself, such as verifying its audit log.
    pub async fn connect_only(&self, index: usize) -> Result<Client> {
        let Some(address) = self.addresses.get(index) else {
            return Err(Error::Usage(format!(
                "no endpoint {index}: there are {}",
                self.addresses.len()
            )));
        };
        let only = TlsEndpoints {
            addresses: vec![address.clone()],
            tls: self.tls.clone(),
        };
        only.connect_from(0).await
    }

    fn endpoint(&self, address: &Address) -> Result<tonic::transport::Endpoint> {
        let tls = match &address.tls_name {
            Some(name) => self.tls.clone().domain_name(name),
            None => self.tls.clone(),
        };
        tls_endpoint(&address.url, tls)
    }
}

/// `addr` as endpoints: itself, or one per address of its DNS name when the name has
/// several (a name that does not resolve is kept, so connecting reports it).
async fn expand(addr: &str) -> Result<Vec<Address>> {
    let bad = || {
        Error::Usage(format!(
            "--addr {addr:?}: expected https://HOST:PORT (TCP is only served with mutual TLS)"
        ))
    };
    if !addr.starts_with("https://") {
        return Err(bad());
    }
    let uri: Uri = addr.parse().map_err(|_| bad())?;
    let host = uri.host().ok_or_else(bad)?;
    let as_given = Address {
        name: addr.to_owned(),
        url: addr.to_owned(),
        tls_name: None,
    };
    if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
        return Ok(vec![as_given]);
    }
    let port = uri.port_u16().unwrap_or(443);
    let Ok(found) = tokio::net::lookup_host((host, port)).await else {
        return Ok(vec![as_given]);
    };
    Ok(one_per_address(as_given, host, port, found))
}

/// `as_given` alone when `found` holds fewer than two distinct addresses; else one
/// endpoint per address, each verified under the name `host`.
fn one_per_address(
    as_given: Address,
    host: &str,
    port: u16,
    found: impl IntoIterator<Item = SocketAddr>,
) -> Vec<Address> {
    let mut resolved: Vec<SocketAddr> = Vec::new();
    for socket in found {
        if !resolved.contains(&socket) {
            resolved.push(socket);
        }
    }
    if resolved.len() < 2 {
        return vec![as_given];
    }
    resolved
        .into_iter()
        .map(|socket| Address {
            name: format!("https://{host}:{port} ({})", socket.ip()),
            url: format!("https://{socket}"),
            tls_name: Some(host.to_owned()),
        })
        .collect()
}

fn read(path: &Path, action: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(Error::io(action, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn addresses_are_https_urls_and_ip_addresses_stay_as_given() {
        let error = block_on(expand("127.0.0.1:7443")).expect_err("no scheme");
        assert!(error.to_string().contains("expected https://HOST:PORT"));
        for addr in ["https://127.0.0.1:7443", "https://[::1]:7443"] {
            let expanded = block_on(expand(addr)).expect("an address");
            assert_eq!(expanded.len(), 1);
            assert_eq!(expanded[0].url, addr);
            assert_eq!(expanded[0].tls_name, None);
        }
    }

    #[test]
    fn a_name_with_several_addresses_is_one_endpoint_per_address() {
        let as_given = || Address {
            name: "https://signer.example:7443".into(),
            url: "https://signer.example:7443".into(),
            tls_name: None,
        };
        let v4: SocketAddr = "192.0.2.1:7443".parse().expect("v4");
        let v6: SocketAddr = "[2001:db8::1]:7443".parse().expect("v6");
        let expanded = one_per_address(as_given(), "signer.example", 7443, [v4, v6, v4]);
        let urls: Vec<&str> = expanded.iter().map(|a| a.url.as_str()).collect();
        assert_eq!(
            urls,
            ["https://192.0.2.1:7443", "https://[2001:db8::1]:7443"]
        );
        assert_eq!(
            expanded[1].name,
            "https://signer.example:7443 (2001:db8::1)"
        );
        assert!(expanded
            .iter()
            .all(|a| a.tls_name.as_deref() == Some("signer.example")));
        let single = one_per_address(as_given(), "signer.example", 7443, [v4]);
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].url, "https://signer.example:7443");
    }
}
