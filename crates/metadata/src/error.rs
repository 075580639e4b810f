//! Errors of the metadata layer.

use vltava_common::{ErrorCode, WireError};

/// Why a metadata operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// A topic with that name exists already.
    #[error("topic {name:?} already exists")]
    TopicAlreadyExists {
        /// Topic name.
        name: String,
    },
    /// No topic with that name.
    #[error("topic {name:?} does not exist")]
    UnknownTopic {
        /// Topic name.
        name: String,
    },
    /// Topic name breaks the naming rules.
    #[error("{0}")]
    InvalidTopic(WireError),
    /// Partition count out of range.
    #[error("invalid partition count {count}: it must be between 1 and {max}")]
    InvalidPartitions {
        /// Requested count.
        count: i32,
        /// Largest allowed.
        max: i32,
    },
    /// Replication factor not satisfiable.
    #[error(
        "invalid replication factor {requested}: it must be at least 1 and at most the {available} registered broker(s)"
    )]
    InvalidReplicationFactor {
        /// Requested factor.
        requested: i32,
        /// Brokers available.
        available: usize,
    },
    /// Unknown configuration key or bad value.
    #[error("invalid config {key}={value:?}: {reason}")]
    InvalidConfig {
        /// Key.
        key: String,
        /// Value.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The metadata store failed.
    #[error("metadata store error: {0}")]
    Store(String),
    /// No such broker is registered.
    #[error("broker {id} is not registered")]
    BrokerNotRegistered {
        /// Broker id.
        id: i32,
    },
    /// The broker's epoch is not the registered one: it must register again.
    #[error("stale broker epoch for broker {id}: the registered epoch is {expected}, the request has {got}")]
    StaleBrokerEpoch {
        /// Broker id.
        id: i32,
        /// Registered epoch.
        expected: i64,
        /// Epoch in the request.
        got: i64,
    },
    /// Another live process holds this broker id.
    #[error(
        "broker {id} is registered by another live process (incarnation {incarnation}); retry after its session expires"
    )]
    DuplicateBrokerRegistration {
        /// Broker id.
        id: i32,
        /// The live registration's incarnation.
        incarnation: String,
    },
    /// A partition count may only grow.
    #[error("topic {topic:?} has {current} partitions; the new count {requested} must be larger (and at most 100000)")]
    PartitionsMustGrow {
        /// Topic.
        topic: String,
        /// Current count.
        current: i32,
        /// Requested count.
        requested: i32,
    },
    /// This controller is not the leader and cannot forward.
    #[error("not the active controller{}", leader.as_ref().map(|(id, a)| format!("; the leader is controller {id} at {a}")).unwrap_or_else(|| "; no leader is known yet".into()))]
    NotController {
        /// The leader's node id and address, when known.
        leader: Option<(u64, String)>,
    },
    /// The quorum did not commit in time (no majority reachable, or leadership changed).
    #[error("the controller quorum did not answer in time: {0}")]
    Timeout(String),
    /// The request belongs to another cluster.
    #[error("cluster id mismatch: this cluster is {ours:?}, the request is for {theirs:?}")]
    InconsistentClusterId {
        /// Our cluster id.
        ours: String,
        /// The request's.
        theirs: String,
    },
    /// A voter change that is not allowed.
    #[error("invalid voter change: {0}")]
    InvalidVoterChange(String),
    /// The topic exists but has no such partition.
    #[error("topic {topic:?} has no partition {partition}")]
    UnknownPartition {
        /// Topic.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// A partition change came from a broker that does not lead the partition.
    #[error("broker {broker} is not the leader of {topic}-{partition} (the leader is {leader})")]
    NotLeader {
        /// Topic.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The sender.
        broker: i32,
        /// The current leader, -1 when none.
        leader: i32,
    },
    /// A partition change was based on another leader epoch than the current one.
    #[error(
        "fenced leader epoch for {topic}-{partition}: the current leader epoch is {current}, the request has {got}"
    )]
    FencedLeaderEpoch {
        /// Topic.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The current leader epoch.
        current: i32,
        /// The request's.
        got: i32,
    },
    /// A partition change was based on another partition epoch than the current one.
    #[error(
        "invalid update version for {topic}-{partition}: the current partition epoch is {current}, the request has {got}"
    )]
    InvalidUpdateVersion {
        /// Topic.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The current partition epoch.
        current: i32,
        /// The request's.
        got: i32,
    },
    /// A proposed ISR is not acceptable (a member is not a replica, unregistered, fenced or
    /// shutting down; or the ISR is empty, lacks the leader or repeats a broker).
    #[error("ineligible ISR for {topic}-{partition}: {reason}")]
    IneligibleReplica {
        /// Topic.
        topic: String,
        /// Partition index.
        partition: i32,
        /// What is wrong with it.
        reason: String,
    },
    /// The change was committed, and it elected another leader (a reassignment completed and
    /// moved leadership off the sender).
    #[error("a new leader was elected for {topic}-{partition}: broker {leader}")]
    NewLeaderElected {
        /// Topic.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The new leader, -1 when none.
        leader: i32,
    },
    /// A requested replica assignment is not acceptable.
    #[error("invalid replica assignment for {topic}-{partition}: {reason}")]
    InvalidReplicaAssignment {
        /// Topic.
        topic: String,
        /// Partition index.
        partition: i32,
        /// What is wrong with it.
        reason: String,
    },
    /// A cancellation asked for a partition that is not being reassigned.
    #[error("no reassignment is in progress for {topic}-{partition}")]
    NoReassignmentInProgress {
        /// Topic.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// An error answered by a remote controller, passed on unchanged.
    #[error("{}", .0.message)]
    Remote(WireError),
    /// Raft failed internally.
    #[error("raft: {0}")]
    Raft(String),
    /// A bug: a state the code does not expect.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<MetadataError> for WireError {
    fn from(e: MetadataError) -> Self {
        let code = match &e {
            MetadataError::TopicAlreadyExists { .. } => ErrorCode::TopicAlreadyExists,
            MetadataError::UnknownTopic { .. } => ErrorCode::UnknownTopicOrPartition,
            MetadataError::InvalidTopic(w) | MetadataError::Remote(w) => return w.clone(),
            MetadataError::InvalidPartitions { .. } => ErrorCode::InvalidPartitions,
            MetadataError::InvalidReplicationFactor { .. } => ErrorCode::InvalidReplicationFactor,
            MetadataError::InvalidConfig { .. } => ErrorCode::InvalidConfig,
            MetadataError::Store(_) | MetadataError::Raft(_) | MetadataError::Internal(_) => {
                ErrorCode::UnknownServerError
            }
            MetadataError::BrokerNotRegistered { .. } => ErrorCode::BrokerNotAvailable,
            MetadataError::StaleBrokerEpoch { .. } => ErrorCode::StaleBrokerEpoch,
            MetadataError::DuplicateBrokerRegistration { .. } => ErrorCode::DuplicateBrokerRegistration,
            MetadataError::PartitionsMustGrow { .. } => ErrorCode::InvalidPartitions,
            MetadataError::NotController { .. } => ErrorCode::NotController,
            MetadataError::Timeout(_) => ErrorCode::RequestTimedOut,
            MetadataError::InconsistentClusterId { .. } => ErrorCode::InconsistentClusterId,
            MetadataError::InvalidVoterChange(_) => ErrorCode::InvalidVoterChange,
            MetadataError::UnknownPartition { .. } => ErrorCode::UnknownTopicOrPartition,
            MetadataError::NotLeader { .. } => ErrorCode::NotLeaderOrFollower,
            MetadataError::FencedLeaderEpoch { .. } => ErrorCode::FencedLeaderEpoch,
            MetadataError::InvalidUpdateVersion { .. } => ErrorCode::InvalidUpdateVersion,
            MetadataError::IneligibleReplica { .. } => ErrorCode::IneligibleReplica,
            MetadataError::NewLeaderElected { .. } => ErrorCode::NewLeaderElected,
            MetadataError::InvalidReplicaAssignment { .. } => ErrorCode::InvalidReplicaAssignment,
            MetadataError::NoReassignmentInProgress { .. } => ErrorCode::NoReassignmentInProgress,
        };
        WireError::new(code, e.to_string())
    }
}

impl From<WireError> for MetadataError {
    /// Carries an error answered by a remote controller, code and message unchanged.
    fn from(w: WireError) -> Self {
        MetadataError::Remote(w)
    }
}
