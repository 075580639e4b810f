//! Byte offsets of the RecordBatch v2 header fields (Kafka's `DefaultRecordBatch` layout), the
//! one definition every reader and writer of batch headers uses (this crate's [`RecordBatch`],
//! [`BatchBuilder`] and [`batches`], and the storage crate's header scanner and range reads).
//!
//! (This is the batch header; the key/value headers of a record are [`Header`](crate::Header).)
//!
//! All fields are big-endian. Each constant is the position of the field's first byte from the
//! start of the batch:
//!
//! | position | field | type |
//! | ---: | --- | --- |
//! | 0 | baseOffset | i64 |
//! | 8 | batchLength (bytes after this field) | i32 |
//! | 12 | partitionLeaderEpoch | i32 |
//! | 16 | magic (2) | i8 |
//! | 17 | crc (CRC-32C of bytes 21 to the end) | u32 |
//! | 21 | attributes | i16 |
//! | 23 | lastOffsetDelta | i32 |
//! | 27 | baseTimestamp | i64 |
//! | 35 | maxTimestamp | i64 |
//! | 43 | producerId | i64 |
//! | 51 | producerEpoch | i16 |
//! | 53 | baseSequence | i32 |
//! | 57 | recordCount | i32 |
//! | 61 | the records ([`HEADER_LEN`]) | |
//!
//! [`RecordBatch`]: crate::RecordBatch
//! [`BatchBuilder`]: crate::BatchBuilder
//! [`batches`]: crate::batches

/// `baseOffset` (i64): offset of the first record. Outside the CRC: the broker stamps it.
pub const BASE_OFFSET: usize = 0;
/// `batchLength` (i32): number of bytes after this field, i.e. the batch size minus
/// [`LOG_OVERHEAD`].
pub const BATCH_LENGTH: usize = 8;
/// Bytes before the first byte counted by `batchLength` (baseOffset and batchLength).
pub const LOG_OVERHEAD: usize = BATCH_LENGTH + 4;
/// `partitionLeaderEpoch` (i32): the leader epoch the broker stamps in. Outside the CRC.
pub const PARTITION_LEADER_EPOCH: usize = 12;
/// `magic` (i8): the batch format version, 2.
pub const MAGIC: usize = 16;
/// `crc` (u32): CRC-32C of everything from [`CRC_START`] to the end of the batch.
pub const CRC: usize = 17;
/// `attributes` (i16): compression codec, timestamp type, transactional and control bits.
pub const ATTRIBUTES: usize = 21;
/// First byte covered by the CRC (the attributes; everything before it may be rewritten).
pub const CRC_START: usize = ATTRIBUTES;
/// `lastOffsetDelta` (i32): the last record's offset minus `baseOffset`.
pub const LAST_OFFSET_DELTA: usize = 23;
/// Bytes of header that give a batch's offsets (up to and including `lastOffsetDelta`).
pub const OFFSETS_LEN: usize = LAST_OFFSET_DELTA + 4;
/// `baseTimestamp` (i64): timestamp of the first record.
pub const BASE_TIMESTAMP: usize = 27;
/// `maxTimestamp` (i64): the largest record timestamp.
pub const MAX_TIMESTAMP: usize = 35;
/// `producerId` (i64): -1 when the producer is not idempotent.
pub const PRODUCER_ID: usize = 43;
/// `producerEpoch` (i16).
pub const PRODUCER_EPOCH: usize = 51;
/// `baseSequence` (i32): sequence number of the first record.
pub const BASE_SEQUENCE: usize = 53;
/// `recordCount` (i32): number of records in the batch.
pub const RECORD_COUNT: usize = 57;
/// Size of the whole header: the records start here.
pub const HEADER_LEN: usize = RECORD_COUNT + 4;
/// Smallest valid `batchLength`: a header without records.
pub const MIN_BATCH_LENGTH: i32 = (HEADER_LEN - LOG_OVERHEAD) as i32;

/// Attribute bit 4: the batch belongs to a transaction.
pub const TRANSACTIONAL_FLAG: i16 = 0x10;
/// Attribute bit 5: the batch holds a control record (a transaction marker).
pub const CONTROL_FLAG: i16 = 0x20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_contiguous_and_match_kafkas_record_batch_v2() {
        // (position, size) of every field in order: each starts where the previous one ends.
        let fields = [
            (BASE_OFFSET, 8),
            (BATCH_LENGTH, 4),
            (PARTITION_LEADER_EPOCH, 4),
            (MAGIC, 1),
            (CRC, 4),
            (ATTRIBUTES, 2),
            (LAST_OFFSET_DELTA, 4),
            (BASE_TIMESTAMP, 8),
            (MAX_TIMESTAMP, 8),
            (PRODUCER_ID, 8),
            (PRODUCER_EPOCH, 2),
            (BASE_SEQUENCE, 4),
            (RECORD_COUNT, 4),
        ];
        let mut end = 0;
        for (at, size) in fields {
            assert_eq!(at, end);
            end = at + size;
        }
        assert_eq!(end, HEADER_LEN);
        assert_eq!(HEADER_LEN, 61, "Kafka's RECORD_BATCH_OVERHEAD");
        assert_eq!(LOG_OVERHEAD, 12);
        assert_eq!(MIN_BATCH_LENGTH, 49);
        assert_eq!(OFFSETS_LEN, 27);
        assert_eq!(CRC_START, 21);
    }
}
