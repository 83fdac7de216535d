//! Graceful shutdown: the process signals that start it ([`signalled`]) and the
//! stop signal the server fans out to its background tasks ([`StopSignal`]).

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

/// Tells background tasks to stop; the server holds it and fires it at shutdown.
#[derive(Debug)]
pub struct StopSignal(tokio::sync::watch::Sender<bool>);

/// A background task's view of the stop signal: cheap to clone, awaitable.
#[derive(Clone, Debug)]
pub struct Stopping(tokio::sync::watch::Receiver<bool>);

impl StopSignal {
    /// A signal that has not fired.
    pub fn new() -> Self {
        StopSignal(tokio::sync::watch::channel(false).0)
    }

    /// A handle for a task that must stop when this fires.
    pub fn subscribe(&self) -> Stopping {
        Stopping(self.0.subscribe())
    }

    /// Fires the signal.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl Stopping {
    /// Resolves once the signal has fired (at once if it already has).
    pub async fn stopped(&mut self) {
        // An error means the signal was dropped, which also means: stop.
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Whether the signal has fired (for blocking loops that poll).
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }
}

impl Stopping {
    /// A stream that yields once, when the signal fires: merged into a response
    /// stream, it ends that stream at shutdown.
    pub fn into_stream(self) -> impl tokio_stream::Stream<Item = ()> + Send {
        use tokio_stream::StreamExt;
        tokio_stream::wrappers::WatchStream::new(self.0)
            .filter(|stop| *stop)
            .map(|_| ())
    }
}
