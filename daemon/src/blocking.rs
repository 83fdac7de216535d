//! The one way the daemon runs blocking work (file I/O with fsync, key derivation,
//! smart-card exchanges, big JSON documents) off the async worker threads.

use crate::error::TaskFailed;

/// Runs `work` on tokio's blocking pool. A panic in `work` becomes `E::from(TaskFailed)`
/// (each crate error type says what that means for it) instead of tearing the
/// daemon down.
pub async fn run<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<TaskFailed> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| E::from(TaskFailed(error)))?
}
