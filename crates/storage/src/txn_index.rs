//! The aborted-transaction index (Kafka's `.txnindex`): for each segment, the transactions
//! whose ABORT marker is in it. A read_committed fetch returns the aborted transactions that
//! overlap the fetched range, and the consumer drops their records.
//!
//! File `{segment_base:020}.txnindex`: Kafka's 34-byte entries, big-endian: `version i16 (0)`,
//! `producer_id i64`, `first_offset i64`, `last_offset i64` (the ABORT marker's offset),
//! `last_stable_offset i64` (the partition's last stable offset once this transaction ended:
//! the first offset of the oldest transaction still open, or `last_offset + 1`). A fetch stops
//! looking at later segments once an entry's `last_stable_offset` reaches the end of the fetched
//! range: no transaction still open then started inside it.
//!
//! Aborts are rare, so each change rewrites the segment's file atomically (temporary file,
//! fsync, rename): a file is never torn. On open, entries are checked (version, offsets inside
//! their segment and below the log end, ordered); entries of markers lost in a crash are
//! dropped, and markers the file missed are added back by the producer-state scan of the log's
//! tail (see `producer_state`). A file failing its checks is rebuilt from the whole log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::StorageError;
use crate::checkpoint;
use crate::error::IoContext;
use crate::index::remove_if_exists;
use crate::producer_state::CompletedTxn;
use crate::segment::{Segment, segment_path};

/// Extension of aborted-transaction index files.
pub(crate) const TXN_INDEX_EXT: &str = "txnindex";

const ENTRY_LEN: usize = 34;
const VERSION: i16 = 0;

/// One aborted transaction in a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer that aborted it.
    pub producer_id: i64,
    /// Offset of its first record in this partition.
    pub first_offset: i64,
    /// Offset of its ABORT marker.
    pub last_offset: i64,
    /// The partition's last stable offset right after it ended.
    pub last_stable_offset: i64,
}

/// The aborted transactions of every segment of a log (see the module documentation).
#[derive(Debug)]
pub(crate) struct TxnIndex {
    dir: PathBuf,
    /// Entries by segment base offset, in marker order.
    by_segment: BTreeMap<i64, Vec<AbortedTxn>>,
}

impl TxnIndex {
    /// Loads the index files of the segments `bounds` (base offset to end offset, exclusive),
    /// deleting files of segments that no longer exist and dropping entries at or above the log
    /// end. The second value is true when a file failed its checks (the caller rebuilds the
    /// index from the whole log, starting from [`TxnIndex::empty`]).
    pub(crate) fn load(dir: &Path, bounds: &[(i64, i64)]) -> Result<(TxnIndex, bool), StorageError> {
        let mut index = TxnIndex::empty(dir);
        let mut damaged = false;
        for entry in std::fs::read_dir(dir).at(dir)? {
            let path = entry.at(dir)?.path();
            let Some(base) = parse_name(&path) else { continue };
            let Some(&(_, end)) = bounds.iter().find(|(b, _)| *b == base) else {
                tracing::warn!(path = %path.display(), "removing a transaction index without a segment");
                remove_if_exists(&path)?;
                continue;
            };
            let bytes = std::fs::read(&path).at(&path)?;
            match decode(&bytes, base) {
                Ok(entries) => {
                    let kept: Vec<AbortedTxn> = entries.into_iter().filter(|e| e.last_offset < end).collect();
                    if kept.len() * ENTRY_LEN != bytes.len() {
                        index.by_segment.insert(base, kept);
                        index.persist(base)?;
                    } else if !kept.is_empty() {
                        index.by_segment.insert(base, kept);
                    }
                }
                Err(reason) => {
                    tracing::warn!(path = %path.display(), %reason, "transaction index is damaged; rebuilding it from the log");
                    damaged = true;
                }
            }
        }
        if damaged {
            index.clear()?;
        }
        Ok((index, damaged))
    }

    /// An index with no entry (files are written as entries are added).
    pub(crate) fn empty(dir: &Path) -> TxnIndex {
        TxnIndex { dir: dir.to_path_buf(), by_segment: BTreeMap::new() }
    }

    /// Records `txn`, whose marker is in the segment at `segment_base`; a no-op when an entry
    /// for the same marker is already there (a recovery scan re-applying the log's tail).
    pub(crate) fn add(&mut self, segment_base: i64, txn: AbortedTxn) -> Result<(), StorageError> {
        let entries = self.by_segment.entry(segment_base).or_default();
        if entries.iter().any(|e| e.last_offset == txn.last_offset) {
            return Ok(());
        }
        let at = entries.partition_point(|e| e.last_offset < txn.last_offset);
        entries.insert(at, txn);
        self.persist(segment_base)
    }

