//! Which part of a compacted log a cleaning pass works on, and how dirty the log is.
//!
//! As in Kafka, a compacted log has a **clean section** (from the log start to the first dirty
//! offset: already compacted, at most one record per key) and a **dirty section** (written since
//! the last pass). Only whole segments that are inactive, wholly below the first unstable offset
//! (open transactions are not cleaned) and older than `min.compaction.lag.ms` are cleanable.
//! The first dirty offset survives restarts in the partition's `cleaner-offset-checkpoint` file
//! (one decimal offset); it only falls back (on truncation), so the clean section is always
//! truly clean.

use std::path::Path;

use crate::segment::Segment;
use crate::{Log, StorageError, checkpoint};

/// The file holding a log's first dirty offset.
pub(crate) const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// The cleaner's memory of one log.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CleanerState {
    /// Everything below this offset was compacted by an earlier pass.
    pub(crate) first_dirty: i64,
    /// When the last pass ended (not remembered across restarts).
    pub(crate) last_clean_ms: Option<i64>,
}

impl CleanerState {
    /// The state checkpointed in `dir`, or a log dirty from its start.
    pub(crate) fn load(dir: &Path, log_start_offset: i64) -> Result<CleanerState, StorageError> {
        let first_dirty = checkpoint::read(dir, CLEANER_CHECKPOINT_FILE)?.unwrap_or(log_start_offset);
        Ok(CleanerState { first_dirty, last_clean_ms: None })
    }
}

/// How dirty a compacted log is ([`Log::dirty_stats`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DirtyStats {
    /// Start of the dirty section.
    pub first_dirty_offset: i64,
    /// End of the cleanable part of the log (the active segment, an open transaction or
    /// `min.compaction.lag.ms` starts there).
    pub first_uncleanable_offset: i64,
    /// Bytes of the cleanable segments already compacted.
    pub clean_bytes: u64,
    /// Bytes of the cleanable segments written since.
    pub dirty_bytes: u64,
    /// The first batch time of the oldest dirty segment, if any.
    pub oldest_dirty_ms: Option<i64>,
    /// When the last cleaning pass of this log ended, if one did since it was opened.
    pub last_clean_ms: Option<i64>,
}

impl DirtyStats {
    /// Dirty bytes over cleanable bytes (0 when nothing is cleanable).
    pub fn ratio(&self) -> f64 {
        let total = self.clean_bytes + self.dirty_bytes;
        if total == 0 { 0.0 } else { self.dirty_bytes as f64 / total as f64 }
    }
}

/// The segments a pass may clean: the cleanable ones, in order.
pub(crate) struct Cleanable<'a> {
    pub(crate) segments: Vec<&'a Segment>,
    pub(crate) first_dirty: i64,
    pub(crate) end: i64,
}

impl Log {
    /// How dirty the log is, `None` when it is not compacted (`cleanup.policy` without
    /// `compact`).
    pub fn dirty_stats(&self, now_ms: i64) -> Option<DirtyStats> {
        if !self.config.compact {
            return None;
        }
        let c = self.cleanable(now_ms);
        let (mut clean_bytes, mut dirty_bytes, mut oldest_dirty_ms) = (0, 0, None);
        for s in &c.segments {
            if s.next_offset <= c.first_dirty {
                clean_bytes += s.size;
            } else {
                dirty_bytes += s.size;
                oldest_dirty_ms = oldest_dirty_ms.or(s.roll_base_ms.or(Some(s.largest_timestamp())));
            }
        }
        Some(DirtyStats {
            first_dirty_offset: c.first_dirty,
            first_uncleanable_offset: c.end,
            clean_bytes,
            dirty_bytes,
            oldest_dirty_ms,
            last_clean_ms: self.cleaner.last_clean_ms,
        })
    }

    /// Whether a broker's cleaner should compact the log now: it has dirty cleanable bytes,
    /// and their ratio reached `min.cleanable.dirty.ratio` or its oldest dirty record passed
    /// `max.compaction.lag.ms`.
    pub fn needs_cleaning(&self, now_ms: i64) -> bool {
        self.cleaning_due(now_ms).is_some()
    }

    /// How dirty the log is, when [`Log::needs_cleaning`] (one look at the segments for both).
    pub fn cleaning_due(&self, now_ms: i64) -> Option<DirtyStats> {
        let stats = self.dirty_stats(now_ms)?;
        let overdue =
            stats.oldest_dirty_ms.is_some_and(|t| now_ms.saturating_sub(t) > self.config.max_compaction_lag_ms);
        (stats.dirty_bytes > 0 && (stats.ratio() >= self.config.min_cleanable_dirty_ratio || overdue)).then_some(stats)
    }

    /// The cleanable segments (see the module documentation) and the first dirty offset within
    /// them.
    pub(crate) fn cleanable(&self, now_ms: i64) -> Cleanable<'_> {
        let active = self.active().base_offset;
        let unstable = self.producers.first_unstable_offset().unwrap_or(i64::MAX);
        let young = now_ms.saturating_sub(self.config.min_compaction_lag_ms);
        let mut segments = Vec::new();
        let mut end = active;
        for s in self.segments.values() {
            let ok = s.base_offset < active
                && s.next_offset <= unstable
                && (self.config.min_compaction_lag_ms == 0 || s.largest_timestamp() <= young);
            if !ok {
                end = s.base_offset;
                break;
            }
            segments.push(s);
        }
        let first_dirty = self.cleaner.first_dirty.clamp(self.log_start_offset, end.max(self.log_start_offset));
        Cleanable { segments, first_dirty, end }
    }

    /// Moves the first dirty offset (persisted first when it falls back, so that a crash never
    /// leaves dirty data counted as clean).
    pub(crate) fn set_first_dirty(&mut self, offset: i64) -> Result<(), StorageError> {
        if offset != self.cleaner.first_dirty {
            checkpoint::write(&self.dir, CLEANER_CHECKPOINT_FILE, offset)?;
            self.cleaner.first_dirty = offset;
        }
        Ok(())
    }

    /// The first dirty offset falls back to `offset` if it was beyond (the log was truncated).
    pub(crate) fn dirty_from(&mut self, offset: i64) -> Result<(), StorageError> {
        if self.cleaner.first_dirty > offset { self.set_first_dirty(offset) } else { Ok(()) }
    }
}

/// Splits consecutive segments (base offset, size, next offset) into groups (index ranges) to rewrite as one segment each (Kafka merges small
/// cleaned segments): a group's segments add up to at most `max_bytes` (their sizes before
/// cleaning) and its offsets fit a segment's 32-bit relative offsets.
pub(crate) fn group_segments(segments: &[(i64, u64, i64)], max_bytes: u64) -> Vec<std::ops::Range<usize>> {
    let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
    let (mut size, mut first) = (0u64, 0i64);
    for (i, &(base, bytes, next_offset)) in segments.iter().enumerate() {
        let fits = !groups.is_empty() && size + bytes <= max_bytes && next_offset - first <= i64::from(i32::MAX);
        if fits {
            groups.last_mut().expect("non-empty").end = i + 1;
            size += bytes;
        } else {
            groups.push(i..i + 1);
            (size, first) = (bytes, base);
        }
    }
    groups
}
