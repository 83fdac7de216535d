//! `tufkey.v1.Keys`: generate, list, show and delete keys.

use super::convert::{
    key_with_backup, optional_gun, optional_role, placement_from_proto, required_keyid,
};
use super::guard::{Call, Guard, Rpc};
use crate::access::Permission;
use crate::error::{Error, Result};
use crate::keys::{KeyManager, KeyRecord, NewKey, Placement};
use crate::migration::Migrator;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tufkey_proto::v1 as pb;

/// Handlers for key lifecycle RPCs.
pub struct KeysService {
    keys: Arc<KeyManager>,
    /// Knows when each key was last backed up.
    migrator: Arc<Migrator>,
    guard: Arc<Guard>,
}

impl KeysService {
    pub fn new(keys: Arc<KeyManager>, migrator: Arc<Migrator>, guard: Arc<Guard>) -> Self {
        KeysService {
            keys,
            migrator,
            guard,
        }
    }

    /// A key's description, with when a backup last covered it.
    fn key(&self, record: &KeyRecord) -> pb::Key {
        key_with_backup(&self.keys, &self.migrator, record)
    }

    async fn generate(&self, call: &mut Call, request: pb::GenerateKeyRequest) -> Result<pb::Key> {
        call.names(&request.gun, &request.role);
        self.guard.check(call, Permission::KeysAdmin, None)?;
        let placement = placement_from_proto(&request)?;
        // Software keys may leave (in a bundle) unless asked otherwise; device keys never.
        let exportable = request
            .exportable
            .unwrap_or(!matches!(placement, Placement::YubiKey(_)));
        let new_key = NewKey {
            gun: request.gun.parse()?,
            role: request.role.parse()?,
            exportable,
            placement,
        };
        let record = self.keys.generate(&new_key).await?;
        call.key(&record);
        Ok(self.key(&record))
    }

    fn list(&self, call: &mut Call, request: &pb::ListKeysRequest) -> Result<pb::ListKeysResponse> {
        self.guard.check(call, Permission::KeysRead, None)?;
        let gun = optional_gun(&request.gun)?;
        let role = optional_role(&request.role)?;
        let keys = self
            .keys
            .list(gun.as_ref(), role.as_ref())
            .iter()
            .map(|record| self.key(record))
            .collect();
        Ok(pb::ListKeysResponse { keys })
    }

    async fn show(&self, call: &mut Call, request: &pb::GetKeyRequest) -> Result<pb::Key> {
        let record = self.keys.get(required_keyid(&request.keyid)?).await?;
        self.guard
            .check(call, Permission::KeysRead, Some(&record))?;
        Ok(self.key(&record))
    }

    async fn delete(
        &self,
        call: &mut Call,
        request: &pb::DeleteKeyRequest,
    ) -> Result<pb::DeleteKeyResponse> {
        let record = self.keys.get(required_keyid(&request.keyid)?).await?;
        self.guard
            .check(call, Permission::KeysAdmin, Some(&record))?;
        if request.confirm != request.keyid {
            return Err(Error::invalid(
                "confirm",
                format!("must repeat the key ID {} to delete it", request.keyid),
            ));
        }
        let deleted = self.keys.delete(&record.keyid).await?;
        Ok(pb::DeleteKeyResponse {
            deleted: Some(self.key(&deleted)),
        })
    }
}

#[tonic::async_trait]
impl pb::keys_server::Keys for KeysService {
    #[tracing::instrument(skip_all, fields(gun = %request.get_ref().gun, role = %request.get_ref().role))]
    async fn generate_key(
        &self,
        request: Request<pb::GenerateKeyRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        let mut call = self.guard.begin(&request, Rpc::GenerateKey)?;
        let result = self.generate(&mut call, request.into_inner()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }

    async fn list_keys(
        &self,
        request: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::ListKeys)?;
        let result = self.list(&mut call, request.get_ref());
        self.guard.finish(call, result).await.map(Response::new)
    }

    async fn get_key(
        &self,
        request: Request<pb::GetKeyRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        let mut call = self.guard.begin(&request, Rpc::GetKey)?;
        let result = self.show(&mut call, request.get_ref()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(keyid = %request.get_ref().keyid))]
    async fn delete_key(
        &self,
        request: Request<pb::DeleteKeyRequest>,
    ) -> Result<Response<pb::DeleteKeyResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::DeleteKey)?;
        let result = self.delete(&mut call, request.get_ref()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }
}
