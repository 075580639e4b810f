//! Retention: deleting whole segments by `retention.ms` and `retention.bytes`.

use crate::checkpoint::{self, LOG_START_OFFSET_FILE};
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
            self.aborted.remove_segment(base)?;
        }
        outcome.log_start_offset = self.log_start_offset;
        Ok(outcome)
    }
}
