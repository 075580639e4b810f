//! One segment: a `.log` file of concatenated batches plus its offset and time indexes.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use bytes::{Bytes, BytesMut};
use vltava_record::header;

use crate::StorageError;
use crate::error::IoContext;
use crate::index::{OffsetEntry, OffsetIndex, TimeIndex, remove_if_exists};
use crate::scan::{BatchHeader, read_header, scan};

/// Extension of segment data files.
pub(crate) const LOG_EXT: &str = "log";
/// Extension of offset index files.
pub(crate) const INDEX_EXT: &str = "index";
/// Extension of time index files.
pub(crate) const TIME_INDEX_EXT: &str = "timeindex";

/// `dir/{base:020}.{ext}`.
pub(crate) fn segment_path(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

/// The big-endian i32 at `at` of `b`.
fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The big-endian i64 at `at` of `b`.
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Where one batch of an append landed, relative to the start of the appended buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchMeta {
    pub buf_pos: u64,
    pub base_offset: i64,
    pub next_offset: i64,
    pub size: u64,
    pub max_timestamp: i64,
}

/// A segment of the partition log.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    pub(crate) log_path: PathBuf,
    pub(crate) file: File,
    pub(crate) size: u64,
    pub(crate) next_offset: i64,
    pub(crate) offset_index: OffsetIndex,
    pub(crate) time_index: TimeIndex,
    pub(crate) bytes_since_index: u64,
    /// Largest batch max timestamp in the segment, -1 if none.
    pub(crate) max_timestamp: i64,
    /// Base offset of the first batch that reached `max_timestamp`.
    pub(crate) offset_of_max_timestamp: i64,
    /// Time the segment.ms roll is measured from (first batch's timestamp or append time).
    pub(crate) roll_base_ms: Option<i64>,
    /// The log file has data not yet fsynced.
    pub(crate) unsynced: bool,
    /// A failed write left bytes in the file that could not be cut off: appends are refused until
    /// the log is reopened (recovery truncates the torn tail).
    pub(crate) torn: bool,
}

/// Appends `buf` to a segment file (opened in append mode).
#[cfg(not(test))]
fn write_all(file: &File, buf: &[u8]) -> std::io::Result<()> {
    let mut file = file;
    file.write_all(buf)
}

