//! [`Client`]: a typed async client for tufkeyd's `tufkey.v1` API, over the Unix
//! socket or over TCP with mutual TLS ([`Client::tls_channel`]), to one tufkeyd or
//! to several replicas with failover ([`crate::TlsEndpoints`], the `failover` module).

use crate::error::{Error, Result};
use crate::failover::{Endpoint as FailoverEndpoint, Endpoints, Rpc};
use crate::server_uid::{ServerUid, UnexpectedServer};
use hyper_util::rt::TokioIo;
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::UnixStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};
use tufkey_proto::paths;
use tufkey_proto::v1 as pb;
use tufkey_proto::v1::{
    audit_client::AuditClient, devices_client::DevicesClient, keys_client::KeysClient,
    migration_client::MigrationClient, policy_client::PolicyClient, session_client::SessionClient,
    signing_client::SigningClient,
};

/// The largest message the client sends or accepts; the daemon enforces its own limit.
const MAX_MESSAGE_BYTES: usize = 1 << 30;

/// How long to wait for a TCP connection and its TLS handshake.
const TLS_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket clients use: `TUFKEY_SOCK`, else the daemon's own default
/// ([`tufkey_proto::paths::default_socket_path`]).
pub fn default_socket_path() -> PathBuf {
    std::env::var_os(paths::SOCKET_ENV)
        .filter(|path| !path.is_empty())
        .map_or_else(
            || paths::default_socket_path(|name| std::env::var_os(name)),
            PathBuf::from,
        )
}

/// A connection to tufkeyd. Cheap to clone; clones share the connection.
///
/// ```no_run
/// # async fn example() -> tufkey::Result<()> {
/// let mut client = tufkey::Client::connect_unix(tufkey::default_socket_path()).await?;
/// let key = client.generate_key("docker.io/acme/app", "targets").await?;
/// let unsigned = br#"{"signed":{"_type":"targets","version":1},"signatures":[]}"#;
/// let signed = client.sign_metadata(unsigned.to_vec(), vec![key.keyid.clone()]).await?;
/// println!("{}", String::from_utf8_lossy(&signed));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    endpoints: Endpoints<Services>,
}

/// One endpoint's gRPC clients, sharing its channel.
pub(crate) struct Services {
    keys: KeysClient<Channel>,
    signing: SigningClient<Channel>,
    session: SessionClient<Channel>,
    devices: DevicesClient<Channel>,
    policy: PolicyClient<Channel>,
    audit: AuditClient<Channel>,
    migration: MigrationClient<Channel>,
}

/// `rpc!(self, Rpc, service.method(request))`: sends `request` with that gRPC
/// client's method, failing over as [`Rpc`] allows; yields the reply message.
macro_rules! rpc {
    ($client:ident, $rpc:ident, $service:ident . $method:ident ($request:expr)) => {
        $client
            .endpoints
            .call(Rpc::$rpc, $request, |services, request| {
                let mut service = services.$service.clone();
                async move { service.$method(request).await }
            })
    };
}

impl Client {
    /// Connects to the daemon's Unix socket, expecting the daemon to run as
    /// `TUFKEY_SERVER_UID` if set, else as this user ([`ServerUid::from_env`]).
    pub async fn connect_unix(path: impl AsRef<Path>) -> Result<Self> {
        Self::connect_unix_as(path, ServerUid::from_env()?).await
    }

    /// Connects to the daemon's Unix socket. Every connection (reconnections too)
    /// is refused before anything is sent unless the process listening on it runs
    /// as `server` (SO_PEERCRED).
    pub async fn connect_unix_as(path: impl AsRef<Path>, server: ServerUid) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let name = path.display().to_string();
        let connect_to = path.clone();
        // The URI is required by tonic but unused: every connection goes to the socket.
        let channel = Endpoint::from_static("http://tufkeyd.invalid")
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = connect_to.clone();
                async move {
                    let stream = UnixStream::connect(path).await?;
                    let found = stream.peer_cred()?.uid();
                    server.check(found).map_err(std::io::Error::other)?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await
            .map_err(|error| {
                if let Some(unexpected) = unexpected_server(&error) {
                    Error::UnexpectedServer {
                        path,
                        found: unexpected.found,
                        expected: unexpected.expected,
                    }
                } else if permission_denied(&error) {
                    Error::SocketForbidden { path }
                } else {
                    Error::Connect {
                        path,
                        reason: source_chain(&error),
                    }
                }
            })?;
        Ok(Self::from_endpoints(vec![(name, channel)], 0))
    }

