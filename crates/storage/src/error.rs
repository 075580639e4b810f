//! The error type of this crate.

use std::path::PathBuf;

use thiserror::Error;
use vltava_record::RecordError;

/// Everything that can go wrong in the partition log.
#[derive(Debug, Error)]
pub enum StorageError {
    /// An I/O operation on `path` failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A record batch could not be decoded.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The requested offset is outside `[log_start_offset, log_end_offset]`.
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: i64,
        /// First offset still in the log.
        log_start_offset: i64,
        /// Offset the next appended record will get.
        log_end_offset: i64,
    },
    /// A batch (or an append) is larger than allowed.
    #[error("record batch of {size} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// Size of the offending batch in bytes.
        size: usize,
        /// The configured maximum (`max.message.bytes`).
        max: u32,
    },
    /// A batch handed to `append` failed validation (CRC, magic, lengths, counts).
    #[error("corrupt record batch: {reason}")]
    CorruptBatch {
        /// What was wrong.
        reason: String,
    },
    /// A follower append does not start at the log end offset.
    #[error("non-contiguous append: expected offset {expected}, got {got}")]
    NonContiguous {
        /// The offset the log expected (its log end offset, or the previous batch's next offset).
        expected: i64,
        /// The base offset the batch carried.
        got: i64,
    },
    /// An idempotent producer's batch does not follow its last stored batch.
    #[error("out of order sequence number for producer {producer_id} (epoch {epoch}): expected {expected}, got {got}")]
    OutOfOrderSequence {
        /// The producer id.
        producer_id: i64,
        /// The batch's producer epoch.
        epoch: i16,
        /// The sequence number the partition expected next.
        expected: i32,
        /// The batch's first sequence number.
        got: i32,
    },
    /// A producer's batch carries an epoch older than the one the partition knows.
    #[error("producer {producer_id} has epoch {got}, older than the current epoch {current}")]
    InvalidProducerEpoch {
        /// The producer id.
        producer_id: i64,
        /// The epoch the partition knows.
        current: i16,
        /// The batch's epoch.
        got: i16,
    },
    /// A record's CreateTime is too far from the leader's clock (the topic's
    /// `message.timestamp.before.max.ms` / `after.max.ms`).
    #[error("record timestamp {timestamp} is out of range: the topic accepts [{min}, {max}] at this time")]
    InvalidTimestamp {
        /// The record's timestamp.
        timestamp: i64,
        /// The earliest accepted now.
        min: i64,
        /// The latest accepted now.
        max: i64,
    },
    /// A transaction marker comes from an older transaction coordinator than the last one.
    #[error("transaction marker for producer {producer_id} has coordinator epoch {got}, older than {current}")]
    CoordinatorFenced {
        /// The producer id.
        producer_id: i64,
        /// The coordinator epoch of the last marker stored.
        current: i32,
        /// The marker's coordinator epoch.
        got: i32,
    },
    /// A producer sent a batch only the broker may write (a control batch).
    #[error("invalid record: {reason}")]
    InvalidRecord {
        /// What was wrong.
        reason: String,
    },
    /// The log configuration is invalid.
    #[error("invalid log configuration: {0}")]
    InvalidConfig(String),
    /// A file on disk is corrupt in a way recovery cannot repair.
    #[error("corrupt file {path} at position {position}: {reason}")]
    Corrupt {
        /// The corrupt file.
        path: PathBuf,
        /// Byte position of the corruption.
        position: u64,
        /// What was wrong.
        reason: String,
    },
}

impl StorageError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io { path: path.into(), source }
    }
}

/// Adds the path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T, StorageError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T, StorageError> {
        self.map_err(|e| StorageError::io(path, e))
    }
}
