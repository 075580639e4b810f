//! The reading and writing of a cleaning pass, done without the log's lock ([`CleanJob`]): the
//! offset map of the dirty section, then each group of segments streamed through the
//! [`Rewriter`] into its `.cleaned` file, indexed as it is written. The result,
//! [`PreparedClean`], is swapped in by `Log::install_clean`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use vltava_record::header::HEADER_LEN;
use vltava_record::{Compression, RecordBatch};

use crate::StorageError;
use crate::cleaner_plan::group_segments;
use crate::cleaner_rewrite::{Decision, Rewriter};
use crate::error::IoContext;
use crate::scan::{BatchHeader, read_header};
use crate::segment::Segment;
use crate::swap;
use crate::txn_index::AbortedTxn;

/// A cleanable segment as a pass reads it: its own handle on the file (positional reads; only
/// the cleaner replaces a segment below the active one).
#[derive(Debug)]
pub(crate) struct SegmentView {
    pub(crate) base: i64,
    pub(crate) size: u64,
    pub(crate) next_offset: i64,
    pub(crate) file: File,
    pub(crate) path: PathBuf,
}

impl SegmentView {
    /// Calls `f(position, header, batch)` for every batch, in order, one batch in memory at a
    /// time.
    fn for_each_batch(
        &self,
        throttle: &RefCell<Throttle>,
        mut f: impl FnMut(u64, BatchHeader, RecordBatch) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let mut pos = 0;
        while pos < self.size {
            let header = read_header(&self.file, &self.path, pos, self.size)?;
            throttle.borrow_mut().read(header.size);
            let mut buf = BytesMut::zeroed(header.size as usize);
            self.file.read_exact_at(&mut buf, pos).at(&self.path)?;
            f(pos, header, RecordBatch::parse(buf.freeze())?)?;
            pos += header.size;
        }
        Ok(())
    }
}

/// Kafka's `log.cleaner.io.max.bytes.per.second`: a pass sleeps as needed to read at most
/// `limit` bytes a second, leaving the machine to producers and consumers.
#[derive(Debug)]
pub(crate) struct Throttle {
    limit: Option<u64>,
    started: Instant,
    bytes: u64,
}

impl Throttle {
    fn new(limit: Option<u64>) -> Throttle {
        Throttle { limit: limit.filter(|l| *l > 0), started: Instant::now(), bytes: 0 }
    }

    /// Counts `n` bytes read, sleeping first if the pass is ahead of its rate.
    fn read(&mut self, n: u64) {
        let Some(limit) = self.limit else { return };
        let due = Duration::from_secs_f64(self.bytes as f64 / limit as f64);
        if let Some(ahead) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(ahead);
        }
        self.bytes += n;
    }
}

/// A cleaning pass ready to run (`Log::clean_job`).
#[derive(Debug)]
pub struct CleanJob {
    pub(crate) dir: PathBuf,
    /// The cleanable segments, in order.
    pub(crate) segments: Vec<SegmentView>,
    /// Start of the dirty section among them.
    pub(crate) first_dirty: i64,
    /// The log's first dirty offset when the job was taken.
    pub(crate) checkpointed_first_dirty: i64,
    pub(crate) aborted: Vec<AbortedTxn>,
    pub(crate) last_batch_of: HashMap<i64, i64>,
    pub(crate) codec: Option<Compression>,
    pub(crate) segment_bytes: u64,
    pub(crate) index_interval: u64,
    /// Tombstones and markers in batches older than this may go.
    pub(crate) horizon: i64,
    pub(crate) max_keys: usize,
    /// At most this many bytes read a second (`None`: as fast as it can).
    pub(crate) max_bytes_per_sec: Option<u64>,
}

/// A cleaned group of segments written beside the log, ready to swap in; its file is deleted
/// if it is dropped uninstalled.
#[derive(Debug)]
pub(crate) struct CleanedGroup {
    /// The base offset and size (when the job was taken) of each segment it replaces.
    pub(crate) segments: Vec<(i64, u64)>,
    /// The new segment over the `.cleaned` file, indexed in memory.
    pub(crate) segment: Option<Segment>,
    path: PathBuf,
    pub(crate) removed: u64,
    pub(crate) installed: bool,
}

