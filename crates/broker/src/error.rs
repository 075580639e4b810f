//! Broker errors and their one mapping to wire errors.

use vltava_common::{ErrorCode, WireError};
use vltava_record::RecordError;
use vltava_storage::StorageError;

/// Why a broker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// No such topic or partition.
    #[error("unknown topic or partition {topic}-{partition}")]
    UnknownTopicOrPartition {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// This broker does not lead the partition.
    #[error("broker {broker} is not the leader of {topic}-{partition} (leader: {leader})")]
    NotLeader {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// This broker.
        broker: i32,
        /// The leader, -1 if none.
        leader: i32,
    },
    /// `acks` outside -1, 0, 1.
    #[error("acks must be -1 (all), 0 or 1, got {0}")]
    InvalidAcks(i32),
    /// Too few in-sync replicas for `acks=all`.
    #[error("{topic}-{partition} has {isr} in-sync replica(s), min.insync.replicas is {min}")]
    NotEnoughReplicas {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// ISR size.
        isr: usize,
        /// Required.
        min: i32,
    },
    /// The records were appended but the ISR shrank below `min.insync.replicas` before they
    /// were replicated.
    #[error(
        "{topic}-{partition}: appended, but the ISR shrank to {isr} (min.insync.replicas is {min}) before replication"
    )]
    NotEnoughReplicasAfterAppend {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// ISR size.
        isr: usize,
        /// Required.
        min: i32,
    },
    /// A replica's view of the leader epoch differs from the leader's.
    #[error("{topic}-{partition}: request for leader epoch {requested}, the current one is {current}")]
    LeaderEpoch {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Epoch in the request.
        requested: i32,
        /// This leader's epoch.
        current: i32,
    },
    /// A follower's fetch result arrived after the partition moved on to another leader epoch.
    #[error("{topic}-{partition}: fetched for leader epoch {fetched_for}, now {current}")]
    StaleFetch {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Epoch the fetch was made for.
        fetched_for: i32,
        /// The partition's epoch now.
        current: i32,
    },
    /// A request exceeds a size limit.
    #[error("request of {size} bytes exceeds the limit of {max} bytes")]
    RequestTooLarge {
        /// Size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// A malformed request.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A request refused by a validation rule shared with other services (names, group ids),
    /// whose wire error is decided there.
    #[error(transparent)]
    Refused(#[from] WireError),
    /// This broker does not (or no longer) lead the internal topic partition that coordinates
    /// the request's key.
    #[error("this broker is not the coordinator ({topic}-{partition} is led elsewhere)")]
    NotCoordinator {
        /// The internal topic.
        topic: String,
        /// Its partition.
        partition: i32,
    },
    /// The coordinator is still replaying its partition's log.
    #[error("the coordinator is loading {topic}-{partition}")]
    CoordinatorLoadInProgress {
        /// The internal topic.
        topic: String,
        /// Its partition.
        partition: i32,
    },
    /// The group coordinator refused a request.
    #[error(transparent)]
    Group(#[from] crate::groups::heartbeat::GroupError),
    /// Waiting for replication timed out.
    #[error("timed out after {0} ms waiting for replication")]
    Timeout(u64),
    /// The storage layer failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The metadata layer failed.
    #[error(transparent)]
    Metadata(#[from] vltava_metadata::MetadataError),
    /// A blocking task panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
    /// Startup failed.
    #[error("startup failed: {0}")]
    Startup(String),
}

impl From<BrokerError> for WireError {
    fn from(e: BrokerError) -> Self {
        let code = match &e {
            BrokerError::UnknownTopicOrPartition { .. } => ErrorCode::UnknownTopicOrPartition,
            BrokerError::NotLeader { .. } => ErrorCode::NotLeaderOrFollower,
            BrokerError::InvalidAcks(_) => ErrorCode::InvalidRequiredAcks,
            BrokerError::NotEnoughReplicas { .. } => ErrorCode::NotEnoughReplicas,
            BrokerError::NotEnoughReplicasAfterAppend { .. } => ErrorCode::NotEnoughReplicasAfterAppend,
            BrokerError::LeaderEpoch { requested, current, .. } if requested < current => ErrorCode::FencedLeaderEpoch,
            BrokerError::LeaderEpoch { .. } => ErrorCode::UnknownLeaderEpoch,
            BrokerError::StaleFetch { .. } => ErrorCode::FencedLeaderEpoch,
            BrokerError::RequestTooLarge { .. } => ErrorCode::RecordTooLarge,
            BrokerError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            BrokerError::Timeout(_) => ErrorCode::RequestTimedOut,
            BrokerError::NotCoordinator { .. } => ErrorCode::NotCoordinator,
            BrokerError::CoordinatorLoadInProgress { .. } => ErrorCode::CoordinatorLoadInProgress,
            BrokerError::Group(g) => return g.clone().into(),
            BrokerError::Storage(s) => return storage_error(s),
            BrokerError::Refused(w) => return w.clone(),
            BrokerError::Metadata(_) => {
                let BrokerError::Metadata(m) = e else { unreachable!() };
                return m.into();
            }
            BrokerError::Internal(_) | BrokerError::Startup(_) => ErrorCode::UnknownServerError,
        };
        WireError::new(code, e.to_string())
    }
}

impl From<BrokerError> for tonic::Status {
    fn from(e: BrokerError) -> Self {
        WireError::from(e).into_status()
    }
}

fn storage_error(e: &StorageError) -> WireError {
    match e {
        StorageError::OffsetOutOfRange { offset, log_start_offset, log_end_offset } => {
            WireError::offset_out_of_range(*offset, *log_start_offset, *log_end_offset)
        }
        StorageError::RecordTooLarge { .. } => WireError::new(ErrorCode::RecordTooLarge, e.to_string()),
        StorageError::Record(RecordError::UnsupportedCompression(_)) => {
            WireError::new(ErrorCode::UnsupportedCompressionType, e.to_string())
        }
        StorageError::Record(_) | StorageError::CorruptBatch { .. } => {
            WireError::new(ErrorCode::CorruptMessage, e.to_string())
        }
        StorageError::NonContiguous { .. } | StorageError::InvalidConfig(_) => {
            WireError::new(ErrorCode::InvalidRequest, e.to_string())
        }
        StorageError::OutOfOrderSequence { .. } => WireError::new(ErrorCode::OutOfOrderSequenceNumber, e.to_string()),
        StorageError::InvalidProducerEpoch { .. } => WireError::new(ErrorCode::InvalidProducerEpoch, e.to_string()),
        StorageError::CoordinatorFenced { .. } => {
            WireError::new(ErrorCode::TransactionCoordinatorFenced, e.to_string())
        }
        StorageError::InvalidRecord { .. } => WireError::new(ErrorCode::InvalidRecord, e.to_string()),
        StorageError::InvalidTimestamp { .. } => WireError::new(ErrorCode::InvalidTimestamp, e.to_string()),
        _ => WireError::new(ErrorCode::StorageError, e.to_string()),
    }
}
