//! Who is calling on the Unix socket: each request gets the [`Caller`] its
//! connection's SO_PEERCRED names, before any handler runs. Whether that caller may
//! do what it asks is the policy's decision (`crate::policy`), made per RPC, so a
//! uid the policy grants only `sign` still reaches the socket.

use super::identity;
use crate::access::Caller;
use crate::error::Error;
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Status};

/// A tonic interceptor: puts the peer's [`Caller`] into the request's extensions;
/// refuses only a connection whose peer cannot be identified.
pub fn identify(mut request: Request<()>) -> Result<Request<()>, Status> {
    let caller: Caller = {
        let info = request
            .extensions()
            .get::<UdsConnectInfo>()
            .ok_or_else(|| Error::PeerUnknown("not a Unix-socket connection".into()))?;
        identity::unix_caller(info)?
    };
    request.extensions_mut().insert(caller);
    Ok(request)
}
