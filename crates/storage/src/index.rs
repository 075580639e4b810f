//! Sparse offset and time indexes: kept in memory as a `Vec`, appended to their files lazily
//! (on flush, roll and close), and rebuilt from the log whenever they look wrong.
//!
//! - Offset index entry (8 bytes): relative offset u32 BE (batch base offset minus segment
//!   base offset), file position u32 BE of that batch.
//! - Time index entry (12 bytes): timestamp i64 BE, relative offset u32 BE of the first batch
//!   whose max timestamp reached that value.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::StorageError;
use crate::error::IoContext;

/// One fixed-size index entry.
pub(crate) trait Entry: Copy {
    const SIZE: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(b: &[u8]) -> Self;
    /// Relative offset the entry refers to.
    fn rel(&self) -> u32;
    /// True if `self` may follow `prev` in a valid index.
    fn follows(&self, prev: &Self) -> bool;
}

/// Offset index entry: batch base offset (relative) → file position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub rel: u32,
    pub pos: u32,
}

impl Entry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.rel.to_be_bytes());
        out.extend_from_slice(&self.pos.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            rel: u32::from_be_bytes(b[0..4].try_into().expect("4 bytes")),
            pos: u32::from_be_bytes(b[4..8].try_into().expect("4 bytes")),
        }
    }
    fn rel(&self) -> u32 {
        self.rel
    }
    fn follows(&self, prev: &Self) -> bool {
        self.rel > prev.rel && self.pos > prev.pos
    }
}

/// Time index entry: max timestamp so far → relative offset of the batch that reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: i64,
    pub rel: u32,
}

impl Entry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.rel.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        TimeEntry {
            timestamp: i64::from_be_bytes(b[0..8].try_into().expect("8 bytes")),
            rel: u32::from_be_bytes(b[8..12].try_into().expect("4 bytes")),
        }
    }
    fn rel(&self) -> u32 {
        self.rel
    }
    fn follows(&self, prev: &Self) -> bool {
        self.timestamp > prev.timestamp && self.rel >= prev.rel
    }
}

/// An index file mirrored in memory.
#[derive(Debug)]
pub(crate) struct Index<E: Entry> {
    path: PathBuf,
    entries: Vec<E>,
    /// Entries `[..persisted]` have been written to the file.
    persisted: usize,
    /// The file has writes (or a truncation) not yet fsynced.
    unsynced: bool,
}

pub(crate) type OffsetIndex = Index<OffsetEntry>;
pub(crate) type TimeIndex = Index<TimeEntry>;

impl<E: Entry> Index<E> {
    /// An empty index whose file is created (empty) now.
    pub(crate) fn create(path: PathBuf) -> Result<Self, StorageError> {
        File::create(&path).at(&path)?;
        Ok(Index { path, entries: Vec::new(), persisted: 0, unsynced: true })
    }

    /// An index built in memory (e.g. from a log scan); call [`Index::rewrite`] to store it.
    pub(crate) fn from_entries(path: PathBuf, entries: Vec<E>) -> Self {
        Index { path, entries, persisted: 0, unsynced: true }
    }

