//! The leader-epoch cache (Kafka KIP-101/KIP-279): at which offset each leader epoch started.
//!
//! Entries `(epoch, start_offset)` are strictly increasing in both fields. The cache is kept in
//! memory and checkpointed atomically to `leader-epoch-checkpoint` in the partition directory
//! whenever it changes, in Kafka's text format:
//!
//! ```text
//! 0            version
//! 2            number of entries
//! 3 0          "{epoch} {start_offset}", one line per entry
//! 5 120
//! ```
//!
//! Crash safety does not depend on ordering the checkpoint against segment writes: on open the
//! cache is cut back to the recovered log (entries at or above the log end offset are dropped,
//! the first one is clamped to the log start offset), and a missing, unparsable or
//! inconsistent checkpoint is rebuilt from the batch headers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::checkpoint::{self, LEADER_EPOCH_FILE};
use crate::scan::scan;
use crate::segment::Segment;
use crate::{Log, StorageError};

/// Version on the first line of the checkpoint file.
const VERSION: u32 = 0;
/// Kafka's `UNDEFINED_EPOCH` / `UNDEFINED_EPOCH_OFFSET`.
pub(crate) const UNDEFINED: (i32, i64) = (-1, -1);

/// One cache entry: `epoch` was the leader epoch of the batches from `start_offset` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// The leader-epoch cache of one partition and its checkpoint file.
#[derive(Debug)]
pub(crate) struct LeaderEpochCache {
    dir: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the checkpoint from `dir`, or rebuilds it from the batch headers of `segments`
    /// when it is missing, unparsable or inconsistent (or empty while the log is not), then
    /// cuts it to `[log_start_offset, log_end_offset)`. Writes the file back if anything
    /// changed.
    pub(crate) fn recover(
        dir: &Path,
        segments: &BTreeMap<i64, Segment>,
        log_start_offset: i64,
        log_end_offset: i64,
    ) -> Result<LeaderEpochCache, StorageError> {
        let loaded = load(dir)?;
        let log_empty = log_end_offset <= log_start_offset;
        let (mut cache, mut dirty) = match loaded {
            Some(entries) if !entries.is_empty() || log_empty => {
                (LeaderEpochCache { dir: dir.to_path_buf(), entries }, false)
            }
            _ => {
                let entries = rebuild(segments)?;
                tracing::info!(dir = %dir.display(), entries = entries.len(), "rebuilt leader epoch cache from batches");
                (LeaderEpochCache { dir: dir.to_path_buf(), entries }, true)
            }
        };
        // Start first, so that an emptied log keeps no entry at its end offset either.
        dirty |= cache.cut_start(log_start_offset);
        dirty |= cache.cut_end(log_end_offset);
        if dirty {
            cache.persist()?;
        }
        Ok(cache)
    }

    /// The entries, oldest first.
    pub(crate) fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The newest epoch, if any.
    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that each `(epoch, start_offset)` (in order) starts a new epoch, skipping those
    /// whose epoch is negative or not newer than the latest cached one. As in Kafka, entries
    /// starting at or after a new entry's start offset are replaced by it (an epoch that
    /// never got a batch). Writes the checkpoint once if anything changed.
    pub(crate) fn assign(&mut self, epochs: impl IntoIterator<Item = (i32, i64)>) -> Result<(), StorageError> {
        let mut changed = false;
        for (epoch, start_offset) in epochs {
            changed |= self.push(epoch, start_offset);
        }
        if changed { self.persist() } else { Ok(()) }
    }

    /// Drops every entry starting at or after `end_offset` (truncation of the log's tail).
    pub(crate) fn truncate_from_end(&mut self, end_offset: i64) -> Result<(), StorageError> {
        if self.cut_end(end_offset) { self.persist() } else { Ok(()) }
    }

    /// Kafka's `truncateFromStart`: drops entries wholly below `start_offset`, keeping the
    /// latest entry at or below it with its start offset clamped to `start_offset`.
    pub(crate) fn truncate_from_start(&mut self, start_offset: i64) -> Result<(), StorageError> {
        if self.cut_start(start_offset) { self.persist() } else { Ok(()) }
    }

    /// Removes every entry (the log was emptied and restarted).
    pub(crate) fn clear(&mut self) -> Result<(), StorageError> {
        if self.entries.is_empty() {
            return Ok(());
        }
        self.entries.clear();
        self.persist()
    }

    /// `(largest cached epoch <= epoch, its end offset)`: the end offset is the start offset of
    /// the next cached epoch, or `log_end_offset` for the latest one. [`UNDEFINED`] when the
    /// cache is empty or `epoch` is below the first cached epoch.
    pub(crate) fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> (i32, i64) {
        let idx = self.entries.partition_point(|e| e.epoch <= epoch);
        if idx == 0 {
            return UNDEFINED;
        }
        let floor = self.entries[idx - 1];
        let end = self.entries.get(idx).map_or(log_end_offset, |next| next.start_offset);
        (floor.epoch, end)
    }

