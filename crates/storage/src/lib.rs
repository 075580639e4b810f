//! Vltava's partition log: segments, sparse indexes, crash recovery and retention.
//! No networking; the broker owns a [`Log`] per partition (behind a `RwLock`).
//!
//! # Layout
//!
//! - [`config`] — [`LogConfig`] (Kafka topic config names: `segment.bytes`, `retention.ms`, ...).
//! - [`log`] — [`Log`] itself: append (leader and follower), read, timestamp lookup, roll,
//!   flush, `truncate_to`, `truncate_fully_and_start_at`, `close`, `delete`; [`AppendInfo`] and
//!   [`ReadResult`].
//! - `recovery`: `Log::open`: directory listing, clean/unclean recovery, index rebuilding.
//! - [`retention`] — retention by time and size; [`RetentionOutcome`].
//! - [`cleaner`] — log compaction ([`Log::clean`]): the latest record of each key, at its
//!   offset; tombstones until `delete.retention.ms`; small segments merged; crash-safe swap of
//!   cleaned segments (`swap`). [`cleaner_plan`] chooses what a pass cleans and measures the
//!   dirty ratio ([`DirtyStats`]); [`cleaner_job`] does a pass's reading and writing without
//!   the log's lock; `cleaner_rewrite` decides each batch's fate.
//! - `segment`: one segment (`.log` file + indexes): append, batch lookup, range reads, truncation.
//! - `index`: the sparse offset and time indexes (in-memory `Vec`, appended to files lazily).
//! - `scan`: batch header parsing and the batch-by-batch (optionally CRC-verifying) scanner.
//! - [`checkpoint`] — atomic checkpoint files, and [`HighWatermarkCheckpoint`]: the high
//!   watermarks of a whole data directory in one file.
//! - [`partition_metadata`] — the `partition.metadata` file (the topic id of a partition
//!   directory).
//! - `epoch_cache`: the leader-epoch cache and the replication API on [`Log`]
//!   (`latest_epoch`, `end_offset_for_epoch`, `assign_epoch_start_offset`).
//! - [`producer_state`] — idempotent producers' sequence numbers per partition (duplicate and
//!   gap detection), rebuilt from snapshots and batch headers.
//! - [`txn_index`] — the aborted-transaction index (`.txnindex`) that read_committed fetches
//!   consult; transaction markers are appended with [`Log::append_marker`].
//! - [`error`] — [`StorageError`].
//!
//! # On-disk format
//!
//! A partition directory holds:
//! - `{base_offset:020}.log`: concatenated RecordBatch v2 batches exactly as received, with the
//!   broker-assigned base offset and partition leader epoch stamped in (both outside the CRC).
//!   Offsets grow within and across segments, contiguous as appended; a replicated compacted log
//!   may have gaps (records and batches removed, the others keeping their offsets, a batch's
//!   `lastOffsetDelta` spanning removed records). A segment's name is the log end offset when it
//!   was created (its first batch may start later).
//! - `{base_offset:020}.index`: sparse offset index, 8-byte entries `[relative base offset u32
//!   BE][file position u32 BE]`, one per batch that starts more than `index.interval.bytes`
//!   after the previous entry (none for the first batch, which is at position 0).
//! - `{base_offset:020}.timeindex`: 12-byte entries `[timestamp i64 BE][relative offset u32
//!   BE]`: the largest batch max timestamp so far and the base offset of the first batch that
//!   reached it; written alongside offset index entries when the timestamp grew, plus a final
//!   entry when the segment is rolled or the log closed.
//! - `log-start-offset`, `recovery-point`: one decimal offset and a newline, replaced
//!   atomically (write `*.tmp`, fsync, rename, fsync the directory).
//! - `leader-epoch-checkpoint`: the leader-epoch cache (Kafka KIP-101/279) in Kafka's text
//!   format: a version line `0`, an entry count line, then one `{epoch} {start_offset}` line
//!   per entry, strictly increasing in both. Replaced atomically whenever the cache changes
//!   (leader append with a new epoch, follower append of a batch with a new epoch,
//!   [`Log::assign_epoch_start_offset`], truncation, retention). On open it is cut to the
//!   recovered log; if it is missing, unparsable or inconsistent (or empty while the log is
//!   not), it is rebuilt from the batch headers and written back.
//! - `partition.metadata`: `version: 0` and `topic_id: {id}` lines (Kafka's format), written
//!   atomically by [`partition_metadata::write_topic_id`] when the broker first opens the
//!   partition.
//! - `{offset:020}.snapshot`: the producer state as of `offset` (see [`producer_state`] for the
//!   format): written when a segment rolls and when the log closes; the newest two are kept.
//! - `{base_offset:020}.txnindex`: the transactions aborted by markers in that segment, Kafka's
//!   34-byte entries (see [`txn_index`]); absent while the segment has none.
//! - `.clean-shutdown`: written by [`Log::close`], removed by [`Log::open`].
//!
//! The data directory (the parent of the partition directories) holds
//! `replication-offset-checkpoint`: Kafka's format, a version line `0`, an entry count line,
//! then one `{topic} {partition} {high_watermark}` line per hosted partition. The broker
//! rewrites it (atomically, only when a value changed) from the high watermarks it holds in
//! memory, outside every log lock; see [`HighWatermarkCheckpoint`]. A partition without an
//! entry falls back once to the per-partition `high-watermark` file of earlier versions
//! ([`checkpoint::read_legacy_high_watermark`]), which is removed once the data directory's
//! file holds its value.
//!
//! Index entries live in memory and are appended to their files on flush, roll and close, so
//! an append costs exactly one `write` system call. Rolling fsyncs the old segment and moves
//! the recovery point to the new segment's base offset.
//!
//! # Recovery
//!
//! Without `.clean-shutdown`, every segment that may contain data at or above the recovery
//! point (always including the active one) is validated batch by batch (length, magic,
//! CRC-32C, record count at most the offset range, offsets growing) and its indexes are rebuilt. Other segments (all
//! of them after a clean shutdown) trust their index files after sanity checks and validate
//! only the tail after the last offset index entry; any failed check falls back to a full
//! validation. At the first torn or corrupt batch the segment file is truncated there and all
//! later segments are deleted. Stray `*.tmp` files and index files without a `.log` are removed;
//! segments wholly below the checkpointed log start offset are deleted. Finally the leader-epoch
//! cache drops entries at or above the recovered log end offset and is clamped to the log start
//! offset.

pub mod checkpoint;
pub mod cleaner;
pub mod cleaner_job;
pub mod cleaner_plan;
mod cleaner_rewrite;
pub mod config;
mod epoch_cache;
pub mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod index;
pub mod log;
mod max_timestamp;
pub mod partition_metadata;
pub mod producer_state;
mod recovery;
pub mod retention;
mod scan;
mod segment;
mod swap;
pub mod txn_index;

pub use checkpoint::HighWatermarkCheckpoint;
pub use cleaner::CleanOutcome;
pub use cleaner_job::{CleanJob, PreparedClean};
pub use cleaner_plan::DirtyStats;
pub use config::{CompressionType, LogConfig, TimestampType};
pub use error::StorageError;
pub use log::{AppendInfo, Log, ReadResult};
pub use producer_state::{BatchMetadata, CompletedTxn, ProducerEntry};
pub use retention::RetentionOutcome;
pub use txn_index::AbortedTxn;
