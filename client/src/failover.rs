//! Failover across several tufkeyd endpoints (replicas sharing one keystore): which
//! RPCs may be sent again elsewhere, and the call loop that does it.
//!
//! A call goes to the current endpoint. When that endpoint cannot answer (the
//! connection is refused or breaks, or it answers UNAVAILABLE), an idempotent call
//! moves on to the next endpoint, each endpoint at most once per call. A
//! non-idempotent call is never sent twice: it moves on only when the connection was
//! never made (nothing left this process), and otherwise fails with
//! [`FailoverError::MaybeApplied`], which names the endpoint and how to check.
//! [`Rpc::is_idempotent`] is the one list that decides. A daemon's own answer other
//! than UNAVAILABLE is final, and so is any answer to a non-idempotent call (the
//! daemon says what happened). A stream (WatchDevices, Tail) fails over only until it
//! starts; one that breaks later ends with its error.

use crate::error::{with_causes, Error, Result};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Every `tufkey.v1` RPC the client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rpc {
    GenerateKey,
    ListKeys,
    GetKey,
    DeleteKey,
    SignRaw,
    SignMetadata,
    Unlock,
    Lock,
    Status,
    ListDevices,
    WatchDevices,
    InitDevice,
    UnlockDevice,
    AttestKey,
    CheckPolicy,
    VerifyAudit,
    TailAudit,
    Backup,
    Restore,
    ImportNotaryKeys,
    ExportNotaryKeys,
    MoveToYubiKey,
    ReceiveTransfer,
    AcceptTransfer,
}

impl Rpc {
    /// The full gRPC method name, as tufkeyd's policy and audit log spell it.
    pub fn name(self) -> &'static str {
        match self {
            Rpc::GenerateKey => "tufkey.v1.Keys/GenerateKey",
            Rpc::ListKeys => "tufkey.v1.Keys/ListKeys",
            Rpc::GetKey => "tufkey.v1.Keys/GetKey",
            Rpc::DeleteKey => "tufkey.v1.Keys/DeleteKey",
            Rpc::SignRaw => "tufkey.v1.Signing/SignRaw",
            Rpc::SignMetadata => "tufkey.v1.Signing/SignMetadata",
            Rpc::Unlock => "tufkey.v1.Session/Unlock",
            Rpc::Lock => "tufkey.v1.Session/Lock",
            Rpc::Status => "tufkey.v1.Session/Status",
            Rpc::ListDevices => "tufkey.v1.Devices/ListDevices",
            Rpc::WatchDevices => "tufkey.v1.Devices/WatchDevices",
            Rpc::InitDevice => "tufkey.v1.Devices/InitDevice",
            Rpc::UnlockDevice => "tufkey.v1.Devices/UnlockDevice",
            Rpc::AttestKey => "tufkey.v1.Devices/AttestKey",
            Rpc::CheckPolicy => "tufkey.v1.Policy/Check",
            Rpc::VerifyAudit => "tufkey.v1.Audit/Verify",
            Rpc::TailAudit => "tufkey.v1.Audit/Tail",
            Rpc::Backup => "tufkey.v1.Migration/Backup",
            Rpc::Restore => "tufkey.v1.Migration/Restore",
            Rpc::ImportNotaryKeys => "tufkey.v1.Migration/ImportNotaryKeys",
            Rpc::ExportNotaryKeys => "tufkey.v1.Migration/ExportNotaryKeys",
            Rpc::MoveToYubiKey => "tufkey.v1.Migration/MoveToYubiKey",
            Rpc::ReceiveTransfer => "tufkey.v1.Migration/ReceiveTransfer",
            Rpc::AcceptTransfer => "tufkey.v1.Migration/AcceptTransfer",
        }
    }

    /// Whether sending this RPC again, to the same endpoint or another replica, can
    /// do no harm: the one list failover follows.
    ///
    /// Idempotent: reads (keys, status, devices, policy, audit, exports), signing (a
    /// second signature over the same bytes is as good as the first; the audit log
    /// records both), and Backup (it wraps keys and changes none).
    ///
    /// Not idempotent: everything that creates, deletes or imports keys (a second
    /// GenerateKey makes a second key), the session and PIN calls (Unlock and Lock
    /// change one replica's state, so moving them would act on another replica than
    /// the one that failed; a resent PIN costs a PIN try), device administration, and
    /// every transfer step (a receiving identity lives on the replica that made it).
    pub fn is_idempotent(self) -> bool {
        match self {
            Rpc::ListKeys
            | Rpc::GetKey
            | Rpc::SignRaw
            | Rpc::SignMetadata
            | Rpc::Status
            | Rpc::ListDevices
            | Rpc::WatchDevices
            | Rpc::AttestKey
            | Rpc::CheckPolicy
            | Rpc::VerifyAudit
            | Rpc::TailAudit
            | Rpc::Backup
            | Rpc::ExportNotaryKeys => true,
            Rpc::GenerateKey
            | Rpc::DeleteKey
            | Rpc::Unlock
            | Rpc::Lock
            | Rpc::InitDevice
            | Rpc::UnlockDevice
            | Rpc::Restore
            | Rpc::ImportNotaryKeys
            | Rpc::MoveToYubiKey
            | Rpc::ReceiveTransfer
            | Rpc::AcceptTransfer => false,
        }
    }

    /// The CLI command that shows whether this (non-idempotent) RPC took effect.
    fn how_to_check(self) -> &'static str {
        match self {
            Rpc::DeleteKey => "tufkey key show KEYID",
            Rpc::Unlock | Rpc::Lock => "tufkey status",
            Rpc::InitDevice | Rpc::UnlockDevice => "tufkey device list",
            _ => "tufkey key list",
        }
    }
}