    /// The aborted transactions overlapping `[fetch_offset, upper)`, oldest marker first.
    pub(crate) fn collect(&self, fetch_offset: i64, upper: i64) -> Vec<AbortedTxn> {
        let start = self.by_segment.range(..=fetch_offset).next_back().map_or(i64::MIN, |(b, _)| *b);
        let mut out = Vec::new();
        for entries in self.by_segment.range(start..).map(|(_, e)| e) {
            for e in entries {
                if e.last_offset >= fetch_offset && e.first_offset < upper {
                    out.push(*e);
                }
                if e.last_stable_offset >= upper {
                    return out;
                }
            }
        }
        out
    }

    /// Drops entries whose marker is at or above `end` (the log was truncated there).
    pub(crate) fn truncate_to(&mut self, end: i64) -> Result<(), StorageError> {
        let touched: Vec<i64> = self
            .by_segment
            .iter()
            .filter(|(_, entries)| entries.last().is_some_and(|e| e.last_offset >= end))
            .map(|(b, _)| *b)
            .collect();
        for base in touched {
            if let Some(entries) = self.by_segment.get_mut(&base) {
                entries.retain(|e| e.last_offset < end);
            }
            self.persist(base)?;
        }
        Ok(())
    }

    /// Moves the entries of the segments `from` into the segment at `into` (the cleaner merged
    /// them); the files of `from` are left for the merge to delete.
    pub(crate) fn merge_into(&mut self, into: i64, from: &[i64]) -> Result<(), StorageError> {
        let moved: Vec<AbortedTxn> = from.iter().filter_map(|b| self.by_segment.remove(b)).flatten().collect();
        if moved.is_empty() {
            return Ok(());
        }
        let entries = self.by_segment.entry(into).or_default();
        entries.extend(moved);
        entries.sort_by_key(|e| e.last_offset);
        self.persist(into)
    }

    /// Deletes the index of the segment at `base` (the segment was deleted).
    pub(crate) fn remove_segment(&mut self, base: i64) -> Result<(), StorageError> {
        self.by_segment.remove(&base);
        remove_if_exists(&segment_path(&self.dir, base, TXN_INDEX_EXT))
    }

    /// Deletes every entry and file.
    pub(crate) fn clear(&mut self) -> Result<(), StorageError> {
        for entry in std::fs::read_dir(&self.dir).at(&self.dir)? {
            let path = entry.at(&self.dir)?.path();
            if parse_name(&path).is_some() {
                remove_if_exists(&path)?;
            }
        }
        self.by_segment.clear();
        Ok(())
    }

    /// Rewrites the file of the segment at `base` (removes it when it has no entry left).
    fn persist(&mut self, base: i64) -> Result<(), StorageError> {
        let entries = self.by_segment.get(&base).map(Vec::as_slice).unwrap_or_default();
        if entries.is_empty() {
            self.by_segment.remove(&base);
            return remove_if_exists(&segment_path(&self.dir, base, TXN_INDEX_EXT));
        }
        let mut bytes = Vec::with_capacity(entries.len() * ENTRY_LEN);
        for e in entries {
            bytes.extend_from_slice(&VERSION.to_be_bytes());
            bytes.extend_from_slice(&e.producer_id.to_be_bytes());
            bytes.extend_from_slice(&e.first_offset.to_be_bytes());
            bytes.extend_from_slice(&e.last_offset.to_be_bytes());
            bytes.extend_from_slice(&e.last_stable_offset.to_be_bytes());
        }
        let name = format!("{base:020}.{TXN_INDEX_EXT}");
        checkpoint::write_bytes(&self.dir, &name, &bytes)
    }
}

/// The base offset of the segment holding `offset`.
fn segment_base_of(segments: &BTreeMap<i64, Segment>, offset: i64) -> i64 {
    segments.range(..=offset).next_back().map_or(offset, |(base, _)| *base)
}

/// Records an ended transaction in the aborted-transaction index if it aborted;
/// `first_unstable` is the partition's first unstable offset right after it ended.
pub(crate) fn index_completed(
    aborted: &mut TxnIndex,
    segments: &BTreeMap<i64, Segment>,
    done: CompletedTxn,
    first_unstable: Option<i64>,
) -> Result<(), StorageError> {
    if !done.aborted {
        return Ok(());
    }
    let txn = AbortedTxn {
        producer_id: done.producer_id,
        first_offset: done.first_offset,
        last_offset: done.last_offset,
        last_stable_offset: first_unstable.unwrap_or(done.last_offset + 1),
    };
    aborted.add(segment_base_of(segments, done.last_offset), txn)
}

