//! `tufkey.v1.Session`: unlock, lock and status of the software keystore.

use crate::backend::software::{PassphraseSource, SoftwareBackend};
use crate::error::Error;
use crate::keys::KeyManager;
use secrecy::SecretString;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tufkey_proto::v1 as pb;

/// Handlers for the lock state.
pub struct SessionService {
    keys: Arc<KeyManager>,
    keystore: Arc<SoftwareBackend>,
}

impl SessionService {
    pub fn new(keys: Arc<KeyManager>, keystore: Arc<SoftwareBackend>) -> Self {
        SessionService { keys, keystore }
    }

    fn status(&self) -> pb::StatusResponse {
        let status = self.keystore.status();
        pb::StatusResponse {
            locked: status.locked,
            key_count: u32::try_from(self.keys.list(None, None).len()).unwrap_or(u32::MAX),
            store: status.dir.display().to_string(),
            passphrase_source: status
                .passphrase_source
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            unreadable_files: status.unreadable_files,
            version: env!("CARGO_PKG_VERSION").into(),
        }
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
        self.keystore
            .unlock(passphrase, PassphraseSource::Unlock)
            .await?;
        Ok(Response::new(self.status()))
    }

    async fn lock(
        &self,
        _request: Request<pb::LockRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        self.keystore.lock();
        Ok(Response::new(self.status()))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        Ok(Response::new(self.status()))
    }
}
