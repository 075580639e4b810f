//! The trace half: the OTLP/gRPC exporter, the resource (`service.name`) and the sampler.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::{EnvResourceDetector, ResourceDetector, TelemetryResourceDetector};
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use tracing_subscriber::EnvFilter;

use super::{TelemetryConfig, TelemetryError};

/// Looks up an environment variable (tests pass a fake environment).
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Where spans go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint<'a> {
    /// `telemetry.otlp_endpoint`.
    Configured(&'a str),
    /// The exporter reads `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`.
    FromEnvironment,
}

fn non_empty(env: Env<'_>, name: &str) -> Option<String> {
    env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// The endpoint to export to, or `None` when export is off (nothing configured, or turned off
/// with `OTEL_SDK_DISABLED=true` / `OTEL_TRACES_EXPORTER=none`).
pub(crate) fn endpoint<'a>(config: &'a TelemetryConfig, env: Env<'_>) -> Option<Endpoint<'a>> {
    if non_empty(env, "OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || non_empty(env, "OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
    {
        return None;
    }
    if let Some(e) = config.endpoint() {
        return Some(Endpoint::Configured(e));
    }
    let from_env = non_empty(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        || non_empty(env, "OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
    from_env.then_some(Endpoint::FromEnvironment)
}

/// `service.name`: `OTEL_SERVICE_NAME`, else `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else
/// the process's own name.
pub(crate) fn service_name(default: &str, env: Env<'_>) -> String {
    if let Some(name) = non_empty(env, "OTEL_SERVICE_NAME") {
        return name;
    }
    let attributes = env("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default();
    attributes
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, v)| k.trim() == "service.name" && !v.trim().is_empty())
        .map_or_else(|| default.to_string(), |(_, v)| v.trim().to_string())
}

/// The resource of every span: SDK attributes, `OTEL_RESOURCE_ATTRIBUTES`, and `service.name`.
pub(crate) fn resource(service_name: String) -> Resource {
    let detectors: [Box<dyn ResourceDetector>; 2] =
        [Box::new(TelemetryResourceDetector), Box::new(EnvResourceDetector::new())];
    Resource::builder_empty().with_detectors(&detectors).with_service_name(service_name).build()
}

/// The sampler for `ratio`, unless `OTEL_TRACES_SAMPLER` chooses one (the SDK reads it itself).
fn sampler(ratio: f64, env: Env<'_>) -> Option<Sampler> {
    if non_empty(env, "OTEL_TRACES_SAMPLER").is_some() {
        return None;
    }
    let root = if ratio >= 1.0 { Sampler::AlwaysOn } else { Sampler::TraceIdRatioBased(ratio) };
    Some(Sampler::ParentBased(Box::new(root)))
}

/// The filter of the export layer: `trace_filter`, minus the exporter's own transport.
pub(crate) fn span_filter(trace_filter: &str) -> EnvFilter {
    let mut filter = EnvFilter::builder().parse_lossy(trace_filter);
    for quiet in
        ["h2", "hyper", "hyper_util", "tonic", "tower", "opentelemetry", "opentelemetry_sdk", "opentelemetry_otlp"]
    {
        if let Ok(directive) = format!("{quiet}=off").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// The tracer provider exporting over OTLP/gRPC through a batch processor (`OTEL_BSP_*`), and
/// its tracer. Must run inside a Tokio runtime.
pub(crate) fn provider(
    default_service_name: &str,
    endpoint: Endpoint<'_>,
    sample_ratio: f64,
    env: Env<'_>,
) -> Result<(SdkTracerProvider, SdkTracer), TelemetryError> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic();
    if let Endpoint::Configured(e) = endpoint {
        exporter = exporter.with_endpoint(e);
    }
    let exporter = exporter.build()?;
    let mut builder = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource(service_name(default_service_name, env)));
    if let Some(s) = sampler(sample_ratio, env) {
        builder = builder.with_sampler(s);
    }
    let provider = builder.build();
    let tracer = provider.tracer("vltava");
    Ok((provider, tracer))
}
