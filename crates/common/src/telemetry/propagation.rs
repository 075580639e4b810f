//! Trace context across processes: W3C `traceparent` in gRPC metadata (through the global
//! propagator) and in record headers (always W3C: records outlive the processes that wrote them).

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags};
use opentelemetry::{Context, global};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The record header carrying the producer's trace context, W3C `traceparent` format.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The context of the current span, if it belongs to a trace. Cheap when there is none.
fn current_context() -> Option<Context> {
    // The OpenTelemetry layer makes an entered span's context current.
    if Context::map_current(|cx| cx.span().span_context().is_valid()) {
        return Some(Context::current());
    }
    let span = tracing::Span::current();
    if span.is_none() {
        return None;
    }
    let cx = span.context();
    cx.span().span_context().is_valid().then_some(cx)
}

/// The current span's context as a W3C `traceparent` value, when it is sampled (a record header
/// for an unsampled trace would link to nothing). Returns `None` quickly when tracing is off.
///
/// Producers put it in the [`TRACEPARENT_HEADER`] header of the records they write, so that
/// consumers can link their processing to the trace that produced each record.
pub fn current_traceparent() -> Option<String> {
    let cx = current_context()?;
    let span = cx.span();
    let sc = span.span_context();
    sc.is_sampled().then(|| format_traceparent(sc))
}

/// `sc` as a W3C `traceparent` value: `00-<trace id>-<span id>-<flags>`.
pub fn format_traceparent(sc: &SpanContext) -> String {
    format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags() & TraceFlags::SAMPLED)
}

struct One<'a>(&'a str);

impl Extractor for One<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT_HEADER).then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT_HEADER]
    }
}

/// Parses a W3C `traceparent` value (e.g. a record header) into a remote span context.
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let cx = TraceContextPropagator::new().extract_with_context(&Context::new(), &One(value.trim()));
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// Makes the remote span `traceparent` the parent of `span` (before `span` is first entered).
/// Returns whether it did (the value must parse, and an OpenTelemetry layer must see `span`).
pub fn set_remote_parent(span: &tracing::Span, traceparent: &str) -> bool {
    match parse_traceparent(traceparent) {
        Some(sc) => span.set_parent(Context::new().with_remote_span_context(sc)).is_ok(),
        None => false,
    }
}

/// Adds a link from `span` to the remote span `traceparent` (ignored if it does not parse).
pub fn add_link(span: &tracing::Span, traceparent: &str) {
    if let Some(sc) = parse_traceparent(traceparent) {
        span.add_link(sc);
    }
}

/// gRPC metadata (HTTP/2 headers) as a propagation carrier.
pub(crate) struct HeaderCarrier<'a>(pub &'a mut http::HeaderMap);

impl Injector for HeaderCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
        {
            self.0.insert(name, value);
        }
    }
}

/// Read-only gRPC metadata as a propagation carrier.
pub(crate) struct HeaderReader<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes the current span's context into outgoing request headers with the global propagator
/// (W3C `traceparent`/`tracestate` in Vltava's processes). Does nothing outside a trace.
pub fn inject_current_context(headers: &mut http::HeaderMap) {
    if let Some(cx) = current_context() {
        global::get_text_map_propagator(|p| p.inject_context(&cx, &mut HeaderCarrier(headers)));
    }
}

/// The remote context in incoming request headers, if they carry a valid one.
pub(crate) fn extract_context(headers: &http::HeaderMap) -> Option<Context> {
    let cx = global::get_text_map_propagator(|p| p.extract_with_context(&Context::new(), &HeaderReader(headers)));
    cx.span().span_context().is_valid().then_some(cx)
}
