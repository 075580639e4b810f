//! [`Log`]: the partition log (append, read, lookups, roll, flush, truncation, close and
//! delete).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use vltava_record::{
    Marker, RecordBatch, RecordError, batches, marker_batch, rewrite_batch, set_base_offset, set_partition_leader_epoch,
};

use crate::checkpoint::{self, CLEAN_SHUTDOWN_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
use crate::cleaner_plan::CleanerState;
use crate::epoch_cache::LeaderEpochCache;
use crate::error::IoContext;
use crate::producer_state::{ProducerBatch, ProducerEntry, ProducerStates, Verdict};
use crate::segment::{BatchMeta, Segment};
use crate::txn_index::{AbortedTxn, TxnIndex, index_completed};
use crate::{LogConfig, StorageError, TimestampType};

/// Result of a successful append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record of the first batch (the log end offset when there was no
    /// batch). A duplicate batch counts with the offsets it was stored at the first time.
    pub first_offset: i64,
    /// Offset of the last record of the last batch (`first_offset - 1` when there was no batch).
    pub last_offset: i64,
    /// The base offset of every batch of the request, in order (duplicates included).
    pub batch_base_offsets: Vec<i64>,
    /// Batches that an idempotent producer had already stored and were not written again.
    pub duplicates: usize,
    /// Largest batch max timestamp among the appended batches, -1 if none.
    pub max_timestamp: i64,
    /// Number of records written.
    pub record_count: u64,
    /// Number of batches written.
    pub batch_count: usize,
    /// Number of bytes written.
    pub bytes: usize,
    /// The append time stamped on the batches (`message.timestamp.type=LogAppendTime`), else -1.
    pub log_append_time: i64,
}

/// Result of [`Log::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole batches, concatenated exactly as stored.
    pub records: Bytes,
    /// Base offset of the first returned batch, or the requested offset when empty.
    pub first_offset: i64,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
    /// Log end offset at the time of the read.
    pub log_end_offset: i64,
}

/// A partition log: a directory of segments.
///
/// Not internally synchronised: writers need `&mut self`, readers `&self` (reads use
/// positional `read_at`, so they never move a file cursor). Wrap it in a `RwLock` to share it.
#[derive(Debug)]
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    /// Segments by base offset; never empty, the last one is the active segment.
    pub(crate) segments: BTreeMap<i64, Segment>,
    pub(crate) log_start_offset: i64,
    /// Everything below this offset has been fsynced.
    pub(crate) recovery_point: i64,
    pub(crate) unflushed_messages: u64,
    pub(crate) last_flush_ms: Option<i64>,
    /// The leader-epoch cache (checkpointed on every change).
    pub(crate) epochs: LeaderEpochCache,
    /// Idempotent and transactional producers' state (snapshotted on roll and close).
    pub(crate) producers: ProducerStates,
    /// The aborted transactions of every segment (`.txnindex` files).
    pub(crate) aborted: TxnIndex,
    /// The log cleaner's first dirty offset (`cleaner-offset-checkpoint`) and last pass.
    pub(crate) cleaner: CleanerState,
}

fn now_wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn corrupt(index: usize, e: RecordError) -> StorageError {
    match e {
        RecordError::UnsupportedCompression(_) => StorageError::Record(e),
        e => StorageError::CorruptBatch { reason: format!("batch {index}: {e}") },
    }
}