    /// Loads the index file. `Ok(Err(reason))` if it is missing or structurally invalid
    /// (size not a multiple of the entry size, entries not monotonic).
    pub(crate) fn load(path: PathBuf) -> Result<Result<Self, String>, StorageError> {
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Err("missing".into()));
            }
            Err(e) => return Err(StorageError::io(path, e)),
        };
        if data.len() % E::SIZE != 0 {
            return Ok(Err(format!("size {} is not a multiple of {}", data.len(), E::SIZE)));
        }
        let entries: Vec<E> = data.chunks_exact(E::SIZE).map(E::decode).collect();
        if let Some(i) = entries.windows(2).position(|w| !w[1].follows(&w[0])) {
            return Ok(Err(format!("entry {} is not monotonic", i + 1)));
        }
        let persisted = entries.len();
        Ok(Ok(Index { path, entries, persisted, unsynced: false }))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn entries(&self) -> &[E] {
        &self.entries
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn last(&self) -> Option<E> {
        self.entries.last().copied()
    }

    pub(crate) fn push(&mut self, entry: E) {
        self.entries.push(entry);
    }

    /// Appends the entries not yet in the file; fsyncs when `sync` and anything is unsynced.
    pub(crate) fn persist(&mut self, sync: bool) -> Result<(), StorageError> {
        let pending = &self.entries[self.persisted..];
        if pending.is_empty() && !(sync && self.unsynced) {
            return Ok(());
        }
        let mut file = OpenOptions::new().append(true).create(true).open(&self.path).at(&self.path)?;
        if !pending.is_empty() {
            let mut buf = Vec::with_capacity(pending.len() * E::SIZE);
            pending.iter().for_each(|e| e.encode(&mut buf));
            file.write_all(&buf).at(&self.path)?;
            self.persisted = self.entries.len();
            self.unsynced = true;
        }
        if sync {
            file.sync_data().at(&self.path)?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Replaces the file with all in-memory entries (used after a rebuild).
    pub(crate) fn rewrite(&mut self) -> Result<(), StorageError> {
        let mut buf = Vec::with_capacity(self.entries.len() * E::SIZE);
        self.entries.iter().for_each(|e| e.encode(&mut buf));
        std::fs::write(&self.path, &buf).at(&self.path)?;
        self.persisted = self.entries.len();
        self.unsynced = true;
        Ok(())
    }

    /// Drops every entry whose relative offset is `>= rel`, in memory and in the file.
    pub(crate) fn truncate_from(&mut self, rel: u32) -> Result<(), StorageError> {
        let keep = self.entries.partition_point(|e| e.rel() < rel);
        if keep == self.entries.len() {
            return Ok(());
        }
        self.entries.truncate(keep);
        if self.persisted > keep {
            self.persisted = keep;
            let file = OpenOptions::new().write(true).open(&self.path).at(&self.path)?;
            file.set_len((keep * E::SIZE) as u64).at(&self.path)?;
            self.unsynced = true;
        }
        Ok(())
    }

    pub(crate) fn delete(&self) -> Result<(), StorageError> {
        remove_if_exists(&self.path)
    }
}

impl OffsetIndex {
    /// The entry with the largest relative offset `<= rel`.
    pub(crate) fn lookup(&self, rel: u32) -> Option<OffsetEntry> {
        let i = self.entries.partition_point(|e| e.rel <= rel);
        i.checked_sub(1).map(|i| self.entries[i])
    }

    /// The first entry with relative offset `>= rel`.
    pub(crate) fn first_at_or_after(&self, rel: u32) -> Option<OffsetEntry> {
        let i = self.entries.partition_point(|e| e.rel < rel);
        self.entries.get(i).copied()
    }
}

impl TimeIndex {
    /// The entry with the largest timestamp `<= timestamp`.
    pub(crate) fn lookup(&self, timestamp: i64) -> Option<TimeEntry> {
        let i = self.entries.partition_point(|e| e.timestamp <= timestamp);
        i.checked_sub(1).map(|i| self.entries[i])
    }

    /// Appends `(timestamp, rel)` if `timestamp` is larger than the last entry's.
    pub(crate) fn maybe_push(&mut self, timestamp: i64, rel: u32) {
        if timestamp >= 0 && self.last().is_none_or(|e| timestamp > e.timestamp) {
            self.push(TimeEntry { timestamp, rel });
        }
    }
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StorageError::io(path, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_find_floor_and_ceiling_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = OffsetIndex::create(dir.path().join("a.index")).unwrap();
        for (rel, pos) in [(0, 0), (10, 100), (20, 250)] {
            idx.push(OffsetEntry { rel, pos });
        }
        assert_eq!(idx.lookup(15), Some(OffsetEntry { rel: 10, pos: 100 }));
        assert_eq!(idx.lookup(20).unwrap().pos, 250);
        assert_eq!(idx.first_at_or_after(11).unwrap().rel, 20);
        assert_eq!(idx.first_at_or_after(21), None);
    }

    #[test]
    fn persisted_entries_reload_and_truncation_shrinks_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.timeindex");
        let mut idx = TimeIndex::create(path.clone()).unwrap();
        idx.maybe_push(100, 0);
        idx.maybe_push(90, 1); // not larger: skipped
        idx.maybe_push(200, 5);
        idx.persist(true).unwrap();
        idx.maybe_push(300, 9);
        idx.persist(false).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 36);
        idx.truncate_from(5).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 12);
        let loaded = TimeIndex::load(path).unwrap().unwrap();
        assert_eq!(loaded.entries(), &[TimeEntry { timestamp: 100, rel: 0 }]);
    }

    #[test]
    fn invalid_files_are_reported_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        assert!(OffsetIndex::load(path.clone()).unwrap().is_err());
        std::fs::write(&path, [0u8; 9]).unwrap();
        assert!(OffsetIndex::load(path.clone()).unwrap().is_err());
        let mut bytes = Vec::new();
        OffsetEntry { rel: 5, pos: 50 }.encode(&mut bytes);
        OffsetEntry { rel: 3, pos: 80 }.encode(&mut bytes);
        std::fs::write(&path, bytes).unwrap();
        assert!(OffsetIndex::load(path).unwrap().is_err());
    }
}
