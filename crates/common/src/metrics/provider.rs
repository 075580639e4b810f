//! The process's one `SdkMeterProvider`: a manual reader the Prometheus endpoint collects on
//! every scrape and, when an OTLP endpoint is configured, a periodic OTLP gRPC push.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{ManualReader, PeriodicReader, SdkMeterProvider, Temporality};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::MetricsError;
use super::config::MetricsConfig;
use super::scrape::{Scraper, shared_reader};

/// A process's metrics pipeline. Dropping it stops the endpoint; call [`Metrics::shutdown`] to
/// push the last OTLP export too.
pub struct Metrics {
    provider: Option<SdkMeterProvider>,
    endpoint: Option<SocketAddr>,
    server: Option<JoinHandle<()>>,
}

impl Metrics {
    /// Starts metrics for the process `service` (e.g. `"vltava-broker"`, the resource's
    /// `service.name`) and installs them as the global meter provider, so instruments created
    /// from `opentelemetry::global::meter` afterwards record into them. Serves the Prometheus
    /// endpoint when `config.listen` is set and pushes over OTLP when an endpoint is known. With
    /// neither, nothing is installed and recording stays a no-op.
    ///
    /// Call it inside the Tokio runtime (the OTLP exporter's channel lives there) and before any
    /// instrument is created.
    pub async fn start(service: &'static str, config: &MetricsConfig) -> Result<Metrics, MetricsError> {
        config.validate().map_err(MetricsError::Config)?;
        let otlp = config.effective_otlp_endpoint();
        if config.listen.is_none() && otlp.is_none() {
            return Ok(Metrics { provider: None, endpoint: None, server: None });
        }
        let listener = match &config.listen {
            Some(addr) => Some(
                TcpListener::bind(addr).await.map_err(|source| MetricsError::Bind { address: addr.clone(), source })?,
            ),
            None => None,
        };
        let reader = Arc::new(ManualReader::builder().with_temporality(Temporality::Cumulative).build());
        let resource = resource(service);
        let mut builder = SdkMeterProvider::builder().with_resource(resource).with_reader(shared_reader(&reader));
        if let Some(endpoint) = &otlp {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .with_timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| MetricsError::Exporter(e.to_string()))?;
            builder =
                builder.with_reader(PeriodicReader::builder(exporter).with_interval(config.export_interval).build());
            tracing::info!(%endpoint, interval = ?config.export_interval, "pushing metrics over OTLP");
        }
        let provider = builder.build();
        opentelemetry::global::set_meter_provider(provider.clone());
        let (endpoint, server) = match listener {
            Some(listener) => {
                let addr = listener.local_addr().map_err(|source| MetricsError::Bind {
                    address: config.listen.clone().unwrap_or_default(),
                    source,
                })?;
                tracing::info!(%addr, "metrics endpoint serving on http://{addr}/metrics");
                let scraper = Scraper::new(&reader);
                (Some(addr), Some(tokio::spawn(super::http::serve(listener, scraper))))
            }
            None => (None, None),
        };
        Ok(Metrics { provider: Some(provider), endpoint, server })
    }

    /// Where the Prometheus endpoint listens, when it does.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.endpoint
    }

    /// Whether any metrics are kept.
    pub fn enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// Stops the endpoint and pushes the last OTLP export.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if let Some(provider) = self.provider.take() {
            let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = done {
                tracing::debug!(error = %e, "metrics shutdown");
            }
        }
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// The resource of every metric: SDK attributes, `OTEL_RESOURCE_ATTRIBUTES` and `service.name`
/// (`OTEL_SERVICE_NAME`, else `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else `service`), as
/// the trace exporter names the process.
fn resource(service: &'static str) -> Resource {
    let set = |var: &str| std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    let named = set("OTEL_SERVICE_NAME").is_some()
        || set("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| {
            a.split(',')
                .filter_map(|kv| kv.split_once('='))
                .any(|(k, v)| k.trim() == "service.name" && !v.trim().is_empty())
        });
    let builder = Resource::builder();
    if named { builder.build() } else { builder.with_service_name(service).build() }
}
