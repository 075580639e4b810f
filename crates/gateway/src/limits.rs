//! Admission control at the gateway's edge: a tower layer that sheds load and bounds call time.
//!
//! Every gRPC call takes a permit before it runs: unary calls from one pool
//! (`max_concurrent_requests`), streaming calls (`Subscribe`, `Consume`) from another
//! (`max_concurrent_streams`), so long-lived streams cannot starve produce and fetch. A call that
//! finds no permit is answered at once with `RESOURCE_EXHAUSTED` (Kafka code `REQUEST_TIMED_OUT`,
//! see `shed_status`) and never reaches a handler: shedding costs the gateway almost nothing,
//! which is what keeps it up under overload. The permit is held until the response body has been
//! sent, so a stream counts for as long as it is open.
//!
//! Unary calls are also bounded in time (`call_timeout`, retries included): past it the client gets
//! `DEADLINE_EXCEEDED` (`REQUEST_TIMED_OUT`). Health checks and reflection are exempt from both, so an orchestrator
//! still sees a busy gateway as alive.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service};
use vltava_common::{ErrorCode, WireError};

use crate::error::status_with_code;

/// Paths of the streaming calls: they take a stream permit and have no call timeout.
pub(crate) const STREAMING: &[&str] = &["/vltava.v1.RecordService/Subscribe", "/vltava.v1.GatewayService/Consume"];

/// Path prefixes never limited: health checks and server reflection.
const EXEMPT: &[&str] = &["/grpc.health.v1.Health/", "/grpc.reflection."];

/// Counts of what the edge did, for metrics and tests.
#[derive(Debug, Default)]
pub struct EdgeStats {
    shed: AtomicU64,
    timed_out: AtomicU64,
}

impl EdgeStats {
    /// Calls refused with `RESOURCE_EXHAUSTED` since start.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Unary calls ended with `DEADLINE_EXCEEDED` by `call_timeout` since start.
    pub fn timed_out(&self) -> u64 {
        self.timed_out.load(Ordering::Relaxed)
    }
}

/// The edge limits as a tower [`Layer`] for the tonic server.
#[derive(Debug, Clone)]
pub struct EdgeLimitsLayer {
    unary: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    call_timeout: Duration,
    stats: Arc<EdgeStats>,
}

impl EdgeLimitsLayer {
    /// Limits of `max_requests` unary calls and `max_streams` streams at once, and `call_timeout`
    /// per unary call.
    pub fn new(max_requests: usize, max_streams: usize, call_timeout: Duration) -> Self {
        Self {
            unary: Arc::new(Semaphore::new(max_requests)),
            streams: Arc::new(Semaphore::new(max_streams)),
            call_timeout,
            stats: Arc::default(),
        }
    }

    /// What the layer has shed and timed out so far.
    pub fn stats(&self) -> Arc<EdgeStats> {
        self.stats.clone()
    }
}

impl<S> Layer<S> for EdgeLimitsLayer {
    type Service = EdgeLimits<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EdgeLimits { inner, limits: self.clone() }
    }
}

/// The service [`EdgeLimitsLayer`] wraps around the gateway's routes.
#[derive(Debug, Clone)]
pub struct EdgeLimits<S> {
    inner: S,
    limits: EdgeLimitsLayer,
}

