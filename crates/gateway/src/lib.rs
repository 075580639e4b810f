//! The Vltava gateway: a stateless gRPC front door for clients.
//!
//! It serves the same `AdminService`, `RecordService` and `GroupService` as a broker, but holds
//! no data: every call is routed to the broker that can answer it, and broker errors (status code,
//! `ErrorDetail` and the `vltava-error-code` header) pass through unchanged.
//!
//! # Layout
//! - [`config`]: [`GatewayConfig`], loaded with serde (every field has a default).
//! - [`error`]: [`GatewayError`], what [`run`] can fail with.
//! - [`metrics`]: request count and latency at the edge, managed-group rebalances.
//! - [`limits`]: the edge's tower layer: load shedding (`RESOURCE_EXHAUSTED`) and call timeouts.
//! - [`routing`]: the metadata cache (brokers, partition leaders) and a few connections per broker,
//!   with leader calls retried after a metadata refresh.
//! - [`produce`]: Produce to the partition leader, retrying retriable errors.
//! - [`fetch`]: Fetch scattered to leaders and merged back in request order.
//! - [`forward`]: ListOffsets (per leader), Subscribe (leader stream), admin and group calls
//!   (any bootstrap broker).
//! - [`client_api`]: the thin-client `GatewayService` (records as protobuf messages: Publish,
//!   Read, Consume streams with managed group subscriptions local to this gateway).
//! - [`server`]: the tonic services and [`run`].

pub mod client_api;
pub mod config;
pub mod error;
pub mod fetch;
pub mod forward;
pub mod limits;
pub mod metrics;
pub mod produce;
pub mod routing;
pub mod server;

pub use config::GatewayConfig;
pub use error::GatewayError;
pub use routing::Router;
pub use server::run;
