//! `tufkey.v1.Session`: unlock, lock and status of the passphrase-protected
//! keystore, whichever backend provides it (found through the `Unlock` capability).

use crate::error::{Error, Result};
use crate::keys::KeyManager;
use secrecy::SecretString;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tufkey_proto::v1 as pb;

/// Handlers for the lock state.
pub struct SessionService {
    keys: Arc<KeyManager>,
}

impl SessionService {
    pub fn new(keys: Arc<KeyManager>) -> Self {
        SessionService { keys }
    }

    fn status(&self) -> Result<pb::StatusResponse> {
        let state = self.keys.unlocker()?.lock_state();
        Ok(pb::StatusResponse {
            locked: state.locked,
            key_count: u32::try_from(self.keys.list(None, None).len()).unwrap_or(u32::MAX),
            store: state.store,
            passphrase_source: state.passphrase_source.unwrap_or_default().to_owned(),
            unreadable_files: state.problems,
            version: env!("CARGO_PKG_VERSION").into(),
        })
    }
}

#[tonic::async_trait]
impl pb::session_server::Session for SessionService {
    #[tracing::instrument(skip_all)]
    async fn unlock(
        &self,
        request: Request<pb::UnlockRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let mut request = request.into_inner();
        // Move the buffer into a zeroising secret without copying it.
        let passphrase = SecretString::from(std::mem::take(&mut request.passphrase));
        if secrecy::ExposeSecret::expose_secret(&passphrase).is_empty() {
            return Err(Error::invalid("passphrase", "must not be empty").into());
        }
        self.keys.unlocker()?.unlock(passphrase).await?;
        Ok(Response::new(self.status()?))
    }

    async fn lock(
        &self,
        _request: Request<pb::LockRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        self.keys.unlocker()?.lock();
        Ok(Response::new(self.status()?))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        Ok(Response::new(self.status()?))
    }
}