#[cfg(test)]
thread_local! {
    /// Tests: the next append writes this many bytes and then fails as on a full disk.
    pub(crate) static FAIL_NEXT_WRITE_AFTER: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

#[cfg(test)]
fn write_all(file: &File, buf: &[u8]) -> std::io::Result<()> {
    let mut file = file;
    match FAIL_NEXT_WRITE_AFTER.with(|f| f.take()) {
        Some(n) => {
            file.write_all(&buf[..n.min(buf.len())])?;
            Err(std::io::Error::from_raw_os_error(28))
        }
        None => file.write_all(buf),
    }
}

pub(crate) fn open_log_file(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new().read(true).append(true).create(true).open(path).at(path)
}

impl Segment {
    /// Creates a new empty segment (all three files) at `base_offset`.
    pub(crate) fn create(dir: &Path, base_offset: i64) -> Result<Segment, StorageError> {
        let log_path = segment_path(dir, base_offset, LOG_EXT);
        File::create(&log_path).at(&log_path)?;
        let file = open_log_file(&log_path)?;
        Ok(Segment {
            base_offset,
            file,
            size: 0,
            next_offset: base_offset,
            offset_index: OffsetIndex::create(segment_path(dir, base_offset, INDEX_EXT))?,
            time_index: TimeIndex::create(segment_path(dir, base_offset, TIME_INDEX_EXT))?,
            log_path,
            bytes_since_index: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            roll_base_ms: None,
            unsynced: true,
            torn: false,
        })
    }

    /// A segment over `file`, a log file the cleaner is writing that will be renamed to the log
    /// file of `base_offset` ([`crate::swap`]); its bookkeeping follows [`Segment::track_written`]
    /// and its indexes stay in memory until it is sealed.
    pub(crate) fn for_cleaned_file(dir: &Path, base_offset: i64, file: File) -> Segment {
        Segment {
            base_offset,
            log_path: segment_path(dir, base_offset, LOG_EXT),
            file,
            size: 0,
            next_offset: base_offset,
            offset_index: OffsetIndex::from_entries(segment_path(dir, base_offset, INDEX_EXT), Vec::new()),
            time_index: TimeIndex::from_entries(segment_path(dir, base_offset, TIME_INDEX_EXT), Vec::new()),
            bytes_since_index: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            roll_base_ms: None,
            unsynced: false,
            torn: false,
        }
    }

    /// Records the batch `header` just written at the end of the file (by the cleaner).
    pub(crate) fn track_written(&mut self, header: &BatchHeader, interval: u64) {
        if self.size == 0 && header.max_timestamp >= 0 {
            self.roll_base_ms = Some(header.max_timestamp);
        }
        self.track_batch(self.size, header.base_offset, header.size, header.max_timestamp, interval);
        self.size += header.size;
        self.next_offset = header.next_offset();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Offset relative to the segment base (callers guarantee it fits in a u32).
    pub(crate) fn rel(&self, offset: i64) -> u32 {
        u32::try_from(offset - self.base_offset).unwrap_or(u32::MAX)
    }

    /// Newest timestamp for retention: the largest batch timestamp, or the file's mtime when
    /// no batch carries a timestamp.
    pub(crate) fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp >= 0 {
            return self.max_timestamp;
        }
        self.file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(-1, |d| d.as_millis() as i64)
    }

    /// True if the offset index or the time index has no room for another entry.
    pub(crate) fn index_full(&self, segment_index_bytes: u64) -> bool {
        (self.offset_index.len() as u64 + 1) * 8 > segment_index_bytes
            || (self.time_index.len() as u64 + 1) * 12 > segment_index_bytes
    }

    /// Appends `buf` (whole, already stamped batches described by `metas`) with one write.
    pub(crate) fn append(
        &mut self,
        buf: &[u8],
        metas: &[BatchMeta],
        index_interval_bytes: u64,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        if self.torn {
            return Err(StorageError::Io {
                path: self.log_path.clone(),
                source: std::io::Error::other("an earlier write failed halfway and its bytes could not be removed"),
            });
        }
        if let Err(e) = write_all(&self.file, buf) {
            // A failed write (a full disk, an I/O error) may have left part of `buf` in the file:
            // cut it off, so that the file holds whole batches only and the next append lands
            // where the indexes say. (Found reading a broker's log after the chaos harness's disk-full
            // fault.)
            if let Err(cut) = self.file.set_len(self.size) {
                tracing::error!(path = %self.log_path.display(), error = %cut, "cannot remove a torn write");
                self.torn = true;
            }
            return Err(e).at(&self.log_path);
        }
        if self.size == 0
            && let Some(first) = metas.first()
        {
            self.roll_base_ms = Some(if first.max_timestamp >= 0 { first.max_timestamp } else { now_ms });
        }
        for m in metas {
            self.track_batch(self.size + m.buf_pos, m.base_offset, m.size, m.max_timestamp, index_interval_bytes);
        }
        self.size += buf.len() as u64;
        if let Some(last) = metas.last() {
            self.next_offset = last.next_offset;
        }
        self.unsynced = true;
        Ok(())
    }

    /// Updates the in-memory indexes and timestamp tracking for a batch at `pos`
    /// (Kafka's rule: an index entry when more than `interval` bytes were appended since the
    /// previous one).
    pub(crate) fn track_batch(&mut self, pos: u64, base: i64, size: u64, max_ts: i64, interval: u64) {
        if max_ts > self.max_timestamp {
            self.max_timestamp = max_ts;
            self.offset_of_max_timestamp = base;
        }
        if self.bytes_since_index > interval {
            let rel = self.rel(base);
            self.offset_index.push(OffsetEntry { rel, pos: pos as u32 });
            let max_rel = self.rel(self.offset_of_max_timestamp);
            self.time_index.maybe_push(self.max_timestamp, max_rel);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += size;
    }

    /// Reads the header of the batch at `pos`.
    pub(crate) fn header_at(&self, pos: u64) -> Result<BatchHeader, StorageError> {
        read_header(&self.file, &self.log_path, pos, self.size)
    }

    /// Position and header of the batch containing `offset`; `None` if `offset` is past the
    /// last batch of this segment.
    pub(crate) fn find_batch(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, StorageError> {
        if offset >= self.next_offset {
            return Ok(None);
        }
        let mut pos = self.offset_index.lookup(self.rel(offset.max(self.base_offset))).map_or(0, |e| u64::from(e.pos));
        while pos < self.size {
            let header = self.header_at(pos)?;
            if header.last_offset >= offset {
                return Ok(Some((pos, header)));
            }
            pos += header.size;
        }
        Ok(None)
    }

    /// Reads whole batches starting with the one containing `offset`: at most `max_bytes`
    /// (but always the first batch) and only batches whose last offset is `< limit`.
    /// `None` if `offset` is not in this segment; `Some(empty)` if the first batch is past `limit`.
    pub(crate) fn read(&self, offset: i64, max_bytes: usize, limit: i64) -> Result<Option<(i64, Bytes)>, StorageError> {
        let Some((start, first)) = self.find_batch(offset)? else {
            return Ok(None);
        };
        if first.last_offset >= limit {
            return Ok(Some((first.base_offset, Bytes::new())));
        }
        // Batches at or after the first index entry >= limit cannot qualify.
        let upper = if limit >= self.next_offset {
            self.size
        } else {
            self.offset_index.first_at_or_after(self.rel(limit)).map_or(self.size, |e| u64::from(e.pos))
        };
        let available = upper - start;
        let want = (max_bytes as u64).min(available).max(first.size) as usize;
        let mut buf = BytesMut::zeroed(want);
        self.file.read_exact_at(&mut buf, start).at(&self.log_path)?;
        let mut end = 0usize;
        let mut expected: Option<i64> = None;
        while end + header::OFFSETS_LEN <= buf.len() {
            let b = &buf[end..];
            let length = i32_at(b, header::BATCH_LENGTH);
            let size = header::LOG_OVERHEAD + length.max(0) as usize;
            if length < header::MIN_BATCH_LENGTH || end + size > buf.len() {
                break;
            }
            let base = i64_at(b, header::BASE_OFFSET);
            let delta = i32_at(b, header::LAST_OFFSET_DELTA);
            if base.saturating_add(i64::from(delta)) >= limit {
                break;
            }
            // Every batch is checked before it leaves the log: recovery trusts what lies below the
            // recovery point (as Kafka does), so damage done on disk later (found by the
            // `log_recovery` fuzz target) would otherwise be served. CRC-32C runs at memory speed.
            let stored = u32::from_be_bytes(b[header::CRC..header::CRC + 4].try_into().expect("4 bytes"));
            // The checks of `RecordBatch::validate_stored` on the header, without decoding; the base
            // offset lies outside the CRC, so offsets must also grow from batch to batch.
            let count = i32_at(b, header::RECORD_COUNT);
            let damaged = if b[header::MAGIC] as i8 != vltava_record::MAGIC {
                Some(format!("magic {}", b[header::MAGIC] as i8))
            } else if base < 0 || delta < 0 || count < 0 || i64::from(count) > i64::from(delta) + 1 {
                Some(format!("base offset {base}, last offset delta {delta} and record count {count} do not fit"))
            } else if vltava_record::Compression::from_attributes(i16_at(b, header::ATTRIBUTES)).is_err() {
                Some(format!("unknown codec in attributes {:#x}", i16_at(b, header::ATTRIBUTES)))
            } else if expected.is_some_and(|e| base < e) {
                Some(format!("the batch at offset {base} follows one that ends at {}", expected.unwrap_or(0) - 1))
            } else if crc32c::crc32c(&b[header::CRC_START..size]) != stored {
                Some(format!("CRC-32C mismatch in the batch at offset {base}"))
            } else {
                None
            };
            if let Some(reason) = damaged {
                if end > 0 {
                    break; // serve the valid batches before it; the next read reports it
                }
                tracing::error!(path = %self.log_path.display(), position = start, %reason, "a stored batch is damaged; not serving it");
                return Err(StorageError::Corrupt {
                    path: self.log_path.clone(),
                    position: start,
                    reason: format!("{reason}: the stored batch is damaged and is not served"),
                });
            }
            expected = Some(base.saturating_add(i64::from(delta)).saturating_add(1));
            end += size;
        }
        buf.truncate(end);
        Ok(Some((first.base_offset, buf.freeze())))
    }

    /// Reads the whole batch at `pos`.
    pub(crate) fn read_batch(&self, pos: u64, header: &BatchHeader) -> Result<Bytes, StorageError> {
        let mut buf = BytesMut::zeroed(header.size as usize);
        self.file.read_exact_at(&mut buf, pos).at(&self.log_path)?;
        Ok(buf.freeze())
    }

    /// Appends the final time index entry (as Kafka does when a segment stops being active),
    /// writes pending index entries and fsyncs everything.
    pub(crate) fn seal(&mut self) -> Result<(), StorageError> {
        let rel = self.rel(self.offset_of_max_timestamp);
        self.time_index.maybe_push(self.max_timestamp, rel);
        self.flush()
    }

    /// Writes pending index entries and fsyncs the log and both indexes.
    pub(crate) fn flush(&mut self) -> Result<(), StorageError> {
        if self.unsynced {
            self.file.sync_data().at(&self.log_path)?;
            self.unsynced = false;
        }
        self.offset_index.persist(true)?;
        self.time_index.persist(true)
    }

    /// Cuts the segment at `pos` (a batch boundary) whose batch starts at `offset`, then
    /// recomputes the timestamp and index bookkeeping from what is left.
    pub(crate) fn truncate(&mut self, pos: u64, offset: i64) -> Result<u64, StorageError> {
        let dropped = self.size - pos;
        self.file.set_len(pos).at(&self.log_path)?;
        self.size = pos;
        self.next_offset = offset;
        self.unsynced = true;
        let rel = self.rel(offset);
        self.offset_index.truncate_from(rel)?;
        self.time_index.truncate_from(rel)?;
        self.recompute_tail()?;
        Ok(dropped)
    }

    /// Recomputes `max_timestamp`, `bytes_since_index` and `roll_base_ms` by scanning the
    /// headers after the last time index entry (everything before it is summarised by it).
    pub(crate) fn recompute_tail(&mut self) -> Result<(), StorageError> {
        let (mut max_ts, mut max_off) = (-1, self.base_offset);
        let mut from = 0;
        if let Some(t) = self.time_index.last() {
            max_ts = t.timestamp;
            max_off = self.base_offset.saturating_add(i64::from(t.rel));
            from = self.offset_index.lookup(t.rel).map_or(0, |e| u64::from(e.pos));
        }
        let mut next = None;
        let end = scan(&self.file, &self.log_path, from, self.size, false, None, |_, h| {
            if h.max_timestamp > max_ts {
                max_ts = h.max_timestamp;
                max_off = h.base_offset;
            }
            next = Some(h.next_offset());
        })?;
        if let Some(reason) = end.error {
            return Err(StorageError::Corrupt { path: self.log_path.clone(), position: end.valid_end, reason });
        }
        // An emptied segment ends at its base offset, as recovery would find it (not at the base
        // of the batch cut first, which lies beyond a gap in a compacted log: found by the
        // `log_append` fuzz target).
        self.next_offset = next.unwrap_or(if self.size == 0 { self.base_offset } else { self.next_offset });
        self.max_timestamp = max_ts;
        self.offset_of_max_timestamp = max_off;
        let last_entry = self.offset_index.last().map_or(0, |e| u64::from(e.pos));
        self.bytes_since_index = self.size - last_entry;
        self.roll_base_ms = if self.size == 0 {
            None
        } else {
            let first = self.header_at(0)?;
            Some(if first.max_timestamp >= 0 { first.max_timestamp } else { self.largest_timestamp() })
        };
        Ok(())
    }

    /// Removes the segment's files.
    pub(crate) fn delete(self) -> Result<(), StorageError> {
        remove_if_exists(&self.log_path)?;
        self.offset_index.delete()?;
        self.time_index.delete()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use vltava_record::{BatchBuilder, Compression, batches};

    use super::FAIL_NEXT_WRITE_AFTER;
    use crate::{Log, LogConfig};

    fn batch(value: &[u8]) -> Bytes {
        let mut b = BatchBuilder::new(Compression::None);
        b.append(1_700_000_000_000, Some(b"k"), Some(value), &[]);
        b.build()
    }

    fn values(log: &Log) -> Vec<Vec<u8>> {
        values_from(log, log.log_start_offset())
    }

    fn values_from(log: &Log, offset: i64) -> Vec<Vec<u8>> {
        let read = log.read(offset, 1 << 20, None).unwrap();
        batches(read.records)
            .map(|b| {
                let b = b.expect("only whole batches are served");
                b.verify_crc().expect("only valid batches are served");
                b.records().unwrap()[0].value.clone().unwrap().to_vec()
            })
            .collect()
    }

    /// A log of three one-record batches ("one", "two", "three"), closed, its second batch damaged
    /// by `damage(file bytes, position of the second batch)`, and reopened: with an index entry per
    /// batch, recovery validates only what follows the last one, so it trusts the damage.
    fn reopened_with_damage(damage: impl FnOnce(&mut [u8], usize)) -> (tempfile::TempDir, Log) {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { index_interval_bytes: 1, ..LogConfig::default() };
        let mut log = Log::open(dir.path(), config.clone()).unwrap();
        for value in [b"one".as_slice(), b"two", b"three"] {
            log.append(batch(value), 0, 1).unwrap();
        }
        log.close().unwrap();
        let path = dir.path().join(format!("{:020}.log", 0));
        let mut bytes = std::fs::read(&path).unwrap();
        let second = vltava_record::batch_size_at(&bytes).unwrap();
        damage(&mut bytes, second);
        std::fs::write(&path, bytes).unwrap();
        let log = Log::open(dir.path(), config).unwrap();
        (dir, log)
    }

    /// Found by the `log_recovery` fuzz target: recovery trusts what lies below the recovery point
    /// (as Kafka does), so a batch damaged on disk after it was written was served as it was.
    #[test]
    fn a_batch_damaged_on_disk_is_never_served() {
        // Flip a byte inside the second batch's records.
        let (_dir, log) = reopened_with_damage(|bytes, second| bytes[second + 70] ^= 0xff);
        assert_eq!(log.log_end_offset(), 3, "recovery trusted the damaged batch");
        assert_eq!(values(&log), vec![b"one".to_vec()], "the batches before the damage are served");
        let err = log.read(1, 1 << 20, None).unwrap_err();
        assert!(matches!(err, crate::StorageError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("CRC-32C mismatch in the batch at offset 1"), "{err}");
        assert_eq!(log.read(2, 1 << 20, None).unwrap().first_offset, 2, "the batches after it are served");
    }

    /// Found by the `log_recovery` fuzz target: the base offset lies outside the CRC, so a
    /// damaged one (offsets going back) passed the CRC check of the read path.
    #[test]
    fn a_batch_whose_offset_was_damaged_is_never_served() {
        // Offset 1 becomes 0.
        let (_dir, log) =
            reopened_with_damage(|bytes, second| bytes[second..second + 8].copy_from_slice(&0i64.to_be_bytes()));
        assert_eq!(values(&log), vec![b"one".to_vec()], "the batch before the damage is served");
        // Reading on from the end of "one" reaches the damaged batch and reports it.
        let from_start = log.read(0, 1 << 20, None).unwrap();
        assert_eq!(batches(from_start.records).count(), 1);
        let next = Log::read(&log, 1, 1 << 20, None).unwrap();
        assert_eq!(next.first_offset, 2, "the index skips the damaged batch's offset: {next:?}");
        assert_eq!(values_from(&log, 2), vec![b"three".to_vec()]);
    }

    /// Found reading a broker's log after the chaos harness's disk-full fault: a write that failed
    /// halfway left its first bytes in the file; the next append landed after them while the indexes assumed it did
    /// not, so reads returned misaligned bytes and recovery cut the log at the torn batch.
    #[test]
    fn a_write_that_fails_halfway_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { index_interval_bytes: 1, ..LogConfig::default() };
        let mut log = Log::open(dir.path(), config.clone()).unwrap();
        log.append(batch(b"first"), 0, 1).unwrap();
        FAIL_NEXT_WRITE_AFTER.with(|f| f.set(Some(20)));
        let err = log.append(batch(b"lost to a full disk"), 0, 1).unwrap_err();
        assert!(err.to_string().contains("No space left"), "{err}");
        assert_eq!(log.log_end_offset(), 1, "the failed append took no offset");
        log.append(batch(b"second"), 0, 1).unwrap();
        assert_eq!(values(&log), vec![b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(log.read(1, 1 << 20, None).unwrap().first_offset, 1, "the index points at the second batch");
        drop(log);
        let log = Log::open(dir.path(), config).unwrap();
        assert_eq!(log.log_end_offset(), 2, "nothing is cut at recovery");
        assert_eq!(values(&log), vec![b"first".to_vec(), b"second".to_vec()]);
    }
}
