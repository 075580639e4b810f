//! The `[metrics]` section every process's configuration file shares.

use std::time::Duration;

use serde::Deserialize;

/// Environment variables naming an OTLP endpoint (the metrics-specific one first), as the
/// OpenTelemetry specification defines them.
pub const OTLP_ENDPOINT_ENV: [&str; 2] = ["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"];

/// Where a process publishes its metrics. Without `listen` and without any OTLP endpoint, no
/// metrics are kept at all (recording costs nothing).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MetricsConfig {
    /// Address of the Prometheus endpoint (`GET /metrics`, text format 0.0.4), e.g.
    /// `"0.0.0.0:9464"`; port 0 picks a free port (logged at start). Unset: no endpoint.
    pub listen: Option<String>,
    /// OTLP gRPC endpoint metrics are pushed to, e.g. `"http://otel-collector:4317"`. Unset: the
    /// `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` variable when one is
    /// set, else no push.
    pub otlp_endpoint: Option<String>,
    /// How often metrics are pushed over OTLP.
    #[serde(with = "humantime_serde")]
    pub export_interval: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { listen: None, otlp_endpoint: None, export_interval: Duration::from_secs(15) }
    }
}

impl MetricsConfig {
    /// The OTLP endpoint to push to: the configured one, else one named by the environment.
    pub fn effective_otlp_endpoint(&self) -> Option<String> {
        let configured = self.otlp_endpoint.clone().filter(|e| !e.trim().is_empty());
        configured.or_else(|| {
            OTLP_ENDPOINT_ENV.iter().find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
        })
    }

    /// Checks the values: an OTLP endpoint must be an `http://` or `https://` URL.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(e) = self.otlp_endpoint.as_deref().filter(|e| !e.trim().is_empty())
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(format!("metrics.otlp_endpoint must start with http:// or https://, got {e:?}"));
        }
        if self.listen.as_deref().is_some_and(|l| l.trim().is_empty()) {
            return Err("metrics.listen is empty: remove it or give host:port".into());
        }
        if self.export_interval.is_zero() {
            return Err("metrics.export_interval must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_keep_no_metrics_and_push_every_15s() {
        let c = MetricsConfig::default();
        assert_eq!((c.listen, c.otlp_endpoint, c.export_interval), (None, None, Duration::from_secs(15)));
    }

    #[test]
    fn endpoints_must_be_urls() {
        let bad = MetricsConfig { otlp_endpoint: Some("collector:4317".into()), ..MetricsConfig::default() };
        assert!(bad.validate().is_err());
        let good = MetricsConfig { otlp_endpoint: Some("http://collector:4317".into()), ..MetricsConfig::default() };
        assert!(good.validate().is_ok());
        assert_eq!(good.effective_otlp_endpoint().as_deref(), Some("http://collector:4317"));
    }
}
