//! Vltava's cluster metadata: what topics exist, where their partitions live and who leads them.
//!
//! # Layout
//! - [`model`]: the metadata types (brokers, topics, partitions) and the versioned [`model::ClusterImage`].
//! - [`service`]: the [`MetadataService`] trait brokers and admin handlers program against.
//! - [`topic_config`]: validation of per-topic configuration keys (Kafka's names).
//! - [`placement`]: replica placement over brokers.
//! - [`store`]: the RocksDB-backed store of the metadata state.
//! - [`local`]: [`LocalMetadata`], a single-node implementation used by `vltava dev`. The Raft
//!   quorum replaces it behind the same trait.
//! - [`error`]: [`MetadataError`] and its mapping to wire errors.

pub mod error;
pub mod local;
pub mod model;
pub mod placement;
pub mod service;
pub mod store;
pub mod topic_config;

pub use error::MetadataError;
pub use local::LocalMetadata;
pub use model::{BrokerId, BrokerRegistration, ClusterImage, CreateTopic, PartitionState, TopicMetadata};
pub use service::MetadataService;
