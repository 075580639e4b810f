//! `vltava broker`: one broker of a cluster (`--config FILE`, see `deploy/config/broker.toml`),
//! following the controller quorum named by `broker.controllers`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use vltava_broker::BrokerConfig;
use vltava_common::metrics::{Metrics, MetricsConfig};
use vltava_common::telemetry::{LogFormat, TelemetryConfig, init_telemetry};
use vltava_metadata::RemoteMetadata;

/// Arguments of `vltava broker`.
#[derive(Debug, Clone, Args)]
pub struct BrokerArgs {
    /// TOML configuration file (see deploy/config/broker.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// The `vltava broker` configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BrokerFile {
    /// Log format: "text" or "json".
    pub log_format: LogFormat,
    /// The broker's settings.
    pub broker: BrokerConfig,
    /// Traces: OTLP export (see `[telemetry]` in the example configuration).
    pub telemetry: TelemetryConfig,
    /// Metrics: the Prometheus endpoint and OTLP push.
    pub metrics: MetricsConfig,
}

/// Runs the broker until Ctrl-C or SIGTERM (then a controlled shutdown).
pub async fn run(args: BrokerArgs) -> anyhow::Result<()> {
    let file: BrokerFile = vltava_common::config::load(args.config.as_deref())?;
    let _telemetry = init_telemetry("vltava-broker", file.log_format, &file.telemetry)?;
    let metrics = Metrics::start("vltava-broker", &file.metrics).await?;
    let config = file.broker;
    config.validate().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let controllers = config.controller_addresses();
    if controllers.is_empty() {
        anyhow::bail!("invalid configuration: broker.controllers is empty (list the controllers as host:port,...)");
    }
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    let metadata = RemoteMetadata::connect(&controllers, &config.cluster_id, Duration::from_secs(15))
        .context("connecting to the controllers")?;
    let detail = format!("broker {}, controllers {}", config.broker_id, controllers.join(","));
    let listener = crate::commands::bind_and_announce("broker", &config.listen, &detail).await?;
    let kafka = crate::commands::bind_kafka("broker", &config).await?;
    let result = vltava_broker::run_with(config, metadata, listener, kafka, async {
        crate::commands::interrupted().await;
        tracing::info!("shutting down");
    })
    .await;
    metrics.shutdown().await;
    result?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_annotated_example_config_parses_and_states_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config/broker.toml");
        let f: BrokerFile = vltava_common::config::load_with_prefix(Some(&path), "VLTAVA_BROKER_EXAMPLE_TEST").unwrap();
        let d = BrokerConfig::default();
        assert_eq!(f.broker.heartbeat_interval, d.heartbeat_interval);
        assert_eq!(f.broker.controlled_shutdown_timeout, d.controlled_shutdown_timeout);
        assert_eq!(f.broker.producer_id_expiration, d.producer_id_expiration);
        assert_eq!(f.broker.producer_id_expiration_check_interval, d.producer_id_expiration_check_interval);
        let (t, dt) = (&f.broker.transactions, &d.transactions);
        assert_eq!(
            (t.state_topic_num_partitions, t.max_timeout, t.cleanup_interval, t.transactional_id_expiration),
            (dt.state_topic_num_partitions, dt.max_timeout, dt.cleanup_interval, dt.transactional_id_expiration)
        );
        assert_eq!(f.broker.controller_addresses(), vec!["127.0.0.1:9093".to_string()]);
        assert!(f.broker.validate().is_ok());
        assert_eq!(f.telemetry, TelemetryConfig::default());
        assert_eq!(f.metrics, MetricsConfig::default());
    }
}