    /// In-memory append; true if the cache changed.
    fn push(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 || self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return false;
        }
        while let Some(last) = self.entries.last().copied().filter(|e| e.start_offset >= start_offset) {
            tracing::debug!(dir = %self.dir.display(), epoch = last.epoch, start = last.start_offset, new_epoch = epoch, "replacing leader epoch entry without batches");
            self.entries.pop();
        }
        self.entries.push(EpochEntry { epoch, start_offset });
        true
    }

    /// In-memory [`Self::truncate_from_end`]; true if the cache changed.
    fn cut_end(&mut self, end_offset: i64) -> bool {
        let keep = self.entries.partition_point(|e| e.start_offset < end_offset);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// In-memory [`Self::truncate_from_start`]; true if the cache changed.
    fn cut_start(&mut self, start_offset: i64) -> bool {
        if self.entries.first().is_none_or(|e| e.start_offset >= start_offset) {
            return false;
        }
        let below = self.entries.partition_point(|e| e.start_offset <= start_offset);
        let floor = self.entries[below - 1];
        self.entries.drain(..below);
        self.entries.insert(0, EpochEntry { epoch: floor.epoch, start_offset });
        true
    }

    /// Writes the checkpoint file atomically.
    fn persist(&self) -> Result<(), StorageError> {
        let mut text = format!("{VERSION}\n{}\n", self.entries.len());
        for e in &self.entries {
            writeln!(text, "{} {}", e.epoch, e.start_offset).expect("writing to a String");
        }
        checkpoint::write_text(&self.dir, LEADER_EPOCH_FILE, &text)
    }
}

impl Log {
    /// The newest leader epoch in the leader-epoch cache, `None` if the cache is empty.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// Answers an OffsetsForLeaderEpoch request: `(largest cached epoch <= epoch, end offset
    /// of that epoch)`, where the end offset is the start offset of the next higher cached
    /// epoch, or the log end offset for the latest epoch (also when `epoch` is newer than the
    /// latest). `(-1, -1)` (UNDEFINED) when the cache is empty or `epoch` is below the first
    /// cached epoch.
    ///
    /// Note: Apache Kafka answers `(epoch, first cached start offset)` for an epoch below
    /// the first one and UNDEFINED for an epoch above the latest; this API deliberately
    /// returns UNDEFINED and `(latest, LEO)` respectively.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// Records that leader epoch `epoch` starts at `offset`; a new leader calls it on election
    /// with its log end offset, before appending anything. A no-op if `epoch` is negative or
    /// not newer than [`Log::latest_epoch`]. Cached epochs starting at or after `offset` (they
    /// own no batch) are replaced. Checkpointed before returning.
    ///
    /// # Errors
    ///
    /// [`StorageError::OffsetOutOfRange`] if `offset` is outside `[log_start_offset,
    /// log_end_offset]`; I/O errors writing the checkpoint.
    pub fn assign_epoch_start_offset(&mut self, epoch: i32, offset: i64) -> Result<(), StorageError> {
        let leo = self.log_end_offset();
        if offset < self.log_start_offset || offset > leo {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: leo,
            });
        }
        self.epochs.assign([(epoch, offset)])
    }

    /// The leader-epoch cache as `(epoch, start_offset)` pairs, oldest first (strictly
    /// increasing in both). For tests and diagnostics.
    pub fn epoch_entries(&self) -> Vec<(i32, i64)> {
        self.epochs.entries().iter().map(|e| (e.epoch, e.start_offset)).collect()
    }
}

/// Reads the checkpoint; `None` (logged) if it is missing, unparsable or inconsistent.
fn load(dir: &Path) -> Result<Option<Vec<EpochEntry>>, StorageError> {
    let Some(text) = checkpoint::read_text(dir, LEADER_EPOCH_FILE)? else {
        return Ok(None);
    };
    match parse(&text) {
        Ok(entries) => Ok(Some(entries)),
        Err(reason) => {
            tracing::warn!(dir = %dir.display(), %reason, "ignoring leader epoch checkpoint");
            Ok(None)
        }
    }
}

