//! `vltava controller`: one member of the controller quorum (`--config FILE`, see
//! `deploy/config/controller.toml`), and `vltava controller add|remove` to change the voters.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Deserialize;
use vltava_common::metrics::{Metrics, MetricsConfig};
use vltava_common::telemetry::{LogFormat, TelemetryConfig, init_telemetry};
use vltava_controller::Controller;
use vltava_controller::config::ControllerConfig;
use vltava_controller::grpc::ControllerGrpc;
use vltava_metadata::MetadataService;
use vltava_proto::v1::controller_service_client::ControllerServiceClient;
use vltava_proto::v1::{AddVoterRequest, RemoveVoterRequest};

/// Arguments of `vltava controller`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ControllerArgs {
    /// Changes the quorum's voters instead of running a controller.
    #[command(subcommand)]
    pub action: Option<VoterCommand>,
    /// TOML configuration file (see deploy/config/controller.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `vltava controller add|remove`.
#[derive(Debug, Clone, Subcommand)]
pub enum VoterCommand {
    /// Adds a voter: start the new controller with `join = true` first, then add it.
    Add {
        /// The new controller's node id.
        id: u64,
        /// Its address, host:port.
        address: String,
        /// Any current controller.
        #[arg(long, env = "VLTAVA_CONTROLLER", default_value = "127.0.0.1:9093")]
        controller: String,
    },
    /// Removes a voter.
    Remove {
        /// The controller's node id.
        id: u64,
        /// Any current controller.
        #[arg(long, env = "VLTAVA_CONTROLLER", default_value = "127.0.0.1:9093")]
        controller: String,
    },
}

/// The `vltava controller` configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ControllerFile {
    /// Log format: "text" or "json".
    pub log_format: LogFormat,
    /// The controller's settings.
    pub controller: ControllerConfig,
    /// Traces: OTLP export (see `[telemetry]` in the example configuration).
    pub telemetry: TelemetryConfig,
    /// Metrics: the Prometheus endpoint and OTLP push.
    pub metrics: MetricsConfig,
}

/// Runs `vltava controller`.
pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    match args.action {
        Some(action) => change_voters(action).await,
        None => serve(args.config).await,
    }
}

async fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    let file: ControllerFile = vltava_common::config::load(config.as_deref())?;
    let _telemetry = init_telemetry("vltava-controller", file.log_format, &file.telemetry)?;
    let metrics = Metrics::start("vltava-controller", &file.metrics).await?;
    let config = file.controller;
    config.validate().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let detail = format!("controller {}, data in {}", config.node_id, config.data_dir.display());
    let listener = crate::commands::bind_and_announce("controller", &config.listen, &detail).await?;
    let bound = listener.local_addr()?;
    let advertised = config.advertised_address.clone().unwrap_or_else(|| {
        if bound.ip().is_unspecified() { format!("127.0.0.1:{}", bound.port()) } else { bound.to_string() }
    });
    let settings = config.settings(&advertised).map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let controller = Controller::start(settings).context("starting the controller")?;
    vltava_controller::gauges::observe(&controller);
    let grpc = ControllerGrpc::new(controller.clone());
    // Metadata watchers (brokers, gateways) have a moment, then their streams end with UNAVAILABLE
    // and they reconnect to another controller.
    let drain = vltava_common::drain::StreamDrain::new();
    let drain_layer = drain.layer(&["/vltava.v1.ControllerService/WatchMetadata"]);
    let signal = drain.after(
        async {
            crate::commands::interrupted().await;
            tracing::info!("shutting down");
        },
        WATCH_SHUTDOWN_GRACE,
    );
    let served = vltava_common::grpc::server_builder()
        .layer(vltava_controller::metrics::rpc_layer())
        .layer(drain_layer)
        .add_service(grpc.raft_service())
        .add_service(grpc.controller_service())
        .serve_with_incoming_shutdown(vltava_common::grpc::incoming(listener), signal)
        .await;
    drop(grpc);
    let image = controller.image();
    controller.stop().await;
    tracing::info!(version = image.version, "controller stopped");
    metrics.shutdown().await;
    served.context("controller gRPC server")?;
    Ok(())
}

/// How long metadata watch streams may go on after a controller starts shutting down.
const WATCH_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

async fn change_voters(action: VoterCommand) -> anyhow::Result<()> {
    let address = match &action {
        VoterCommand::Add { controller, .. } | VoterCommand::Remove { controller, .. } => controller.clone(),
    };
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
        .connect()
        .await
        .with_context(|| format!("cannot connect to controller {address}"))?;
    let mut client = ControllerServiceClient::new(vltava_common::grpc::traced(channel));
    let result = match action {
        VoterCommand::Add { id, address, .. } => client.add_voter(AddVoterRequest { id, address }).await,
        VoterCommand::Remove { id, .. } => client.remove_voter(RemoveVoterRequest { id }).await,
    };
    let done = result.map_err(|s| {
        let w = vltava_common::WireError::from_status(&s);
        anyhow::anyhow!("{}: {}", w.code_name(), w.message)
    })?;
    println!("quorum changed (raft index {})", done.into_inner().version);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_annotated_example_config_parses_and_states_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config/controller.toml");
        let f: ControllerFile =
            vltava_common::config::load_with_prefix(Some(&path), "VLTAVA_CONTROLLER_EXAMPLE_TEST").unwrap();
        let d = ControllerConfig::default();
        let c = &f.controller;
        assert_eq!(
            (c.node_id, c.listen.as_str(), c.voters.as_str()),
            (d.node_id, d.listen.as_str(), d.voters.as_str())
        );
        assert_eq!(c.broker_session_timeout, d.broker_session_timeout);
        assert_eq!((c.tick, c.election_ticks, c.heartbeat_ticks), (d.tick, d.election_ticks, d.heartbeat_ticks));
        assert_eq!((c.snapshot_entries, c.request_timeout), (d.snapshot_entries, d.request_timeout));
        assert!(c.validate().is_ok(), "the example is a valid one-voter quorum");
        assert_eq!(f.telemetry, TelemetryConfig::default());
        assert_eq!(f.metrics, MetricsConfig::default());
    }
}
