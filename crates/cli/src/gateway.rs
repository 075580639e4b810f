//! `vltava gateway`: the stateless client-facing front door, routing each call to the partition
//! leader. Configuration: `--config FILE` (TOML, see `deploy/config/gateway.toml`) plus `VLTAVA_*`
//! environment overrides; `--listen` and `--bootstrap` win over both.

use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;
use vltava_common::metrics::{Metrics, MetricsConfig};
use vltava_common::telemetry::{LogFormat, TelemetryConfig, init_telemetry};
use vltava_gateway::GatewayConfig;

/// Arguments of `vltava gateway`.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// Optional TOML configuration file (see deploy/config/gateway.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to serve on (overrides the file).
    #[arg(long)]
    pub listen: Option<String>,
    /// Broker addresses to bootstrap from, comma-separated (overrides the file).
    #[arg(long, value_delimiter = ',')]
    pub bootstrap: Vec<String>,
}

/// The `vltava gateway` configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GatewayFile {
    /// Log format: "text" or "json".
    pub log_format: LogFormat,
    /// The gateway's settings.
    pub gateway: GatewayConfig,
    /// Traces: OTLP export (see `[telemetry]` in the example configuration).
    pub telemetry: TelemetryConfig,
    /// Metrics: the Prometheus endpoint and OTLP push.
    pub metrics: MetricsConfig,
}

/// Runs the gateway until Ctrl-C or SIGTERM.
pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let mut file: GatewayFile = vltava_common::config::load(args.config.as_deref())?;
    let _telemetry = init_telemetry("vltava-gateway", file.log_format, &file.telemetry)?;
    let metrics = Metrics::start("vltava-gateway", &file.metrics).await?;
    if let Some(listen) = args.listen {
        file.gateway.listen = listen;
    }
    if !args.bootstrap.is_empty() {
        file.gateway.bootstrap = args.bootstrap;
    }
    let detail = format!("brokers: {}", file.gateway.bootstrap.join(","));
    let listener = crate::commands::bind_and_announce("gateway", &file.gateway.listen, &detail).await?;
    let result = vltava_gateway::run(file.gateway, listener, crate::commands::interrupted()).await;
    metrics.shutdown().await;
    result?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_annotated_example_config_parses_and_states_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config/gateway.toml");
        let f: GatewayFile = vltava_common::config::load_with_prefix(Some(&path), "VLTAVA_GW_EXAMPLE_TEST").unwrap();
        let d = GatewayConfig::default();
        assert_eq!(f.gateway.listen, d.listen);
        assert_eq!(f.gateway.bootstrap, d.bootstrap);
        assert_eq!(f.gateway.request_timeout, d.request_timeout);
        assert_eq!(f.gateway.retries, d.retries);
        assert_eq!(f.telemetry, TelemetryConfig::default());
        assert_eq!(f.metrics, MetricsConfig::default());
        assert_eq!(f.gateway.max_message_bytes, d.max_message_bytes);
        assert_eq!(f.gateway.max_request_bytes, d.max_request_bytes);
        assert_eq!(f.gateway.max_concurrent_requests, d.max_concurrent_requests);
        assert_eq!(f.gateway.max_concurrent_streams, d.max_concurrent_streams);
        assert_eq!(f.gateway.call_timeout, d.call_timeout);
        assert_eq!(f.gateway.connections_per_broker, d.connections_per_broker);
    }
}
