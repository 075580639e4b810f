//! The Vltava broker: hosts partition replicas, appends produced batches, serves fetches and
//! stores consumer-group offsets.
//!
//! # Layout
//! A produce request reads one hop per file:
//! [`server`] (gRPC edge) → [`produce`] (request checks, auto-creation, acks) → [`partition`]
//! (leader state, high watermark) → `vltava_storage::Log` (segments and indexes).
//!
//! - [`broker`]: [`Broker`], the running broker's state every handler reads. Handlers depend on
//!   it, never on [`server`].
//! - [`config`]: [`BrokerConfig`], loaded from TOML plus `VLTAVA_*` overrides.
//! - [`server`]: [`run`], the tonic services (thin adapters over the handlers) and background tasks.
//! - [`replica_manager`]: the partitions this broker hosts, kept in step with the cluster image.
//! - [`partition`]: one hosted partition: its log, high watermark and long-poll notifications.
//! - [`log_config`]: per-topic configs (Kafka names) applied over the broker's log defaults.
//! - [`produce`], [`fetch`], [`subscribe`], [`list_offsets`]: the record RPC handlers.
//! - [`admin`]: topic administration and the cluster metadata clients route by.
//! - [`auto_create`]: `auto.create.topics.enable`, a step of produce and metadata requests.
//! - [`long_poll`]: the wait-for-data loop of fetches and replica fetches.
//! - [`coordinator`]: the coordinator machinery of groups and (later) transactions: key placement
//!   and shards of an internal topic materialised on its partitions' leaders.
//! - [`groups`]: the group coordinator: `__consumer_offsets` records, KIP-848 membership,
//!   committed offsets, and their RPC handlers.
//! - [`transactions`]: producer ids for idempotent producers (InitProducerId).
//! - [`lifecycle`]: registration with the controller, heartbeats and controlled shutdown.
//! - [`replication`]: followers fetching from leaders, the high watermark and the ISR.
//! - [`maintenance`]: retention, timed flushes and high watermark checkpoints.
//! - [`metrics`]: the broker's OpenTelemetry counters; [`gauges`]: what is observed at collection.
//! - [`error`]: [`BrokerError`] and its one mapping to wire errors.

pub mod admin;
pub mod auto_create;
pub mod broker;
pub mod config;
pub mod coordinator;
pub mod error;
pub mod fetch;
pub mod gauges;
pub mod groups;
pub mod lifecycle;
pub mod list_offsets;
pub mod log_config;
pub mod long_poll;
pub mod maintenance;
pub mod metrics;
pub mod partition;
pub mod produce;
pub mod replica_manager;
pub mod replication;
pub mod server;
pub mod subscribe;
pub mod transactions;

pub use broker::Broker;
pub use config::BrokerConfig;
pub use error::BrokerError;
pub use server::{FrontDoor, run, run_with};