impl Log {
    /// Opens the log in `dir` (created if missing) and recovers it; see the crate docs for
    /// the recovery policy.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log, StorageError> {
        crate::recovery::open(dir.as_ref(), config)
    }

    /// The active (last) segment.
    pub(crate) fn active(&self) -> &Segment {
        self.segments.values().next_back().expect("a log always has a segment")
    }

    pub(crate) fn active_mut(&mut self) -> &mut Segment {
        self.segments.values_mut().next_back().expect("a log always has a segment")
    }

    /// First offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }

    /// Offset below which everything has been fsynced.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// Total size of all segment files in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size).sum()
    }

    /// Number of segments (at least 1).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of all segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the configuration; takes effect from the next operation.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// Appends producer batches as leader: validates every batch first (nothing is written if
    /// any is invalid), stamps base offsets from the log end offset and `leader_epoch`, rolls
    /// if needed and writes everything with a single write. A `leader_epoch` newer than the
    /// latest cached one is recorded in the leader-epoch cache at the first appended offset.
    ///
    /// Batches of idempotent producers are checked against the producer state first: one the
    /// partition already stored is not written again (its original offsets are reported in
    /// [`AppendInfo::batch_base_offsets`]); a sequence gap or a stale producer epoch refuses the
    /// whole append.
    pub fn append(&mut self, records: Bytes, leader_epoch: i32, now_ms: i64) -> Result<AppendInfo, StorageError> {
        let codec = self.config.compression_type.codec();
        let append_time = (self.config.message_timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);
        let mut rewritten = false;
        let mut next = self.log_end_offset();
        let mut metas = Vec::new();
        let mut kept = Vec::new();
        let mut pos = 0u64;
        let mut pending: HashMap<i64, ProducerEntry> = HashMap::new();
        let mut base_offsets = Vec::new();
        let mut last_offset = next - 1;
        let mut duplicates = 0;
        for (i, batch) in batches(records.clone()).enumerate() {
            let batch = batch.map_err(|e| corrupt(i, e))?;
            if batch.size() > self.config.max_message_bytes as usize {
                return Err(StorageError::RecordTooLarge { size: batch.size(), max: self.config.max_message_bytes });
            }
            batch.validate().map_err(|e| corrupt(i, e))?;
            if batch.is_control() {
                return Err(StorageError::InvalidRecord {
                    reason: format!("batch {i} is a control batch: only transaction coordinators write markers"),
                });
            }
            if append_time.is_none() {
                self.check_timestamps(&batch, now_ms)?;
            }
            let mut keyless = false;
            if self.config.compact {
                batch.for_each_key(|_, key| keyless |= key.is_none()).map_err(|e| corrupt(i, e))?;
            }
            if keyless {
                return Err(StorageError::InvalidRecord {
                    reason: format!("batch {i} has a record without a key: a compacted topic keeps records by key"),
                });
            }
            // The topic's codec and timestamp type (once, on the leader; followers copy).
            let batch = match rewrite_batch(&batch, codec, append_time).map_err(|e| corrupt(i, e))? {
                Some(bytes) => {
                    rewritten = true;
                    let batch = RecordBatch::parse(bytes).map_err(|e| corrupt(i, e))?;
                    if batch.size() > self.config.max_message_bytes as usize {
                        return Err(StorageError::RecordTooLarge {
                            size: batch.size(),
                            max: self.config.max_message_bytes,
                        });
                    }
                    batch
                }
                None => batch,
            };
            let count = i64::from(batch.last_offset_delta()) + 1;
            if let Some(p) = ProducerBatch::from_batch(&batch, next)? {
                let current = pending.get(&p.producer_id).or_else(|| self.producers.get(p.producer_id));
                if let Verdict::Duplicate(stored) = ProducerStates::check(current, &p)? {
                    // Stored before: report where, write nothing.
                    base_offsets.push(stored.first_offset);
                    last_offset = last_offset.max(stored.last_offset);
                    duplicates += 1;
                    continue;
                }
                self.producers.apply_pending(&mut pending, &p);
            }
            metas.push(BatchMeta {
                buf_pos: pos,
                base_offset: next,
                next_offset: next + count,
                size: batch.size() as u64,
                max_timestamp: batch.max_timestamp(),
            });
            base_offsets.push(next);
            last_offset = last_offset.max(next + count - 1);
            next += count;
            pos += batch.size() as u64;
            kept.push(batch);
        }
        if metas.is_empty() {
            let mut info = self.empty_append_info();
            if let Some(first) = base_offsets.first() {
                info.first_offset = *first;
                info.last_offset = last_offset;
            }
            info.batch_base_offsets = base_offsets;
            info.duplicates = duplicates;
            return Ok(info);
        }
        // One copy of the request; without the duplicates, and with the rewritten batches, when
        // there were some.
        let mut buf = if duplicates == 0 && !rewritten {
            BytesMut::from(&records[..])
        } else {
            let mut buf = BytesMut::with_capacity(pos as usize);
            for batch in &kept {
                buf.extend_from_slice(batch.as_bytes());
            }
            buf
        };
        for m in &metas {
            let at = m.buf_pos as usize;
            set_base_offset(&mut buf[at..], m.base_offset);
            set_partition_leader_epoch(&mut buf[at..], leader_epoch);
        }
        self.epochs.assign([(leader_epoch, metas[0].base_offset)])?;
        let mut info = self.write_batches(&buf, &metas, now_ms)?;
        self.producers.commit(pending);
        info.first_offset = base_offsets[0];
        info.last_offset = last_offset;
        info.batch_base_offsets = base_offsets;
        info.duplicates = duplicates;
        info.log_append_time = append_time.unwrap_or(-1);
        Ok(info)
    }

    /// Refuses a CreateTime batch with a record timestamped outside the topic's
    /// `message.timestamp.before.max.ms` / `after.max.ms` window around `now_ms` (records are
    /// decoded only when a window is set).
    fn check_timestamps(&self, batch: &RecordBatch, now_ms: i64) -> Result<(), StorageError> {
        let (before, after) = (self.config.message_timestamp_before_max_ms, self.config.message_timestamp_after_max_ms);
        if before == i64::MAX && after == i64::MAX {
            return Ok(());
        }
        let (min, max) = (now_ms.saturating_sub(before), now_ms.saturating_add(after));
        for r in batch.records()? {
            if r.timestamp < min || r.timestamp > max {
                return Err(StorageError::InvalidTimestamp { timestamp: r.timestamp, min, max });
            }
        }
        Ok(())
    }

    /// Appends batches replicated from the leader, keeping their offsets and epochs. The first
    /// base offset must equal the log end offset and the batches must be contiguous. Each
    /// batch whose partition leader epoch is newer than the latest cached one is recorded in
    /// the leader-epoch cache at its base offset.
    pub fn append_as_follower(&mut self, records: Bytes) -> Result<AppendInfo, StorageError> {
        let mut expected = self.log_end_offset();
        let mut metas = Vec::new();
        let mut new_epochs = Vec::new();
        let mut latest = self.epochs.latest_epoch();
        let mut producer_batches = Vec::new();
        let mut pos = 0u64;
        for (i, batch) in batches(records.clone()).enumerate() {
            let batch = batch.map_err(|e| corrupt(i, e))?;
            // As the leader stored it: a compacted leader's batches may have offset gaps.
            batch.validate_stored().map_err(|e| corrupt(i, e))?;
            let epoch = batch.partition_leader_epoch();
            if epoch >= 0 && latest.is_none_or(|l| epoch > l) {
                new_epochs.push((epoch, batch.base_offset()));
                latest = Some(epoch);
            }
            // Offsets only grow; a gap is what a compacted leader's log has where the cleaner
            // removed whole batches.
            if batch.base_offset() < expected {
                return Err(StorageError::NonContiguous { expected, got: batch.base_offset() });
            }
            metas.push(BatchMeta {
                buf_pos: pos,
                base_offset: batch.base_offset(),
                next_offset: batch.next_offset(),
                size: batch.size() as u64,
                max_timestamp: batch.max_timestamp(),
            });
            producer_batches.extend(ProducerBatch::from_batch(&batch, batch.base_offset())?);
            expected = batch.next_offset();
            pos += batch.size() as u64;
        }
        if metas.is_empty() {
            return Ok(self.empty_append_info());
        }
        self.epochs.assign(new_epochs)?;
        let info = self.write_batches(&records, &metas, now_wall_ms())?;
        for b in producer_batches {
            if let Some(done) = self.producers.apply(&b) {
                let first_unstable = self.producers.first_unstable_offset();
                index_completed(&mut self.aborted, &self.segments, done, first_unstable)?;
            }
        }
        Ok(info)
    }

    /// Appends, as leader in `leader_epoch`, the marker ending producer `producer_id`'s
    /// transaction (in `producer_epoch`) in this partition. A marker from an older producer
    /// epoch is refused (`InvalidProducerEpoch`), as is one from an older coordinator epoch than
    /// the last marker of this producer (`CoordinatorFenced`). Returns the marker's offset.
    pub fn append_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        let mut buf = BytesMut::from(&marker_batch(producer_id, producer_epoch, marker, now_ms)[..]);
        let offset = self.log_end_offset();
        let batch = RecordBatch::parse(buf.clone().freeze())?;
        let p = ProducerBatch::from_batch(&batch, offset)?.expect("a marker carries its producer id");
        self.producers.check_marker(&p)?;
        set_base_offset(&mut buf, offset);
        set_partition_leader_epoch(&mut buf, leader_epoch);
        let meta = BatchMeta {
            buf_pos: 0,
            base_offset: offset,
            next_offset: offset + 1,
            size: buf.len() as u64,
            max_timestamp: batch.max_timestamp(),
        };
        self.epochs.assign([(leader_epoch, offset)])?;
        self.write_batches(&buf, &[meta], now_ms)?;
        if let Some(done) = self.producers.apply(&p) {
            let first_unstable = self.producers.first_unstable_offset();
            index_completed(&mut self.aborted, &self.segments, done, first_unstable)?;
        }
        Ok(offset)
    }

    /// First offset of the oldest transaction still open in this partition, if any: a
    /// read_committed consumer sees nothing at or above it (the last stable offset is the
    /// smaller of it and the high watermark).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producers.first_unstable_offset()
    }

    /// The aborted transactions overlapping `[fetch_offset, upper)`, for a read_committed fetch
    /// of that range.
    pub fn aborted_transactions(&self, fetch_offset: i64, upper: i64) -> Vec<AbortedTxn> {
        self.aborted.collect(fetch_offset, upper)
    }

    fn empty_append_info(&self) -> AppendInfo {
        let leo = self.log_end_offset();
        AppendInfo {
            first_offset: leo,
            last_offset: leo - 1,
            batch_base_offsets: Vec::new(),
            duplicates: 0,
            max_timestamp: -1,
            record_count: 0,
            batch_count: 0,
            bytes: 0,
            log_append_time: -1,
        }
    }

    fn write_batches(&mut self, buf: &[u8], metas: &[BatchMeta], now_ms: i64) -> Result<AppendInfo, StorageError> {
        let first = metas.first().expect("at least one batch");
        let last = metas.last().expect("at least one batch");
        self.maybe_roll(buf.len() as u64, last.next_offset, now_ms)?;
        let interval = self.config.index_interval_bytes;
        let active = self.active_mut();
        if active.size + buf.len() as u64 > u64::from(u32::MAX) {
            return Err(StorageError::RecordTooLarge { size: buf.len(), max: u32::MAX });
        }
        active.append(buf, metas, interval, now_ms)?;
        let record_count = (last.next_offset - first.base_offset) as u64;
        self.unflushed_messages += record_count;
        if self.config.flush_messages.is_some_and(|n| self.unflushed_messages >= n) {
            self.flush()?;
        }
        Ok(AppendInfo {
            first_offset: first.base_offset,
            last_offset: last.next_offset - 1,
            batch_base_offsets: metas.iter().map(|m| m.base_offset).collect(),
            duplicates: 0,
            max_timestamp: metas.iter().map(|m| m.max_timestamp).max().unwrap_or(-1),
            record_count,
            batch_count: metas.len(),
            bytes: buf.len(),
            log_append_time: -1,
        })
    }

    fn maybe_roll(&mut self, incoming: u64, next_offset: i64, now_ms: i64) -> Result<(), StorageError> {
        let active = self.active();
        if active.is_empty() {
            return Ok(());
        }
        let segment_ms = self.config.effective_segment_ms();
        let reason = if active.size + incoming > self.config.segment_bytes {
            "segment.bytes"
        } else if active.roll_base_ms.is_some_and(|t| now_ms.saturating_sub(t) > segment_ms) {
            "segment.ms"
        } else if active.index_full(self.config.segment_index_bytes) {
            "segment.index.bytes"
        } else if next_offset - 1 - active.base_offset > i64::from(u32::MAX) {
            "relative offset overflow"
        } else {
            return Ok(());
        };
        tracing::debug!(dir = %self.dir.display(), reason, "rolling segment");
        self.roll(now_ms)
    }

    /// Starts a new active segment at the log end offset (no-op if the active segment is
    /// empty). The old segment is sealed (final time index entry) and fsynced, and the
    /// recovery point moves to the new segment's base offset.
    pub fn roll(&mut self, now_ms: i64) -> Result<(), StorageError> {
        if self.active().is_empty() {
            return Ok(());
        }
        let leo = self.log_end_offset();
        self.active_mut().seal()?;
        // The producer state as of the new segment's base: what recovery starts from.
        self.producers.write_snapshot(leo)?;
        let segment = Segment::create(&self.dir, leo)?;
        self.segments.insert(leo, segment);
        self.recovery_point = leo;
        self.unflushed_messages = 0;
        self.last_flush_ms = Some(now_ms);
        checkpoint::write(&self.dir, RECOVERY_POINT_FILE, leo)
    }

    /// fsyncs every segment with unsynced data (log and index files) and writes the
    /// recovery point checkpoint (= log end offset).
    pub fn flush(&mut self) -> Result<(), StorageError> {
        for segment in self.segments.values_mut() {
            segment.flush()?;
        }
        self.unflushed_messages = 0;
        let leo = self.log_end_offset();
        if self.recovery_point != leo {
            self.recovery_point = leo;
            checkpoint::write(&self.dir, RECOVERY_POINT_FILE, leo)?;
        }
        Ok(())
    }

    /// Flushes if `flush.ms` is set, there is unflushed data and at least `flush.ms` passed
    /// since the last flush (or none happened yet).
    pub fn flush_if_due(&mut self, now_ms: i64) -> Result<(), StorageError> {
        let Some(flush_ms) = self.config.flush_ms else {
            return Ok(());
        };
        let flush_ms = i64::try_from(flush_ms).unwrap_or(i64::MAX);
        let due = self.last_flush_ms.is_none_or(|t| now_ms.saturating_sub(t) >= flush_ms);
        if due && self.recovery_point < self.log_end_offset() {
            self.flush()?;
            self.last_flush_ms = Some(now_ms);
        }
        Ok(())
    }

    /// Reads whole batches starting with the one containing `offset`: up to `max_bytes`, but
    /// always at least one batch when one is available; only batches whose last offset is
    /// below `max_offset` (e.g. the high watermark) when given.
    pub fn read(&self, offset: i64, max_bytes: usize, max_offset: Option<i64>) -> Result<ReadResult, StorageError> {
        let leo = self.log_end_offset();
        let mut result = ReadResult {
            records: Bytes::new(),
            first_offset: offset,
            log_start_offset: self.log_start_offset,
            log_end_offset: leo,
        };
        if offset < self.log_start_offset || offset > leo {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: leo,
            });
        }
        let limit = max_offset.map_or(leo, |m| m.min(leo));
        if offset >= limit {
            return Ok(result);
        }
        let start = self.segments.range(..=offset).next_back().map_or(self.log_start_offset, |(base, _)| *base);
        for segment in self.segments.range(start..).map(|(_, s)| s) {
            if let Some((first, records)) = segment.read(offset, max_bytes, limit)? {
                if !records.is_empty() {
                    result.first_offset = first;
                    result.records = records;
                }
                break;
            }
        }
        Ok(result)
    }

    /// Kafka ListOffsets by timestamp: `(offset, timestamp)` of the first record (in offset
    /// order, at or after the log start offset) whose timestamp is `>= timestamp_ms`.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<(i64, i64)>, StorageError> {
        for segment in self.segments.values() {
            if segment.max_timestamp < timestamp_ms || segment.next_offset <= self.log_start_offset {
                continue;
            }
            let mut pos = segment
                .time_index
                .lookup(timestamp_ms)
                .and_then(|t| segment.offset_index.lookup(t.rel))
                .map_or(0, |e| u64::from(e.pos));
            while pos < segment.size {
                let header = segment.header_at(pos)?;
                if header.max_timestamp >= timestamp_ms && header.last_offset >= self.log_start_offset {
                    let batch = RecordBatch::parse(segment.read_batch(pos, &header)?)?;
                    let found = batch
                        .records()?
                        .into_iter()
                        .find(|r| r.timestamp >= timestamp_ms && r.offset >= self.log_start_offset);
                    if let Some(r) = found {
                        return Ok(Some((r.offset, r.timestamp)));
                    }
                }
                pos += header.size;
            }
        }
        Ok(None)
    }

    /// Removes every record at or above `offset`, at batch granularity: the batch containing
    /// `offset` is removed whole, so the new log end offset is that batch's base offset (which
    /// equals `offset` when `offset` is a batch boundary). When `offset` falls in a gap of a
    /// compacted log, the new log end offset is the end of the last batch kept (or the segment's
    /// base offset), which is what recovery finds after a crash. A no-op if `offset >= LEO`. If
    /// `offset` is below the log start offset the log is emptied and restarts at `offset`
    /// (a follower whose leader's log starts beyond its own log end offset does this).
    ///
    /// The leader-epoch cache follows: entries starting at or after the new log end offset are
    /// dropped, and an emptied log clears it. This is the only way to remove data from the end.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), StorageError> {
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        if offset < self.log_start_offset {
            return self.truncate_fully_and_start_at(offset);
        }
        let above: Vec<i64> = self.segments.range(offset + 1..).map(|(b, _)| *b).collect();
        for base in above {
            let segment = self.segments.remove(&base).expect("listed above");
            segment.delete()?;
            self.aborted.remove_segment(base)?;
        }
        let segment = self.active_mut();
        if let Some((pos, header)) = segment.find_batch(offset)? {
            let dropped = segment.truncate(pos, header.base_offset)?;
            tracing::info!(offset, new_end = segment.next_offset, dropped, "truncated log");
        }
        segment.flush()?;
        let leo = self.log_end_offset();
        self.dirty_from(leo)?;
        self.epochs.truncate_from_end(leo)?;
        self.aborted.truncate_to(leo)?;
        let (aborted, segments) = (&mut self.aborted, &self.segments);
        self.producers.reload(segments, self.log_start_offset, leo, false, &mut |done, first_unstable| {
            index_completed(aborted, segments, done, first_unstable)
        })?;
        if self.recovery_point > leo {
            self.recovery_point = leo;
            checkpoint::write(&self.dir, RECOVERY_POINT_FILE, leo)?;
        }
        Ok(())
    }

    /// Deletes every segment and restarts the log, empty, at `offset` (Kafka's
    /// `truncateFullyAndStartAt`): a follower whose next offset the leader no longer has (it
    /// was deleted by retention) starts over at the leader's log start offset.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), StorageError> {
        // Cleared first: a crash before the segments are gone leaves an empty cache next to
        // a non-empty log, which `Log::open` rebuilds from the batches.
        self.epochs.clear()?;
        self.producers.clear()?;
        self.aborted.clear()?;
        self.set_first_dirty(offset)?;
        for (_, segment) in std::mem::take(&mut self.segments) {
            segment.delete()?;
        }
        self.segments.insert(offset, Segment::create(&self.dir, offset)?);
        self.log_start_offset = offset;
        checkpoint::write(&self.dir, LOG_START_OFFSET_FILE, offset)?;
        self.recovery_point = offset;
        self.unflushed_messages = 0;
        checkpoint::write(&self.dir, RECOVERY_POINT_FILE, offset)
    }

    /// Flushes everything, seals the active segment's time index and writes the
    /// clean-shutdown marker, so the next open can skip full validation.
    pub fn close(mut self) -> Result<(), StorageError> {
        self.active_mut().seal()?;
        self.flush()?;
        self.producers.write_snapshot(self.log_end_offset())?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        std::fs::File::create(&marker).and_then(|f| f.sync_all()).at(&marker)?;
        checkpoint::sync_dir(&self.dir)
    }

    /// What this partition knows about producer `producer_id`, if anything.
    pub fn producer_state(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(producer_id)
    }

    /// Forgets producers whose last batch is older than `expiration_ms` and who have no open
    /// transaction (Kafka's `producer.id.expiration.ms`). Returns how many were removed.
    pub fn remove_expired_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producers.remove_expired(now_ms, expiration_ms)
    }

    /// Deletes the log's directory and everything in it.
    pub fn delete(self) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        drop(self);
        std::fs::remove_dir_all(&dir).at(&dir)
    }
}
