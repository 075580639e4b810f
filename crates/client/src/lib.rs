//! Rust client SDK for Vltava: a producer, a consumer and an admin client with Kafka's client
//! semantics and configuration names, speaking Vltava's gRPC API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), vltava_client::ClientError> {
//! use vltava_client::{Producer, ProducerConfig, ProducerRecord};
//! let producer = Producer::connect(ProducerConfig::new("localhost:9092")).await?;
//! let delivery = producer.send(ProducerRecord::new("events", "hello").key("user-1")).await?;
//! let stored = delivery.await?;
//! println!("stored at {}-{}@{}", stored.topic, stored.partition, stored.offset);
//! producer.close().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`config`]: [`ProducerConfig`], [`ConsumerConfig`], [`Acks`], [`OffsetReset`] (Kafka names
//!   and defaults, `validate()`).
//! - [`error`]: [`ClientError`], the one error type (Kafka-style codes kept visible).
//! - [`types`]: [`TopicPartition`], [`ProducerRecord`], [`RecordMetadata`], [`ConsumerRecord`],
//!   [`OffsetSpec`], [`NewTopic`].
//! - [`partitioner`]: Kafka's default partitioner (murmur2 for keys, sticky without).
//! - [`producer`]: [`Producer`] — `accumulator` (per-partition batches, `buffer.memory`),
//!   `batch` (batch outcome, [`DeliveryFuture`]), `sender` (the I/O task: linger, requests,
//!   retries).
//! - [`consumer`]: [`Consumer`] — `fetcher` (pipelined per-leader fetches), `decode` (CRC
//!   checks, skipping records below the position), `membership` (the group heartbeat task),
//!   `group` (subscribe, rebalances, commits), [`RebalanceListener`].
//! - [`admin`][]: [`Admin`].
//! - `cluster`: broker channels and the metadata cache; `offsets`: `ListOffsets` and group
//!   offset calls shared by the consumer and admin (both private).

pub mod admin;
mod cluster;
pub mod config;
pub mod consumer;
pub mod error;
mod offsets;
pub mod partitioner;
pub mod producer;
pub mod types;

pub use admin::Admin;
pub use config::{Acks, ConsumerConfig, IsolationLevel, OffsetReset, ProducerConfig};
pub use consumer::{Consumer, RebalanceListener};
pub use error::ClientError;
pub use producer::{ConsumerGroupMetadata, DeliveryFuture, Producer};
pub use types::{
    ConsumerRecord, NewTopic, OffsetAndMetadata, OffsetSpec, ProducerRecord, RecordMetadata, TopicPartition,
};
pub use vltava_common::WireError;
pub use vltava_proto::v1::{
    BrokerInfo, ErrorCode, GroupDescription, MemberDescription, MetadataResponse, PartitionDescription, PartitionLag,
    PartitionReassignment, PartitionSet, TopicDescription, TopicSummary, TransactionState, TxnTopic,
};
pub use vltava_record::{Compression, Header};
