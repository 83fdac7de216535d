//! The Notary signer API (`proto.KeyManagement`, `proto.Signer`), wire-compatible
//! with notary-signer so notary-server can keep its timestamp and snapshot keys here.
//!
//! Keys made through it are ordinary tufkey keys (gun + role; in the backend
//! `--notary-backend` names: the software keystore, or a YubiKey) and are
//! addressed by their Notary key ID. Sign hashes the content with SHA-256 and answers
//! the raw 64-byte r||s. Differences from notary-signer 0.7, all deliberate: an
//! unsupported algorithm is INVALID_ARGUMENT (notary-signer: UNKNOWN), an empty gun or
//! role is refused (every tufkey key belongs to a collection and a role), and a
//! request without a key ID is INVALID_ARGUMENT (notary-signer crashes).
//!
//! Every call goes through the guard with the `notary` permission; for a key, the
//! policy lets this API reach only the keys it created (recorded here, in
//! [`NotaryKeys`], when `CreateKey` succeeds) or that a grant lists, never a root
//! key unless granted: so a compromised notary-server cannot sign with a root key
//! the operator made through the native API.

use super::guard::{Call, Guard, Rpc};
use crate::access::Permission;
use crate::error::{Error, Result};
use crate::keys::{KeyManager, KeyRecord, NewKey, Placement};
use crate::policy::NotaryKeys;
use crate::tuf::key_json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tufkey_proto::notary as pb;

/// The only algorithm name Notary uses for ECDSA P-256 keys and signatures.
const NOTARY_ECDSA: &str = "ecdsa";

/// The health service names notary-server checks before trusting the signer.
pub const NOTARY_HEALTH_SERVICES: [&str; 2] = [
    "grpc.health.v1.Health.KeyManagement",
    "grpc.health.v1.Health.Signer",
];

/// Handlers for both Notary services.
#[derive(Clone)]
pub struct NotaryService {
    keys: Arc<KeyManager>,
    new_keys: Placement,
    /// The keys created here: the only ones this API reaches unless a policy grant
    /// lists a key ID (the policy reads the same record).
    created: Arc<NotaryKeys>,
    guard: Arc<Guard>,
}

impl NotaryService {
    /// Handlers that create keys where `new_keys` says and record them in `created`.
    pub fn new(
        keys: Arc<KeyManager>,
        new_keys: Placement,
        created: Arc<NotaryKeys>,
        guard: Arc<Guard>,
    ) -> Self {
        NotaryService {
            keys,
            new_keys,
            created,
            guard,
        }
    }

    /// Finds a key by the Notary key ID in a request and checks that the caller may
    /// use it through this API.
    async fn find(&self, call: &mut Call, key_id: Option<&pb::KeyId>) -> Result<Arc<KeyRecord>> {
        let key_id = key_id.ok_or_else(|| Error::invalid("keyID", "missing"))?;
        if key_id.id.is_empty() {
            return Err(Error::KeyNotFound("\"\"".into()));
        }
        let key = self.keys.get(&key_id.id).await?;
        self.guard.check(call, Permission::Notary, Some(&key))?;
        Ok(key)
    }

    async fn create(
        &self,
        call: &mut Call,
        request: pb::CreateKeyRequest,
    ) -> Result<pb::PublicKey> {
        call.names(&request.gun, &request.role);
        self.guard.check(call, Permission::Notary, None)?;
        if request.algorithm != NOTARY_ECDSA {
            return Err(Error::invalid(
                "algorithm",
                format!(
                    "{:?} is not supported: tufkeyd creates ECDSA P-256 keys, algorithm \"{NOTARY_ECDSA}\"",
                    request.algorithm
                ),
            ));
        }
        let new_key = NewKey {
            gun: request.gun.parse()?,
            role: request.role.parse()?,
            exportable: false,
            placement: self.new_keys.clone(),
        };
        let key = self.keys.generate(&new_key).await?;
        call.key(&key);
        if let Err(error) = self.created.add(&key.keyid).await {
            // A key this API cannot reach again must not linger.
            if let Err(cleanup) = self.keys.delete(&key.keyid).await {
                tracing::error!(keyid = %key.keyid, %cleanup, "removing a Notary key that could not be recorded");
            }
            return Err(error);
        }
        Ok(pb::PublicKey {
            key_info: Some(key_info(&key)),
            public_key: key_json::public_key_der(&key.public_key),
        })
    }

