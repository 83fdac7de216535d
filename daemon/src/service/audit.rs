//! `tufkey.v1.Audit`: verify and read the audit log. The daemon verifies (only it
//! holds the MAC key) and reads only the files of its own log.

use super::guard::{Guard, Rpc};
use crate::access::Permission;
use crate::error::Result;
use crate::shutdown::Stopping;
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use tufkey_proto::v1 as pb;

/// Handlers for the audit log.
pub struct AuditService {
    guard: Arc<Guard>,
    /// Ends open tail streams at shutdown.
    stopping: Stopping,
}

impl AuditService {
    pub fn new(guard: Arc<Guard>, stopping: Stopping) -> Self {
        AuditService { guard, stopping }
    }

    async fn verify_log(&self, files: Vec<String>) -> Result<pb::VerifyAuditResponse> {
        let key = self.guard.audit_key()?;
        let whole_log = files.is_empty();
        let snapshot = self.guard.audit().snapshot(files).await?;
        let (files, outcome) = snapshot.verify(key, whole_log).await?;
        Ok(match outcome {
            Ok(verified) => pb::VerifyAuditResponse {
                files,
                records: verified.records,
                first_seq: verified.first_seq.unwrap_or(0),
                last_seq: verified.last.map_or(0, |last| last.seq),
                bad: None,
            },
            Err(bad) => pb::VerifyAuditResponse {
                files,
                records: 0,
                first_seq: 0,
                last_seq: 0,
                bad: Some(pb::BadAuditRecord {
                    file: bad.file,
                    line: bad.line,
                    seq: bad.seq.unwrap_or(0),
                    reason: bad.reason,
                }),
            },
        })
    }

    /// The last records, then (with `follow`) the new ones, until shutdown.
    async fn tail_log(&self, request: pb::TailAuditRequest) -> Result<TailStream> {
        // Subscribe first, so nothing written while the files are read is missed.
        let live = BroadcastStream::new(self.guard.audit().subscribe());
        let snapshot = self.guard.audit().snapshot(Vec::new()).await?;
        let (lines, head) = snapshot.tail(request.last as usize).await?;
        let past = tokio_stream::iter(lines.into_iter().map(|json| Ok(pb::AuditRecord { json })));
        if !request.follow {
            return Ok(Box::pin(past));
        }
        // Lines written after the snapshot only; a reader that lags skips what it missed.
        let live = live.filter_map(move |line| {
            let line = line.ok()?;
            (seq_of(&line) > head.seq).then(|| {
                Some(pb::AuditRecord {
                    json: line.to_string(),
                })
            })
        });
        let shutdown = self.stopping.clone().into_stream().map(|()| None);
        let live = live.merge(shutdown).map_while(|record| record.map(Ok));
        Ok(Box::pin(past.chain(live)))
    }
}

/// The record's seq, read without a full parse.
fn seq_of(line: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|record| record.get("seq").and_then(serde_json::Value::as_u64))
        .unwrap_or(0)
}

type TailStream = Pin<Box<dyn Stream<Item = Result<pb::AuditRecord, Status>> + Send>>;

#[tonic::async_trait]
impl pb::audit_server::Audit for AuditService {
    #[tracing::instrument(skip_all)]
    async fn verify(
        &self,
        request: Request<pb::VerifyAuditRequest>,
    ) -> Result<Response<pb::VerifyAuditResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::AuditVerify)?;
        let result = match self.guard.check(&mut call, Permission::Session, None) {
            Ok(()) => self.verify_log(request.into_inner().files).await,
            Err(denied) => Err(denied),
        };
        self.guard.finish(call, result).await.map(Response::new)
    }

    type TailStream = TailStream;

    #[tracing::instrument(skip_all)]
    async fn tail(
        &self,
        request: Request<pb::TailAuditRequest>,
    ) -> Result<Response<Self::TailStream>, Status> {
        let mut call = self.guard.begin(&request, Rpc::AuditTail)?;
        let result = match self.guard.check(&mut call, Permission::Session, None) {
            Ok(()) => self.tail_log(request.into_inner()).await,
            Err(denied) => Err(denied),
        };
        self.guard.finish(call, result).await.map(Response::new)
    }
}
