//! [`LogConfig`]: per-partition log settings, named after Kafka's topic configs.

use serde::Deserialize;
use vltava_record::Compression;

use crate::StorageError;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Log settings of one partition. Deserialises with defaults for missing fields.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment when appending would make the active segment
    /// larger than this (a single append larger than this still goes into an empty segment).
    /// Default 1 GiB; at most `i32::MAX`.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is older than this
    /// (measured against the first batch's max timestamp, or its append time if it has none).
    /// Default 7 days.
    pub segment_ms: u64,
    /// `index.interval.bytes`: bytes of batches between two offset (and time) index entries.
    /// Default 4096.
    pub index_interval_bytes: u64,
    /// `segment.index.bytes`: roll when the offset index would grow beyond this many bytes
    /// (8 per entry; the time index uses 12 per entry against the same limit). Default 10 MiB.
    pub segment_index_bytes: u64,
    /// `retention.ms`: delete segments whose newest record is older than this; -1 = forever.
    /// Default 7 days.
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest segments while the log would stay at least this
    /// big without them; -1 = unlimited (default).
    pub retention_bytes: i64,
    /// `flush.messages`: fsync after this many appended records; `None` (default) leaves
    /// flushing to the OS, as Kafka does.
    pub flush_messages: Option<u64>,
    /// `flush.ms`: fsync when `Log::flush_if_due` is called this long after the last flush;
    /// `None` (default) leaves flushing to the OS.
    pub flush_ms: Option<u64>,
    /// `max.message.bytes`: the largest record batch accepted. Default 1048588.
    pub max_message_bytes: u32,
    /// `compression.type`: the codec batches are stored with; `producer` (default) keeps the
    /// producer's.
    pub compression_type: CompressionType,
    /// `message.timestamp.type`: `CreateTime` (default) keeps the producer's timestamps,
    /// `LogAppendTime` stamps the leader's clock on every batch.
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: with CreateTime, a record timestamped more than this
    /// before the leader's clock is refused (`INVALID_TIMESTAMP`). Default unlimited.
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: with CreateTime, a record timestamped more than this
    /// after the leader's clock is refused. Default unlimited.
    pub message_timestamp_after_max_ms: i64,
    /// `cleanup.policy` includes `compact`: every record must have a key (Kafka refuses keyless
    /// records on compacted topics with `INVALID_RECORD`), and [`crate::Log::clean`] keeps only
    /// the latest record of each key. Default false.
    pub compact: bool,
    /// `delete.retention.ms`: how long the cleaner keeps a tombstone (a record with a null
    /// value) after its batch's timestamp, so that consumers reading from the start see the
    /// delete. Default 24 hours.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: the broker's cleaner compacts a log once the dirty part
    /// (written since the last cleaning) is at least this fraction of the cleanable log.
    /// Default 0.5.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: a record stays uncompacted at least this long (segments whose
    /// newest batch is younger are not cleaned). Default 0.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log whose oldest dirty record is older than this is cleaned
    /// whatever its dirty ratio, and its active segment rolls at this age so that it can be.
    /// Default unlimited.
    pub max_compaction_lag_ms: i64,
}

/// Kafka's `compression.type` topic config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompressionType {
    /// Keep the producer's codec.
    #[default]
    Producer,
    /// Store batches uncompressed.
    Uncompressed,
    /// gzip.
    Gzip,
    /// snappy (xerial framing).
    Snappy,
    /// LZ4 frame.
    Lz4,
    /// zstd.
    Zstd,
}

impl CompressionType {
    /// The codec batches must be stored with, `None` to keep the producer's.
    pub fn codec(self) -> Option<Compression> {
        match self {
            CompressionType::Producer => None,
            CompressionType::Uncompressed => Some(Compression::None),
            CompressionType::Gzip => Some(Compression::Gzip),
            CompressionType::Snappy => Some(Compression::Snappy),
            CompressionType::Lz4 => Some(Compression::Lz4),
            CompressionType::Zstd => Some(Compression::Zstd),
        }
    }

