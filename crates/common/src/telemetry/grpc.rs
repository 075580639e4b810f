//! Trace context on gRPC: [`TraceContextLayer`] on servers, [`Traced`] on client channels.
//!
//! A server request gets a span named after its method (`vltava.v1.RecordService/Produce`) with
//! the `rpc.*` attributes and the gRPC status, continuing the caller's trace when the request
//! carries a `traceparent`. Background traffic (replica fetches, Raft, heartbeats, long-polls,
//! health checks) only gets a span as part of a caller's trace: an idle cluster exports nothing.
//! Spans are only created while this process exports traces ([`super::exporting`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::SPAN_TARGET;
use super::propagation::{extract_context, inject_current_context};
use crate::error::ERROR_CODE_METADATA;

/// Methods that start no trace of their own: periodic or long-polling background calls.
const BACKGROUND: &[&str] = &[
    "/vltava.v1.ReplicationService/",
    "/vltava.v1.ControllerRaftService/",
    "/vltava.v1.ControllerService/BrokerHeartbeat",
    "/vltava.v1.ControllerService/WatchMetadata",
    "/vltava.v1.RecordService/Fetch",
    "/vltava.v1.RecordService/Subscribe",
    "/vltava.v1.GatewayService/Consume",
    "/grpc.health.",
    "/grpc.reflection.",
    "/opentelemetry.proto.",
];

/// gRPC status codes that mark a server span as failed (OpenTelemetry's RPC conventions).
const SERVER_ERRORS: &[i32] = &[2, 4, 12, 13, 14, 15];

/// A tower layer for tonic servers: runs each request inside a `grpc.server` span continuing the
/// caller's trace. [`crate::grpc::server_builder`] installs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextLayer;

impl<S> tower::Layer<S> for TraceContextLayer {
    type Service = TraceContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceContextService { inner }
    }
}

/// The service [`TraceContextLayer`] wraps around a server's routes.
#[derive(Debug, Clone)]
pub struct TraceContextService<S> {
    inner: S,
}

/// The span of one incoming request, or a disabled span when it is not traced.
fn request_span<B>(request: &http::Request<B>) -> Span {
    let path = request.uri().path();
    let parent = extract_context(request.headers());
    if parent.is_none() && BACKGROUND.iter().any(|p| path.starts_with(p)) {
        return Span::none();
    }
    let name = path.trim_start_matches('/');
    let (service, method) = name.split_once('/').unwrap_or((name, ""));
    let span = tracing::info_span!(
        target: SPAN_TARGET,
        "grpc.server",
        otel.name = name,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        otel.status_code = Empty,
        vltava.error_code = Empty,
    );
    if let Some(cx) = parent {
        let _ = span.set_parent(cx);
    }
    span
}

impl<S, B, R> tower::Service<http::Request<B>> for TraceContextService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TracedResponse<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = if super::exporting() { request_span(&request) } else { Span::none() };
        let inner = span.in_scope(|| self.inner.call(request));
        TracedResponse { inner, span }
    }
}

pin_project! {
    /// The response future of [`TraceContextService`]: the handler runs inside the request span,
    /// which records the gRPC status when the response starts.
    pub struct TracedResponse<F> {
        #[pin]
        inner: F,
        span: Span,
    }
}

impl<F, R, E> Future for TracedResponse<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let output = ready!(this.inner.poll(cx));
        if !this.span.is_none() {
            record_status(this.span, &output);
        }
        Poll::Ready(output)
    }
}

/// Records the gRPC status on the span: an error status travels in the response headers
/// ("trailers-only"); a response without one is a success whose status follows the body.
fn record_status<R, E>(span: &Span, output: &Result<http::Response<R>, E>) {
    let Ok(response) = output else {
        span.record("otel.status_code", "ERROR");
        return;
    };
    let headers = response.headers();
    let code = headers.get("grpc-status").and_then(|v| v.to_str().ok()?.parse::<i32>().ok()).unwrap_or(0);
    span.record("rpc.grpc.status_code", code);
    if let Some(e) = headers.get(ERROR_CODE_METADATA).and_then(|v| v.to_str().ok()) {
        span.record("vltava.error_code", e);
    }
    if SERVER_ERRORS.contains(&code) {
        span.record("otel.status_code", "ERROR");
    }
}

/// A client channel that sends the current trace context (`traceparent`) with every call.
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
}

impl<S> Traced<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

/// A tonic channel that propagates trace context; what every Vltava client is built on.
pub type TracedChannel = Traced<tonic::transport::Channel>;

/// `channel`, sending the current trace context with every call.
pub fn traced(channel: tonic::transport::Channel) -> TracedChannel {
    Traced::new(channel)
}

impl<S, B> tower::Service<http::Request<B>> for Traced<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        inject_current_context(request.headers_mut());
        self.inner.call(request)
    }
}
