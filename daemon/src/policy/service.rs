//! `tufkey.v1.Policy`: explains the loaded policy's decision for an identity, an
//! RPC and a key, so an operator can test a policy before a caller trips over it.

use super::{rpcs, Policy};
use crate::access::{Caller, Permission};
use crate::blocking;
use crate::error::{Error, Result};
use crate::keys::KeyManager;
use crate::service::{Guard, Rpc};
use crate::transport::identity;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tufkey_proto::v1 as pb;
use x509_cert::der::{DecodePem, Encode};

/// The handler for `Policy.Check`.
pub struct PolicyService {
    policy: Arc<Policy>,
    keys: Arc<KeyManager>,
    guard: Arc<Guard>,
}

impl PolicyService {
    pub fn new(policy: Arc<Policy>, keys: Arc<KeyManager>, guard: Arc<Guard>) -> Self {
        PolicyService {
            policy,
            keys,
            guard,
        }
    }

    /// Explains the decision for the identity, RPC and key in `request`.
    async fn explain(&self, request: pb::CheckRequest) -> Result<pb::CheckResponse> {
        let (rpc, permission) = rpcs::resolve(&request.rpc)?;
        let caller = Self::caller(request.identity).await?;
        let key = if request.keyid.is_empty() {
            None
        } else {
            Some(self.keys.get(&request.keyid).await?)
        };
        let decision = self.policy.decide(&caller, permission, key.as_deref());
        Ok(pb::CheckResponse {
            allowed: decision.allowed,
            caller: caller.to_string(),
            rpc: rpc.into(),
            permission: permission.as_str().into(),
            rule: decision.rule,
            reason: decision.reason,
        })
    }

    /// The caller `identity` describes.
    async fn caller(identity: Option<pb::check_request::Identity>) -> Result<Caller> {
        match identity {
            Some(pb::check_request::Identity::Unix(unix)) => {
                let gid = match unix.gid {
                    Some(gid) => gid,
                    None => primary_gid(unix.uid).await?,
                };
                Ok(Caller::Unix {
                    uid: unix.uid,
                    gid,
                    pid: None,
                    exe: None,
                })
            }
            Some(pb::check_request::Identity::Certificate(bytes)) => if bytes
                .starts_with(b"-----BEGIN")
            {
                let certificate = x509_cert::Certificate::from_pem(&bytes).map_err(|error| {
                    Error::invalid("certificate", format!("not a PEM certificate: {error}"))
                })?;
                let der = certificate.to_der().map_err(|error| {
                    Error::invalid("certificate", format!("cannot re-encode it: {error}"))
                })?;
                identity::certificate_caller(&der)
            } else {
                identity::certificate_caller(&bytes)
            }
            .map_err(|error| Error::invalid("certificate", error.to_string())),
            None => Err(Error::invalid(
                "identity",
                "say whom to check: a uid, or a client certificate",
            )),
        }
    }
}

/// The primary gid of `uid` in the passwd database.
async fn primary_gid(uid: u32) -> Result<u32> {
    let user = blocking::run(move || {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .map_err(|error| Error::invalid("uid", format!("looking up uid {uid}: {error}")))
    })
    .await?;
    user.map(|user| user.gid.as_raw()).ok_or_else(|| {
        Error::invalid(
            "uid",
            format!("uid {uid} has no passwd entry, so its primary group is unknown: give the gid too (uid:{uid}:GID)"),
        )
    })
}

#[tonic::async_trait]
impl pb::policy_server::Policy for PolicyService {
    #[tracing::instrument(skip_all, fields(rpc = %request.get_ref().rpc, keyid = %request.get_ref().keyid))]
    async fn check(
        &self,
        request: Request<pb::CheckRequest>,
    ) -> Result<Response<pb::CheckResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::PolicyCheck)?;
        let result = match self.guard.check(&mut call, Permission::Session, None) {
            Ok(()) => self.explain(request.into_inner()).await,
            Err(error) => Err(error),
        };
        self.guard.finish(call, result).await.map(Response::new)
    }
}
