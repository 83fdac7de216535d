//! Wires the daemon together: backends -> key registry -> gRPC services -> listeners,
//! and owns every background task (each backend's maintenance, the registry's
//! following of backend changes), which it stops and awaits at shutdown.
//!
//! Every listener serves the same routes (native `tufkey.v1`, Notary signer, health,
//! reflection `v1` and `v1alpha`); only how the caller is identified differs:
//! SO_PEERCRED on the Unix socket, the client certificate on TCP. The access policy
//! (`crate::policy`) then decides per RPC, and is re-read on SIGHUP. One shutdown
//! signal stops them all.

use crate::audit::{AuditConfig, AuditLog};
use crate::backend;
use crate::config::{Config, LimitsConfig, ListenConfig, TcpListenerConfig};
use crate::error::{Error, Result};
use crate::keys::{Backends, KeyManager, Placement};
use crate::migration::{Migrator, BACKUP_LOG_FILE};
use crate::policy::{Policy, PolicyConfig, PolicyService, NOTARY_KEYS_FILE};
use crate::service::{
    AuditService, DevicesService, Guard, KeysService, MigrationService, NotaryService,
    SessionService, SigningBudget, SigningService, NOTARY_HEALTH_SERVICES,
};
use crate::shutdown::{StopSignal, Stopping};
use crate::transport::authority::Normalized;
use crate::transport::tls;
use crate::transport::{activation, limits, peer, unix};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::StreamExt;
use tonic::service::{InterceptorLayer, Routes};
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tufkey_proto::notary::{
    key_management_server::KeyManagementServer, signer_server::SignerServer,
};
use tufkey_proto::v1::{
    audit_server::AuditServer, devices_server::DevicesServer, keys_server::KeysServer,
    migration_server::MigrationServer, policy_server::PolicyServer, session_server::SessionServer,
    signing_server::SigningServer,
};

/// What the services need besides the keys: where notary-server's new keys go, and
/// the limits on what callers can make the daemon spend.
#[derive(Clone, Debug, Default)]
pub struct ServiceConfig {
    pub notary_placement: Placement,
    pub limits: LimitsConfig,
    /// The access policy and where the Notary API's keys are recorded.
    pub policy: PolicyConfig,
    /// Where the record of backups is kept; `None`: beside the audit log.
    pub backup_log: Option<PathBuf>,
}

/// Runs the daemon with its built-in backends until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
    let services = ServiceConfig {
        notary_placement: Placement::from_setting(
            &config.notary.backend,
            config.notary.yubikey_serial,
        )?,
        limits: config.limits.clone(),
        policy: PolicyConfig {
            source: config.policy.clone(),
            notary_keys: Some(config.software.dir.join(NOTARY_KEYS_FILE)),
        },
        backup_log: Some(config.software.dir.join(BACKUP_LOG_FILE)),
    };
    let backends = backend::start(&config).await?;
    serve(&config.listen, &services, &config.audit, backends, shutdown).await
}

/// Serves `backends` on the configured listeners until `shutdown` resolves, then
/// stops every background task and waits for it. This is the seam embedders and
/// tests use to run the daemon with backends of their own.
pub async fn serve(
    listen: &ListenConfig,
    services: &ServiceConfig,
    audit: &AuditConfig,
    backends: Backends,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let keys = Arc::new(KeyManager::new(backends).await?);
    let policy = Arc::new(Policy::load(&services.policy, listen)?);
    let backup_log = match &services.backup_log {
        Some(path) => path.clone(),
        None => audit
            .path
            .parent()
            .unwrap_or(Path::new("."))
            .join(BACKUP_LOG_FILE),
    };
    let (audit, committer) = AuditLog::open(audit).await?;
    let guard = Arc::new(Guard::new(policy.clone(), audit, keys.clone()));
    let migrator = Arc::new(Migrator::new(
        keys.clone(),
        &backup_log,
        services.limits.transfer_ttl,
    )?);
    let stop = StopSignal::new();
    let mut tasks = JoinSet::new();
    tasks.spawn(committer.run(stop.subscribe()));
    tasks.spawn(policy.clone().reload_on_sighup(stop.subscribe())?);
    for backend in keys.backends() {
        let maintained = backend.clone();
        let stopping = stop.subscribe();
        tasks.spawn(async move { maintained.maintain(stopping).await });
        if let Some(changes) = backend.changes() {
            tasks.spawn(
                keys.clone()
                    .follow(backend.clone(), changes, stop.subscribe()),
            );
        }
    }
    let routes = routes(
        listen,
        services,
        (&keys, &migrator),
        &policy,
        &guard,
        stop.subscribe(),
    );
    let result = match routes.await {
        Ok(routes) => {
            let key_count = keys.list(None, None).len();
            listen_until(listen, &services.limits, routes, key_count, shutdown).await
        }
        Err(error) => Err(error),
    };
    stop.stop();
    while let Some(finished) = tasks.join_next().await {
        if let Err(error) = finished {
            tracing::error!(%error, "a background task failed");
        }
    }
    tracing::info!("tufkeyd stopped");
    result
}

