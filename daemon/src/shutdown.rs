//! Graceful shutdown: resolves when the process receives SIGINT or SIGTERM.

use tokio::signal::unix::{signal, SignalKind};

/// Waits for SIGINT or SIGTERM.
pub async fn signalled() {
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::error!(%error, "cannot watch SIGTERM; only Ctrl-C will stop the daemon");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, shutting down"),
        _ = terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
    }
}