/// The segment base offset of a `{base:020}.txnindex` path.
fn parse_name(path: &Path) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(&format!(".{TXN_INDEX_EXT}"))?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok())?
}

/// [`decode`] for the fuzz targets: the number of entries.
#[cfg(feature = "fuzzing")]
pub(crate) fn decode_entries(bytes: &[u8], base: i64) -> Result<usize, String> {
    decode(bytes, base).map(|e| e.len())
}

/// Decodes a segment's entries; `Err` says why the file cannot be trusted.
fn decode(bytes: &[u8], base: i64) -> Result<Vec<AbortedTxn>, String> {
    if !bytes.len().is_multiple_of(ENTRY_LEN) {
        return Err(format!("size {} is not a multiple of {ENTRY_LEN}", bytes.len()));
    }
    let mut out: Vec<AbortedTxn> = Vec::with_capacity(bytes.len() / ENTRY_LEN);
    for chunk in bytes.chunks_exact(ENTRY_LEN) {
        let i64_at = |at: usize| i64::from_be_bytes(chunk[at..at + 8].try_into().expect("8 bytes"));
        let version = i16::from_be_bytes([chunk[0], chunk[1]]);
        let e = AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        };
        if version != VERSION {
            return Err(format!("entry version {version}"));
        }
        if e.producer_id < 0
            || e.first_offset < 0
            || e.first_offset > e.last_offset
            || e.last_offset < base
            || e.last_stable_offset < 0
            || out.last().is_some_and(|p| p.last_offset >= e.last_offset)
        {
            return Err(format!("invalid entry {e:?}"));
        }
        out.push(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn { producer_id: pid, first_offset: first, last_offset: last, last_stable_offset: lso }
    }

    #[test]
    fn entries_survive_a_reload_and_collect_finds_overlapping_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TxnIndex::empty(dir.path());
        index.add(0, txn(1, 2, 5, 6)).unwrap();
        index.add(0, txn(2, 3, 8, 9)).unwrap();
        index.add(10, txn(3, 4, 12, 13)).unwrap();
        index.add(10, txn(3, 4, 12, 13)).unwrap(); // re-applied: still one entry
        let (index, damaged) = TxnIndex::load(dir.path(), &[(0, 10), (10, 20)]).unwrap();
        assert!(!damaged);
        assert_eq!(index.collect(0, 20).len(), 3);
        assert_eq!(index.collect(6, 20), vec![txn(2, 3, 8, 9), txn(3, 4, 12, 13)]);
        // Stops at the first entry whose last stable offset covers the range.
        assert_eq!(index.collect(0, 4), vec![txn(1, 2, 5, 6)]);
        assert_eq!(index.collect(13, 20), vec![]);
    }

    #[test]
    fn entries_beyond_the_log_end_are_dropped_and_a_damaged_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TxnIndex::empty(dir.path());
        index.add(0, txn(1, 2, 5, 6)).unwrap();
        index.add(0, txn(2, 3, 8, 9)).unwrap();
        let (index, damaged) = TxnIndex::load(dir.path(), &[(0, 7)]).unwrap();
        assert!(!damaged);
        assert_eq!(index.collect(0, 100), vec![txn(1, 2, 5, 6)]);
        assert_eq!(std::fs::metadata(segment_path(dir.path(), 0, TXN_INDEX_EXT)).unwrap().len(), 34);

        let path = segment_path(dir.path(), 0, TXN_INDEX_EXT);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.push(0); // torn
        std::fs::write(&path, &bytes).unwrap();
        let (index, damaged) = TxnIndex::load(dir.path(), &[(0, 7)]).unwrap();
        assert!(damaged);
        assert!(index.collect(0, 100).is_empty());
        assert!(!path.exists());
    }

    #[test]
    fn truncation_and_segment_removal_drop_entries_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TxnIndex::empty(dir.path());
        index.add(0, txn(1, 2, 5, 6)).unwrap();
        index.add(10, txn(2, 3, 12, 13)).unwrap();
        index.truncate_to(12).unwrap();
        assert_eq!(index.collect(0, 100), vec![txn(1, 2, 5, 6)]);
        assert!(!segment_path(dir.path(), 10, TXN_INDEX_EXT).exists());
        index.remove_segment(0).unwrap();
        assert!(!segment_path(dir.path(), 0, TXN_INDEX_EXT).exists());
        assert!(index.collect(0, 100).is_empty());
    }
}
