//! Kafka's ListOffsets `MAX_TIMESTAMP` (KIP-734): the record with the largest timestamp.

use vltava_record::RecordBatch;

use crate::StorageError;
use crate::log::Log;

impl Log {
    /// `(offset, timestamp)` of the record with the largest timestamp among the records at or
    /// above the log start offset and below `limit` (the high watermark or the last stable
    /// offset); the first such record when several share it. `None` when no record qualifies.
    ///
    /// Segments are visited from the largest timestamp down (ties: the earlier segment first),
    /// and the walk stops at the first segment that cannot beat the best found: usually only
    /// the segment holding the maximum is read, header by header, and only the winning batch is
    /// decoded. (A segment straddling the log start or `limit` may not reach its own maximum
    /// among the visible records; the next ones are then visited too.)
    pub fn offset_of_max_timestamp(&self, limit: i64) -> Result<Option<(i64, i64)>, StorageError> {
        let start = self.log_start_offset;
        let mut candidates: Vec<(&i64, &crate::segment::Segment)> =
            self.segments.iter().filter(|(base, seg)| seg.next_offset > start && **base < limit).collect();
        candidates.sort_by(|(a_base, a), (b_base, b)| b.max_timestamp.cmp(&a.max_timestamp).then(a_base.cmp(b_base)));
        // (max timestamp, segment base offset, position, header) of the best batch so far.
        let mut best: Option<(i64, i64, u64, crate::scan::BatchHeader)> = None;
        for (base, segment) in candidates {
            if let Some((ts, best_base, ..)) = &best
                && (segment.max_timestamp < *ts || (segment.max_timestamp == *ts && base > best_base))
            {
                break;
            }
            let mut pos = 0;
            while pos < segment.size {
                let header = segment.header_at(pos)?;
                if header.base_offset >= limit {
                    break;
                }
                let visible = header.last_offset >= start && header.record_count > 0;
                let better = best.as_ref().is_none_or(|(ts, best_base, ..)| {
                    header.max_timestamp > *ts || (header.max_timestamp == *ts && base < best_base)
                });
                if visible && better {
                    best = Some((header.max_timestamp, *base, pos, header));
                }
                pos += header.size;
            }
        }
        let Some((max, base, pos, header)) = best else { return Ok(None) };
        let segment = &self.segments[&base];
        let batch = RecordBatch::parse(segment.read_batch(pos, &header)?)?;
        let found = batch.records()?.into_iter().find(|r| r.offset >= start && r.timestamp == max);
        // The batch's header names the timestamp; should no record carry it, the batch stands for it.
        Ok(Some(found.map_or((header.last_offset, max), |r| (r.offset, r.timestamp))))
    }
}
