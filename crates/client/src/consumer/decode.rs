//! Turns a partition's fetched bytes into [`ConsumerRecord`]s.
//!
//! The rules (records below the fetch position skipped, control batches skipped but advancing
//! the position, a partial trailing batch ending the data) are [`vltava_record::decode_fetched`]'s,
//! shared with the gateway; this module adds the topic and partition and the client's error.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::ClientError;
use crate::types::ConsumerRecord;

/// The records of one partition's fetch at or after the fetch position.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    /// Records in offset order.
    pub records: Vec<ConsumerRecord>,
    /// The position once every record is consumed: after the last whole batch (at least the
    /// fetch position).
    pub next_offset: i64,
}

/// Decodes the batches in `data` fetched from `position`, dropping the records of the
/// `aborted` transactions (a read_committed fetch's list; empty otherwise).
pub(crate) fn decode_partition(
    topic: &Arc<str>,
    partition: i32,
    data: Bytes,
    position: i64,
    check_crcs: bool,
    aborted: &[vltava_record::AbortedTransaction],
) -> Result<Decoded, ClientError> {
    let fetched = vltava_record::decode_fetched_committed(data, position, check_crcs, aborted)
        .map_err(|source| ClientError::Corrupt { topic: topic.to_string(), partition, source })?;
    let records = fetched
        .records
        .into_iter()
        .map(|r| ConsumerRecord {
            topic: topic.clone(),
            partition,
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: r.headers,
        })
        .collect();
    Ok(Decoded { records, next_offset: fetched.next_offset })
}

#[cfg(test)]
mod tests {
    //! What a fetch delivers (positions, control batches, partial batches, CRC checks) is
    //! specified by `vltava_record::fetched`'s tests; these cover what this module adds: the
    //! topic and partition on every record and the client's error.

    use vltava_record::{BatchBuilder, Compression, Header, RecordError};

    use super::*;

    fn batch(base: i64, values: &[&str]) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None);
        for (i, v) in values.iter().enumerate() {
            let headers = [Header { key: "h".into(), value: Some(Bytes::from_static(b"x")) }];
            b.append(1_000 + i as i64, Some(b"k"), Some(v.as_bytes()), &headers);
        }
        b.build_at(base).to_vec()
    }

    fn topic() -> Arc<str> {
        Arc::from("t")
    }

    #[test]
    fn records_carry_the_topic_partition_and_fields_of_the_fetched_ones() {
        let data = Bytes::from(batch(10, &["a", "b", "c"]));
        let d = decode_partition(&topic(), 4, data.clone(), 11, true, &[]).unwrap();
        let fetched = vltava_record::decode_fetched(data, 11, true).unwrap();
        assert_eq!(d.next_offset, fetched.next_offset);
        assert_eq!(d.next_offset, 13);
        assert_eq!(d.records.len(), fetched.records.len());
        for (c, r) in d.records.iter().zip(&fetched.records) {
            assert_eq!((&*c.topic, c.partition), ("t", 4));
            assert_eq!((c.offset, c.timestamp), (r.offset, r.timestamp));
            assert_eq!((&c.key, &c.value, &c.headers), (&r.key, &r.value, &r.headers));
        }
        assert_eq!(d.records[0].offset, 11);
        assert_eq!(d.records[0].value.as_deref(), Some(&b"b"[..]));
        assert_eq!(d.records[1].headers[0].key, "h");
    }

    #[test]
    fn a_bad_crc_is_a_corrupt_error_naming_the_partition_unless_crcs_are_not_checked() {
        let mut data = batch(0, &["hello"]);
        let last = data.len() - 1;
        data[last] ^= 0xff;
        let e = decode_partition(&topic(), 3, Bytes::from(data.clone()), 0, true, &[]).unwrap_err();
        assert!(
            matches!(e, ClientError::Corrupt { ref topic, partition: 3, source: RecordError::CrcMismatch { .. } } if topic == "t"),
            "{e:?}"
        );
        assert_eq!(e.code(), Some(vltava_proto::v1::ErrorCode::CorruptMessage));
        // `check_crcs` is passed through: unchecked, the same bytes decode.
        assert!(decode_partition(&topic(), 3, Bytes::from(data), 0, false, &[]).is_ok());
    }

    #[test]
    fn garbage_is_corrupt() {
        let e = decode_partition(&topic(), 0, Bytes::from_static(&[0u8; 20]), 0, true, &[]).unwrap_err();
        assert!(matches!(e, ClientError::Corrupt { .. }), "{e:?}");
    }
}