    /// Connects to a tufkeyd TCP listener (`https://HOST:PORT`) with mutual TLS: `ca`
    /// verifies the daemon's certificate, `cert` + `key` (PEM) identify this client.
    pub async fn connect_tls(
        addr: &str,
        ca: impl AsRef<Path>,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self> {
        let channel =
            Self::tls_channel(addr, ca.as_ref(), Some((cert.as_ref(), key.as_ref()))).await?;
        Ok(Self::from_channel(channel))
    }

    /// A TLS channel to `addr` (`https://HOST:PORT`), trusting only `ca` (PEM) for the
    /// server's certificate and presenting `identity` (PEM certificate, key) if given.
    /// Any gRPC client can use it: tufkeyd's native and Notary APIs, or notary-signer.
    pub async fn tls_channel(
        addr: &str,
        ca: &Path,
        identity: Option<(&Path, &Path)>,
    ) -> Result<Channel> {
        if !addr.starts_with("https://") {
            return Err(Error::Usage(format!(
                "--addr {addr:?}: expected https://HOST:PORT (TCP is only served with mutual TLS)"
            )));
        }
        // Fails only when a provider is already installed, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read_file(ca, "reading the TLS CA")?));
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(
                read_file(cert, "reading the TLS client certificate")?,
                read_file(key, "reading the TLS client key")?,
            ));
        }
        tls_endpoint(addr, tls)?.connect().await.map_err(|error| {
            Error::Usage(format!(
                "cannot reach tufkeyd at {addr}: {} (check --addr, --tls-ca, --tls-cert and --tls-key)",
                source_chain(&error)
            ))
        })
    }

    /// Connects to several tufkeyd replicas over TCP with mutual TLS, failing over
    /// between them ([`crate::TlsEndpoints::resolve`], then
    /// [`connect_from(0)`](crate::TlsEndpoints::connect_from)).
    pub async fn connect_tls_replicas(
        addrs: &[String],
        ca: impl AsRef<Path>,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self> {
        crate::TlsEndpoints::resolve(addrs, ca.as_ref(), cert.as_ref(), key.as_ref())
            .await?
            .connect_from(0)
            .await
    }

    /// Wraps an established channel.
    pub fn from_channel(channel: Channel) -> Self {
        Self::from_endpoints(vec![("tufkeyd".into(), channel)], 0)
    }

    /// A client of these `(name, channel)` endpoints, its calls going to `first`.
    pub(crate) fn from_endpoints(channels: Vec<(String, Channel)>, first: usize) -> Self {
        let endpoints = channels
            .into_iter()
            .map(|(name, channel)| FailoverEndpoint {
                name,
                services: Services::new(channel),
            })
            .collect();
        Client {
            endpoints: Endpoints::new(endpoints, first),
        }
    }

    /// The endpoint calls go to now: the one that answered the last call, or the
    /// next after one that failed (a socket path or an `https://` address).
    pub fn endpoint(&self) -> &str {
        self.endpoints.current()
    }

    /// Every endpoint this client may use, in the order it tries them.
    pub fn endpoints(&self) -> impl Iterator<Item = &str> {
        self.endpoints.names()
    }
}

impl Services {
    fn new(channel: Channel) -> Self {
        Services {
            keys: KeysClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            signing: SigningClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            session: SessionClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            devices: DevicesClient::new(channel.clone()),
            policy: PolicyClient::new(channel.clone()),
            audit: AuditClient::new(channel.clone()),
            migration: MigrationClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        }
    }
}

impl Client {
    /// Generates a key for `(gun, role)` in the daemon's default backend.
    pub async fn generate_key(&mut self, gun: &str, role: &str) -> Result<pb::Key> {
        self.generate(pb::GenerateKeyRequest {
            gun: gun.into(),
            role: role.into(),
            ..Default::default()
        })
        .await
    }

    /// Generates a key with every option of the request.
    pub async fn generate(&mut self, request: pb::GenerateKeyRequest) -> Result<pb::Key> {
        rpc!(self, GenerateKey, keys.generate_key(request)).await
    }

    /// Lists keys; empty strings match everything.
    pub async fn list_keys(&mut self, gun: &str, role: &str) -> Result<Vec<pb::Key>> {
        let request = pb::ListKeysRequest {
            gun: gun.into(),
            role: role.into(),
        };
        Ok(rpc!(self, ListKeys, keys.list_keys(request)).await?.keys)
    }

    /// Looks a key up by TUF or Notary key ID.
    pub async fn get_key(&mut self, keyid: &str) -> Result<pb::Key> {
        let request = pb::GetKeyRequest {
            keyid: keyid.into(),
        };
        rpc!(self, GetKey, keys.get_key(request)).await
    }