impl Drop for CleanedGroup {
    fn drop(&mut self) {
        if !self.installed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The result of [`CleanJob::prepare`]: cleaned segments on disk, not yet in the log.
#[derive(Debug)]
pub struct PreparedClean {
    pub(crate) groups: Vec<CleanedGroup>,
    /// The first dirty offset the pass started from, and the one it leaves.
    pub(crate) first_dirty: (i64, i64),
    pub(crate) markers_removed: u64,
    pub(crate) dirty_bytes: u64,
}

impl CleanJob {
    /// Limits the pass to reading `bytes_per_sec` (0: no limit), as Kafka's
    /// `log.cleaner.io.max.bytes.per.second` does.
    pub fn with_io_limit(mut self, bytes_per_sec: u64) -> CleanJob {
        self.max_bytes_per_sec = (bytes_per_sec > 0).then_some(bytes_per_sec);
        self
    }

    /// Builds the offset map and writes the cleaned groups (see [`crate::cleaner`]); needs no
    /// lock on the log.
    ///
    /// # Errors
    ///
    /// I/O errors, or a batch that cannot be decoded.
    pub fn prepare(mut self) -> Result<PreparedClean, StorageError> {
        let throttle = RefCell::new(Throttle::new(self.max_bytes_per_sec));
        // 1. The offset map of the dirty section, over whole segments.
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        let mut range = self.segments.iter().take_while(|s| s.next_offset <= self.first_dirty).count();
        let mut end = self.first_dirty;
        let mut dirty_bytes = 0;
        for s in &self.segments[range..] {
            let mut keys: Vec<(Bytes, i64)> = Vec::new();
            s.for_each_batch(&throttle, |_, _, batch| {
                if !batch.is_control() && !Rewriter::is_aborted(&self.aborted, &batch) {
                    batch.for_each_key(|offset, key| {
                        if let Some(key) = key {
                            keys.push((Bytes::copy_from_slice(key), offset));
                        }
                    })?;
                }
                Ok(())
            })?;
            let new_keys = keys.iter().filter(|(k, _)| !latest.contains_key(k)).count();
            if latest.len() + new_keys > self.max_keys && end > self.first_dirty {
                break;
            }
            latest.extend(keys);
            end = s.next_offset;
            dirty_bytes += s.size;
            range += 1;
        }
        // 2 and 3. The rewrite, group by group.
        let (aborted, last_batch_of) = (std::mem::take(&mut self.aborted), std::mem::take(&mut self.last_batch_of));
        let mut rewriter = Rewriter::new(latest, self.horizon, aborted, last_batch_of, self.codec);
        let sizes: Vec<(i64, u64, i64)> =
            self.segments[..range].iter().map(|s| (s.base, s.size, s.next_offset)).collect();
        let mut groups = Vec::new();
        for group in group_segments(&sizes, self.segment_bytes) {
            if let Some(cleaned) = self.rewrite_group(&self.segments[group], &mut rewriter, &throttle)? {
                groups.push(cleaned);
            }
        }
        Ok(PreparedClean {
            groups,
            first_dirty: (self.checkpointed_first_dirty, end),
            markers_removed: rewriter.markers_removed,
            dirty_bytes,
        })
    }

    /// Writes the group's cleaned segment to its `.cleaned` file, indexing it as it goes (so
    /// that installing it is only renames); `None` for a lone segment with nothing to change.
    fn rewrite_group(
        &self,
        group: &[SegmentView],
        rewriter: &mut Rewriter,
        throttle: &RefCell<Throttle>,
    ) -> Result<Option<CleanedGroup>, StorageError> {
        let first = group[0].base;
        let path = swap::cleaned_path(&self.dir, first);
        let interval = self.index_interval;
        let create = || Output::create(&self.dir, first, &path);
        let mut out = if group.len() > 1 { Some(create()?) } else { None };
        // A lone segment is only written from its first change on: the batches kept before it.
        let mut prefix: Vec<BatchHeader> = Vec::new();
        let removed_before = rewriter.records_removed;
        for segment in group {
            segment.for_each_batch(throttle, |pos, header, batch| {
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
            segments: group.iter().map(|s| (s.base, s.size)).collect(),
            segment: Some(out.finish(&path)?),
            path,
            removed: rewriter.records_removed - removed_before,
            installed: false,
        }))
    }
}

/// A cleaned segment being written: its file, and the segment that will serve it.
struct Output {
    writer: BufWriter<File>,
    segment: Segment,
}

impl Output {
    fn create(dir: &Path, base: i64, path: &Path) -> Result<Output, StorageError> {
        // In append mode, like every segment file: once installed this handle takes the log's
        // appends, and a write-mode handle would keep its cursor past a later truncation,
        // leaving a hole of zeros (found by the `log_append` fuzz target).
        File::create(path).at(path)?;
        let file = crate::segment::open_log_file(path)?;
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
        from: &SegmentView,
        len: u64,
        headers: &[BatchHeader],
        interval: u64,
    ) -> Result<(), StorageError> {
        let mut buf = vec![0u8; len.min(1 << 20) as usize];
        let mut pos = 0;
        while pos < len {
            let n = (len - pos).min(buf.len() as u64) as usize;
            from.file.read_exact_at(&mut buf[..n], pos).at(&from.path)?;
            self.writer.write_all(&buf[..n]).at(&from.path)?;
            pos += n as u64;
        }
        for header in headers {
            self.segment.track_written(header, interval);
        }
        Ok(())
    }

    /// Flushes and fsyncs the file; the segment, ready to install.
    fn finish(self, path: &Path) -> Result<Segment, StorageError> {
        let file = self.writer.into_inner().map_err(|e| e.into_error()).at(path)?;
        file.sync_all().at(path)?;
        Ok(self.segment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_holds_a_pass_to_its_rate_and_no_limit_never_waits() {
        let mut limited = Throttle::new(Some(1_000_000));
        for _ in 0..3 {
            limited.read(100_000);
        }
        // The third read was due at 0.2 s: it slept until then (a lower bound, never flaky).
        assert!(limited.started.elapsed() >= Duration::from_millis(200));
        let mut free = Throttle::new(Some(0));
        assert_eq!(free.limit, None, "0 means no limit");
        free.read(u64::MAX / 2);
        free.read(1);
    }
}
