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

/// Decodes the batches in `data` fetched from `position`.
pub(crate) fn decode_partition(
    topic: &Arc<str>,
    partition: i32,
    data: Bytes,
    position: i64,
    check_crcs: bool,
) -> Result<Decoded, ClientError> {
    let fetched = vltava_record::decode_fetched(data, position, check_crcs).map_err(|source| ClientError::Corrupt {
        topic: topic.to_string(),
        partition,
        source,
    })?;
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
    use bytes::BytesMut;
    use vltava_record::{BatchBuilder, Compression, Header, RecordError};

    use super::*;

    fn batch(base: i64, values: &[&str], compression: Compression) -> BytesMut {
        let mut b = BatchBuilder::new(compression);
        for (i, v) in values.iter().enumerate() {
            let headers = [Header { key: "h".into(), value: Some(Bytes::from_static(b"x")) }];
            b.append(1_000 + i as i64, Some(b"k"), Some(v.as_bytes()), &headers);
        }
        BytesMut::from(&b.build_at(base)[..])
    }

    fn topic() -> Arc<str> {
        Arc::from("t")
    }

    #[test]
    fn skips_records_below_the_position_and_advances_past_whole_batches() {
        let mut data = batch(10, &["a", "b", "c"], Compression::None);
        data.extend_from_slice(&batch(13, &["d", "e"], Compression::Lz4));
        let d = decode_partition(&topic(), 0, data.freeze(), 12, true).unwrap();
        let offsets: Vec<i64> = d.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![12, 13, 14]);
        assert_eq!(d.records[0].value.as_deref(), Some(&b"c"[..]));
        assert_eq!(d.records[1].timestamp, 1_000);
        assert_eq!(d.records[2].headers[0].key, "h");
        assert_eq!(&*d.records[0].topic, "t");
        assert_eq!(d.next_offset, 15);

        // Everything below the position: nothing returned, position kept.
        let d = decode_partition(&topic(), 0, batch(0, &["a"], Compression::None).freeze(), 5, true).unwrap();
        assert!(d.records.is_empty());
        assert_eq!(d.next_offset, 5);
    }

    #[test]
    fn a_bad_crc_is_a_corrupt_error_unless_crcs_are_not_checked() {
        let mut data = batch(0, &["hello"], Compression::None);
        let last = data.len() - 1;
        data[last] ^= 0xff;
        let e = decode_partition(&topic(), 3, data.clone().freeze(), 0, true).unwrap_err();
        assert!(
            matches!(e, ClientError::Corrupt { ref topic, partition: 3, source: RecordError::CrcMismatch { .. } } if topic == "t"),
            "{e:?}"
        );
        assert_eq!(e.code(), Some(vltava_proto::v1::ErrorCode::CorruptMessage));
        // The record bytes are still decodable when CRCs are not checked.
        assert!(decode_partition(&topic(), 3, data.freeze(), 0, false).is_ok());
    }

    #[test]
    fn garbage_is_corrupt() {
        let e = decode_partition(&topic(), 0, Bytes::from_static(&[0u8; 20]), 0, true).unwrap_err();
        assert!(matches!(e, ClientError::Corrupt { .. }), "{e:?}");
    }
}
