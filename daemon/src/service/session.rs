//! `tufkey.v1.Session`: unlock, lock and status of the passphrase-protected
//! keystore, whichever backend provides it (found through the `Unlock` capability).

use super::guard::{Call, Guard, Rpc};
use crate::access::Permission;
use crate::error::{Error, Result};
use crate::keys::KeyManager;
use secrecy::SecretString;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tufkey_proto::v1 as pb;

/// Handlers for the lock state.
pub struct SessionService {
    keys: Arc<KeyManager>,
    guard: Arc<Guard>,
}

impl SessionService {
    pub fn new(keys: Arc<KeyManager>, guard: Arc<Guard>) -> Self {
        SessionService { keys, guard }
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

    async fn unlock_store(
        &self,
        call: &mut Call,
        passphrase: SecretString,
    ) -> Result<pb::StatusResponse> {
        self.guard.check(call, Permission::Session, None)?;
        if secrecy::ExposeSecret::expose_secret(&passphrase).is_empty() {
            return Err(Error::invalid("passphrase", "must not be empty"));
        }
        self.keys.unlocker()?.unlock(passphrase).await?;
        self.status()
    }

    fn lock_store(&self, call: &mut Call) -> Result<pb::StatusResponse> {
        self.guard.check(call, Permission::Session, None)?;
        self.keys.unlocker()?.lock();
        self.status()
    }
}

#[tonic::async_trait]
impl pb::session_server::Session for SessionService {
    #[tracing::instrument(skip_all)]
    async fn unlock(
        &self,
        request: Request<pb::UnlockRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::Unlock)?;
        let mut request = request.into_inner();
        // Move the buffer into a zeroising secret without copying it.
        let passphrase = SecretString::from(std::mem::take(&mut request.passphrase));
        let result = self.unlock_store(&mut call, passphrase).await;
        self.guard.finish(call, result).await.map(Response::new)
    }

    async fn lock(
        &self,
        request: Request<pb::LockRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::Lock)?;
        let result = self.lock_store(&mut call);
        self.guard.finish(call, result).await.map(Response::new)
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::Status)?;
        let result = self
            .guard
            .check(&mut call, Permission::Session, None)
            .and_then(|()| self.status());
        self.guard.finish(call, result).await.map(Response::new)
    }
}
