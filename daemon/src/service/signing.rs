//! `tufkey.v1.Signing`: sign raw bytes, or a whole TUF metadata document (admitted
//! under the memory budget of [`super::budget`]), replying with the signed document
//! or, for callers that keep their text, only the edit that adds the signatures.

use super::convert::{format_from_proto, format_to_proto, required_keyid};
use super::guard::{Call, Guard, Rpc};
use crate::access::Permission;
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
    guard: Arc<Guard>,
}

impl SigningService {
    pub fn new(keys: Arc<KeyManager>, guard: Arc<Guard>) -> Self {
        SigningService { keys, guard }
    }

    async fn sign_raw_for(
        &self,
        call: &mut Call,
        request: pb::SignRawRequest,
    ) -> Result<pb::SignRawResponse, Error> {
        let key = self.keys.get(required_keyid(&request.keyid)?).await?;
        self.guard.check(call, Permission::Sign, Some(&key))?;
        let format = format_from_proto(request.format)?;
        let digest: [u8; 32] = Sha256::digest(&request.payload).into();
        call.payload(&digest);
        let signature = self.keys.sign_digest(&key, &digest).await?;
        Ok(pb::SignRawResponse {
            keyid: key.keyid.clone(),
            format: format_to_proto(format) as i32,
            signature: signature::encode(&signature, format),
        })
    }

    async fn sign_metadata_for(
        &self,
        call: &mut Call,
        mut request: pb::SignMetadataRequest,
    ) -> Result<pb::SignMetadataResponse, Error> {
        if request.keyids.is_empty() {
            return Err(Error::invalid(
                "keyids",
                "name at least one key to sign with",
            ));
        }
        let mut keys: Vec<Arc<KeyRecord>> = Vec::with_capacity(request.keyids.len());
        for id in &request.keyids {
            let key = self.keys.get(required_keyid(id)?).await?;
            self.guard.check(call, Permission::Sign, Some(&key))?;
            if !keys.iter().any(|seen| seen.keyid == key.keyid) {
                keys.push(key);
            }
        }
        let document_bytes = std::mem::take(&mut request.document);
        let signatures_only = request.signatures_only;
        // Parsing and canonicalising a large document is CPU work: off the async threads.
        let (mut document, digest) = blocking::run(move || {
            let document = if signatures_only {
                MetadataDocument::parse_for_splice(document_bytes)?
            } else {
                MetadataDocument::parse(document_bytes)?
            };
            let digest: [u8; 32] = Sha256::digest(document.signed_bytes()).into();
            Ok::<_, Error>((document, digest))
        })
        .await?;
        call.payload(&digest);
        call.metadata(document.summary());
        for key in &keys {
            let signature = self.keys.sign_digest(key, &digest).await?;
            document.add_signature(
                &key.keyid,
                signature::encode(&signature, SignatureFormat::Tuf),
            );
        }
        let signed_by = keys.iter().map(|key| key.keyid.clone()).collect();
        if signatures_only {
            // Frees the caller's document too: off the async threads as well.
            let splice = blocking::run(move || Ok::<_, Error>(document.into_splice())).await?;
            return Ok(pb::SignMetadataResponse {
                document: Vec::new(),
                signed_by,
                splice_start: splice.range.start as u64,
                splice_end: splice.range.end as u64,
                splice_text: splice.text,
            });
        }
        let document = blocking::run(move || Ok::<_, Error>(document.into_bytes())).await?;
        Ok(pb::SignMetadataResponse {
            document,
            signed_by,
            ..Default::default()
        })
    }
}

#[tonic::async_trait]
impl pb::signing_server::Signing for SigningService {
    #[tracing::instrument(skip_all, fields(keyid = %request.get_ref().keyid, bytes = request.get_ref().payload.len()))]
    async fn sign_raw(
        &self,
        request: Request<pb::SignRawRequest>,
    ) -> Result<Response<pb::SignRawResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::SignRaw)?;
        let result = self.sign_raw_for(&mut call, request.into_inner()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(keys = ?request.get_ref().keyids, bytes = request.get_ref().document.len()))]
    async fn sign_metadata(
        &self,
        request: Request<pb::SignMetadataRequest>,
    ) -> Result<Response<pb::SignMetadataResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::SignMetadata)?;
        let result = self
            .sign_metadata_for(&mut call, request.into_inner())
            .await;
        self.guard.finish(call, result).await.map(Response::new)
    }
}
