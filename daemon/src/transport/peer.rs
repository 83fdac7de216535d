//! Who is calling on the Unix socket: each connection is named once, when it is
//! accepted ([`Identified`]: SO_PEERCRED and the executable behind its pid), and every
//! request on it gets that [`Caller`] before any handler runs. Naming the connection
//! rather than each request keeps the `/proc` lookup off the signing path, and pins
//! the executable to the process that connected. Whether the caller may do what it
//! asks is the policy's decision (`crate::policy`), made per RPC, so a uid the policy
//! grants only `sign` still reaches the socket.

use super::identity;
use crate::access::Caller;
use crate::error::Error;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::{Connected, UdsConnectInfo};
use tonic::{Request, Status};

/// An accepted Unix-socket connection and the caller behind it.
pub struct Identified<IO> {
    stream: IO,
    peer: UnixPeer,
}

/// The caller behind a connection (or why it has none), in each request's extensions.
#[derive(Clone, Debug)]
pub struct UnixPeer(Arc<Result<Caller, String>>);

impl<IO: Connected<ConnectInfo = UdsConnectInfo>> Identified<IO> {
    /// Names the caller behind `stream`.
    pub fn new(stream: IO) -> Self {
        let caller = identity::unix_caller(&stream.connect_info()).map_err(|error| match error {
            Error::PeerUnknown(why) => why,
            other => other.to_string(),
        });
        Identified {
            stream,
            peer: UnixPeer(Arc::new(caller)),
        }
    }
}

/// A tonic interceptor: puts the connection's [`Caller`] into the request's
/// extensions; refuses only a connection whose peer cannot be identified.
pub fn identify(mut request: Request<()>) -> Result<Request<()>, Status> {
    let caller = match request.extensions().get::<UnixPeer>().map(|peer| &*peer.0) {
        Some(Ok(caller)) => caller.clone(),
        Some(Err(why)) => return Err(Error::PeerUnknown(why.clone()).into()),
        None => return Err(Error::PeerUnknown("not a Unix-socket connection".into()).into()),
    };
    request.extensions_mut().insert(caller);
    Ok(request)
}

impl<IO> Connected for Identified<IO> {
    type ConnectInfo = UnixPeer;

    fn connect_info(&self) -> UnixPeer {
        self.peer.clone()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Identified<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Identified<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixStream;

    #[tokio::test]
    async fn a_connection_is_named_once_and_each_request_on_it_carries_the_caller() {
        let (client, server) = UnixStream::pair().unwrap();
        let connection = Identified::new(server);
        let mut request = Request::new(());
        request.extensions_mut().insert(connection.connect_info());
        let request = identify(request).unwrap();
        let Some(Caller::Unix { uid, pid, exe, .. }) = request.extensions().get::<Caller>() else {
            panic!("the request carries a Unix caller");
        };
        assert_eq!(*uid, nix::unistd::getuid().as_raw());
        assert_eq!(*pid, Some(std::process::id() as i32));
        assert_eq!(exe.as_deref(), std::env::current_exe().ok().as_deref());
        drop(client);
    }

    #[test]
    fn a_request_from_no_known_connection_is_refused() {
        let status = identify(Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert!(
            status.message().contains("not a Unix-socket connection"),
            "{status:?}"
        );
    }
}