    /// Deleting a key that does not exist succeeds, as with notary-signer.
    async fn delete(&self, call: &mut Call, request: &pb::KeyId) -> Result<pb::Void> {
        match self.find(call, Some(request)).await {
            Ok(key) => {
                self.keys.delete(&key.keyid).await?;
                self.created.remove(&key.keyid).await?;
            }
            Err(Error::KeyNotFound(_)) => self.guard.check(call, Permission::Notary, None)?,
            Err(error) => return Err(error),
        }
        Ok(pb::Void {})
    }

    async fn info(&self, call: &mut Call, request: &pb::KeyId) -> Result<pb::GetKeyInfoResponse> {
        let key = self.find(call, Some(request)).await?;
        Ok(pb::GetKeyInfoResponse {
            key_info: Some(key_info(&key)),
            public_key: key_json::public_key_der(&key.public_key),
            role: key.role.to_string(),
        })
    }

    async fn sign_content(
        &self,
        call: &mut Call,
        request: pb::SignatureRequest,
    ) -> Result<pb::Signature> {
        let key = self.find(call, request.key_id.as_ref()).await?;
        let digest: [u8; 32] = Sha256::digest(&request.content).into();
        call.payload(&digest);
        let signature = self.keys.sign_digest(&key, &digest).await?;
        Ok(pb::Signature {
            key_info: Some(key_info(&key)),
            algorithm: Some(ecdsa()),
            content: signature.to_bytes().to_vec(),
        })
    }
}

fn key_info(key: &KeyRecord) -> pb::KeyInfo {
    pb::KeyInfo {
        key_id: Some(pb::KeyId {
            id: key.notary_keyid.clone(),
        }),
        algorithm: Some(ecdsa()),
    }
}

fn ecdsa() -> pb::Algorithm {
    pb::Algorithm {
        algorithm: NOTARY_ECDSA.into(),
    }
}

fn key_id_field(key_id: Option<&pb::KeyId>) -> &str {
    key_id.map_or("", |key_id| key_id.id.as_str())
}

#[tonic::async_trait]
impl pb::key_management_server::KeyManagement for NotaryService {
    #[tracing::instrument(skip_all, fields(gun = %request.get_ref().gun, role = %request.get_ref().role))]
    async fn create_key(
        &self,
        request: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::PublicKey>, Status> {
        let mut call = self.guard.begin(&request, Rpc::NotaryCreateKey)?;
        let result = self.create(&mut call, request.into_inner()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(keyid = %request.get_ref().id))]
    async fn delete_key(&self, request: Request<pb::KeyId>) -> Result<Response<pb::Void>, Status> {
        let mut call = self.guard.begin(&request, Rpc::NotaryDeleteKey)?;
        let result = self.delete(&mut call, request.get_ref()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(keyid = %request.get_ref().id))]
    async fn get_key_info(
        &self,
        request: Request<pb::KeyId>,
    ) -> Result<Response<pb::GetKeyInfoResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::NotaryGetKeyInfo)?;
        let result = self.info(&mut call, request.get_ref()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }
}

