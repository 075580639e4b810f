//! Vltava's controller quorum: cluster metadata agreed on through Raft (raft-rs), kept in RocksDB.
//!
//! # Layout
//! - [`model`]: the metadata types (brokers, topics, partitions) and the versioned [`model::ClusterImage`].
//! - [`service`]: the [`MetadataService`] trait brokers and admin handlers program against.
//! - [`command`], [`state`], [`election`], [`partition_change`]: the replicated state machine:
//!   commands, their pure, deterministic application, partition leader election, and the
//!   partition changes brokers and operators ask for (AlterPartition, reassignment).
//! - [`topics`], [`placement`], [`topic_config`]: planning topic changes on the active controller.
//! - [`raft_store`], [`state_store`]: the Raft log and the state machine in one RocksDB database.
//! - [`node`]: the task driving a raft-rs `RawNode`; [`transport`]: Raft messages over gRPC.
//! - [`quorum`]: [`Controller`], one quorum member as a [`MetadataService`]; [`liveness`]: broker
//!   sessions and fencing.
//! - [`grpc`]: the controller's gRPC services; [`remote`]: [`RemoteMetadata`], the client side
//!   used by brokers and gateways.
//! - [`config`]: the `vltava controller` configuration file.
//! - [`metrics`]: leader elections, Raft and cluster gauges, the gRPC edge's request metrics.
//! - [`error`]: [`MetadataError`] and its mapping to wire errors.

pub mod command;
pub mod config;
pub mod convert;
pub mod deltas;
pub mod election;
pub mod error;
pub mod grpc;
pub mod liveness;
pub mod metrics;
pub mod model;
pub mod node;
pub mod partition_change;
pub mod placement;
pub mod quorum;
pub mod raft_store;
pub mod remote;
pub mod service;
mod slog_bridge;
pub mod state;
pub mod state_store;
pub mod topic_config;
pub mod topics;
pub mod transport;

pub use error::MetadataError;
pub use model::{
    AlterPartition, BrokerId, BrokerRegistration, ClusterImage, CreateTopic, PartitionState, TopicMetadata,
};
pub use quorum::{Controller, ControllerSettings};
pub use remote::RemoteMetadata;
pub use service::{MetadataService, Registered};
pub use topics::create_request;