/// What one failed attempt says about the request.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The connection could not be made: the request never left this process.
    NotSent,
    /// The connection failed after the request may have been sent: no answer.
    NoAnswer,
    /// The endpoint answered UNAVAILABLE.
    AnsweredUnavailable,
    /// Any other answer: final, whatever the RPC.
    Answered,
}

/// Reads a failed call's status. tonic marks a failed connection with
/// [`tonic::ConnectError`] in the source chain, and only statuses it made from a
/// transport failure have a source (a daemon's answer has none).
fn classify(status: &tonic::Status) -> Outcome {
    let mut source = std::error::Error::source(status);
    if source.is_none() {
        return if status.code() == tonic::Code::Unavailable {
            Outcome::AnsweredUnavailable
        } else {
            Outcome::Answered
        };
    }
    while let Some(inner) = source {
        if inner.is::<tonic::ConnectError>() {
            return Outcome::NotSent;
        }
        source = inner.source();
    }
    Outcome::NoAnswer
}

/// Why a call through several endpoints failed.
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    /// A non-idempotent RPC was sent, then its connection failed before an answer.
    #[error("{rpc} may or may not have been applied on {endpoint}: the connection failed before tufkeyd answered ({}). It was not sent again, to this or another endpoint, since that could apply it twice: check with `{check}` against {endpoint} (or a replica sharing its keystore) before trying again", reason(.status), rpc = .rpc.name(), check = .rpc.how_to_check())]
    MaybeApplied {
        rpc: Rpc,
        endpoint: String,
        #[source]
        status: tonic::Status,
    },

    /// Every endpoint was tried once and none answered.
    #[error("{rpc}: no tufkeyd endpoint answered (each tried once): {} (check that the replicas run and that --addr names them)", failures.iter().map(|(endpoint, status)| format!("{endpoint}: {}", reason(status))).collect::<Vec<_>>().join("; "), rpc = .rpc.name())]
    NoEndpointAnswered {
        rpc: Rpc,
        /// Each endpoint tried, in order, with what it said.
        failures: Vec<(String, tonic::Status)>,
    },
}

/// A status's message, causes and code on one line.
fn reason(status: &tonic::Status) -> String {
    let text = with_causes(
        status.message().to_owned(),
        std::error::Error::source(status),
    );
    format!("{text} ({:?})", status.code())
}

/// One endpoint: its name for messages and its connection (`S`: the gRPC clients).
pub(crate) struct Endpoint<S> {
    pub(crate) name: String,
    pub(crate) services: S,
}

/// The endpoints in order and which one calls go to now; clones share both.
pub(crate) struct Endpoints<S> {
    endpoints: Arc<[Endpoint<S>]>,
    current: Arc<AtomicUsize>,
}

impl<S> Clone for Endpoints<S> {
    fn clone(&self) -> Self {
        Endpoints {
            endpoints: Arc::clone(&self.endpoints),
            current: Arc::clone(&self.current),
        }
    }
}

