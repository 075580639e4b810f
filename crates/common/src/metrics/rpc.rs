//! A tower layer counting and timing every gRPC call a server answers, by service, method and
//! outcome: `<prefix>.requests` (counter) and `<prefix>.request.duration` (histogram, seconds).
//!
//! The outcome (`code` attribute) is the Kafka-style error name from the `vltava-error-code`
//! header when the handler failed with a [`crate::WireError`], else the gRPC status name
//! (`UNAVAILABLE`, ...), or `NONE` on success. A streaming call is timed until its response
//! headers. Unknown methods are counted under `unknown`, so clients cannot create series at will.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};

use crate::error::ERROR_CODE_METADATA;

/// Latency buckets, in seconds: 0.5 ms to 30 s.
pub const LATENCY_BUCKETS_SECONDS: [f64; 16] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0];

/// The layer; clone it freely.
#[derive(Clone)]
pub struct RpcMetricsLayer {
    instruments: Arc<Instruments>,
}

struct Instruments {
    requests: Counter<u64>,
    duration: Histogram<f64>,
}

impl RpcMetricsLayer {
    /// Instruments named `<prefix>.requests` and `<prefix>.request.duration` from `meter`.
    pub fn new(meter: &Meter, prefix: &str) -> Self {
        let requests = meter
            .u64_counter(format!("{prefix}.requests"))
            .with_unit("{request}")
            .with_description("gRPC requests answered, by service, method and outcome code")
            .build();
        let duration = meter
            .f64_histogram(format!("{prefix}.request.duration"))
            .with_unit("s")
            .with_description("gRPC request latency until the response (headers for streams), by method and outcome")
            .with_boundaries(LATENCY_BUCKETS_SECONDS.to_vec())
            .build();
        Self { instruments: Arc::new(Instruments { requests, duration }) }
    }

    /// [`RpcMetricsLayer::new`] on the global meter provider's meter `prefix` (e.g.
    /// `"vltava.broker"`). Create it after [`crate::metrics::Metrics::start`].
    pub fn global(prefix: &'static str) -> Self {
        Self::new(&opentelemetry::global::meter(prefix), prefix)
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics { inner, instruments: self.instruments.clone() }
    }
}

/// The service [`RpcMetricsLayer`] wraps around a server's routes.
#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    instruments: Arc<Instruments>,
}

impl<S, B, RB> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    B: 'static,
    RB: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (service, method) = split_path(request.uri().path());
        let (service, method) = (service.to_string(), method.to_string());
        let start = Instant::now();
        let call = self.inner.call(request);
        let instruments = self.instruments.clone();
        Box::pin(async move {
            let result = call.await;
            let elapsed = start.elapsed().as_secs_f64();
            let code = match &result {
                Ok(response) => outcome(response.headers()),
                Err(_) => "TRANSPORT_ERROR".to_string(),
            };
            let known = code != "UNIMPLEMENTED";
            let attrs = [
                KeyValue::new("service", if known { service } else { "unknown".into() }),
                KeyValue::new("method", if known { method } else { "unknown".into() }),
                KeyValue::new("code", code),
            ];
            instruments.requests.add(1, &attrs);
            instruments.duration.record(elapsed, &attrs);
            result
        })
    }
}

/// `/vltava.v1.RecordService/Produce` → (`RecordService`, `Produce`).
fn split_path(path: &str) -> (&str, &str) {
    match path.trim_start_matches('/').split_once('/') {
        Some((service, method)) if !method.is_empty() && !method.contains('/') => {
            (service.rsplit('.').next().unwrap_or(service), method)
        }
        _ => ("unknown", "unknown"),
    }
}

/// The outcome name a response's headers carry.
pub fn outcome(headers: &http::HeaderMap) -> String {
    let valid = |v: &str| !v.is_empty() && v.len() <= 48 && v.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
    if let Some(code) = headers.get(ERROR_CODE_METADATA).and_then(|v| v.to_str().ok()) {
        return if valid(code) { code.to_string() } else { "OTHER".into() };
    }
    match headers.get("grpc-status").and_then(|v| v.to_str().ok()).map(|v| v.parse::<usize>()) {
        None | Some(Ok(0)) => "NONE".into(),
        Some(Ok(n)) => GRPC_CODES.get(n).copied().unwrap_or("UNKNOWN").into(),
        Some(Err(_)) => "UNKNOWN".into(),
    }
}

/// gRPC status code names, by number.
const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(split_path("/vltava.v1.RecordService/Produce"), ("RecordService", "Produce"));
        assert_eq!(split_path("/grpc.health.v1.Health/Check"), ("Health", "Check"));
        assert_eq!(split_path("/"), ("unknown", "unknown"));
        assert_eq!(split_path("/a/b/c"), ("unknown", "unknown"));
    }

    #[test]
    fn outcomes_prefer_the_kafka_error_name() {
        let mut h = http::HeaderMap::new();
        assert_eq!(outcome(&h), "NONE");
        h.insert("grpc-status", "14".parse().unwrap());
        assert_eq!(outcome(&h), "UNAVAILABLE");
        h.insert(ERROR_CODE_METADATA, "NOT_LEADER_OR_FOLLOWER".parse().unwrap());
        assert_eq!(outcome(&h), "NOT_LEADER_OR_FOLLOWER");
        h.insert(ERROR_CODE_METADATA, "<script>".parse().unwrap());
        assert_eq!(outcome(&h), "OTHER");
    }
}
