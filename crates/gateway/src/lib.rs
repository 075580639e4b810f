//! The Vltava gateway: a stateless gRPC front door for clients.
//!
//! It serves the same `AdminService`, `RecordService` and `GroupService` as a broker, but holds
//! no data: every call is routed to the broker that can answer it, and broker errors (status code,
//! `ErrorDetail` and the `vltava-error-code` header) pass through unchanged.
//!
//! # Layout
//! - [`config`]: [`GatewayConfig`], loaded with serde (every field has a default).
//! - [`error`]: [`GatewayError`], what [`run`] can fail with; the statuses of errors the gateway
//!   makes itself carry an `ErrorDetail` like every broker error.
//! - [`metrics`]: request count and latency at the edge, managed-group rebalances.
//! - [`limits`]: the edge's tower layer: load shedding (`RESOURCE_EXHAUSTED`) and call timeouts.
//! - [`routing`]: the metadata cache (a [`vltava_common::cluster::ClusterView`], the type the Rust
//!   SDK caches too) and a few connections per broker, with leader calls retried after a metadata
//!   refresh.
//! - [`brokers`]: [`Brokers`], the one typed layer of calls to the brokers: Produce and Subscribe
//!   to the partition leader, Fetch and ListOffsets scattered to leaders and merged back in
//!   request order, admin and group calls to any bootstrap broker.
//! - [`client_api`]: the thin-client `GatewayService` (records as protobuf messages: Publish,
//!   Read, Consume streams with managed group subscriptions local to this gateway), on [`Brokers`].
//! - [`server`]: the tonic services (each method one call into [`Brokers`]) and [`run`].

pub mod brokers;
pub mod client_api;
pub mod config;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod routing;
pub mod server;

pub use brokers::Brokers;
pub use config::GatewayConfig;
pub use error::GatewayError;
pub use routing::Router;
pub use server::run;
