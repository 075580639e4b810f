//! The metadata service as brokers and admin handlers see it.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;
use vltava_proto::v1::DescribeClusterResponse;

use crate::error::MetadataError;
use crate::model::{
    AlterPartition, BrokerId, BrokerRegistration, ClusterImage, CreateTopic, PartitionState, TopicMetadata,
};

/// A broker's registration as the controller confirmed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    /// The broker epoch to send with heartbeats.
    pub epoch: i64,
    /// The metadata version containing the registration.
    pub version: u64,
}

/// A block of producer ids handed to one broker: `[start, start + len)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdBlock {
    /// First id of the block.
    pub start: i64,
    /// Number of ids in it.
    pub len: i64,
}

/// Cluster metadata: reads come from the latest [`ClusterImage`], writes are agreed on by the
/// controller quorum (in process for `vltava dev`, over gRPC for a broker of a cluster).
#[async_trait::async_trait]
pub trait MetadataService: Send + Sync + 'static {
    /// Creates a topic, placing its replicas and choosing leaders. Returns the topic and the
    /// version of the image that contains it.
    async fn create_topic(&self, request: CreateTopic) -> Result<(Arc<TopicMetadata>, u64), MetadataError>;

    /// Deletes a topic. Returns the version of the image without it.
    async fn delete_topic(&self, name: &str) -> Result<u64, MetadataError>;

    /// Grows a topic to `total` partitions.
    async fn create_partitions(
        &self,
        topic: &str,
        total: i32,
        validate_only: bool,
    ) -> Result<(Arc<TopicMetadata>, u64), MetadataError>;

    /// Sets and removes per-topic configuration keys.
    async fn alter_configs(
        &self,
        topic: &str,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
        validate_only: bool,
    ) -> Result<(Arc<TopicMetadata>, u64), MetadataError>;

    /// Registers (or re-registers) a broker.
    async fn register_broker(&self, registration: BrokerRegistration) -> Result<Registered, MetadataError>;

    /// Renews a broker's session. Returns whether the broker is fenced (and must register again).
    async fn heartbeat(&self, broker: BrokerId, epoch: i64) -> Result<bool, MetadataError>;

    /// Moves a stopping broker's leaderships away and fences it. Returns the version without them.
    async fn controlled_shutdown(&self, broker: BrokerId, epoch: i64) -> Result<u64, MetadataError>;

    /// The partition leader proposes a new ISR (Kafka's AlterPartition). Returns the committed
    /// partition state and the image version containing it.
    ///
    /// Refused with `NOT_LEADER_OR_FOLLOWER`, `STALE_BROKER_EPOCH`, `FENCED_LEADER_EPOCH`,
    /// `INVALID_UPDATE_VERSION` (the proposal is based on an old partition epoch) or
    /// `INELIGIBLE_REPLICA`. When the new ISR completes a reassignment that moves leadership off
    /// the sender, the change is committed and the call fails with `NEW_LEADER_ELECTED`.
    async fn alter_partition(&self, request: AlterPartition) -> Result<(PartitionState, u64), MetadataError>;

    /// Starts moving a partition to `target` replicas, or cancels a reassignment in progress when `target` is None.
    ///
    /// Returns the version of the image containing the change. Refused with
    /// `INVALID_REPLICA_ASSIGNMENT` (empty, duplicate or unregistered brokers, fewer than
    /// `min.insync.replicas`) or, for a cancellation, `NO_REASSIGNMENT_IN_PROGRESS`.
    async fn reassign_partition(
        &self,
        topic: &str,
        partition: i32,
        target: Option<Vec<BrokerId>>,
    ) -> Result<u64, MetadataError>;

    /// Hands `broker` (registered with `epoch`) the next block of producer ids, through the
    /// quorum's log so that no id is ever handed out twice. Refused with
    /// `BROKER_NOT_REGISTERED`-like errors (`STALE_BROKER_EPOCH`) for a stale registration.
    async fn allocate_producer_ids(&self, broker: BrokerId, epoch: i64) -> Result<ProducerIdBlock, MetadataError>;

    /// Describes the quorum and the brokers.
    async fn describe_cluster(&self) -> Result<DescribeClusterResponse, MetadataError>;

    /// The latest image.
    fn image(&self) -> Arc<ClusterImage>;

    /// A watch that sees every new image.
    fn watch(&self) -> watch::Receiver<Arc<ClusterImage>>;
}