    /// The value of a `compression.type` config, `None` for an unknown one.
    pub fn parse(value: &str) -> Option<CompressionType> {
        Some(match value {
            "producer" => CompressionType::Producer,
            "uncompressed" => CompressionType::Uncompressed,
            "gzip" => CompressionType::Gzip,
            "snappy" => CompressionType::Snappy,
            "lz4" => CompressionType::Lz4,
            "zstd" => CompressionType::Zstd,
            _ => return None,
        })
    }
}

/// Kafka's `message.timestamp.type` topic config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum TimestampType {
    /// The producer's timestamps.
    #[default]
    CreateTime,
    /// The leader's clock at append.
    LogAppendTime,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * DAY_MS,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
            retention_ms: 7 * DAY_MS as i64,
            retention_bytes: -1,
            flush_messages: None,
            flush_ms: None,
            max_message_bytes: 1_048_588,
            compression_type: CompressionType::Producer,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: i64::MAX,
            compact: false,
            delete_retention_ms: DAY_MS as i64,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
        }
    }
}

impl LogConfig {
    /// Checks every field is in range.
    pub fn validate(&self) -> Result<(), StorageError> {
        let fail = |msg: String| Err(StorageError::InvalidConfig(msg));
        if self.segment_bytes == 0 || self.segment_bytes > i32::MAX as u64 {
            return fail(format!("segment.bytes must be in 1..={}, got {}", i32::MAX, self.segment_bytes));
        }
        if self.segment_ms == 0 {
            return fail("segment.ms must be at least 1".into());
        }
        if self.segment_index_bytes < 12 || self.segment_index_bytes > i32::MAX as u64 {
            return fail(format!("segment.index.bytes must be in 12..={}, got {}", i32::MAX, self.segment_index_bytes));
        }
        if self.retention_ms < -1 {
            return fail(format!("retention.ms must be -1 or non-negative, got {}", self.retention_ms));
        }
        if self.retention_bytes < -1 {
            return fail(format!("retention.bytes must be -1 or non-negative, got {}", self.retention_bytes));
        }
        if self.flush_messages == Some(0) {
            return fail("flush.messages must be at least 1".into());
        }
        if self.message_timestamp_before_max_ms < 0 || self.message_timestamp_after_max_ms < 0 {
            return fail("message.timestamp.before.max.ms and after.max.ms must not be negative".into());
        }
        if !(0.0..=1.0).contains(&self.min_cleanable_dirty_ratio) {
            return fail(format!("min.cleanable.dirty.ratio must be in 0..=1, got {}", self.min_cleanable_dirty_ratio));
        }
        if self.min_compaction_lag_ms < 0 || self.max_compaction_lag_ms < 1 {
            return fail("min.compaction.lag.ms must not be negative, max.compaction.lag.ms must be at least 1".into());
        }
        Ok(())
    }

    /// The age at which the active segment rolls: `segment.ms`, or `max.compaction.lag.ms` when
    /// that is shorter on a compacted log (Kafka's rule, so the cleaner can reach old records).
    pub fn effective_segment_ms(&self) -> i64 {
        let segment_ms = i64::try_from(self.segment_ms).unwrap_or(i64::MAX);
        if self.compact { segment_ms.min(self.max_compaction_lag_ms) } else { segment_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_kafka_and_are_valid() {
        let c = LogConfig::default();
        assert_eq!(c.segment_bytes, 1 << 30);
        assert_eq!(c.max_message_bytes, 1_048_588);
        assert_eq!(c.retention_bytes, -1);
        c.validate().unwrap();
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let bad = [
            LogConfig { segment_bytes: 0, ..Default::default() },
            LogConfig { segment_bytes: 1 << 31, ..Default::default() },
            LogConfig { segment_index_bytes: 8, ..Default::default() },
            LogConfig { retention_ms: -2, ..Default::default() },
            LogConfig { flush_messages: Some(0), ..Default::default() },
            LogConfig { min_cleanable_dirty_ratio: 1.5, ..Default::default() },
            LogConfig { max_compaction_lag_ms: 0, ..Default::default() },
        ];
        for c in bad {
            assert!(matches!(c.validate(), Err(StorageError::InvalidConfig(_))), "{c:?}");
        }
    }
}
