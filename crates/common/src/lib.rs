//! Pieces every Vltava service and client shares.
//!
//! # Layout
//! - [`error`]: Kafka-style error codes and their one mapping to and from `tonic::Status`.
//! - [`cluster`]: [`cluster::ClusterView`], brokers and partition leaders from a `Metadata`
//!   answer: the metadata cache the SDK and the gateway share.
//! - [`config`]: typed configuration loaded from TOML plus `VLTAVA_*` environment overrides.
//! - [`metrics`]: OpenTelemetry metrics, the Prometheus endpoint and OTLP push.
//! - [`telemetry`]: logs (human or JSON, `RUST_LOG` filters) and OpenTelemetry traces (OTLP
//!   export, W3C trace context on gRPC calls and in record headers).
//! - [`time`]: wall-clock helpers.
//! - [`drain`]: a bounded graceful shutdown that ends long-lived server streams.
//! - [`grpc`]: the tonic server settings every service shares, and trace-propagating channels.
//! - [`names`]: validation of topic and group names (Kafka's rules).
//! - [`failpoint`]: named pauses a test arms through `VLTAVA_FAILPOINTS` (to kill a server in a
//!   chosen state).

pub mod cluster;
pub mod config;
pub mod drain;
pub mod error;
pub mod failpoint;
pub mod grpc;
pub mod metrics;
pub mod names;
pub mod telemetry;
pub mod time;

pub use error::{ErrorCode, WireError};