impl<S> Service<http::Request<Body>> for EdgeLimits<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone-and-swap pattern: `self.inner` was polled ready, so call that instance.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = request.uri().path();
        if EXEMPT.iter().any(|p| path.starts_with(p)) {
            return Box::pin(inner.call(request));
        }
        let streaming = STREAMING.contains(&path);
        let pool = if streaming { &self.limits.streams } else { &self.limits.unary };
        let Ok(permit) = pool.clone().try_acquire_owned() else {
            self.limits.stats.shed.fetch_add(1, Ordering::Relaxed);
            let what = if streaming { "streams" } else { "concurrent calls" };
            tracing::debug!(path, "shedding a call: the gateway is at its limit of {what}");
            let status = shed_status(what);
            return Box::pin(std::future::ready(Ok(status.into_http())));
        };
        let timeout = (!streaming).then_some(self.limits.call_timeout);
        let stats = self.limits.stats.clone();
        Box::pin(async move {
            let response = match timeout {
                None => inner.call(request).await?,
                Some(limit) => match tokio::time::timeout(limit, inner.call(request)).await {
                    Ok(response) => response?,
                    Err(_) => {
                        stats.timed_out.fetch_add(1, Ordering::Relaxed);
                        let status = WireError::new(
                            ErrorCode::RequestTimedOut,
                            format!("the call did not complete within the gateway's call_timeout ({limit:?})"),
                        )
                        .into_status();
                        return Ok(status.into_http());
                    }
                },
            };
            Ok(response.map(|body| Body::new(PermitBody { body, _permit: permit })))
        })
    }
}

/// The answer to a shed call: `RESOURCE_EXHAUSTED`, with `REQUEST_TIMED_OUT` as its Kafka code.
/// The codes have no load-shedding or throttling code (Kafka's `THROTTLING_QUOTA_EXCEEDED` is not
/// among them); `REQUEST_TIMED_OUT` is the closest: the call was not carried out, nothing of it
/// was applied, and a retry with backoff may succeed (it is retriable, as Kafka clients treat it).
fn shed_status(what: &str) -> Status {
    let e = WireError::new(
        ErrorCode::RequestTimedOut,
        format!("the gateway is overloaded (at its limit of {what}); retry with backoff"),
    );
    status_with_code(e, Code::ResourceExhausted)
}

/// A response body that holds its call's permit until it has been sent (or dropped).
struct PermitBody {
    body: Body,
    _permit: OwnedSemaphorePermit,
}

impl HttpBody for PermitBody {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Status>>> {
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
    use std::convert::Infallible;
    use tokio::sync::oneshot;

    /// A service whose calls finish when the test says so.
    #[derive(Clone)]
    struct Gate(Arc<parking_lot::Mutex<Vec<oneshot::Sender<()>>>>);

    impl Service<http::Request<Body>> for Gate {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<Body>) -> Self::Future {
            let (tx, rx) = oneshot::channel();
            self.0.lock().push(tx);
            Box::pin(async move {
                let _ = rx.await;
                Ok(http::Response::new(Body::new(OneChunk(Some(bytes::Bytes::from_static(b"reply"))))))
            })
        }
    }

    /// A response body of one chunk (an empty body would be dropped, and its permit with it, at once).
    struct OneChunk(Option<bytes::Bytes>);

    impl HttpBody for OneChunk {
        type Data = bytes::Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<bytes::Bytes>, Infallible>>> {
            Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
        }
    }

    fn request(path: &str) -> http::Request<Body> {
        http::Request::builder().uri(format!("http://gw{path}")).body(Body::empty()).unwrap()
    }

    fn grpc_status(response: &http::Response<Body>) -> Option<i32> {
        response.headers().get("grpc-status").map(|v| v.to_str().unwrap().parse().unwrap())
    }

