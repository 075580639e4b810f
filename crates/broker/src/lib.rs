//! The Vltava broker: hosts partition replicas, appends produced batches, serves fetches and
//! stores consumer-group offsets.
//!
//! # Layout
//! A produce request reads one hop per file:
//! [`server`] (gRPC edge) → [`produce`] (request checks, acks) → [`partition`] (leader state,
//! high watermark) → `vltava_storage::Log` (segments and indexes).
//!
//! - [`config`]: [`BrokerConfig`], loaded from TOML plus `VLTAVA_*` overrides.
//! - [`server`]: [`run`], the tonic services and background tasks.
//! - [`replica_manager`]: the partitions this broker hosts, kept in step with the cluster image.
//! - [`partition`]: one hosted partition: its log, high watermark and long-poll notifications.
//! - [`log_config`]: per-topic configs (Kafka names) applied over the broker's log defaults.
//! - [`produce`], [`fetch`], [`subscribe`], [`list_offsets`]: the record RPC handlers.
//! - [`admin`]: topic administration and the cluster metadata clients route by.
//! - [`groups`]: committed consumer-group offsets ([`groups::OffsetStore`] and its RocksDB store).
//! - [`lifecycle`]: registration with the controller, heartbeats and controlled shutdown.
//! - [`replication`]: followers fetching from leaders, the high watermark and the ISR.
//! - [`maintenance`]: retention, timed flushes and high watermark checkpoints.
//! - [`metrics`]: the broker's OpenTelemetry instruments and gauges.
//! - [`error`]: [`BrokerError`] and its one mapping to wire errors.

pub mod admin;
pub mod config;
pub mod error;
pub mod fetch;
pub mod groups;
pub mod lifecycle;
pub mod list_offsets;
pub mod log_config;
pub mod maintenance;
pub mod metrics;
pub mod partition;
pub mod produce;
pub mod replica_manager;
pub mod replication;
pub mod server;
pub mod subscribe;

pub use config::BrokerConfig;
pub use error::BrokerError;
pub use server::{Broker, run};
