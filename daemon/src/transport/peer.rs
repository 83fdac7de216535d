//! Who is calling? Each Unix-socket connection's peer uid (SO_PEERCRED) is checked
//! against an allow-list before any RPC runs.

use crate::error::Error;
use std::sync::Arc;
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Status};

/// The uids allowed to call the daemon over its Unix socket.
#[derive(Clone, Debug)]
pub struct PeerAllowList {
    uids: Arc<[u32]>,
}

impl PeerAllowList {
    /// Allows exactly `uids`.
    pub fn new(uids: Vec<u32>) -> Self {
        PeerAllowList { uids: uids.into() }
    }

    /// A tonic interceptor: passes allowed callers, refuses everyone else.
    pub fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        let info = request
            .extensions()
            .get::<UdsConnectInfo>()
            .ok_or_else(|| Error::PeerUnknown("not a Unix-socket connection".into()))?;
        let credentials = info
            .peer_cred
            .ok_or_else(|| Error::PeerUnknown("the socket gave no peer credentials".into()))?;
        if self.uids.contains(&credentials.uid()) {
            Ok(request)
        } else {
            tracing::warn!(
                uid = credentials.uid(),
                "refused a caller not on the allow-list"
            );
            Err(Error::PeerNotAllowed {
                uid: credentials.uid(),
                allowed: self
                    .uids
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into())
        }
    }
}
