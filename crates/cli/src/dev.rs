//! `vltava dev`: the whole system in one process on one port, for a laptop.
//!
//! It runs a single-voter controller quorum in process (Raft log and metadata in RocksDB under
//! `DATA_DIR/metadata`) and one broker
//! (id 1, logs under `DATA_DIR/broker/logs`, group offsets under `DATA_DIR/broker/groups`),
//! serving the client API on `--listen`, and a gateway in front of it on `--gateway-listen`
//! (`GatewayService` for thin clients in any language, health and reflection; `off` leaves it
//! out), and the Kafka protocol listener on `--kafka-listen` (so that Kafka clients work with
//! `bootstrap.servers=127.0.0.1:9092`; `off` leaves it out). Configuration: `--config FILE`
//! (TOML, same shape as `deploy/config/dev.toml`) plus `VLTAVA_*` environment overrides;
//! `--listen`, `--gateway-listen`, `--kafka-listen` and `--data-dir` win over both.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use vltava_broker::BrokerConfig;
use vltava_common::metrics::{Metrics, MetricsConfig};
use vltava_common::telemetry::{LogFormat, TelemetryConfig, init_telemetry};
use vltava_controller::Controller;
use vltava_gateway::GatewayConfig;
use vltava_metadata::MetadataService;

/// Arguments of `vltava dev`.
#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    /// Address to serve the client API on.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: String,
    /// Address to serve the gateway on (`GatewayService`, health, reflection), or `off`.
    #[arg(long, default_value = "127.0.0.1:7071")]
    pub gateway_listen: String,
    /// Address of the Kafka protocol listener (`bootstrap.servers` of Kafka clients), or `off`.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub kafka_listen: String,
    /// Directory for all data (metadata, logs, group offsets).
    #[arg(long, default_value = "./data/dev")]
    pub data_dir: PathBuf,
    /// Optional TOML configuration file (see deploy/config/dev.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// The `vltava dev` configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DevConfig {
    /// Log format: "text" or "json".
    pub log_format: LogFormat,
    /// The embedded broker's settings (`listen` and `data_dir` come from the flags).
    pub broker: BrokerConfig,
    /// The embedded gateway's settings (`listen` comes from `--gateway-listen`, and `bootstrap`
    /// is the embedded broker).
    pub gateway: GatewayConfig,
    /// Traces: OTLP export (see `[telemetry]` in the example configuration).
    pub telemetry: TelemetryConfig,
    /// Metrics: the Prometheus endpoint and OTLP push.
    pub metrics: MetricsConfig,
}

/// Runs the dev server until Ctrl-C or SIGTERM.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let mut config: DevConfig = vltava_common::config::load(args.config.as_deref())?;
    let _telemetry = init_telemetry("vltava-dev", config.log_format, &config.telemetry)?;
    let metrics = Metrics::start("vltava-dev", &config.metrics).await?;
    config.broker.listen = args.listen.clone();
    config.broker.kafka_listen = args.kafka_listen.clone();
    config.broker.data_dir = args.data_dir.join("broker");
    config.broker.validate().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;

    let controller =
        Controller::start_single(args.data_dir.join("metadata"), config.broker.default_replication_factor, None)
            .context("opening the metadata store")?;
    vltava_controller::gauges::observe(&controller);
    let detail = format!("data in {}", args.data_dir.display());
    let listener = crate::commands::bind_and_announce("dev", &args.listen, &detail).await?;
    let metadata: Arc<dyn MetadataService> = controller.clone();
    // One Ctrl-C or SIGTERM stops the broker and the gateway.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let gateway = match args.gateway_listen.as_str() {
        "off" | "" => None,
        listen => {
            let mut gateway = config.gateway.clone();
            gateway.listen = listen.to_string();
            let broker = listener.local_addr()?;
            let broker =
                if broker.ip().is_unspecified() { format!("127.0.0.1:{}", broker.port()) } else { broker.to_string() };
            gateway.bootstrap = vec![broker.clone()];
            gateway.validate().map_err(|e| anyhow::anyhow!("invalid [gateway] configuration: {e}"))?;
            let detail = format!("gateway in front of {broker}");
            let listener = crate::commands::bind_and_announce("dev gateway", listen, &detail).await?;
            Some(tokio::spawn(vltava_gateway::run(gateway, listener, stopped())))
        }
    };
    let interrupt = stop_tx.clone();
    tokio::spawn(async move {
        crate::commands::interrupted().await;
        tracing::info!("shutting down");
        interrupt.send_replace(true);
    });
    let kafka = crate::commands::bind_kafka("dev", &config.broker).await?;
    let result = vltava_broker::run_with(config.broker, metadata, listener, kafka, stopped()).await;
    stop_tx.send_replace(true); // the broker may also have stopped on an error
    let gateway_result = match gateway {
        Some(task) => task.await.context("the gateway task").and_then(|r| r.context("the gateway")),
        None => Ok(()),
    };
    // The metadata store is closed cleanly whatever failed.
    controller.stop().await;
    metrics.shutdown().await;
    result?;
    gateway_result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_annotated_example_config_parses_and_states_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config/dev.toml");
        let c: DevConfig = vltava_common::config::load_with_prefix(Some(&path), "VLTAVA_DEV_EXAMPLE_TEST").unwrap();
        let d = BrokerConfig::default();
        assert_eq!(c.broker.retention_check_interval, d.retention_check_interval);
        assert_eq!(c.broker.max_request_bytes, d.max_request_bytes);
        assert_eq!(c.broker.log.segment_bytes, d.log.segment_bytes);
        assert_eq!(c.broker.log.retention_ms, d.log.retention_ms);
        assert_eq!(c.broker.log.max_message_bytes, d.log.max_message_bytes);
        assert_eq!(c.broker.log.flush_messages, None);
        assert_eq!(c.gateway, GatewayConfig::default());
        assert_eq!(c.telemetry, TelemetryConfig::default());
        assert_eq!(c.metrics, MetricsConfig::default());
    }
}