    /// Deletes a key (the confirmation is the key ID itself).
    pub async fn delete_key(&mut self, keyid: &str) -> Result<pb::Key> {
        let request = pb::DeleteKeyRequest {
            keyid: keyid.into(),
            confirm: keyid.into(),
        };
        let deleted = rpc!(self, DeleteKey, keys.delete_key(request))
            .await?
            .deleted;
        deleted.ok_or_else(|| Error::Usage("the daemon did not describe the deleted key".into()))
    }

    /// Signs raw bytes; returns the encoded signature.
    pub async fn sign_raw(
        &mut self,
        keyid: &str,
        payload: Vec<u8>,
        format: pb::SignatureFormat,
    ) -> Result<pb::SignRawResponse> {
        let request = pb::SignRawRequest {
            keyid: keyid.into(),
            payload,
            format: format as i32,
        };
        rpc!(self, SignRaw, signing.sign_raw(request)).await
    }

    /// Signs a TUF metadata document with every key in `keyids`; returns the document:
    /// the caller's text with only its `signatures` list changed (the daemon sends
    /// back just that edit; a daemon too old for it sends the whole document).
    pub async fn sign_metadata(
        &mut self,
        document: Vec<u8>,
        keyids: Vec<String>,
    ) -> Result<Vec<u8>> {
        let request = pb::SignMetadataRequest {
            document: document.clone(),
            keyids,
            signatures_only: true,
        };
        let reply = rpc!(self, SignMetadata, signing.sign_metadata(request)).await?;
        if !reply.document.is_empty() {
            return Ok(reply.document);
        }
        let start = usize::try_from(reply.splice_start).ok();
        let end = usize::try_from(reply.splice_end).ok();
        let (Some(start), Some(end)) = (start, end) else {
            return Err(bad_splice(&reply, document.len()));
        };
        if start > end || end > document.len() || reply.splice_text.is_empty() {
            return Err(bad_splice(&reply, document.len()));
        }
        let mut signed = Vec::with_capacity(document.len() + reply.splice_text.len());
        signed.extend_from_slice(&document[..start]);
        signed.extend_from_slice(&reply.splice_text);
        signed.extend_from_slice(&document[end..]);
        Ok(signed)
    }

    /// Unlocks the keystore.
    pub async fn unlock(&mut self, passphrase: &SecretString) -> Result<pb::StatusResponse> {
        let request = pb::UnlockRequest {
            passphrase: passphrase.expose_secret().to_owned(),
        };
        rpc!(self, Unlock, session.unlock(request)).await
    }

    /// Locks the keystore.
    pub async fn lock(&mut self) -> Result<pb::StatusResponse> {
        rpc!(self, Lock, session.lock(pb::LockRequest {})).await
    }

    /// The YubiKeys the daemon sees.
    pub async fn list_devices(&mut self) -> Result<Vec<pb::Device>> {
        let request = pb::ListDevicesRequest {};
        Ok(rpc!(self, ListDevices, devices.list_devices(request))
            .await?
            .devices)
    }

    /// Insertions and removals of YubiKeys, starting with those present now.
    pub async fn watch_devices(&mut self) -> Result<tonic::Streaming<pb::DeviceEvent>> {
        let request = pb::WatchDevicesRequest {};
        rpc!(self, WatchDevices, devices.watch_devices(request)).await
    }

    /// Gives the daemon a YubiKey's PIN (cached for the daemon's PIN TTL). With one
    /// PIN try left the daemon refuses untried unless `force`.
    pub async fn unlock_device(
        &mut self,
        serial: u32,
        pin: &SecretString,
        remember: bool,
        force: bool,
    ) -> Result<pb::UnlockDeviceResponse> {
        let request = pb::UnlockDeviceRequest {
            serial,
            pin: pin.expose_secret().to_owned(),
            remember,
            force,
        };
        rpc!(self, UnlockDevice, devices.unlock_device(request)).await
    }

    /// Replaces a YubiKey's management key (and optionally its PIN / PUK).
    pub async fn init_device(
        &mut self,
        request: pb::InitDeviceRequest,
    ) -> Result<pb::InitDeviceResponse> {
        rpc!(self, InitDevice, devices.init_device(request)).await
    }

    /// What the daemon's access policy decides for an identity, an RPC and a key,
    /// and the rule that decided (`tufkey policy check`).
    pub async fn check_policy(&mut self, request: pb::CheckRequest) -> Result<pb::CheckResponse> {
        rpc!(self, CheckPolicy, policy.check(request)).await
    }

    /// The verified attestation chain of a YubiKey key.
    pub async fn attest_key(&mut self, keyid: &str) -> Result<pb::AttestKeyResponse> {
        let request = pb::AttestKeyRequest {
            keyid: keyid.into(),
        };
        rpc!(self, AttestKey, devices.attest_key(request)).await
    }

