//! Logs and traces, set up the same way by every Vltava process.
//!
//! - Logs: a `tracing-subscriber` fmt layer on stderr, human-readable or JSON
//!   ([`LogFormat`]), filtered by `RUST_LOG` (default `info`).
//! - Traces: when an OTLP endpoint is configured ([`TelemetryConfig::otlp_endpoint`], or the
//!   standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`), spans are
//!   exported over OTLP/gRPC by a batch processor, with `service.name` set per process
//!   (`OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` win) and the W3C TraceContext
//!   propagator installed globally. The span filter ([`TelemetryConfig::trace_filter`]) is
//!   separate from `RUST_LOG`: a quiet log level does not hide request spans.
//! - Propagation: [`crate::grpc::TraceContextLayer`] continues incoming `traceparent` headers on
//!   every server, [`crate::grpc::traced`] injects the current context into outgoing calls, and
//!   [`current_traceparent`] / [`parse_traceparent`] carry a context in a record header
//!   ([`TRACEPARENT_HEADER`]) from a producer to its consumers.
//!
//! Spans that exist only for export (request spans, the broker's append and replication wait)
//! use the target [`SPAN_TARGET`], which the log filter always turns off: with export off they
//! cost one atomic load each.

pub mod grpc;
mod logging;
mod otlp;
mod propagation;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use logging::{LogFormat, init_logging};
pub use propagation::{
    TRACEPARENT_HEADER, add_link, current_traceparent, format_traceparent, inject_current_context, parse_traceparent,
    set_remote_parent,
};

/// Target of the spans that exist for trace export only (never written to the log).
pub const SPAN_TARGET: &str = "vltava::otel";

/// How long shutting down waits for the last spans to reach the collector.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether this process exports traces ([`init_telemetry`] installed an exporter). Request spans
/// are only created then.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The `[telemetry]` section of a process's configuration. Every field has a default: an empty
/// section logs only, unless the standard `OTEL_EXPORTER_OTLP_*ENDPOINT` variables are set.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct TelemetryConfig {
    /// OTLP/gRPC collector to export traces to, e.g. `http://127.0.0.1:4317` (`http://` or
    /// `https://`). Unset: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, then
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; none of them set, no traces are exported.
    pub otlp_endpoint: Option<String>,
    /// Fraction of new traces to record, 0.0 to 1.0. A request that arrives with a trace
    /// context follows its caller's decision. `OTEL_TRACES_SAMPLER` (and `_ARG`) override it.
    pub sample_ratio: f64,
    /// Which spans are exported, in `RUST_LOG` syntax (independent of the log filter).
    pub trace_filter: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { otlp_endpoint: None, sample_ratio: 1.0, trace_filter: "info".into() }
    }
}

impl TelemetryConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), TelemetryError> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(TelemetryError::Invalid(format!(
                "telemetry.sample_ratio must be between 0.0 and 1.0, not {}",
                self.sample_ratio
            )));
        }
        if let Some(e) = self.endpoint()
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(TelemetryError::Invalid(format!(
                "telemetry.otlp_endpoint must start with http:// or https://, not {e:?}"
            )));
        }
        EnvFilter::builder()
            .parse(&self.trace_filter)
            .map_err(|e| TelemetryError::Invalid(format!("telemetry.trace_filter {:?}: {e}", self.trace_filter)))?;
        Ok(())
    }

    /// The configured endpoint, if any (an empty string counts as unset).
    fn endpoint(&self) -> Option<&str> {
        self.otlp_endpoint.as_deref().map(str::trim).filter(|e| !e.is_empty())
    }
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A configuration value is not acceptable.
    #[error("invalid telemetry configuration: {0}")]
    Invalid(String),
    /// The OTLP exporter could not be built (bad endpoint, bad `OTEL_EXPORTER_OTLP_*` variable).
    #[error("cannot set up the OTLP trace exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// Keeps trace export running; dropping it flushes the spans not yet exported (waiting at most
/// a few seconds) and shuts the exporter down. Keep it alive until the process stops serving.
#[must_use = "dropping the guard stops trace export"]
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether traces are being exported.
    pub fn is_exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports every finished span now (blocking; used by tests).
    pub fn flush(&self) {
        if let Some(p) = &self.provider
            && let Err(e) = p.force_flush()
        {
            tracing::warn!(error = %e, "flushing spans failed");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            EXPORTING.store(false, Ordering::Relaxed);
            if let Err(e) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
                tracing::warn!(error = %e, "flushing the last spans failed");
            }
        }
    }
}

/// Installs the global `tracing` subscriber of a process named `service_name`
/// (`vltava-broker`, `vltava-controller`, `vltava-gateway`...): logs in `log_format` filtered by
/// `RUST_LOG` (default `info`), plus OTLP trace export when an endpoint is configured (see
/// [`TelemetryConfig`]). Must be called inside a Tokio runtime (the exporter's connection lives
/// there). A second call installs nothing and returns an idle guard.
///
/// The standard variables are honoured: `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
/// `OTEL_EXPORTER_OTLP_*` (endpoint, headers, timeout, compression), `OTEL_TRACES_SAMPLER`(`_ARG`),
/// `OTEL_BSP_*` (batching), and `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` to turn
/// export off.
pub fn init_telemetry(
    service_name: &str,
    log_format: LogFormat,
    config: &TelemetryConfig,
) -> Result<TelemetryGuard, TelemetryError> {
    init_telemetry_with_log_filter(service_name, log_format, config, "info")
}

/// Whether the `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` variable names
/// a collector (client commands export traces only then).
pub fn otlp_endpoint_in_env() -> bool {
    ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()))
}

/// [`init_telemetry`] with logs filtered by `RUST_LOG`, else `default_log_filter` (client
/// commands log only warnings by default).
pub fn init_telemetry_with_log_filter(
    service_name: &str,
    log_format: LogFormat,
    config: &TelemetryConfig,
    default_log_filter: &str,
) -> Result<TelemetryGuard, TelemetryError> {
    config.validate()?;
    let env = |name: &str| std::env::var(name).ok();
    let fmt = logging::stderr_layer(log_format).with_filter(logging::log_filter(default_log_filter));
    let Some(endpoint) = otlp::endpoint(config, &env) else {
        let _ = tracing_subscriber::registry().with(fmt).try_init();
        return Ok(TelemetryGuard::default());
    };
    let (provider, tracer) = otlp::provider(service_name, endpoint, config.sample_ratio, &env)?;
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_filter(otlp::span_filter(&config.trace_filter));
    if tracing_subscriber::registry().with(fmt).with(otel).try_init().is_err() {
        // Someone installed a subscriber already: this exporter would never see a span.
        let _ = provider.shutdown();
        return Ok(TelemetryGuard::default());
    }
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    EXPORTING.store(true, Ordering::Relaxed);
    Ok(TelemetryGuard { provider: Some(provider) })
}
