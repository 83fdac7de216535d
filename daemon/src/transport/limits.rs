//! Bounds on connections, so that no caller can exhaust the daemon's file
//! descriptors: each listener admits at most `--max-connections` connections at once
//! and closes any further one the moment it is accepted. Without this, a thousand idle
//! TCP connections (which cost the attacker nothing before the TLS handshake) would
//! leave no descriptor for the local Unix-socket clients.
//!
//! The cap sits between the listener and tonic: a connection carries its permit for
//! as long as it lives (TLS handshake included), and its connection info is passed
//! through unchanged, so naming the Unix peer (`UdsConnectInfo`) and the client
//! certificate check (`peer_certs()`, which wants exactly
//! `TlsConnectInfo<TcpConnectInfo>`) see what they saw without the cap.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::Connected;

/// How often at most a listener logs that it refused connections over its cap.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// An accepted connection holding one of its listener's permits until it closes.
pub struct Capped<IO> {
    io: IO,
    _permit: OwnedSemaphorePermit,
}

/// Admits at most `max` connections of `incoming` at once; each further one is
/// closed as soon as it is accepted and counted in a rate-limited warning naming
/// `listener`. Accept errors pass through to the server.
pub fn cap<S, IO, E>(
    incoming: S,
    listener: &'static str,
    max: usize,
) -> impl Stream<Item = Result<Capped<IO>, E>>
where
    S: Stream<Item = Result<IO, E>>,
{
    let permits = Arc::new(Semaphore::new(max));
    let mut refusals = RefusalLog::default();
    incoming.filter_map(move |accepted| {
        let io = match accepted {
            Ok(io) => io,
            Err(error) => return Some(Err(error)),
        };
        match permits.clone().try_acquire_owned() {
            Ok(permit) => Some(Ok(Capped {
                io,
                _permit: permit,
            })),
            Err(_) => {
                drop(io);
                if let Some(refused) = refusals.refused(Instant::now()) {
                    tracing::warn!(
                        listener,
                        max_connections = max,
                        refused,
                        "closed connections over the listener's cap (--max-connections)"
                    );
                }
                None
            }
        }
    })
}

/// Counts refusals and says when to log them: the first at once, then at most once
/// per [`REFUSAL_LOG_INTERVAL`] with the number refused since the last line.
#[derive(Debug, Default)]
struct RefusalLog {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl RefusalLog {
    /// Notes one refusal at `now`; returns how many to report if a line is due.
    fn refused(&mut self, now: Instant) -> Option<u64> {
        self.unlogged += 1;
        let due = self
            .last_logged
            .is_none_or(|last| now.duration_since(last) >= REFUSAL_LOG_INTERVAL);
        if !due {
            return None;
        }
        self.last_logged = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// Raises the soft limit on open files to the hard limit, so the connection caps
/// (not the process limit) decide who is refused; warns when even the hard limit is
/// below what the caps allow.
pub fn raise_open_file_limit(connections_wanted: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(error) => {
            tracing::warn!(%error, "cannot read the open-file limit");
            return;
        }
    };
    let mut limit = soft;
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => limit = hard,
            Err(error) => tracing::warn!(%error, soft, hard, "cannot raise the open-file limit"),
        }
    }
    // Key files, the store, logs and pcscd need a few descriptors besides connections.
    const SPARE: u64 = 64;
    if limit < connections_wanted.saturating_add(SPARE) {
        tracing::warn!(
            open_file_limit = limit,
            connections_wanted,
            "the open-file limit is below what --max-connections allows on every listener: \
             lower --max-connections or raise the limit (LimitNOFILE= in systemd, ulimit -n)"
        );
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Capped<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Capped<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<IO: Connected> Connected for Capped<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_at_once_then_at_most_every_interval_with_the_count() {
        let mut log = RefusalLog::default();
        let start = Instant::now();
        assert_eq!(log.refused(start), Some(1));
        assert_eq!(log.refused(start + Duration::from_secs(1)), None);
        assert_eq!(log.refused(start + Duration::from_secs(9)), None);
        assert_eq!(
            log.refused(start + REFUSAL_LOG_INTERVAL),
            Some(3),
            "the line counts the refusals it held back"
        );
        assert_eq!(log.refused(start + REFUSAL_LOG_INTERVAL), None);
    }

    #[tokio::test]
    async fn connections_over_the_cap_are_dropped_and_a_closed_one_frees_its_permit() {
        let (a, _a) = tokio::io::duplex(8);
        let (b, mut b_peer) = tokio::io::duplex(8);
        let (c, _c) = tokio::io::duplex(8);
        let incoming = tokio_stream::iter([a, b, c].map(Ok::<_, io::Error>));
        let admitted: Vec<_> = cap(incoming, "test", 1).collect().await;
        assert_eq!(admitted.len(), 1, "only the first fits under a cap of 1");
        // The second was dropped: its peer sees the end of the stream.
        let mut byte = [0u8; 1];
        let read = tokio::io::AsyncReadExt::read(&mut b_peer, &mut byte).await;
        assert_eq!(read.unwrap(), 0);

        let (d, _d) = tokio::io::duplex(8);
        let (e, _e) = tokio::io::duplex(8);
        let mut capped = Box::pin(cap(
            tokio_stream::iter([d, e].map(Ok::<_, io::Error>)),
            "test",
            1,
        ));
        let first = capped.next().await.unwrap().unwrap();
        drop(first);
        assert!(
            capped.next().await.is_some(),
            "a closed connection's permit goes to the next one"
        );
    }
}
