//! The memory budget `tufkey.v1.Signing` requests are admitted under.
//!
//! A metadata document costs several times its size while it is decoded, parsed,
//! canonicalised and re-serialised, so a few large requests at once could take more
//! memory than the machine has. [`SigningBudget`] admits a request only if its
//! estimated cost fits in `--sign-memory-budget-bytes` right now, and answers
//! RESOURCE_EXHAUSTED otherwise: nothing queues, nothing grows without bound. It
//! decides from the gRPC length prefix (the first 5 bytes of the body), before tonic
//! buffers the message, and holds the charge until the response has been sent.

use http_body::{Body as _, Frame, SizeHint};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic::codegen::{http, Bytes, Service};
use tonic::server::NamedService;
use tonic::Status;

/// Memory a `SignMetadata` request takes per byte of its message: tonic's receive
/// buffer, the decoded copy, the parsed JSON, the canonical form, the signed output
/// and its encoding. Measured on the release build: a 60 MB targets document alone
/// raises the daemon's peak RSS by about 6.6 times its size (tests/tests/limits.rs
/// prints it); 8 leaves a margin.
pub const METADATA_COST_FACTOR: u64 = 8;

/// The same for `SignRaw`: tonic's receive buffer and the decoded copy.
pub const RAW_COST_FACTOR: u64 = 2;

const SIGN_METADATA_PATH: &str = "/tufkey.v1.Signing/SignMetadata";

/// Budget units are KiB, so that a `u32` permit count covers any single request.
const UNIT: u64 = 1024;

/// The memory budget for signing requests in flight, shared by every listener.
#[derive(Clone, Debug)]
pub struct SigningBudget {
    permits: Arc<Semaphore>,
    units: u64,
    bytes: u64,
}

impl SigningBudget {
    /// A budget of `bytes` (`--sign-memory-budget-bytes`).
    pub fn new(bytes: u64) -> Self {
        let units = (bytes / UNIT).min(Semaphore::MAX_PERMITS as u64);
        SigningBudget {
            permits: Arc::new(Semaphore::new(
                usize::try_from(units).unwrap_or(Semaphore::MAX_PERMITS),
            )),
            units,
            bytes,
        }
    }

    /// Warns at start when the largest message signing accepts could never fit.
    pub fn warn_if_too_small_for(&self, max_message_bytes: usize) {
        let largest = cost_bytes(max_message_bytes as u64, METADATA_COST_FACTOR);
        if largest > self.bytes {
            tracing::warn!(
                sign_memory_budget_bytes = self.bytes,
                max_message_bytes,
                "a metadata document of --max-message-bytes would need {largest} bytes, more than \
                 --sign-memory-budget-bytes: such documents will be refused; raise the budget \
                 or lower --max-message-bytes"
            );
        }
    }

    /// Wraps the Signing service so every request is admitted under this budget.
    pub fn wrap<S>(&self, inner: S) -> Budgeted<S> {
        Budgeted {
            inner,
            budget: self.clone(),
        }
    }

    /// Takes the cost of a `message_bytes` message at `factor`, or refuses at once.
    fn charge(&self, message_bytes: u64, factor: u64) -> Result<OwnedSemaphorePermit, Status> {
        let cost = cost_bytes(message_bytes, factor);
        let units = cost.div_ceil(UNIT).max(1);
        let refuse = |why: String| {
            Status::resource_exhausted(format!(
                "signing request refused: {why} (--sign-memory-budget-bytes is {} bytes)",
                self.bytes
            ))
        };
        if units > self.units {
            return Err(refuse(format!(
                "this {message_bytes}-byte message needs about {cost} bytes of memory, more than \
                 the whole budget: raise --sign-memory-budget-bytes, or split the document"
            )));
        }
        let wanted = u32::try_from(units).map_err(|_| refuse("the message is too large".into()))?;
        self.permits
            .clone()
            .try_acquire_many_owned(wanted)
            .map_err(|_| {
                refuse(format!(
                    "requests in flight already use the memory budget and this {message_bytes}-byte \
                     message needs about {cost} bytes more; retry shortly, or raise \
                     --sign-memory-budget-bytes"
                ))
            })
    }

    /// Reads the request's gRPC length prefix and charges its cost; the returned
    /// request replays what was read.
    async fn admit(
        &self,
        request: http::Request<Body>,
    ) -> Result<(http::Request<Body>, OwnedSemaphorePermit), Status> {
        let factor = if request.uri().path() == SIGN_METADATA_PATH {
            METADATA_COST_FACTOR
        } else {
            RAW_COST_FACTOR
        };
        let (parts, mut body) = request.into_parts();
        let mut read = VecDeque::new();
        let mut prefix = Vec::with_capacity(PREFIX_LEN);
        while prefix.len() < PREFIX_LEN {
            let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await else {
                break;
            };
            let frame = frame?;
            if let Some(data) = frame.data_ref() {
                let wanted = (PREFIX_LEN - prefix.len()).min(data.len());
                prefix.extend_from_slice(&data[..wanted]);
            }
            read.push_back(frame);
        }
        // A body shorter than the prefix is malformed: tonic says so, at no cost.
        let permit = self.charge(message_length(&prefix), factor)?;
        let body = Body::new(Replay { read, rest: body });
        Ok((http::Request::from_parts(parts, body), permit))
    }
}

