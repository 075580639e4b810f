//! The parsers of the small files in a partition or data directory, exposed to the fuzz targets
//! (`fuzz/`, feature `fuzzing`). Each returns `Err` with a reason for content it rejects; none
//! may panic or allocate beyond the input's size, whatever the bytes.

/// Parses a `leader-epoch-checkpoint` file; `(epoch, start offset)` pairs.
pub fn leader_epoch_checkpoint(text: &str) -> Result<Vec<(i32, i64)>, String> {
    crate::epoch_cache::parse_entries(text)
}

/// Parses a `replication-offset-checkpoint` file; the number of entries.
pub fn high_watermark_checkpoint(text: &str) -> Result<usize, String> {
    crate::checkpoint::parse_high_watermarks(text).map(|e| e.len())
}

/// Decodes a producer-state `.snapshot` file; the number of producers.
pub fn producer_snapshot(bytes: &[u8]) -> Result<usize, String> {
    crate::producer_state::decode_snapshot(bytes)
}

/// Decodes a `.txnindex` file of the segment starting at `base`; the number of entries.
pub fn txn_index(bytes: &[u8], base: i64) -> Result<usize, String> {
    crate::txn_index::decode_entries(bytes, base)
}
