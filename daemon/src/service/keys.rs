//! `tufkey.v1.Keys`: generate, list, show and delete keys.

use super::convert::{
    key_to_proto, optional_gun, optional_role, placement_from_proto, required_keyid,
};
use crate::error::Error;
use crate::keys::{KeyManager, NewKey};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tufkey_proto::v1 as pb;

/// Handlers for key lifecycle RPCs.
pub struct KeysService {
    keys: Arc<KeyManager>,
}

impl KeysService {
    pub fn new(keys: Arc<KeyManager>) -> Self {
        KeysService { keys }
    }
}

#[tonic::async_trait]
impl pb::keys_server::Keys for KeysService {
    #[tracing::instrument(skip_all, fields(gun = %request.get_ref().gun, role = %request.get_ref().role))]
    async fn generate_key(
        &self,
        request: Request<pb::GenerateKeyRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        let request = request.into_inner();
        let new_key = NewKey {
            gun: request.gun.parse()?,
            role: request.role.parse()?,
            exportable: request.exportable,
            placement: placement_from_proto(&request)?,
        };
        let record = self.keys.generate(&new_key).await?;
        Ok(Response::new(key_to_proto(&self.keys, &record)))
    }

    async fn list_keys(
        &self,
        request: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let request = request.into_inner();
        let gun = optional_gun(&request.gun)?;
        let role = optional_role(&request.role)?;
        let keys = self
            .keys
            .list(gun.as_ref(), role.as_ref())
            .iter()
            .map(|record| key_to_proto(&self.keys, record))
            .collect();
        Ok(Response::new(pb::ListKeysResponse { keys }))
    }

    async fn get_key(
        &self,
        request: Request<pb::GetKeyRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        let record = self
            .keys
            .get(required_keyid(&request.get_ref().keyid)?)
            .await?;
        Ok(Response::new(key_to_proto(&self.keys, &record)))
    }

    #[tracing::instrument(skip_all, fields(keyid = %request.get_ref().keyid))]
    async fn delete_key(
        &self,
        request: Request<pb::DeleteKeyRequest>,
    ) -> Result<Response<pb::DeleteKeyResponse>, Status> {
        let request = request.into_inner();
        let record = self.keys.get(required_keyid(&request.keyid)?).await?;
        if request.confirm != request.keyid {
            return Err(Error::invalid(
                "confirm",
                format!("must repeat the key ID {} to delete it", request.keyid),
            )
            .into());
        }
        let deleted = self.keys.delete(&record.keyid).await?;
        Ok(Response::new(pb::DeleteKeyResponse {
            deleted: Some(key_to_proto(&self.keys, &deleted)),
        }))
    }
}
