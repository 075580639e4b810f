//! Removing data: retention, truncation (replication), close and delete.

use crate::checkpoint::{self, CLEAN_SHUTDOWN_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
use crate::error::IoContext;
use crate::segment::Segment;
use crate::{Log, StorageError};

/// What [`Log::apply_retention`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Number of segments deleted.
    pub deleted_segments: usize,
    /// Bytes of segment data deleted.
    pub deleted_bytes: u64,
    /// The log start offset afterwards.
    pub log_start_offset: i64,
}

impl Log {
    /// Deletes whole segments from the oldest while they are expired by `retention.ms`
    /// (largest timestamp older than `now_ms - retention.ms`) or removable under
    /// `retention.bytes` (the log stays at least that big without them). If every segment,
    /// including a non-empty active one, is deletable, a new active segment is rolled first
    /// (as Kafka does); an empty active segment is never deleted. Moves the log start offset
    /// to the first remaining segment and checkpoints it before deleting files.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<RetentionOutcome, StorageError> {
        let mut size_excess = if self.config.retention_bytes >= 0 {
            self.size_bytes() as i64 - self.config.retention_bytes
        } else {
            i64::MIN
        };
        let cutoff =
            if self.config.retention_ms >= 0 { Some(now_ms.saturating_sub(self.config.retention_ms)) } else { None };
        let mut deletable = Vec::new();
        let count = self.segments.len();
        for (i, segment) in self.segments.values().enumerate() {
            if i + 1 == count && segment.is_empty() {
                break;
            }
            let by_time = cutoff.is_some_and(|c| segment.largest_timestamp() < c);
            let by_size = size_excess != i64::MIN && size_excess - segment.size as i64 >= 0;
            if !(by_time || by_size) {
                break;
            }
            if size_excess != i64::MIN {
                size_excess -= segment.size as i64;
            }
            deletable.push(segment.base_offset);
        }
        let mut outcome =
            RetentionOutcome { deleted_segments: 0, deleted_bytes: 0, log_start_offset: self.log_start_offset };
        if deletable.is_empty() {
            return Ok(outcome);
        }
        if deletable.len() == count {
            self.roll(now_ms)?;
        }
        let new_start = self
            .segments
            .keys()
            .copied()
            .find(|b| !deletable.contains(b))
            .expect("the active segment is never deleted");
        self.log_start_offset = self.log_start_offset.max(new_start);
        checkpoint::write(&self.dir, LOG_START_OFFSET_FILE, self.log_start_offset)?;
        self.epochs.truncate_from_start(self.log_start_offset)?;
        for base in deletable {
            let segment = self.segments.remove(&base).expect("listed above");
            outcome.deleted_segments += 1;
            outcome.deleted_bytes += segment.size;
            tracing::info!(dir = %self.dir.display(), base, bytes = segment.size, "deleting segment by retention");
            segment.delete()?;
        }
        outcome.log_start_offset = self.log_start_offset;
        Ok(outcome)
    }

    /// Removes every record at or above `offset`, at batch granularity: the batch containing
    /// `offset` is removed whole, so the new log end offset is that batch's base offset (which
    /// equals `offset` when `offset` is a batch boundary). A no-op if `offset >= LEO`. If
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
        }
        let segment = self.active_mut();
        if let Some((pos, header)) = segment.find_batch(offset)? {
            let dropped = segment.truncate(pos, header.base_offset)?;
            tracing::info!(offset, new_end = header.base_offset, dropped, "truncated log");
        }
        segment.flush()?;
        let leo = self.log_end_offset();
        self.epochs.truncate_from_end(leo)?;
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
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        std::fs::File::create(&marker).and_then(|f| f.sync_all()).at(&marker)?;
        checkpoint::sync_dir(&self.dir)
    }

    /// Deletes the log's directory and everything in it.
    pub fn delete(self) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        drop(self);
        std::fs::remove_dir_all(&dir).at(&dir)
    }
}
