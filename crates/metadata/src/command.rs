//! The commands of the metadata state machine: what a Raft log entry says to do.
//!
//! A command carries every value that is not a pure function of the state (topic ids, replica
//! placement chosen by the leader), so that applying the same committed log always yields the same
//! state on every controller.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{AlterPartition, BrokerId, BrokerRegistration, PartitionState, TopicMetadata};

/// One change to the cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Registers (or re-registers) a broker; its epoch becomes the entry's index and it is unfenced.
    RegisterBroker(BrokerRegistration),
    /// Fences a broker whose session expired: its leaderships move to other in-sync replicas.
    FenceBroker {
        /// Broker id.
        id: BrokerId,
        /// The epoch that expired (a newer registration is left alone).
        epoch: i64,
    },
    /// A clean shutdown: like fencing, asked for by the broker itself.
    ControlledShutdown {
        /// Broker id.
        id: BrokerId,
        /// The broker's epoch.
        epoch: i64,
    },
    /// Creates a topic (id and placement chosen by the leader).
    CreateTopic(TopicMetadata),
    /// Deletes a topic.
    DeleteTopic {
        /// Topic name.
        name: String,
    },
    /// Appends partitions to a topic.
    CreatePartitions {
        /// Topic name.
        topic: String,
        /// The topic id the partitions were planned for.
        topic_id: String,
        /// The new partitions, numbered after the existing ones.
        partitions: Vec<PartitionState>,
    },
    /// Changes per-topic configuration.
    AlterConfigs {
        /// Topic name.
        topic: String,
        /// Keys to set.
        set: BTreeMap<String, String>,
        /// Keys to remove.
        delete: Vec<String>,
    },
    /// A partition leader's new ISR (Kafka's AlterPartition), checked against the partition's
    /// epochs when applied. May complete a reassignment in progress.
    AlterPartition(AlterPartition),
    /// Starts moving a partition to `target` replicas (KIP-455), or cancels the reassignment in
    /// progress when `target` is `None`.
    ReassignPartition {
        /// Topic name.
        topic: String,
        /// The topic id the request was planned for.
        topic_id: String,
        /// Partition index.
        partition: i32,
        /// The new replicas, preferred leader first; `None` cancels.
        target: Option<Vec<BrokerId>>,
    },
    /// Hands a broker the next block of producer ids (KRaft's `AllocateProducerIds`): ids are
    /// unique cluster-wide and, being committed through the log, never reused after a failover.
    AllocateProducerIds {
        /// The broker asking.
        broker: BrokerId,
        /// Its epoch (a stale registration is refused).
        broker_epoch: i64,
    },
}

impl Command {
    /// A short name, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::RegisterBroker(_) => "register_broker",
            Command::FenceBroker { .. } => "fence_broker",
            Command::ControlledShutdown { .. } => "controlled_shutdown",
            Command::CreateTopic(_) => "create_topic",
            Command::DeleteTopic { .. } => "delete_topic",
            Command::CreatePartitions { .. } => "create_partitions",
            Command::AlterConfigs { .. } => "alter_configs",
            Command::AlterPartition(_) => "alter_partition",
            Command::ReassignPartition { .. } => "reassign_partition",
            Command::AllocateProducerIds { .. } => "allocate_producer_ids",
        }
    }
}

/// A command as stored in a Raft entry: who proposed it, so the proposer can answer its caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Node id of the proposing controller.
    pub origin: u64,
    /// The proposer's request id (unique per origin and process start).
    pub request_id: u64,
    /// The command.
    pub command: Command,
}

impl Envelope {
    /// Encodes for a Raft entry.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("commands always serialize")
    }

    /// Decodes a Raft entry's data.
    pub fn decode(data: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(data)
    }
}