/// Binds every listener (or takes the Unix socket systemd passed), tells systemd it
/// is ready, serves until `shutdown` (or a listener fails), and removes the socket
/// it bound (one systemd passed stays: systemd owns it and listens on it again).
async fn listen_until(
    config: &ListenConfig,
    limits: &LimitsConfig,
    routes: Routes,
    key_count: usize,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let listeners = 1 + u64::from(config.tcp.is_some());
    limits::raise_open_file_limit(listeners * limits.max_connections as u64);
    // Set up every listener before serving on any, so a bad TCP setting fails the start.
    let tcp = config
        .tcp
        .as_ref()
        .map(|tcp| tcp_listener(tcp, limits))
        .transpose()?;
    let (unix_listener, bound_socket) = match activation::take_adopted() {
        Some(adopted) => {
            let socket = activation::socket_path(&adopted);
            if socket.as_deref() != Some(config.socket.as_path()) {
                tracing::warn!(passed = ?socket, socket = %config.socket.display(), "serving on the socket systemd passed, not on --socket: clients must use the former");
            }
            let listener = tokio::net::UnixListener::from_std(adopted).map_err(Error::io(
                "registering the socket systemd passed",
                &config.socket,
            ))?;
            (listener, None)
        }
        None => {
            let bound = unix::bind(&config.socket, config.allow_gids.first().copied())?;
            (bound, Some(config.socket.as_path()))
        }
    };
    tracing::info!(socket = %config.socket.display(), activated = bound_socket.is_none(), tcp = ?config.tcp.as_ref().map(|tcp| tcp.listen), keys = key_count, "tufkeyd listening");

    activation::notify_ready();
    let (stop, stopped) = watch::channel(false);
    let (stopped_unix, stopped_tcp) = (stopped.clone(), stopped.clone());
    let unix_server = limited(Server::builder(), limits)
        .layer(InterceptorLayer::new(peer::identify))
        .add_routes(routes.clone())
        .serve_with_incoming_shutdown(
            limits::cap(
                UnixListenerStream::new(unix_listener),
                "unix",
                limits.max_connections,
            )
            // h2 refuses the `:authority` most gRPC clients send on a Unix socket.
            .map(|accepted| accepted.map(Normalized::new).map(peer::Identified::new)),
            stop_signal(stopped.clone()),
        );
    let tcp_server = async {
        let Some(TcpListener { incoming, server }) = tcp else {
            // No TCP listener: wait with the Unix server rather than stopping it.
            stop_signal(stopped).await;
            return Ok(());
        };
        server
            .layer(InterceptorLayer::new(tls::Identify::default()))
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                limits::cap(incoming, "tcp", limits.max_connections),
                stop_signal(stopped),
            )
            .await
    };
    // Either server failing, or the signal, stops both.
    let (unix_result, tcp_result, ()) = tokio::join!(
        async {
            let result = within_shutdown_grace(unix_server, stopped_unix, "unix").await;
            let _ = stop.send(true);
            result
        },
        async {
            let result = within_shutdown_grace(tcp_server, stopped_tcp, "tcp").await;
            let _ = stop.send(true);
            result
        },
        async {
            tokio::select! {
                () = shutdown => {}
                _ = stop.closed() => {}
            }
            activation::notify_stopping();
            let _ = stop.send(true);
        },
    );
    if let Some(socket) = bound_socket {
        if let Err(error) = std::fs::remove_file(socket) {
            tracing::warn!(socket = %socket.display(), %error, "removing the socket");
        }
    }
    unix_result.map_err(|source| Error::Serve {
        listener: "the Unix socket",
        source,
    })?;
    tcp_result.map_err(|source| Error::Serve {
        listener: "TCP",
        source,
    })
}

