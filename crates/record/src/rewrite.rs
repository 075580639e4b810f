//! What a partition leader may change in a produced batch before storing it, as the topic's
//! configuration asks: the compression codec (`compression.type`) and the timestamp type
//! (`message.timestamp.type=LogAppendTime`). Everything else is kept: the producer id, epoch and
//! base sequence, the transactional bit, every record's timestamp, key, value and headers, and
//! the records' order.

use bytes::{Bytes, BytesMut};

use crate::batch::TIMESTAMP_TYPE_FLAG;
use crate::header;
use crate::{BatchBuilder, Compression, RecordBatch, RecordError};

/// The batch recompressed with `codec` and/or stamped with `log_append_time`; `None` when
/// nothing changes (the codec is already `codec`, or no change is asked).
///
/// # Errors
///
/// The batch cannot be decoded, or its records' offset deltas are not 0, 1, 2, ... (as no
/// producer writes them otherwise), so it could not be rebuilt record for record.
pub fn rewrite_batch(
    batch: &RecordBatch,
    codec: Option<Compression>,
    log_append_time: Option<i64>,
) -> Result<Option<Bytes>, RecordError> {
    let recompress = codec.filter(|c| batch.compression().ok() != Some(*c));
    if recompress.is_none() && log_append_time.is_none() {
        return Ok(None);
    }
    let mut out = match recompress {
        Some(codec) => {
            let records = batch.records()?;
            let base = batch.base_offset();
            if records.iter().enumerate().any(|(i, r)| r.offset != base + i as i64) {
                return Err(RecordError::Malformed("offset deltas are not contiguous: cannot recompress".into()));
            }
            let mut builder = BatchBuilder::new(codec).with_producer(
                batch.producer_id(),
                batch.producer_epoch(),
                batch.base_sequence(),
            );
            builder.set_transactional(batch.is_transactional());
            for r in &records {
                builder.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &r.headers);
            }
            BytesMut::from(&builder.build_at(base)[..])
        }
        None => BytesMut::from(&batch.as_bytes()[..]),
    };
    if let Some(at) = log_append_time {
        let attributes =
            i16::from_be_bytes([out[header::ATTRIBUTES], out[header::ATTRIBUTES + 1]]) | TIMESTAMP_TYPE_FLAG;
        out[header::ATTRIBUTES..header::ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        out[header::MAX_TIMESTAMP..header::MAX_TIMESTAMP + 8].copy_from_slice(&at.to_be_bytes());
    }
    let crc = crc32c::crc32c(&out[header::CRC_START..]);
    out[header::CRC..header::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(Some(out.freeze()))
}

/// The batch with every record removed but its header kept: base offset, offset range
/// (`lastOffsetDelta`), timestamps, producer id, epoch and base sequence, transactional and
/// timestamp-type bits, leader epoch. A log cleaner keeps such an empty batch in place of a
/// producer's last batch, so that the producer's sequence numbers survive a rebuild of its state
/// from the log (as Kafka's cleaner does). Its codec becomes none (there is nothing to compress).
pub fn emptied_batch(batch: &RecordBatch) -> Bytes {
    let mut out = BytesMut::from(&batch.as_bytes()[..header::HEADER_LEN]);
    let length = (header::HEADER_LEN - header::LOG_OVERHEAD) as i32;
    out[header::BATCH_LENGTH..header::BATCH_LENGTH + 4].copy_from_slice(&length.to_be_bytes());
    let attributes = i16::from_be_bytes([out[header::ATTRIBUTES], out[header::ATTRIBUTES + 1]]) & !0x07;
    out[header::ATTRIBUTES..header::ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    out[header::RECORD_COUNT..header::RECORD_COUNT + 4].copy_from_slice(&0i32.to_be_bytes());
    let crc = crc32c::crc32c(&out[header::CRC_START..]);
    out[header::CRC..header::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Header;

    fn produced(codec: Compression) -> RecordBatch {
        let mut b = BatchBuilder::new(codec).with_producer(7, 2, 40);
        b.set_transactional(true);
        for i in 0..5 {
            let headers = [Header { key: "h".into(), value: Some(Bytes::from(format!("v{i}"))) }];
            b.append(
                1_000 + i,
                Some(format!("k{i}").as_bytes()),
                Some(format!("value-{i}").repeat(20).as_bytes()),
                &headers,
            );
        }
        b.append(1_010, None, None, &[]);
        RecordBatch::parse(b.build()).unwrap()
    }

    #[test]
    fn recompression_keeps_every_record_and_the_producer_fields() {
        let original = produced(Compression::None);
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let rewritten = RecordBatch::parse(rewrite_batch(&original, Some(codec), None).unwrap().unwrap()).unwrap();
            rewritten.validate().unwrap();
            assert_eq!(rewritten.compression().unwrap(), codec);
            assert_eq!(rewritten.records().unwrap(), original.records().unwrap());
            assert_eq!((rewritten.producer_id(), rewritten.producer_epoch(), rewritten.base_sequence()), (7, 2, 40));
            assert!(rewritten.is_transactional() && !rewritten.is_log_append_time());
            assert_eq!(rewritten.max_timestamp(), original.max_timestamp());
            // Back to uncompressed: the records again.
            let back = rewrite_batch(&rewritten, Some(Compression::None), None).unwrap().unwrap();
            assert_eq!(RecordBatch::parse(back).unwrap().records().unwrap(), original.records().unwrap());
        }
        assert_eq!(rewrite_batch(&original, Some(Compression::None), None).unwrap(), None, "already uncompressed");
        assert_eq!(rewrite_batch(&original, None, None).unwrap(), None);
    }

    #[test]
    fn log_append_time_stamps_the_batch_and_every_record_reads_it() {
        let original = produced(Compression::Lz4);
        let stamped = RecordBatch::parse(rewrite_batch(&original, None, Some(99_999)).unwrap().unwrap()).unwrap();
        stamped.validate().unwrap();
        assert!(stamped.is_log_append_time());
        assert_eq!(stamped.compression().unwrap(), Compression::Lz4, "the codec is kept");
        assert_eq!(stamped.max_timestamp(), 99_999);
        assert!(stamped.records().unwrap().iter().all(|r| r.timestamp == 99_999));
        let both =
            RecordBatch::parse(rewrite_batch(&original, Some(Compression::Zstd), Some(5)).unwrap().unwrap()).unwrap();
        both.validate().unwrap();
        assert!(both.records().unwrap().iter().all(|r| r.timestamp == 5));
    }

    #[test]
    fn an_emptied_batch_keeps_its_header_and_offset_range() {
        let batch = produced(Compression::Zstd);
        let empty = RecordBatch::parse(emptied_batch(&batch)).unwrap();
        empty.validate_stored().unwrap();
        assert!(empty.validate().is_err(), "a produced batch must hold records");
        assert_eq!(empty.records().unwrap(), vec![]);
        assert_eq!(empty.record_count(), 0);
        assert_eq!(empty.compression().unwrap(), Compression::None);
        assert_eq!(
            (empty.base_offset(), empty.last_offset(), empty.max_timestamp()),
            (batch.base_offset(), batch.last_offset(), batch.max_timestamp())
        );
        assert_eq!(
            (empty.producer_id(), empty.producer_epoch(), empty.base_sequence(), empty.is_transactional()),
            (7, 2, 40, true)
        );
    }
}
