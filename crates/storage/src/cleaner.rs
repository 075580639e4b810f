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
//! 4. **Swap.** Each new segment is written to `{first}.log.cleaned` and fsynced while appends
//!    and reads go on (a broker prepares under the log's read lock); installing it (under the
//!    write lock) renames it to `.swap`, deletes the segments it merged, renames it over
//!    `{first}.log` and rebuilds its indexes. A crash at any point leaves either the old or the
//!    new segments, both holding the compacted view ([`crate::swap`]). The first dirty offset
//!    then moves to the end of the pass.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use bytes::Bytes;
use vltava_record::RecordBatch;
use vltava_record::header::HEADER_LEN;

use crate::cleaner_plan::group_segments;
use crate::cleaner_rewrite::{Decision, Rewriter};
use crate::error::IoContext;
use crate::scan::BatchHeader;
use crate::segment::Segment;
use crate::{Log, StorageError, swap};

/// A cleaned group of segments written beside the log, ready to swap in
/// ([`Log::install_clean`]); its file is deleted if it is dropped uninstalled.
#[derive(Debug)]
struct CleanedGroup {
    /// The base offset and size (when prepared) of each segment it replaces.
    segments: Vec<(i64, u64)>,
    /// The new segment over the `.cleaned` file, indexed in memory.
    segment: Option<Segment>,
    path: PathBuf,
    removed: u64,
    installed: bool,
}

impl Drop for CleanedGroup {
    fn drop(&mut self) {
        if !self.installed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The result of [`Log::prepare_clean`]: cleaned segments on disk, not yet in the log.
#[derive(Debug)]
pub struct PreparedClean {
    groups: Vec<CleanedGroup>,
    /// The first dirty offset the pass started from, and the one it leaves.
    first_dirty: (i64, i64),
    markers_removed: u64,
    dirty_bytes: u64,
}

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
        match self.prepare_clean(now_ms, max_keys)? {
            Some(prepared) => self.install_clean(prepared, now_ms),
            None => Ok(CleanOutcome::default()),
        }
    }

    /// The reading half of [`Log::clean`], which needs only `&self` (a broker runs it under a
    /// read lock, so appends and reads go on): writes the cleaned groups beside the log.
    /// `None` when there is nothing to clean.
    ///
    /// # Errors
    ///
    /// I/O errors, or a batch that cannot be decoded.
    pub fn prepare_clean(&self, now_ms: i64, max_keys: usize) -> Result<Option<PreparedClean>, StorageError> {
        if !self.config.compact {
            return Ok(None);
        }
        let cleanable = self.cleanable(now_ms);
        if cleanable.segments.is_empty() {
            return Ok(None);
        }
        let aborted = self.aborted.collect(self.log_start_offset, i64::MAX);
        // 1. The offset map of the dirty section, over whole segments.
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        let mut range = cleanable.segments.iter().take_while(|s| s.next_offset <= cleanable.first_dirty).count();
        let mut end = cleanable.first_dirty;
        let mut dirty_bytes = 0;
        for s in &cleanable.segments[range..] {
            let mut keys: Vec<(Bytes, i64)> = Vec::new();
            for_each_batch(s, |_, _, batch| {
                if !batch.is_control() && !Rewriter::is_aborted(&aborted, &batch) {
                    batch.for_each_key(|offset, key| {
                        if let Some(key) = key {
                            keys.push((Bytes::copy_from_slice(key), offset));
                        }
                    })?;
                }
                Ok(())
            })?;
            let new_keys = keys.iter().filter(|(k, _)| !latest.contains_key(k)).count();
            if latest.len() + new_keys > max_keys && end > cleanable.first_dirty {
                break;
            }
            latest.extend(keys);
            end = s.next_offset;
            dirty_bytes += s.size;
            range += 1;
        }
        // 2 and 3. The rewrite, group by group.
        let horizon = now_ms.saturating_sub(self.config.delete_retention_ms);
        let codec = self.config.compression_type.codec();
        let mut rewriter = Rewriter::new(latest, horizon, aborted, self.producers.last_batch_offsets(), codec);
        let mut groups = Vec::new();
        for group in group_segments(&cleanable.segments[..range], self.config.segment_bytes) {
            if let Some(cleaned) = self.rewrite_group(&group, &mut rewriter)? {
                groups.push(cleaned);
            }
        }
        Ok(Some(PreparedClean {
            groups,
            first_dirty: (self.cleaner.first_dirty, end),
            markers_removed: rewriter.markers_removed,
            dirty_bytes,
        }))
    }

