//! Log compaction (Kafka's log cleaner) for one log: [`Log::clean`] keeps, in the segments
//! before the active one, only the latest record of each key, at its original offset.
//!
//! 1. **Offset map.** The batches of the cleanable range (the inactive segments, and nothing
//!    at or above the first unstable offset: open transactions are not cleaned) are read once
//!    to map each key to its latest offset, holding at most `max_keys` keys; when the map fills,
//!    the range ends at the last segment it covers whole.
//! 2. **Rewrite.** Each segment of the range is rewritten record by record: a record stays if
//!    it is its key's latest, and a tombstone (null value) stays until its batch is older than
//!    `delete.retention.ms`, so a consumer reading from the start within that time sees the
//!    delete. Kept records keep their offsets, timestamps and headers; a batch keeps its base
//!    offset, offset range, codec, producer fields and leader epoch. Records of aborted
//!    transactions (from the `.txnindex`) are removed and never count as a key's latest value.
//!    Control batches (transaction markers) and records without a key are kept as they are.
//! 3. **Swap.** The new segment is written to `{base}.log.cleaned` and fsynced, renamed to
//!    `{base}.log.swap`, then renamed over `{base}.log`; its indexes are rebuilt. On open, a
//!    `.cleaned` file (a pass that did not finish) is deleted and a `.swap` file (a pass that
//!    finished writing) completes the swap, so a crash at any point leaves either the old or the
//!    new segment, both holding the compacted view.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use vltava_record::{BatchBuilder, RecordBatch, set_partition_leader_epoch};

use crate::swap::swap_in;
use crate::{Log, StorageError};

/// A segment's cleaned contents, ready to swap in ([`Log::install_clean`]).
#[derive(Debug, Clone)]
pub struct CleanedSegment {
    base: i64,
    old_size: u64,
    bytes: Bytes,
    removed: u64,
}

/// What a cleaning pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanOutcome {
    /// Segments rewritten.
    pub segments: usize,
    /// Bytes of those segments before.
    pub bytes_before: u64,
    /// Bytes of those segments after.
    pub bytes_after: u64,
    /// Records removed (older values and expired tombstones).
    pub records_removed: u64,
}

impl Log {
    /// Compacts the log (see the module documentation). `now_ms` decides which tombstones
    /// expired; `max_keys` bounds the offset map. A log without `cleanup.policy=compact`, or
    /// with nothing before its active segment, is left alone.
    ///
    /// # Errors
    ///
    /// I/O errors, or a batch that cannot be decoded (the pass stops; the log is unchanged from
    /// the segment it was rewriting on).
    pub fn clean(&mut self, now_ms: i64, max_keys: usize) -> Result<CleanOutcome, StorageError> {
        let cleaned = self.prepare_clean(now_ms, max_keys)?;
        self.install_clean(cleaned)
    }

    /// The reading half of [`Log::clean`], which needs only `&self` (a broker runs it under a
    /// read lock, so appends and reads go on): the cleaned contents of every segment that has
    /// something to remove. Writes nothing.
    ///
    /// # Errors
    ///
    /// I/O errors, or a batch that cannot be decoded.
    pub fn prepare_clean(&self, now_ms: i64, max_keys: usize) -> Result<Vec<CleanedSegment>, StorageError> {
        if !self.config.compact || self.segments.len() < 2 {
            return Ok(Vec::new());
        }
        let active = self.active().base_offset;
        let limit = self.producers.first_unstable_offset().map_or(active, |f| f.min(active));
        let candidates: Vec<i64> = self
            .segments
            .values()
            .filter(|s| s.base_offset < active && s.next_offset <= limit)
            .map(|s| s.base_offset)
            .collect();
        let aborted = self.aborted.collect(self.log_start_offset, i64::MAX);
        let is_aborted = |b: &RecordBatch| {
            b.is_transactional()
                && aborted.iter().any(|a| {
                    a.producer_id == b.producer_id()
                        && a.first_offset <= b.base_offset()
                        && b.base_offset() <= a.last_offset
                })
        };
        // 1. The offset map, over whole segments only. Aborted transactions' records never
        // count: they are not a key's latest value.
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        let mut covered = Vec::new();
        for base in candidates {
            let mut segment_keys: Vec<(Bytes, i64)> = Vec::new();
            for batch in self.segment_batches(base)? {
                if batch.is_control() || is_aborted(&batch) {
                    continue;
                }
                for r in batch.records()? {
                    if let Some(key) = r.key {
                        segment_keys.push((key, r.offset));
                    }
                }
            }
            let new_keys = segment_keys.iter().filter(|(k, _)| !latest.contains_key(k)).count();
            if latest.len() + new_keys > max_keys && !covered.is_empty() {
                break;
            }
            latest.extend(segment_keys);
            covered.push(base);
        }
        // 2. The cleaned contents.
        let horizon = now_ms.saturating_sub(self.config.delete_retention_ms);
        let mut out = Vec::new();
        for base in covered {
            let (bytes, removed) = self.cleaned_segment(base, &latest, horizon, &is_aborted)?;
            if removed > 0 {
                out.push(CleanedSegment { base, old_size: self.segments[&base].size, bytes: bytes.freeze(), removed });
            }
        }
        Ok(out)
    }

