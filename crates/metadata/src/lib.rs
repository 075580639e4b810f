//! Vltava's cluster metadata as brokers, gateways and the controller share it: the model, the
//! deterministic state machine, the [`MetadataService`] trait and two implementations of it that
//! need neither Raft nor RocksDB ([`RemoteMetadata`] and [`MemoryMetadata`]). The Raft quorum that
//! agrees on the metadata is `vltava-controller`.
//!
//! # Layout
//! - [`model`]: brokers, topics, partitions and the versioned [`ClusterImage`].
//! - [`service`]: the [`MetadataService`] trait brokers and admin handlers program against.
//! - [`command`], [`state`]: the replicated state machine: commands and their pure, deterministic
//!   application ([`state::MetadataState::apply`]), with [`election`] (partition leaders) and
//!   [`partition_change`] (AlterPartition, reassignment).
//! - [`plan`]: validating and planning writes before they are applied, shared by every service.
//! - [`topics`], [`placement`], [`topic_config`]: topic plans, replica placement, topic configs.
//! - [`remote`]: [`RemoteMetadata`], the client side of the controllers' gRPC service.
//! - [`memory`]: [`MemoryMetadata`], the state machine in memory, for tests.
//! - [`convert`]: the model to and from its protobuf form.
//! - [`error`]: [`MetadataError`] and its mapping to wire errors.

pub mod command;
pub mod convert;
pub mod election;
pub mod error;
pub mod memory;
pub mod model;
pub mod partition_change;
pub mod placement;
pub mod plan;
pub mod remote;
pub mod service;
pub mod state;
pub mod topic_config;
pub mod topics;

pub use error::MetadataError;
pub use memory::MemoryMetadata;
pub use model::{
    AlterPartition, BrokerId, BrokerRegistration, ClusterImage, CreateTopic, PartitionState, TopicMetadata,
};
pub use remote::RemoteMetadata;
pub use service::{MetadataService, ProducerIdBlock, Registered};
pub use topics::create_request;
