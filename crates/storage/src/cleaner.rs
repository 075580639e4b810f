//! Log compaction (Kafka's log cleaner) for one log: [`Log::clean`] keeps, in the cleanable
//! segments (see [`crate::cleaner_plan`]), only the latest record of each key, at its original
//! offset.
//!
//! 1. **Offset map.** The dirty section's batches are read once to map each key to its latest
//!    offset, holding at most `max_keys` keys (copied out of the batches); when the map fills,
//!    the pass ends at the last segment it covers whole and the rest stays dirty for the next.
//! 2. **Rewrite.** Every segment from the log start to the end of the map is read batch by
//!    batch, in order ([`crate::cleaner_rewrite`]): a record stays if it is its key's latest
//!    (a key only in the clean section is already), and a tombstone (null value) stays until
//!    its batch is older than `delete.retention.ms`, so a consumer reading from the start
//!    within that time sees the delete. Kept records keep their offsets, timestamps and
//!    headers; a batch keeps its base offset, offset range, codec, producer fields and leader
//!    epoch. Records of aborted transactions (from the `.txnindex`) are removed. A transaction
//!    marker is removed once none of its transaction's batches is left and it is older than
//!    `delete.retention.ms`. A producer's last batch keeps at least its header (emptied), so
//!    that its sequence numbers survive a rebuild of the producer state from the log.
//! 3. **Merge.** Consecutive segments whose sizes add up to at most `segment.bytes` are written
//!    as one segment (Kafka merges small cleaned segments); a lone segment with nothing to
//!    remove is not rewritten at all.
//! 4. **Swap.** Each new segment is written to `{first}.log.cleaned` and fsynced without the
//!    log's lock: [`Log::clean_job`] takes, in a moment, what the pass reads (its own handles on
//!    the cleanable segments' files, which only the cleaner replaces) and [`CleanJob::prepare`]
//!    does the work while appends and reads go on; installing it (under the
//!    write lock) renames it to `.swap`, deletes the segments it merged, renames it over
//!    `{first}.log` and rebuilds its indexes. A crash at any point leaves either the old or the
//!    new segments, both holding the compacted view ([`crate::swap`]). The first dirty offset
//!    then moves to the end of the pass.

use crate::cleaner_job::{CleanJob, PreparedClean, SegmentView};
use crate::error::IoContext;
use crate::{Log, StorageError, swap};

/// What a cleaning pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanOutcome {
    /// Segments rewritten (a merge counts every segment it replaced).
    pub segments: usize,
    /// Bytes of those segments before.
    pub bytes_before: u64,
    /// Bytes of the segments that replaced them.
    pub bytes_after: u64,
    /// Records removed (older values, expired tombstones, aborted records).
    pub records_removed: u64,
    /// Transaction markers removed.
    pub markers_removed: u64,
    /// Bytes of the dirty section the pass compacted.
    pub dirty_bytes: u64,
}

impl Log {
    /// Compacts the log now, whatever its dirty ratio (see the module documentation).
    /// `now_ms` decides which tombstones expired; `max_keys` bounds the offset map. A log
    /// without `cleanup.policy=compact`, or with nothing cleanable, is left alone.
    ///
    /// # Errors
    ///
    /// I/O errors, or a batch that cannot be decoded (the log is unchanged from the group it
    /// was installing on).
    pub fn clean(&mut self, now_ms: i64, max_keys: usize) -> Result<CleanOutcome, StorageError> {
        match self.clean_job(now_ms, max_keys)? {
            Some(job) => {
                let prepared = job.prepare()?;
                self.install_clean(prepared, now_ms)
            }
            None => Ok(CleanOutcome::default()),
        }
    }

    /// What a cleaning pass needs from the log, taken in a moment (a broker holds the log's read
    /// lock only for this): the cleanable segments, each with its own handle on its file, and
    /// the state the rules need. `None` when there is nothing to clean.
    ///
    /// # Errors
    ///
    /// A segment file that cannot be opened again.
    pub fn clean_job(&self, now_ms: i64, max_keys: usize) -> Result<Option<CleanJob>, StorageError> {
        if !self.config.compact {
            return Ok(None);
        }
        let cleanable = self.cleanable(now_ms);
        if cleanable.segments.is_empty() {
            return Ok(None);
        }
        let mut segments = Vec::with_capacity(cleanable.segments.len());
        for s in &cleanable.segments {
            segments.push(SegmentView {
                base: s.base_offset,
                size: s.size,
                next_offset: s.next_offset,
                file: s.file.try_clone().at(&s.log_path)?,
                path: s.log_path.clone(),
            });
        }
        Ok(Some(CleanJob {
            dir: self.dir.clone(),
            segments,
            first_dirty: cleanable.first_dirty,
            checkpointed_first_dirty: self.cleaner.first_dirty,
            aborted: self.aborted.collect(self.log_start_offset, i64::MAX),
            last_batch_of: self.producers.last_batch_offsets(),
            codec: self.config.compression_type.codec(),
            segment_bytes: self.config.segment_bytes,
            index_interval: self.config.index_interval_bytes,
            horizon: now_ms.saturating_sub(self.config.delete_retention_ms),
            max_keys,
            max_bytes_per_sec: None,
        }))
    }

    /// The writing half of [`Log::clean`]: swaps each cleaned group in (see the module
    /// documentation) and moves the first dirty offset. A group whose segments changed since
    /// [`Log::clean_job`] (truncated, deleted by retention, or become the active one) is
    /// skipped, as is the first dirty offset if a truncation moved it meanwhile.
    ///
    /// # Errors
    ///
    /// I/O errors; groups swapped before the error stay swapped.
    pub fn install_clean(&mut self, mut prepared: PreparedClean, now_ms: i64) -> Result<CleanOutcome, StorageError> {
        let mut outcome = CleanOutcome {
            markers_removed: prepared.markers_removed,
            dirty_bytes: prepared.dirty_bytes,
            ..Default::default()
        };
        for group in &mut prepared.groups {
            let active = self.active().base_offset;
            let unchanged = group
                .segments
                .iter()
                .all(|(base, size)| *base < active && self.segments.get(base).is_some_and(|s| s.size == *size));
            if !unchanged {
                continue;
            }
            let bases: Vec<i64> = group.segments.iter().map(|(b, _)| *b).collect();
            self.aborted.merge_into(bases[0], &bases[1..])?;
            swap::commit(&self.dir, &bases)?;
            group.installed = true;
            for base in &bases {
                outcome.bytes_before += self.segments.remove(base).map_or(0, |s| s.size);
            }
            let mut segment = group.segment.take().expect("a prepared group has its segment");
            // Writes its indexes (the old ones went with the swap).
            segment.seal()?;
            outcome.segments += bases.len();
            outcome.bytes_after += segment.size;
            outcome.records_removed += group.removed;
            self.segments.insert(bases[0], segment);
        }
        let (before, after) = prepared.first_dirty;
        if self.cleaner.first_dirty == before {
            self.set_first_dirty(after.min(self.log_end_offset()))?;
        }
        self.cleaner.last_clean_ms = Some(now_ms);
        if outcome.segments > 0 {
            tracing::info!(dir = %self.dir.display(), segments = outcome.segments, bytes_before = outcome.bytes_before, bytes_after = outcome.bytes_after, removed = outcome.records_removed, "log cleaned");
        }
        Ok(outcome)
    }
}