#[tonic::async_trait]
impl pb::signer_server::Signer for NotaryService {
    #[tracing::instrument(skip_all, fields(keyid = %key_id_field(request.get_ref().key_id.as_ref()), bytes = request.get_ref().content.len()))]
    async fn sign(
        &self,
        request: Request<pb::SignatureRequest>,
    ) -> Result<Response<pb::Signature>, Status> {
        let mut call = self.guard.begin(&request, Rpc::NotarySign)?;
        let result = self.sign_content(&mut call, request.into_inner()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKey;
    use crate::keys::{Backends, KeyBackend, Location, LockState, Unlock};
    use crate::service::guard::testing::{self, request, Guarded};
    use async_trait::async_trait;
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
    use p256::pkcs8::DecodePublicKey;
    use pb::key_management_server::KeyManagement;
    use pb::signer_server::Signer;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use tonic::Code;

    /// Keys in a map: enough to drive the handlers without a keystore.
    #[derive(Default)]
    struct MemoryBackend {
        keys: Mutex<HashMap<String, SigningKey>>,
    }

    #[async_trait]
    impl KeyBackend for MemoryBackend {
        fn name(&self) -> &'static str {
            "memory"
        }

        async fn load(&self) -> Result<Vec<KeyRecord>> {
            Ok(Vec::new())
        }

        async fn find(&self, _id: &str) -> Result<Option<KeyRecord>> {
            Ok(None)
        }

        async fn generate(&self, new_key: &NewKey) -> Result<KeyRecord> {
            let signing_key = SigningKey::random(&mut rand_core::OsRng);
            let record = KeyRecord::new(
                signing_key.verifying_key().into(),
                new_key.gun.clone(),
                new_key.role.clone(),
                Location::Other { backend: "memory" },
                "2026-01-01T00:00:00Z".into(),
                new_key.exportable,
            );
            self.keys
                .lock()
                .unwrap()
                .insert(record.keyid.clone(), signing_key);
            Ok(record)
        }

        async fn sign_digest(&self, key: &KeyRecord, digest: &[u8; 32]) -> Result<Signature> {
            let keys = self.keys.lock().unwrap();
            let signing_key = keys.get(&key.keyid).expect("key generated by this backend");
            Ok(signing_key.sign_prehash(digest).unwrap())
        }

        async fn delete(&self, key: &KeyRecord) -> Result<()> {
            self.keys.lock().unwrap().remove(&key.keyid);
            Ok(())
        }

        fn unlock(&self) -> Option<&dyn Unlock> {
            Some(self)
        }
    }

    /// Always open; there only to give the audit log its key.
    #[async_trait]
    impl Unlock for MemoryBackend {
        async fn unlock(&self, _passphrase: secrecy::SecretString) -> Result<()> {
            Ok(())
        }

        fn lock(&self) {}

        fn lock_state(&self) -> LockState {
            LockState {
                locked: false,
                store: "memory".into(),
                passphrase_source: None,
                problems: Vec::new(),
            }
        }

        fn audit_key(&self) -> Option<AuditKey> {
            Some(AuditKey::derive(b"memory"))
        }
    }

    /// The service, and the guard's log kept alive beside it.
    struct Harness {
        service: NotaryService,
        audit: Guarded,
    }

    impl std::ops::Deref for Harness {
        type Target = NotaryService;

        fn deref(&self) -> &NotaryService {
            &self.service
        }
    }

    async fn service() -> Harness {
        let mut backends = Backends::new();
        backends
            .register(Arc::new(MemoryBackend::default()))
            .unwrap();
        let keys = Arc::new(KeyManager::new(backends).await.unwrap());
        let audit = testing::guard(keys.clone()).await;
        Harness {
            service: NotaryService::new(
                keys,
                Placement::Default,
                Arc::new(NotaryKeys::load(None).unwrap()),
                audit.guard.clone(),
            ),
            audit,
        }
    }

    /// The audit log's records so far.
    fn records(harness: &Harness) -> Vec<serde_json::Value> {
        std::fs::read_to_string(harness.audit.dir.path().join("audit.log"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    async fn create(service: &NotaryService, algorithm: &str) -> Result<pb::PublicKey, Status> {
        service
            .create_key(request(pb::CreateKeyRequest {
                algorithm: algorithm.into(),
                gun: "docker.io/acme/app".into(),
                role: "timestamp".into(),
            }))
            .await
            .map(Response::into_inner)
    }

    fn key_id(id: &str) -> pb::KeyId {
        pb::KeyId { id: id.into() }
    }

    #[tokio::test]
    async fn created_keys_are_tufkey_keys_named_by_their_notary_id() {
        let service = service().await;
        let created = create(&service, "ecdsa").await.unwrap();
        let public_key = p256::PublicKey::from_public_key_der(&created.public_key).unwrap();
        let id = created.key_info.unwrap().key_id.unwrap().id;
        assert_eq!(id, key_json::notary_keyid(&public_key));

        let record = service.keys.get(&id).await.unwrap();
        assert_eq!(record.gun.as_str(), "docker.io/acme/app");
        assert_eq!(record.role.as_str(), "timestamp");

        let info = service
            .get_key_info(request(key_id(&id)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(info.role, "timestamp");
        assert_eq!(info.public_key, created.public_key);
        assert_eq!(info.key_info.unwrap().algorithm.unwrap().algorithm, "ecdsa");
    }

    #[tokio::test]
    async fn sign_answers_raw_r_s_over_sha256_of_the_content() {
        let service = service().await;
        let created = create(&service, "ecdsa").await.unwrap();
        let id = created.key_info.unwrap().key_id.unwrap().id;
        let content = b"{\"_type\":\"timestamp\"}".to_vec();
        let signature = service
            .sign(request(pb::SignatureRequest {
                key_id: Some(key_id(&id)),
                content: content.clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(signature.algorithm.unwrap().algorithm, "ecdsa");
        assert_eq!(signature.content.len(), 64);
        let verifying_key = VerifyingKey::from_public_key_der(&created.public_key).unwrap();
        verifying_key
            .verify(
                &content,
                &Signature::from_slice(&signature.content).unwrap(),
            )
            .unwrap();

        // Both calls are in the audit log, with the caller, the key and the payload hash.
        let records = records(&service);
        assert_eq!(records.len(), 2, "{records:?}");
        assert_eq!(records[0]["rpc"], "proto.KeyManagement/CreateKey");
        assert_eq!(records[0]["role"], "timestamp");
        let sign = &records[1];
        assert_eq!(sign["rpc"], "proto.Signer/Sign");
        assert_eq!(sign["caller"]["uid"], 1000);
        assert_eq!(sign["result"], "ok");
        assert_eq!(
            sign["keyid"],
            service.keys.get(&id).await.unwrap().keyid.as_str()
        );
        assert_eq!(
            sign["payload_sha256"],
            hex::encode(Sha256::digest(&content))
        );
    }

    #[tokio::test]
    async fn a_request_without_a_caller_identity_is_refused() {
        let service = service().await;
        let status = service
            .create_key(Request::new(pb::CreateKeyRequest {
                algorithm: "ecdsa".into(),
                gun: "docker.io/acme/app".into(),
                role: "timestamp".into(),
            }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        assert!(
            status.message().contains("cannot identify the caller"),
            "{}",
            status.message()
        );
        assert!(
            service.keys.list(None, None).is_empty(),
            "nothing was created"
        );
    }

    #[tokio::test]
    async fn other_algorithms_are_refused_by_name() {
        let service = service().await;
        let status = create(&service, "rsa").await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("\"rsa\""), "{}", status.message());
        assert!(
            status.message().contains("\"ecdsa\""),
            "{}",
            status.message()
        );
    }

    #[tokio::test]
    async fn unknown_empty_and_missing_key_ids_fail_cleanly() {
        let service = service().await;
        for id in ["feedface", ""] {
            let status = service
                .sign(request(pb::SignatureRequest {
                    key_id: Some(key_id(id)),
                    content: Vec::new(),
                }))
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::NotFound, "{id:?}");
            let status = service.get_key_info(request(key_id(id))).await.unwrap_err();
            assert_eq!(status.code(), Code::NotFound, "{id:?}");
        }
        let missing = service
            .sign(request(pb::SignatureRequest {
                key_id: None,
                content: Vec::new(),
            }))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::InvalidArgument);
    }

    #[tokio::test]
    async fn delete_removes_the_key_and_unknown_ids_are_ok() {
        let service = service().await;
        let id = create(&service, "ecdsa")
            .await
            .unwrap()
            .key_info
            .unwrap()
            .key_id
            .unwrap()
            .id;
        service.delete_key(request(key_id(&id))).await.unwrap();
        assert!(service.keys.get(&id).await.is_err());
        service
            .delete_key(request(key_id("feedface")))
            .await
            .unwrap();
    }
}