    /// Writes the group's cleaned segment to its `.cleaned` file, indexing it as it goes (so
    /// that installing it is only renames); `None` for a lone segment with nothing to change.
    fn rewrite_group(&self, group: &[i64], rewriter: &mut Rewriter) -> Result<Option<CleanedGroup>, StorageError> {
        let path = swap::cleaned_path(&self.dir, group[0]);
        let interval = self.config.index_interval_bytes;
        let create = || Output::create(&self.dir, group[0], &path);
        let mut out = if group.len() > 1 { Some(create()?) } else { None };
        // A lone segment is only written from its first change on: the batches kept before it.
        let mut prefix: Vec<BatchHeader> = Vec::new();
        let removed_before = rewriter.records_removed;
        for base in group {
            let segment = &self.segments[base];
            for_each_batch(segment, |pos, header, batch| {
                let decision = rewriter.decide(&batch)?;
                if out.is_none() {
                    if matches!(decision, Decision::Keep) {
                        prefix.push(header);
                        return Ok(());
                    }
                    let mut o = create()?;
                    o.copy_prefix(segment, pos, &prefix, interval)?;
                    out = Some(o);
                }
                let o = out.as_mut().expect("created above");
                match decision {
                    Decision::Keep => o.write(batch.as_bytes(), &header, interval),
                    Decision::Replace(bytes) => {
                        let header = BatchHeader::parse(&bytes[..HEADER_LEN])
                            .map_err(|reason| StorageError::CorruptBatch { reason })?;
                        o.write(&bytes, &header, interval)
                    }
                    Decision::Remove => Ok(()),
                }
            })?;
        }
        let Some(out) = out else { return Ok(None) };
        Ok(Some(CleanedGroup {
            segments: group.iter().map(|b| (*b, self.segments[b].size)).collect(),
            segment: Some(out.finish(&path)?),
            path,
            removed: rewriter.records_removed - removed_before,
            installed: false,
        }))
    }

    /// The writing half of [`Log::clean`]: swaps each cleaned group in (see the module
    /// documentation) and moves the first dirty offset. A group whose segments changed since
    /// [`Log::prepare_clean`] (truncated, deleted by retention, or become the active one) is
    /// skipped.
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
            // Unless a truncation moved it back meanwhile.
            self.set_first_dirty(after.min(self.log_end_offset()))?;
        }
        self.cleaner.last_clean_ms = Some(now_ms);
        if outcome.segments > 0 {
            tracing::info!(dir = %self.dir.display(), segments = outcome.segments, bytes_before = outcome.bytes_before, bytes_after = outcome.bytes_after, removed = outcome.records_removed, "log cleaned");
        }
        Ok(outcome)
    }
}

/// Calls `f(position, header, batch)` for every batch of `segment`, in order, one batch in
/// memory at a time.
fn for_each_batch(
    segment: &Segment,
    mut f: impl FnMut(u64, BatchHeader, RecordBatch) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let mut pos = 0;
    while pos < segment.size {
        let header = segment.header_at(pos)?;
        f(pos, header, RecordBatch::parse(segment.read_batch(pos, &header)?)?)?;
        pos += header.size;
    }
    Ok(())
}

/// A cleaned segment being written: its file, and the segment that will serve it.
struct Output {
    writer: BufWriter<File>,
    segment: Segment,
}

impl Output {
    fn create(dir: &std::path::Path, base: i64, path: &std::path::Path) -> Result<Output, StorageError> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path).at(path)?;
        let writer = BufWriter::with_capacity(1 << 20, file.try_clone().at(path)?);
        Ok(Output { writer, segment: Segment::for_cleaned_file(dir, base, file) })
    }

    /// Appends one batch.
    fn write(&mut self, bytes: &[u8], header: &BatchHeader, interval: u64) -> Result<(), StorageError> {
        self.writer.write_all(bytes).at(&self.segment.log_path)?;
        self.segment.track_written(header, interval);
        Ok(())
    }

    /// Copies the first `len` bytes of `from`, the batches `headers`.
    fn copy_prefix(
        &mut self,
        from: &Segment,
        len: u64,
        headers: &[BatchHeader],
        interval: u64,
    ) -> Result<(), StorageError> {
        let mut buf = vec![0u8; len.min(1 << 20) as usize];
        let mut pos = 0;
        while pos < len {
            let n = (len - pos).min(buf.len() as u64) as usize;
            from.file.read_exact_at(&mut buf[..n], pos).at(&from.log_path)?;
            self.writer.write_all(&buf[..n]).at(&from.log_path)?;
            pos += n as u64;
        }
        for header in headers {
            self.segment.track_written(header, interval);
        }
        Ok(())
    }

    /// Flushes and fsyncs the file; the segment, ready to install.
    fn finish(self, path: &std::path::Path) -> Result<Segment, StorageError> {
        let file = self.writer.into_inner().map_err(|e| e.into_error()).at(path)?;
        file.sync_all().at(path)?;
        Ok(self.segment)
    }
}