/// Parses the checkpoint format; `Err` says what is wrong.
fn parse(text: &str) -> Result<Vec<EpochEntry>, String> {
    let mut lines = text.lines();
    let version = lines.next().ok_or("empty file")?;
    if version.trim().parse::<u32>() != Ok(VERSION) {
        return Err(format!("unsupported version {version:?}"));
    }
    let count = lines.next().ok_or("missing entry count")?;
    let count: usize = count.trim().parse().map_err(|_| format!("invalid entry count {count:?}"))?;
    let mut entries: Vec<EpochEntry> = Vec::new();
    for line in lines.by_ref().take(count) {
        let mut fields = line.split_whitespace();
        let (Some(epoch), Some(start), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(format!("invalid entry {line:?}"));
        };
        let entry = match (epoch.parse::<i32>(), start.parse::<i64>()) {
            (Ok(epoch), Ok(start_offset)) if epoch >= 0 && start_offset >= 0 => EpochEntry { epoch, start_offset },
            _ => return Err(format!("invalid entry {line:?}")),
        };
        if entries.last().is_some_and(|p| p.epoch >= entry.epoch || p.start_offset >= entry.start_offset) {
            return Err(format!("entry {line:?} does not follow the previous one"));
        }
        entries.push(entry);
    }
    if entries.len() != count {
        return Err(format!("expected {count} entries, found {}", entries.len()));
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err(format!("more than {count} entries"));
    }
    Ok(entries)
}

/// [`parse`] as plain pairs (the fuzz targets' entry).
#[cfg(feature = "fuzzing")]
pub(crate) fn parse_entries(text: &str) -> Result<Vec<(i32, i64)>, String> {
    parse(text).map(|e| e.into_iter().map(|e| (e.epoch, e.start_offset)).collect())
}

/// Rebuilds the cache from the batch headers of every segment (an entry wherever the epoch
/// grows), reading headers only.
fn rebuild(segments: &BTreeMap<i64, Segment>) -> Result<Vec<EpochEntry>, StorageError> {
    let mut cache = LeaderEpochCache { dir: PathBuf::new(), entries: Vec::new() };
    for segment in segments.values() {
        let end = scan(&segment.file, &segment.log_path, 0, segment.size, false, None, |_, h| {
            cache.push(h.partition_leader_epoch, h.base_offset);
        })?;
        if let Some(reason) = end.error {
            return Err(StorageError::Corrupt { path: segment.log_path.clone(), position: end.valid_end, reason });
        }
    }
    Ok(cache.entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let entries = entries.iter().map(|&(epoch, start_offset)| EpochEntry { epoch, start_offset }).collect();
        LeaderEpochCache { dir: PathBuf::new(), entries }
    }

    fn pairs(c: &LeaderEpochCache) -> Vec<(i32, i64)> {
        c.entries.iter().map(|e| (e.epoch, e.start_offset)).collect()
    }

    #[test]
    fn given_the_kafka_text_format_when_parsed_should_round_trip() {
        let c = cache(&[(1, 0), (4, 17), (9, 230)]);
        let mut text = format!("{VERSION}\n{}\n", c.entries.len());
        c.entries.iter().for_each(|e| writeln!(text, "{} {}", e.epoch, e.start_offset).unwrap());
        assert_eq!(text, "0\n3\n1 0\n4 17\n9 230\n");
        assert_eq!(parse(&text).unwrap(), c.entries);
        assert_eq!(parse("0\n0\n").unwrap(), vec![]);
    }

    #[test]
    fn given_malformed_files_when_parsed_should_be_rejected() {
        for bad in [
            "",
            "1\n0\n",
            "0\n",
            "0\nx\n",
            "0\n2\n1 0\n",
            "0\n1\n1 0\n2 5\n",
            "0\n1\n1\n",
            "0\n1\n1 0 3\n",
            "0\n1\n-1 0\n",
            "0\n2\n1 5\n2 5\n",
            "0\n2\n2 0\n2 5\n",
            "0\n2\n3 0\n2 5\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn given_a_new_epoch_at_an_existing_start_when_pushed_should_replace_the_empty_epoch() {
        let mut c = cache(&[(1, 0), (2, 10)]);
        assert!(c.push(3, 10));
        assert_eq!(pairs(&c), vec![(1, 0), (3, 10)]);
        assert!(!c.push(3, 20), "not newer");
        assert!(!c.push(-1, 20), "no epoch");
        assert!(c.push(5, 4));
        assert_eq!(pairs(&c), vec![(1, 0), (5, 4)]);
    }

    #[test]
    fn given_entries_when_cut_should_follow_kafka() {
        let mut c = cache(&[(1, 0), (2, 10), (4, 20)]);
        assert!(!c.cut_start(0));
        assert!(c.cut_start(15));
        assert_eq!(pairs(&c), vec![(2, 15), (4, 20)]);
        assert!(c.cut_start(20));
        assert_eq!(pairs(&c), vec![(4, 20)]);
        assert!(!c.cut_end(21));
        assert!(c.cut_end(20));
        assert!(c.entries.is_empty());
    }
}
