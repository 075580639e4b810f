//! The metadata model: brokers, topics, partitions, and the versioned image of all of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A broker's id, unique in the cluster.
pub type BrokerId = i32;

/// A broker as registered with the metadata service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// Broker id.
    pub id: BrokerId,
    /// Address clients and peers connect to, `host:port`.
    pub address: String,
    /// Rack, for rack-aware placement.
    pub rack: Option<String>,
    /// Address of its Kafka protocol listener, `host:port`; empty when it runs none.
    #[serde(default)]
    pub kafka_address: String,
    /// Unique per process start: tells a restarted broker from a live duplicate.
    #[serde(default)]
    pub incarnation: String,
    /// Registration epoch, assigned by the controller (the Raft index of the registration).
    #[serde(default)]
    pub epoch: i64,
    /// Fenced: the session expired or the broker shut down. A fenced broker leads nothing and
    /// must register again.
    #[serde(default)]
    pub fenced: bool,
}

impl BrokerRegistration {
    /// A registration request for broker `id` at `address` (epoch and fencing are the controller's).
    pub fn new(id: BrokerId, address: impl Into<String>, rack: Option<String>) -> Self {
        Self {
            id,
            address: address.into(),
            rack,
            kafka_address: String::new(),
            incarnation: String::new(),
            epoch: 0,
            fenced: false,
        }
    }
}

/// One partition's placement and leadership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Partition index.
    pub partition: i32,
    /// Brokers holding a replica; the first is the preferred leader.
    pub replicas: Vec<BrokerId>,
    /// In-sync replicas.
    pub isr: Vec<BrokerId>,
    /// Current leader, -1 when none.
    pub leader: BrokerId,
    /// Bumped at every leader change.
    pub leader_epoch: i32,
    /// Bumped at every change of this partition's state (ISR, replicas, leader).
    pub partition_epoch: i32,
    /// Replicas a reassignment in progress is adding (KIP-455): in `replicas`, not yet in the
    /// target's ISR. Empty when no reassignment is in progress.
    #[serde(default)]
    pub adding_replicas: Vec<BrokerId>,
    /// Replicas a reassignment in progress will remove once the target replicas are all in sync.
    /// Empty when no reassignment is in progress.
    #[serde(default)]
    pub removing_replicas: Vec<BrokerId>,
}

impl PartitionState {
    /// A new partition on `replicas`, led by the first, with every replica in sync.
    pub fn new(partition: i32, replicas: Vec<BrokerId>) -> Self {
        Self {
            partition,
            leader: replicas.first().copied().unwrap_or(-1),
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }

    /// Whether a reassignment is in progress.
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas the partition is meant to have: all of `replicas` without the ones a
    /// reassignment is removing, in preference order (the reassignment's target while one runs).
    pub fn target_replicas(&self) -> Vec<BrokerId> {
        self.replicas.iter().copied().filter(|b| !self.removing_replicas.contains(b)).collect()
    }

    /// The replication factor: the size of [`PartitionState::target_replicas`] (during a
    /// reassignment `replicas` holds both the old and the new replicas).
    pub fn replication_factor(&self) -> usize {
        self.replicas.iter().filter(|b| !self.removing_replicas.contains(b)).count()
    }
}

/// A partition leader's proposal of a new ISR (Kafka's AlterPartition request, KIP-497/KIP-841).
///
/// It is checked when committed against the partition as it is then: the sender must lead it
/// with its current broker epoch, and both epochs must be the current ones, so a proposal based
/// on stale state is refused rather than undoing a newer change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartition {
    /// Topic name.
    pub topic: String,
    /// Topic id the leader knows (a re-created topic's partition is a different partition).
    pub topic_id: String,
    /// Partition index.
    pub partition: i32,
    /// The proposing broker (the partition leader).
    pub broker_id: BrokerId,
    /// The proposing broker's registration epoch.
    pub broker_epoch: i64,
    /// The leader epoch the proposal is based on.
    pub leader_epoch: i32,
    /// The partition epoch the proposal is based on.
    pub partition_epoch: i32,
    /// The proposed in-sync replicas: must hold the leader, only replicas, each once.
    pub new_isr: Vec<BrokerId>,
}

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// Topic id (UUID string), new at every creation.
    pub id: String,
    /// Partitions by index.
    pub partitions: Vec<PartitionState>,
    /// Per-topic configuration overrides (Kafka names).
    pub configs: BTreeMap<String, String>,
}

impl TopicMetadata {
    /// Replication factor: partition 0's, not counting replicas a reassignment is removing.
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, PartitionState::replication_factor)
    }
}

/// A request to create a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopic {
    /// Topic name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor; 0 means the default.
    pub replication_factor: i32,
    /// Configuration overrides.
    pub configs: BTreeMap<String, String>,
    /// Only validate.
    pub validate_only: bool,
}

/// An immutable, versioned view of all cluster metadata. Every change produces a new image with a
/// higher version; watchers receive images in version order.
#[derive(Debug, Clone, Default)]
pub struct ClusterImage {
    /// Monotonic version of this image.
    pub version: u64,
    /// Cluster id.
    pub cluster_id: String,
    /// Registered brokers.
    pub brokers: BTreeMap<BrokerId, BrokerRegistration>,
    /// Topics by name.
    pub topics: BTreeMap<String, Arc<TopicMetadata>>,
}

impl ClusterImage {
    /// Brokers that are registered and not fenced.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// The topic called `name`.
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMetadata>> {
        self.topics.get(name)
    }

    /// The state of one partition.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        let p = usize::try_from(partition).ok()?;
        self.topics.get(topic)?.partitions.get(p)
    }
}
