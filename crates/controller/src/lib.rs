//! Vltava's controller quorum: cluster metadata agreed on through Raft (raft-rs), kept in RocksDB.
//!
//! The metadata model, its state machine and the [`vltava_metadata::MetadataService`] trait live
//! in `vltava-metadata`; this crate runs them on a Raft quorum.
//!
//! # Layout
//! - [`raft_store`]: the Raft log and the state machine in one RocksDB database (the state
//!   machine's column family is private to it: `state_store.rs`).
//! - [`node`]: the task driving a raft-rs `RawNode`; [`transport`]: Raft messages over gRPC;
//!   [`deltas`]: recent image changes kept for watchers.
//! - [`quorum`]: [`Controller`], one quorum member as a `MetadataService`; [`liveness`]: broker
//!   sessions and fencing.
//! - [`grpc`]: the controller's gRPC services (the client side is `vltava_metadata::remote`).
//! - [`config`]: the `vltava controller` configuration file.
//! - [`metrics`]: leader elections and the gRPC edge's request metrics; [`gauges`]: Raft and
//!   cluster gauges read at collection time.

pub mod config;
pub mod deltas;
pub mod gauges;
pub mod grpc;
pub mod liveness;
pub mod metrics;
pub mod node;
pub mod quorum;
pub mod raft_store;
mod slog_bridge;
mod state_store;
pub mod transport;

pub use quorum::{Controller, ControllerSettings};
use vltava_metadata::MetadataError;

/// A RocksDB failure, as the metadata service reports it.
pub(crate) fn store_error(e: rocksdb::Error) -> MetadataError {
    MetadataError::Store(e.to_string())
}

/// A raft-rs failure, as the metadata service reports it.
pub(crate) fn raft_error(e: raft::Error) -> MetadataError {
    MetadataError::Raft(e.to_string())
}
