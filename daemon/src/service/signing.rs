//! `tufkey.v1.Signing`: sign raw bytes, or a whole TUF metadata document.

use super::convert::{format_from_proto, format_to_proto, required_keyid};
use crate::blocking;
use crate::error::Error;
use crate::keys::{KeyManager, KeyRecord};
use crate::tuf::metadata::MetadataDocument;
use crate::tuf::signature::{self, SignatureFormat};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tufkey_proto::v1 as pb;

/// Handlers for signing RPCs.
pub struct SigningService {
    keys: Arc<KeyManager>,
}

impl SigningService {
    pub fn new(keys: Arc<KeyManager>) -> Self {
        SigningService { keys }
    }
}

#[tonic::async_trait]
impl pb::signing_server::Signing for SigningService {
    #[tracing::instrument(skip_all, fields(keyid = %request.get_ref().keyid, bytes = request.get_ref().payload.len()))]
    async fn sign_raw(
        &self,
        request: Request<pb::SignRawRequest>,
    ) -> Result<Response<pb::SignRawResponse>, Status> {
        let request = request.into_inner();
        let key = self.keys.get(required_keyid(&request.keyid)?).await?;
        let format = format_from_proto(request.format)?;
        let digest: [u8; 32] = Sha256::digest(&request.payload).into();
        let signature = self.keys.sign_digest(&key, &digest).await?;
        Ok(Response::new(pb::SignRawResponse {
            keyid: key.keyid.clone(),
            format: format_to_proto(format) as i32,
            signature: signature::encode(&signature, format),
        }))
    }

    #[tracing::instrument(skip_all, fields(keys = ?request.get_ref().keyids, bytes = request.get_ref().document.len()))]
    async fn sign_metadata(
        &self,
        request: Request<pb::SignMetadataRequest>,
    ) -> Result<Response<pb::SignMetadataResponse>, Status> {
        let request = request.into_inner();
        if request.keyids.is_empty() {
            return Err(Error::invalid("keyids", "name at least one key to sign with").into());
        }
        let mut keys: Vec<Arc<KeyRecord>> = Vec::with_capacity(request.keyids.len());
        for id in &request.keyids {
            let key = self.keys.get(required_keyid(id)?).await?;
            if !keys.iter().any(|seen| seen.keyid == key.keyid) {
                keys.push(key);
            }
        }
        let document_bytes = request.document;
        // Parsing and canonicalising a large document is CPU work: off the async threads.
        let (mut document, digest) = blocking::run(move || {
            let document = MetadataDocument::parse(document_bytes)?;
            let digest: [u8; 32] = Sha256::digest(document.signed_bytes()).into();
            Ok::<_, Error>((document, digest))
        })
        .await?;
        for key in &keys {
            let signature = self.keys.sign_digest(key, &digest).await?;
            document.add_signature(
                &key.keyid,
                signature::encode(&signature, SignatureFormat::Tuf),
            );
        }
        let document = blocking::run(move || Ok::<_, Error>(document.into_bytes())).await?;
        Ok(Response::new(pb::SignMetadataResponse {
            document,
            signed_by: keys.iter().map(|key| key.keyid.clone()).collect(),
        }))
    }
}