    /// The writing half of [`Log::clean`]: swaps each cleaned segment in (see the module
    /// documentation). A segment that changed since [`Log::prepare_clean`] (truncated,
    /// deleted by retention, or become the active one) is skipped.
    ///
    /// # Errors
    ///
    /// I/O errors; segments swapped before the error stay swapped.
    pub fn install_clean(&mut self, cleaned: Vec<CleanedSegment>) -> Result<CleanOutcome, StorageError> {
        let mut outcome = CleanOutcome::default();
        let active = self.active().base_offset;
        for c in cleaned {
            let unchanged = self.segments.get(&c.base).is_some_and(|s| s.size == c.old_size) && c.base < active;
            if !unchanged {
                continue;
            }
            swap_in(&self.dir, c.base, &c.bytes)?;
            let reloaded = crate::recovery::reload_segment(&self.dir, c.base, self.config.index_interval_bytes)?;
            outcome.segments += 1;
            outcome.bytes_before += c.old_size;
            outcome.bytes_after += reloaded.size;
            outcome.records_removed += c.removed;
            self.segments.insert(c.base, reloaded);
        }
        if outcome.segments > 0 {
            tracing::info!(dir = %self.dir.display(), segments = outcome.segments, bytes_before = outcome.bytes_before, bytes_after = outcome.bytes_after, removed = outcome.records_removed, "log cleaned");
        }
        Ok(outcome)
    }

    /// Every batch of the segment at `base`.
    fn segment_batches(&self, base: i64) -> Result<Vec<RecordBatch>, StorageError> {
        let segment = &self.segments[&base];
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < segment.size {
            let header = segment.header_at(pos)?;
            out.push(RecordBatch::parse(segment.read_batch(pos, &header)?)?);
            pos += header.size;
        }
        Ok(out)
    }

    /// The segment at `base` without superseded records and expired tombstones, and how many
    /// records that removes.
    fn cleaned_segment(
        &self,
        base: i64,
        latest: &HashMap<Bytes, i64>,
        horizon: i64,
        is_aborted: &dyn Fn(&RecordBatch) -> bool,
    ) -> Result<(BytesMut, u64), StorageError> {
        let mut out = BytesMut::new();
        let mut removed = 0u64;
        for batch in self.segment_batches(base)? {
            if batch.is_control() {
                out.extend_from_slice(batch.as_bytes());
                continue;
            }
            if is_aborted(&batch) {
                // An aborted transaction's records are never read (read_committed drops them):
                // removed, so that they cannot hide the value they did not replace.
                removed += batch.record_count().max(0) as u64;
                continue;
            }
            let records = batch.records()?;
            let expired_tombstones = batch.max_timestamp() < horizon;
            let keep: Vec<bool> = records
                .iter()
                .map(|r| match &r.key {
                    None => true,
                    Some(k) => latest.get(k) == Some(&r.offset) && !(r.value.is_none() && expired_tombstones),
                })
                .collect();
            let kept = keep.iter().filter(|k| **k).count();
            removed += (records.len() - kept) as u64;
            if kept == records.len() {
                out.extend_from_slice(batch.as_bytes());
                continue;
            }
            if kept == 0 {
                continue;
            }
            let mut builder = BatchBuilder::new(batch.compression()?).with_producer(
                batch.producer_id(),
                batch.producer_epoch(),
                batch.base_sequence(),
            );
            builder.set_transactional(batch.is_transactional());
            for (r, _) in records.iter().zip(&keep).filter(|(_, k)| **k) {
                let delta = i32::try_from(r.offset - batch.base_offset()).unwrap_or(i32::MAX);
                builder.append_at(delta, r.timestamp, r.key.as_deref(), r.value.as_deref(), &r.headers);
            }
            builder.set_last_offset_delta(batch.last_offset_delta());
            let rebuilt = builder.build_at(batch.base_offset());
            let rebuilt = match batch.is_log_append_time() {
                true => vltava_record::rewrite_batch(&RecordBatch::parse(rebuilt)?, None, Some(batch.max_timestamp()))?
                    .expect("a timestamp change"),
                false => rebuilt,
            };
            let mut rebuilt = BytesMut::from(&rebuilt[..]);
            set_partition_leader_epoch(&mut rebuilt, batch.partition_leader_epoch());
            out.extend_from_slice(&rebuilt);
        }
        Ok((out, removed))
    }
}