    #[tokio::test]
    async fn calls_beyond_the_limit_are_shed_and_permits_return_when_bodies_end() {
        let gate = Gate(Arc::default());
        let layer = EdgeLimitsLayer::new(2, 1, Duration::from_secs(60));
        let mut svc = layer.layer(gate.clone());
        let a = tokio::spawn(svc.call(request("/vltava.v1.RecordService/Produce")));
        let b = tokio::spawn(svc.call(request("/vltava.v1.RecordService/Fetch")));
        wait_until(|| gate.0.lock().len() == 2).await;
        // Both unary permits are taken: the third unary call is shed, a stream still gets in.
        let shed = svc.call(request("/vltava.v1.RecordService/Produce")).await.unwrap();
        assert_eq!(grpc_status(&shed), Some(tonic::Code::ResourceExhausted as i32));
        assert_eq!(layer.stats().shed(), 1);
        let stream = tokio::spawn(svc.call(request("/vltava.v1.GatewayService/Consume")));
        wait_until(|| gate.0.lock().len() == 3).await;
        let shed = svc.call(request("/vltava.v1.RecordService/Subscribe")).await.unwrap();
        assert_eq!(grpc_status(&shed), Some(tonic::Code::ResourceExhausted as i32));
        // Health checks are never shed.
        let health = tokio::spawn(svc.call(request("/grpc.health.v1.Health/Check")));
        wait_until(|| gate.0.lock().len() == 4).await;
        for tx in gate.0.lock().drain(..) {
            let _ = tx.send(());
        }
        let responses = [a.await, b.await, stream.await, health.await].map(|r| r.unwrap().unwrap());
        assert!(responses.iter().all(|r| grpc_status(r).is_none()));
        // Permits are held by the bodies: while they live, calls are still shed.
        let shed = svc.call(request("/vltava.v1.RecordService/Produce")).await.unwrap();
        assert_eq!(grpc_status(&shed), Some(tonic::Code::ResourceExhausted as i32));
        drop(responses);
        let admitted = tokio::spawn(svc.call(request("/vltava.v1.RecordService/Produce")));
        wait_until(|| gate.0.lock().len() == 1).await;
        gate.0.lock().drain(..).for_each(|tx| {
            let _ = tx.send(());
        });
        assert_eq!(grpc_status(&admitted.await.unwrap().unwrap()), None);
        assert_eq!(layer.stats().shed(), 3);
    }

    #[tokio::test]
    async fn a_unary_call_past_call_timeout_gets_deadline_exceeded() {
        let gate = Gate(Arc::default());
        let layer = EdgeLimitsLayer::new(4, 4, Duration::from_millis(50));
        let mut svc = layer.layer(gate.clone());
        let response = svc.call(request("/vltava.v1.RecordService/Produce")).await.unwrap();
        assert_eq!(grpc_status(&response), Some(tonic::Code::DeadlineExceeded as i32));
        assert_eq!(layer.stats().timed_out(), 1);
        // The timed-out call gave its permit back.
        assert_eq!(layer.unary.available_permits(), 4);
    }

    #[tokio::test]
    async fn edge_statuses_carry_an_error_detail_and_the_error_code_header() {
        let gate = Gate(Arc::default());
        let layer = EdgeLimitsLayer::new(0, 0, Duration::from_millis(50));
        let mut svc = layer.layer(gate.clone());
        let shed = svc.call(request("/vltava.v1.RecordService/Produce")).await.unwrap();
        assert_eq!(grpc_status(&shed), Some(tonic::Code::ResourceExhausted as i32));
        assert_eq!(shed.headers().get(vltava_common::error::ERROR_CODE_METADATA).unwrap(), "REQUEST_TIMED_OUT");
        assert!(shed.headers().contains_key("grpc-status-details-bin"));

        let layer = EdgeLimitsLayer::new(1, 1, Duration::from_millis(50));
        let mut svc = layer.layer(gate);
        let late = svc.call(request("/vltava.v1.RecordService/Produce")).await.unwrap();
        assert_eq!(grpc_status(&late), Some(tonic::Code::DeadlineExceeded as i32));
        assert_eq!(late.headers().get(vltava_common::error::ERROR_CODE_METADATA).unwrap(), "REQUEST_TIMED_OUT");
        assert!(late.headers().contains_key("grpc-status-details-bin"));
    }

    /// Polls `done` until it holds (bounded: the calls under test are spawned and start at once).
    async fn wait_until(done: impl Fn() -> bool) {
        for _ in 0..1000 {
            if done() {
                return;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the spawned calls did not reach the service");
    }
}