impl<S> Endpoints<S> {
    /// `endpoints` (at least one), calls going to `first` until it fails.
    pub(crate) fn new(endpoints: Vec<Endpoint<S>>, first: usize) -> Self {
        assert!(!endpoints.is_empty(), "a client needs an endpoint");
        let first = first % endpoints.len();
        Endpoints {
            endpoints: endpoints.into(),
            current: Arc::new(AtomicUsize::new(first)),
        }
    }

    /// The endpoint calls go to now.
    pub(crate) fn current(&self) -> &str {
        &self.endpoints[self.current.load(Ordering::Relaxed) % self.endpoints.len()].name
    }

    /// Every endpoint's name, in order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.endpoints.iter().map(|endpoint| endpoint.name.as_str())
    }

    /// After `failed` failed, calls go to the next endpoint (unless a clone moved on
    /// already).
    fn move_past(&self, failed: usize) {
        let next = (failed + 1) % self.endpoints.len();
        let _ = self
            .current
            .compare_exchange(failed, next, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Sends `request` with `send` to the current endpoint, moving on as the module
    /// doc says. The request is cloned only while another endpoint may still need it.
    pub(crate) async fn call<R, T, F, Fut>(&self, rpc: Rpc, request: R, send: F) -> Result<T>
    where
        R: Clone,
        F: Fn(&S, R) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let count = self.endpoints.len();
        let start = self.current.load(Ordering::Relaxed) % count;
        let mut pending = Some(request);
        let mut failures = Vec::new();
        for step in 0..count {
            let Some(request) = pending.take() else {
                break;
            };
            let attempt = if step + 1 < count {
                pending = Some(request.clone());
                request
            } else {
                request
            };
            let index = (start + step) % count;
            let endpoint = &self.endpoints[index];
            let status = match send(&endpoint.services, attempt).await {
                Ok(response) => {
                    if step > 0 {
                        self.current.store(index, Ordering::Relaxed);
                    }
                    return Ok(response.into_inner());
                }
                Err(status) => status,
            };
            match classify(&status) {
                Outcome::Answered => return Err(Error::Rpc(status)),
                Outcome::AnsweredUnavailable if !rpc.is_idempotent() => {
                    // The daemon answered: its verdict says what happened.
                    return Err(Error::Rpc(status));
                }
                Outcome::NoAnswer if !rpc.is_idempotent() => {
                    self.move_past(index);
                    return Err(FailoverError::MaybeApplied {
                        rpc,
                        endpoint: endpoint.name.clone(),
                        status,
                    }
                    .into());
                }
                Outcome::NotSent | Outcome::NoAnswer | Outcome::AnsweredUnavailable => {
                    self.move_past(index);
                    failures.push((endpoint.name.clone(), status));
                }
            }
        }
        if failures.len() == 1 {
            // One endpoint: its own error, as a single-endpoint client always gave.
            if let Some((_, status)) = failures.pop() {
                return Err(Error::Rpc(status));
            }
        }
        Err(FailoverError::NoEndpointAnswered { rpc, failures }.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A fake endpoint: answers each call with the next scripted result and counts
    /// the calls.
    struct Scripted {
        results: Mutex<Vec<Result<u32, tonic::Status>>>,
        calls: AtomicUsize,
    }

    fn scripted(results: Vec<Result<u32, tonic::Status>>) -> Scripted {
        Scripted {
            results: Mutex::new(results),
            calls: AtomicUsize::new(0),
        }
    }

    fn endpoints(scripts: Vec<Scripted>) -> Endpoints<Scripted> {
        let endpoints = scripts
            .into_iter()
            .enumerate()
            .map(|(index, services)| Endpoint {
                name: format!("https://replica{index}:7443"),
                services,
            })
            .collect();
        Endpoints::new(endpoints, 0)
    }

    async fn call(endpoints: &Endpoints<Scripted>, rpc: Rpc) -> Result<u32> {
        endpoints
            .call(rpc, (), |fake, ()| {
                fake.calls.fetch_add(1, Ordering::Relaxed);
                let next = fake.results.lock().expect("lock").remove(0);
                async move { next.map(tonic::Response::new) }
            })
            .await
    }

    fn calls(endpoints: &Endpoints<Scripted>) -> Vec<usize> {
        endpoints
            .endpoints
            .iter()
            .map(|endpoint| endpoint.services.calls.load(Ordering::Relaxed))
            .collect()
    }

    fn refused() -> tonic::Status {
        let cause = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let mut status = tonic::Status::unavailable("tcp connect error");
        status.set_source(Arc::new(tonic::ConnectError(Box::new(cause))));
        status
    }

    fn reset() -> tonic::Status {
        let mut status = tonic::Status::unknown("transport error");
        status.set_source(Arc::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        status
    }

    fn block_on<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn statuses_say_whether_the_request_left() {
        assert_eq!(classify(&refused()), Outcome::NotSent);
        assert_eq!(classify(&reset()), Outcome::NoAnswer);
        assert_eq!(
            classify(&tonic::Status::unavailable("YubiKey 1 did not answer")),
            Outcome::AnsweredUnavailable
        );
        assert_eq!(
            classify(&tonic::Status::not_found("no key")),
            Outcome::Answered
        );
    }

    #[test]
    fn an_idempotent_call_moves_on_and_stays_on_the_endpoint_that_answered() {
        let endpoints = endpoints(vec![
            scripted(vec![Err(reset())]),
            scripted(vec![Err(tonic::Status::unavailable("busy"))]),
            scripted(vec![Ok(7), Ok(8)]),
        ]);
        block_on(async {
            assert_eq!(call(&endpoints, Rpc::SignRaw).await.expect("signed"), 7);
            assert_eq!(endpoints.current(), "https://replica2:7443");
            assert_eq!(call(&endpoints, Rpc::SignRaw).await.expect("signed"), 8);
        });
        assert_eq!(calls(&endpoints), [1, 1, 2]);
    }

    #[test]
    fn each_endpoint_is_tried_once_then_every_failure_is_named() {
        let endpoints = endpoints(vec![
            scripted(vec![Err(refused())]),
            scripted(vec![Err(reset())]),
        ]);
        let error = block_on(call(&endpoints, Rpc::ListKeys)).expect_err("no endpoint");
        assert_eq!(calls(&endpoints), [1, 1]);
        let text = error.to_string();
        assert!(
            text.contains("no tufkeyd endpoint answered")
                && text.contains("https://replica0:7443: tcp connect error")
                && text.contains("https://replica1:7443: transport error"),
            "{text}"
        );
    }

    #[test]
    fn a_non_idempotent_call_is_never_sent_twice() {
        let endpoints = endpoints(vec![scripted(vec![Err(reset())]), scripted(vec![Ok(1)])]);
        let error = block_on(call(&endpoints, Rpc::GenerateKey)).expect_err("maybe applied");
        assert_eq!(calls(&endpoints), [1, 0]);
        let text = error.to_string();
        assert!(
            text.starts_with(
                "tufkey.v1.Keys/GenerateKey may or may not have been applied on https://replica0:7443"
            ) && text.contains("`tufkey key list`"),
            "{text}"
        );
        // The next call goes to the next endpoint.
        assert_eq!(endpoints.current(), "https://replica1:7443");
    }

    #[test]
    fn a_non_idempotent_call_moves_on_only_when_it_never_left() {
        let endpoints = endpoints(vec![scripted(vec![Err(refused())]), scripted(vec![Ok(5)])]);
        assert_eq!(
            block_on(call(&endpoints, Rpc::DeleteKey)).expect("deleted"),
            5
        );
        assert_eq!(calls(&endpoints), [1, 1]);
    }

    #[test]
    fn a_daemons_answer_is_final_for_a_non_idempotent_call() {
        let endpoints = endpoints(vec![
            scripted(vec![Err(tonic::Status::unavailable("disk full"))]),
            scripted(vec![Ok(1)]),
        ]);
        let error = block_on(call(&endpoints, Rpc::GenerateKey)).expect_err("refused");
        assert!(matches!(&error, Error::Rpc(status) if status.message() == "disk full"));
        assert_eq!(calls(&endpoints), [1, 0]);
    }

    #[test]
    fn one_endpoint_keeps_its_own_error() {
        let endpoints = endpoints(vec![scripted(vec![Err(refused())])]);
        let error = block_on(call(&endpoints, Rpc::Status)).expect_err("refused");
        assert!(matches!(error, Error::Rpc(status) if status.message() == "tcp connect error"));
    }
}