/// How long connections get, once the daemon is told to stop, to finish their calls
/// and close. A client that keeps an idle connection open must not keep the daemon
/// (and the keys it holds unlocked) running.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Resolves when `stopped` fires.
async fn stop_signal(mut stopped: watch::Receiver<bool>) {
    // An error means the sender is gone, which also means: stop.
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Runs `server` until it finishes, or until [`SHUTDOWN_GRACE`] after `stopped`
/// fires: then the connections still open are dropped, closing them.
async fn within_shutdown_grace<E>(
    server: impl Future<Output = std::result::Result<(), E>>,
    stopped: watch::Receiver<bool>,
    listener: &'static str,
) -> std::result::Result<(), E> {
    tokio::select! {
        result = server => result,
        () = async {
            stop_signal(stopped).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!(
                listener,
                grace_secs = SHUTDOWN_GRACE.as_secs(),
                "connections still open after the shutdown grace period; closing them"
            );
            Ok(())
        }
    }
}

/// A bound TCP listener and its TLS-configured server, not yet serving.
struct TcpListener {
    incoming: TcpIncoming,
    server: Server,
}

/// A server builder with the per-connection and per-request limits.
fn limited(server: Server, limits: &LimitsConfig) -> Server {
    server
        .max_concurrent_streams(limits.max_concurrent_streams)
        .timeout(limits.request_timeout)
}

fn tcp_listener(config: &TcpListenerConfig, limits: &LimitsConfig) -> Result<TcpListener> {
    let server = limited(Server::builder(), limits)
        .tls_config(tls::server_tls_config(
            config,
            limits.tls_handshake_timeout,
        )?)
        .map_err(|source| Error::Tls {
            files: format!(
                "{} / {} / {}",
                config.cert.display(),
                config.key.display(),
                config.client_ca.display()
            ),
            source,
        })?;
    Ok(TcpListener {
        incoming: tls::bind(config, limits.tcp_keepalive)?,
        server,
    })
}

/// Every service the daemon offers, with health and reflection.
async fn routes(
    config: &ListenConfig,
    services: &ServiceConfig,
    (keys, migrator): (&Arc<KeyManager>, &Arc<Migrator>),
    policy: &Arc<Policy>,
    guard: &Arc<Guard>,
    stopping: Stopping,
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
    health.set_serving::<PolicyServer<PolicyService>>().await;
    health.set_serving::<AuditServer<AuditService>>().await;
    health
        .set_serving::<MigrationServer<MigrationService>>()
        .await;
    for name in NOTARY_HEALTH_SERVICES {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    // Reflection in both versions, from the same descriptors (both versions' own
    // included), so either lists the same services: grpcurl and grpc-go ask `v1`,
    // grpcio's reflection client and older tools speak only `v1alpha`.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .include_reflection_service(false)
            .register_encoded_file_descriptor_set(tufkey_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
    };
    let (reflection_v1, reflection_v1alpha) =
        (reflection().build_v1()?, reflection().build_v1alpha()?);
    let notary = NotaryService::new(
        keys.clone(),
        services.notary_placement.clone(),
        policy.notary_keys().clone(),
        guard.clone(),
    );
    // Requests are capped per service: only signing takes large messages (and only
    // within the memory budget); replies may be as large as the signing limit.
    let admin = services.limits.max_admin_message_bytes;
    let notary_limit = services.limits.max_notary_message_bytes;
    let budget = SigningBudget::new(services.limits.sign_memory_budget_bytes);
    budget.warn_if_too_small_for(limit);
    Ok(Routes::new(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            KeysServer::new(KeysService::new(
                keys.clone(),
                migrator.clone(),
                guard.clone(),
            ))
            .max_decoding_message_size(admin)
            .max_encoding_message_size(limit),
        )
        .add_service(
            budget.wrap(
                SigningServer::new(SigningService::new(keys.clone(), guard.clone()))
                    .max_decoding_message_size(limit)
                    .max_encoding_message_size(limit),
            ),
        )
        .add_service(
            SessionServer::new(SessionService::new(keys.clone(), guard.clone()))
                .max_decoding_message_size(admin)
                .max_encoding_message_size(limit),
        )
        .add_service(
            DevicesServer::new(DevicesService::new(
                keys.clone(),
                guard.clone(),
                stopping.clone(),
            ))
            .max_decoding_message_size(admin)
            .max_encoding_message_size(limit),
        )
        .add_service(
            KeyManagementServer::new(notary.clone())
                .max_decoding_message_size(notary_limit)
                .max_encoding_message_size(limit),
        )
        .add_service(
            SignerServer::new(notary)
                .max_decoding_message_size(notary_limit)
                .max_encoding_message_size(limit),
        )
        .add_service(
            PolicyServer::new(PolicyService::new(
                policy.clone(),
                keys.clone(),
                guard.clone(),
            ))
            .max_decoding_message_size(admin)
            .max_encoding_message_size(limit),
        )
        .add_service(
            AuditServer::new(AuditService::new(guard.clone(), stopping))
                .max_decoding_message_size(admin)
                .max_encoding_message_size(limit),
        )
        .add_service(
            MigrationServer::new(MigrationService::new(
                keys.clone(),
                migrator.clone(),
                guard.clone(),
            ))
            .max_decoding_message_size(services.limits.max_migration_message_bytes)
            .max_encoding_message_size(limit),
        ))
}
