//! Pieces every Vltava service and client shares.
//!
//! # Layout
//! - [`error`]: Kafka-style error codes and their one mapping to and from `tonic::Status`.
//! - [`config`]: typed configuration loaded from TOML plus `VLTAVA_*` environment overrides.
//! - [`telemetry`]: `tracing` subscriber set-up (human or JSON logs, `RUST_LOG` filters).
//! - [`time`]: wall-clock helpers.
//! - [`grpc`]: the tonic server settings every service shares.
//! - [`names`]: validation of topic and group names (Kafka's rules).

pub mod config;
pub mod error;
pub mod grpc;
pub mod names;
pub mod telemetry;
pub mod time;

pub use error::{ErrorCode, WireError};
