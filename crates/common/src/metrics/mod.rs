//! Metrics: OpenTelemetry instruments, exposed on a Prometheus endpoint and pushed over OTLP.
//!
//! Each process calls [`Metrics::start`] once with its `[metrics]` section ([`MetricsConfig`]);
//! that installs the global meter provider. Crates create their instruments once from
//! `opentelemetry::global::meter(..)` (see each crate's `metrics.rs`) and record on hot paths
//! without locks of their own.
//!
//! # Layout
//! - [`config`]: [`MetricsConfig`], the `[metrics]` section.
//! - [`provider`]: [`Metrics`], the meter provider with its manual reader and OTLP push.
//! - [`prometheus`]: rendering collected metrics in the text exposition format 0.0.4.
//! - [`scrape`]: [`Scraper`], collecting on demand through the provider's manual reader.
//! - [`http`]: the tiny HTTP/1.1 server behind `GET /metrics`.
//! - [`rpc`]: [`RpcMetricsLayer`], request count and latency of every gRPC call a server answers.

pub mod config;
pub mod http;
pub mod prometheus;
pub mod provider;
pub mod rpc;
pub mod scrape;

pub use config::MetricsConfig;
pub use provider::Metrics;
pub use rpc::{LATENCY_BUCKETS_SECONDS, RpcMetricsLayer};
pub use scrape::Scraper;

/// Why metrics could not be started or collected.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The `[metrics]` values are not acceptable.
    #[error("invalid metrics configuration: {0}")]
    Config(String),
    /// The Prometheus endpoint could not listen.
    #[error("metrics endpoint cannot listen on {address}: {source}")]
    Bind {
        /// The configured address.
        address: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The OTLP exporter could not be built.
    #[error("OTLP metrics exporter: {0}")]
    Exporter(String),
    /// Collecting failed (e.g. after shutdown).
    #[error("collecting metrics: {0}")]
    Collect(String),
}