    /// Has the daemon verify its audit log (every file, or the named files of it).
    pub async fn verify_audit(&mut self, files: Vec<String>) -> Result<pb::VerifyAuditResponse> {
        let request = pb::VerifyAuditRequest { files };
        rpc!(self, VerifyAudit, audit.verify(request)).await
    }

    /// The last `last` audit records (0: all), then with `follow` each new one.
    pub async fn tail_audit(
        &mut self,
        last: u32,
        follow: bool,
    ) -> Result<tonic::Streaming<pb::AuditRecord>> {
        let request = pb::TailAuditRequest { last, follow };
        rpc!(self, TailAudit, audit.tail(request)).await
    }

    /// Wraps keys into an age bundle (a backup to a passphrase, or a transfer to a
    /// recipient).
    pub async fn backup(&mut self, request: pb::BackupRequest) -> Result<pb::BackupResponse> {
        rpc!(self, Backup, migration.backup(request)).await
    }

    /// Imports the keys of a passphrase bundle, all or nothing.
    pub async fn restore(&mut self, request: pb::RestoreRequest) -> Result<pb::RestoreResponse> {
        rpc!(self, Restore, migration.restore(request)).await
    }

    /// Imports Docker / Notary key files, all or nothing (or, dry, reports them).
    pub async fn import_notary_keys(
        &mut self,
        request: pb::ImportNotaryKeysRequest,
    ) -> Result<pb::ImportNotaryKeysResponse> {
        rpc!(
            self,
            ImportNotaryKeys,
            migration.import_notary_keys(request)
        )
        .await
    }

    /// Exportable keys as Notary key files.
    pub async fn export_notary_keys(
        &mut self,
        request: pb::ExportNotaryKeysRequest,
    ) -> Result<pb::ExportNotaryKeysResponse> {
        rpc!(
            self,
            ExportNotaryKeys,
            migration.export_notary_keys(request)
        )
        .await
    }

    /// Moves a software key onto YubiKeys.
    pub async fn move_to_yubikey(
        &mut self,
        request: pb::MoveToYubiKeyRequest,
    ) -> Result<pb::MoveToYubiKeyResponse> {
        rpc!(self, MoveToYubiKey, migration.move_to_yubi_key(request)).await
    }

    /// A fresh receiving identity for a transfer.
    pub async fn receive_transfer(&mut self) -> Result<pb::ReceiveTransferResponse> {
        let request = pb::ReceiveTransferRequest {};
        rpc!(self, ReceiveTransfer, migration.receive_transfer(request)).await
    }

    /// Imports a transfer bundle made for one of the daemon's receiving identities.
    pub async fn accept_transfer(
        &mut self,
        request: pb::AcceptTransferRequest,
    ) -> Result<pb::RestoreResponse> {
        rpc!(self, AcceptTransfer, migration.accept_transfer(request)).await
    }

    /// The daemon's status.
    pub async fn status(&mut self) -> Result<pb::StatusResponse> {
        rpc!(self, Status, session.status(pb::StatusRequest {})).await
    }
}

/// An endpoint for `addr` (`https://...`) with `tls` and the connect timeout.
pub(crate) fn tls_endpoint(addr: &str, tls: ClientTlsConfig) -> Result<Endpoint> {
    let invalid = |error: tonic::transport::Error| {
        Error::Usage(format!(
            "cannot reach tufkeyd at {addr}: {} (check --addr, --tls-ca, --tls-cert and --tls-key)",
            source_chain(&error)
        ))
    };
    Endpoint::from_shared(addr.to_owned())
        .map_err(invalid)?
        .connect_timeout(TLS_CONNECT_TIMEOUT)
        .tls_config(tls)
        .map_err(invalid)
}

fn read_file(path: &Path, action: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(Error::io(action, path))
}

/// The wrong listener the connector found, somewhere in the chain.
fn unexpected_server<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a UnexpectedServer> {
    let mut source = Some(error);
    while let Some(inner) = source {
        let found = inner
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<UnexpectedServer>());
        if found.is_some() {
            return found;
        }
        source = inner.source();
    }
    None
}

/// Whether the socket refused us by its file permissions (EACCES somewhere in the chain).
fn permission_denied(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(inner) = source {
        if inner
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
        {
            return true;
        }
        source = inner.source();
    }
    false
}

fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// A `signatures_only` reply whose edit does not fit the document sent.
fn bad_splice(reply: &pb::SignMetadataResponse, length: usize) -> Error {
    Error::Rpc(tonic::Status::internal(format!(
        "tufkeyd replied to SignMetadata with an edit of bytes {}..{} ({} bytes of text) for a {length}-byte document: \
         client and daemon disagree; upgrade both to the same version",
        reply.splice_start,
        reply.splice_end,
        reply.splice_text.len()
    )))
}