/// gRPC frames a message as a compression flag and a big-endian 32-bit length.
const PREFIX_LEN: usize = 5;

fn message_length(prefix: &[u8]) -> u64 {
    match prefix {
        [_, a, b, c, d] => u64::from(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => 0,
    }
}

fn cost_bytes(message_bytes: u64, factor: u64) -> u64 {
    message_bytes.saturating_mul(factor)
}

/// A service admitted under a [`SigningBudget`] (see [`SigningBudget::wrap`]).
#[derive(Clone, Debug)]
pub struct Budgeted<S> {
    inner: S,
    budget: SigningBudget,
}

impl<S: NamedService> NamedService for Budgeted<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Budgeted<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone is not driven to readiness; the one that was takes the call.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let budget = self.budget.clone();
        Box::pin(async move {
            let (request, permit) = match budget.admit(request).await {
                Ok(admitted) => admitted,
                Err(status) => return Ok(status.into_http()),
            };
            let response = inner.call(request).await?;
            // The charge lasts until the response body has been sent.
            Ok(response.map(|body| {
                Body::new(Holding {
                    body,
                    _permit: permit,
                })
            }))
        })
    }
}

/// The frames read to find the length prefix, then the rest of the body.
struct Replay {
    read: VecDeque<Frame<Bytes>>,
    rest: Body,
}

impl http_body::Body for Replay {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(frame) = self.read.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty() && self.rest.is_end_stream()
    }
}

/// A response body that keeps its request's budget charge until it is dropped.
struct Holding {
    body: Body,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for Holding {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_is_the_message_length_times_the_factor_in_kib_units() {
        let budget = SigningBudget::new(10 * 1024 * 1024);
        // 8 x 400 KiB = 3.2 MiB: fits three times in 10 MiB, not four.
        let first = budget.charge(400 * 1024, METADATA_COST_FACTOR).unwrap();
        let second = budget.charge(400 * 1024, METADATA_COST_FACTOR).unwrap();
        let third = budget.charge(400 * 1024, METADATA_COST_FACTOR).unwrap();
        let refused = budget.charge(400 * 1024, METADATA_COST_FACTOR).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused.message().contains("--sign-memory-budget-bytes")
                && refused.message().contains("retry"),
            "{}",
            refused.message()
        );
        // Raw payloads cost less (2 x 300 KiB fits in the 640 KiB left, 8 x 300 KiB
        // would not); an empty message still costs a unit.
        assert!(budget.charge(300 * 1024, RAW_COST_FACTOR).is_ok());
        assert_eq!(
            budget
                .charge(0, METADATA_COST_FACTOR)
                .unwrap()
                .num_permits(),
            1
        );
        drop((first, second, third));
        assert!(budget.charge(400 * 1024, METADATA_COST_FACTOR).is_ok());
    }

    #[test]
    fn a_message_larger_than_the_whole_budget_says_to_raise_it() {
        let budget = SigningBudget::new(1024 * 1024);
        let refused = budget
            .charge(1024 * 1024, METADATA_COST_FACTOR)
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused.message().contains("more than the whole budget")
                && refused
                    .message()
                    .contains("raise --sign-memory-budget-bytes"),
            "{}",
            refused.message()
        );
    }

    #[test]
    fn the_length_comes_from_the_grpc_prefix() {
        assert_eq!(message_length(&[0, 0, 0, 1, 0]), 256);
        assert_eq!(message_length(&[0, 0x03, 0x93, 0x87, 0x00]), 60_000_000);
        assert_eq!(
            message_length(&[0, 0, 1]),
            0,
            "a short body is tonic's to refuse"
        );
    }

    #[tokio::test]
    async fn an_admitted_request_replays_the_bytes_read_for_its_prefix() {
        let budget = SigningBudget::new(1024 * 1024);
        let mut message = vec![0u8, 0, 0, 0, 3];
        message.extend_from_slice(b"abc");
        let request = http::Request::builder()
            .uri(SIGN_METADATA_PATH)
            .body(Body::new(one_frame(message.clone())))
            .unwrap();
        let (request, permit) = budget.admit(request).await.unwrap();
        assert_eq!(permit.num_permits(), 1);
        let mut body = request.into_body();
        let mut replayed = Vec::new();
        while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            replayed.extend_from_slice(frame.unwrap().data_ref().unwrap());
        }
        assert_eq!(replayed, message);
    }

    /// A one-frame body holding `bytes`.
    fn one_frame(bytes: Vec<u8>) -> Replay {
        Replay {
            read: VecDeque::from([Frame::data(Bytes::from(bytes))]),
            rest: Body::empty(),
        }
    }
}
