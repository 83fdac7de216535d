//! Wires the daemon together: keystore -> key manager -> gRPC services -> socket.

use crate::backend::software::{SoftwareBackend, SoftwareConfig};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys::{KeyBackend, KeyManager};
use crate::service::{KeysService, SessionService, SigningService};
use crate::transport::{peer::PeerAllowList, unix};
use std::future::Future;
use std::sync::Arc;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::service::InterceptorLayer;
use tonic::transport::Server;
use tufkey_proto::v1::{
    keys_server::KeysServer, session_server::SessionServer, signing_server::SigningServer,
};

/// Runs the daemon until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
    let keystore = SoftwareBackend::open(&SoftwareConfig {
        dir: config.store.clone(),
        use_keyring: config.use_keyring,
        idle_timeout: config.idle_timeout,
    })?;
    let backends: Vec<Arc<dyn KeyBackend>> = vec![keystore.clone()];
    let keys = Arc::new(KeyManager::new(backends).await?);
    match keystore.unlock_automatically().await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(store = %config.store.display(), "keystore locked: run `tufkey unlock`, or set TUFKEY_PASSPHRASE")
        }
        Err(error) => tracing::error!(%error, "keystore stays locked"),
    }
    keystore.spawn_idle_lock();

    let listener = unix::bind(&config.socket)?;
    tracing::info!(socket = %config.socket.display(), store = %config.store.display(), keys = keys.list(None, None).len(), "tufkeyd listening");

    let limit = config.max_message_bytes;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<KeysServer<KeysService>>().await;
    health.set_serving::<SigningServer<SigningService>>().await;
    health.set_serving::<SessionServer<SessionService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tufkey_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|error| Error::Config(format!("reflection: {error}")))?;
    let peers = PeerAllowList::new(config.allow_uids.clone());

    let result = Server::builder()
        .layer(InterceptorLayer::new(move |request| peers.check(request)))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(
            KeysServer::new(KeysService::new(keys.clone()))
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
        )
        .add_service(
            SigningServer::new(SigningService::new(keys.clone()))
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
        )
        .add_service(
            SessionServer::new(SessionService::new(keys.clone(), keystore.clone()))
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
        )
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await;
    let _ = std::fs::remove_file(&config.socket);
    keystore.lock();
    result.map_err(|error| Error::Config(format!("gRPC server: {error}")))
}
