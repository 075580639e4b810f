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
}

impl From<MetadataError> for WireError {
    fn from(e: MetadataError) -> Self {
        let code = match &e {
            MetadataError::TopicAlreadyExists { .. } => ErrorCode::TopicAlreadyExists,
            MetadataError::UnknownTopic { .. } => ErrorCode::UnknownTopicOrPartition,
            MetadataError::InvalidTopic(w) => return w.clone(),
            MetadataError::InvalidPartitions { .. } => ErrorCode::InvalidPartitions,
            MetadataError::InvalidReplicationFactor { .. } => ErrorCode::InvalidReplicationFactor,
            MetadataError::InvalidConfig { .. } => ErrorCode::InvalidConfig,
            MetadataError::Store(_) => ErrorCode::UnknownServerError,
        };
        WireError::new(code, e.to_string())
    }
}

impl From<rocksdb::Error> for MetadataError {
    fn from(e: rocksdb::Error) -> Self {
        MetadataError::Store(e.to_string())
    }
}
