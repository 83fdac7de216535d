//! Wires the daemon together: keystore -> key manager -> gRPC services -> listeners.
//!
//! Every listener serves the same routes (native `tufkey.v1`, Notary signer, health,
//! reflection); only the caller check differs: uid on the Unix socket, client
//! certificate on TCP. One shutdown signal stops them all.

use crate::backend::software::{SoftwareBackend, SoftwareConfig};
use crate::backend::yubikey::YubiKeyBackend;
use crate::config::{Config, TcpListenerConfig};
use crate::error::{Error, Result};
use crate::keys::{KeyBackend, KeyManager};
use crate::service::{
    DevicesService, KeysService, NotaryService, SessionService, SigningService,
    NOTARY_HEALTH_SERVICES,
};
use crate::transport::tls::{self, SubjectAllowList};
use crate::transport::{peer::PeerAllowList, unix};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::service::{InterceptorLayer, Routes};
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tufkey_proto::notary::{
    key_management_server::KeyManagementServer, signer_server::SignerServer,
};
use tufkey_proto::v1::{
    devices_server::DevicesServer, keys_server::KeysServer, session_server::SessionServer,
    signing_server::SigningServer,
};

/// Runs the daemon until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
    let keystore = SoftwareBackend::open(&SoftwareConfig {
        dir: config.store.clone(),
        use_keyring: config.use_keyring,
        idle_timeout: config.idle_timeout,
    })?;
    let yubikeys = YubiKeyBackend::start_from_config(&config).await;
    let mut backends: Vec<Arc<dyn KeyBackend>> = vec![keystore.clone()];
    if let Ok(yubikeys) = &yubikeys {
        backends.push(yubikeys.clone());
    }
    let keys = Arc::new(KeyManager::new(backends).await?);
    if let Ok(yubikeys) = &yubikeys {
        yubikeys.keep_registry_in_sync(keys.clone());
    }
    match keystore.unlock_automatically().await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(store = %config.store.display(), "keystore locked: run `tufkey unlock`, or set TUFKEY_PASSPHRASE")
        }
        Err(error) => tracing::error!(%error, "keystore stays locked"),
    }
    keystore.spawn_idle_lock();

    let routes = routes(&config, &keys, &keystore, yubikeys).await?;
    // Set up every listener before serving on any, so a bad TCP setting fails the start.
    let tcp = config.tcp.as_ref().map(tcp_listener).transpose()?;
    let unix_listener = unix::bind(&config.socket)?;
    tracing::info!(socket = %config.socket.display(), tcp = ?config.tcp.as_ref().map(|tcp| tcp.listen), store = %config.store.display(), keys = keys.list(None, None).len(), "tufkeyd listening");

    let (stop, stopped) = watch::channel(false);
    let stop_signal = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let peers = PeerAllowList::new(config.allow_uids.clone());
    let unix_server = Server::builder()
        .layer(InterceptorLayer::new(move |request| peers.check(request)))
        .add_routes(routes.clone())
        .serve_with_incoming_shutdown(
            UnixListenerStream::new(unix_listener),
            stop_signal(stopped.clone()),
        );
    let tcp_server = async {
        let Some(TcpListener {
            incoming,
            server,
            subjects,
        }) = tcp
        else {
            // No TCP listener: wait with the Unix server rather than stopping it.
            stop_signal(stopped).await;
            return Ok(());
        };
        server
            .layer(InterceptorLayer::new(move |request| {
                subjects.check(request)
            }))
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, stop_signal(stopped))
            .await
    };
    // Either server failing, or the signal, stops both.
    let (unix_result, tcp_result, ()) = tokio::join!(
        async {
            let result = unix_server.await;
            let _ = stop.send(true);
            result
        },
        async {
            let result = tcp_server.await;
            let _ = stop.send(true);
            result
        },
        async {
            tokio::select! {
                () = shutdown => {}
                _ = stop.closed() => {}
            }
            let _ = stop.send(true);
        },
    );
    let _ = std::fs::remove_file(&config.socket);
    keystore.lock();
    unix_result
        .map_err(|error| Error::Config(format!("gRPC server on the Unix socket: {error}")))?;
    tcp_result.map_err(|error| Error::Config(format!("gRPC server on TCP: {error}")))
}

/// A bound TCP listener and its TLS-configured server, not yet serving.
struct TcpListener {
    incoming: TcpIncoming,
    server: Server,
    subjects: SubjectAllowList,
}

fn tcp_listener(config: &TcpListenerConfig) -> Result<TcpListener> {
    let server = Server::builder()
        .tls_config(tls::server_tls_config(config)?)
        .map_err(|error| {
            Error::Config(format!(
                "TLS setup from {} / {} / {}: {}",
                config.cert.display(),
                config.key.display(),
                config.client_ca.display(),
                error_chain(&error)
            ))
        })?;
    Ok(TcpListener {
        incoming: tls::bind(config)?,
        server,
        subjects: SubjectAllowList::new(config.allowed_subjects.clone()),
    })
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Every service the daemon offers, with health and reflection.
async fn routes(
    config: &Config,
    keys: &Arc<KeyManager>,
    keystore: &Arc<SoftwareBackend>,
    yubikeys: Result<Arc<YubiKeyBackend>, String>,
) -> Result<Routes> {
    let limit = config.max_message_bytes;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<KeysServer<KeysService>>().await;
    health.set_serving::<SigningServer<SigningService>>().await;
    health.set_serving::<SessionServer<SessionService>>().await;
    health.set_serving::<DevicesServer<DevicesService>>().await;
    health
        .set_serving::<KeyManagementServer<NotaryService>>()
        .await;
    health.set_serving::<SignerServer<NotaryService>>().await;
    for name in NOTARY_HEALTH_SERVICES {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tufkey_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|error| Error::Config(format!("reflection: {error}")))?;
    let notary = NotaryService::new(keys.clone(), config.notary_keys);
    Ok(Routes::new(health_service)
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
        .add_service(
            DevicesServer::new(DevicesService::new(keys.clone(), yubikeys))
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
        )
        .add_service(
            KeyManagementServer::new(notary.clone())
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
        )
        .add_service(
            SignerServer::new(notary)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
        ))
}
