//! [`decode_fetched`]: the records of one partition's fetch response, from the fetch position on.
//!
//! A fetch returns whole batches, and the first may start before the fetch position (the broker
//! does not split batches), so records below the position are skipped. Control batches
//! (transaction markers) are skipped but still advance the position. A partial trailing batch (a
//! broker may cut a response at `max_bytes`) ends the data; it is fetched again next time.
//!
//! Every reader of fetched bytes (the Rust SDK's consumer, the gateway's thin-client API) uses
//! this one function, so they agree on what a fetch delivers and where the next one starts.

use bytes::Bytes;

use crate::{Record, RecordError};

/// The records of one partition's fetch at or after the fetch position.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FetchedRecords {
    /// Records in offset order, none below the fetch position.
    pub records: Vec<Record>,
    /// The position once every record is consumed: after the last whole batch (at least the
    /// fetch position).
    pub next_offset: i64,
}

/// A transaction aborted in a fetched range, as a read_committed fetch reports it: the records
/// of `producer_id`'s transactional batches from `first_offset` up to its ABORT marker are
/// dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// The aborting producer.
    pub producer_id: i64,
    /// Offset of the transaction's first record in this partition.
    pub first_offset: i64,
}

/// Decodes the batches in `data`, fetched from `position`. With `check_crcs`, each batch's
/// CRC-32C is verified first (as Kafka's `check.crcs` does).
///
/// Fails on a malformed or corrupt batch, or on a first batch that is cut off (a later cut-off
/// batch only ends the data).
pub fn decode_fetched(data: Bytes, position: i64, check_crcs: bool) -> Result<FetchedRecords, RecordError> {
    decode_fetched_committed(data, position, check_crcs, &[])
}

/// [`decode_fetched`] for a read_committed fetch: transactional records of the `aborted`
/// transactions (the list the broker returned with the data) are dropped too, as Kafka's
/// consumer does: a producer's transactional batches are dropped from the first offset of an
/// aborted transaction of its until its ABORT marker.
pub fn decode_fetched_committed(
    data: Bytes,
    position: i64,
    check_crcs: bool,
    aborted: &[AbortedTransaction],
) -> Result<FetchedRecords, RecordError> {
    let mut out = FetchedRecords { records: Vec::new(), next_offset: position };
    let mut pending: Vec<AbortedTransaction> = aborted.to_vec();
    pending.sort_by_key(|a| std::cmp::Reverse(a.first_offset));
    let mut aborting: Vec<i64> = Vec::new();
    for (whole_batches, batch) in crate::batches(data).enumerate() {
        let batch = match batch {
            Ok(b) => b,
            // A cut-off last batch: the next fetch starts at it again.
            Err(RecordError::Truncated { .. }) if whole_batches > 0 => break,
            Err(e) => return Err(e),
        };
        // Aborted transactions that started at or before this batch are now in progress.
        while pending.last().is_some_and(|a| a.first_offset <= batch.last_offset()) {
            let a = pending.pop().expect("checked");
            if !aborting.contains(&a.producer_id) {
                aborting.push(a.producer_id);
            }
        }
        if batch.next_offset() <= position {
            if batch.is_control() {
                aborting.retain(|p| *p != batch.producer_id());
            }
            continue;
        }
        if check_crcs {
            batch.verify_crc()?;
        }
        if batch.is_control() {
            // The marker ends the producer's transaction, aborted or not.
            aborting.retain(|p| *p != batch.producer_id());
        } else if !(batch.is_transactional() && aborting.contains(&batch.producer_id())) {
            let records = batch.records()?;
            if out.records.capacity() == 0 {
                out.records.reserve(records.len());
            }
            out.records.extend(records.into_iter().filter(|r| r.offset >= position));
        }
        out.next_offset = out.next_offset.max(batch.next_offset());
    }
    Ok(out)
}

#[cfg(test)]
#[path = "fetched_tests.rs"]
mod committed_tests;

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::{BatchBuilder, Compression, Header};

    fn batch(base: i64, values: &[&str], compression: Compression) -> BytesMut {
        let mut b = BatchBuilder::new(compression);
        for (i, v) in values.iter().enumerate() {
            let headers = [Header { key: "h".into(), value: Some(Bytes::from_static(b"x")) }];
            b.append(1_000 + i as i64, Some(b"k"), Some(v.as_bytes()), &headers);
        }
        BytesMut::from(&b.build_at(base)[..])
    }

    #[test]
    fn skips_records_below_the_position_and_advances_past_whole_batches() {
        let mut data = batch(10, &["a", "b", "c"], Compression::None);
        data.extend_from_slice(&batch(13, &["d", "e"], Compression::Lz4));
        let d = decode_fetched(data.freeze(), 12, true).unwrap();
        let offsets: Vec<i64> = d.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![12, 13, 14]);
        assert_eq!(d.records[0].value.as_deref(), Some(&b"c"[..]));
        assert_eq!(d.records[1].timestamp, 1_000);
        assert_eq!(d.records[2].headers[0].key, "h");
        assert_eq!(d.next_offset, 15);

        // Everything below the position: nothing returned, position kept.
        let d = decode_fetched(batch(0, &["a"], Compression::None).freeze(), 5, true).unwrap();
        assert!(d.records.is_empty());
        assert_eq!(d.next_offset, 5);
    }

    #[test]
    fn a_partial_trailing_batch_ends_the_data() {
        let mut data = batch(0, &["a", "b"], Compression::None);
        let second = batch(2, &["c"], Compression::None);
        data.extend_from_slice(&second[..second.len() - 3]);
        let d = decode_fetched(data.freeze(), 0, true).unwrap();
        assert_eq!(d.records.len(), 2);
        assert_eq!(d.next_offset, 2);
    }

    #[test]
    fn a_bad_crc_fails_only_when_crcs_are_checked() {
        let mut data = batch(0, &["hello"], Compression::None);
        let last = data.len() - 1;
        data[last] ^= 0xff;
        let e = decode_fetched(data.clone().freeze(), 0, true).unwrap_err();
        assert!(matches!(e, RecordError::CrcMismatch { .. }), "{e:?}");
        assert!(decode_fetched(data.freeze(), 0, false).is_ok());
    }

    #[test]
    fn control_batches_are_skipped_but_advance_the_position() {
        let mut data = batch(0, &["a"], Compression::None);
        let mut control = batch(1, &["marker"], Compression::None);
        control[22] |= 0x20; // attributes bit 5: control batch (CRC no longer matches)
        data.extend_from_slice(&control);
        let d = decode_fetched(data.freeze(), 0, false).unwrap();
        assert_eq!(d.records.len(), 1);
        assert_eq!(d.next_offset, 2);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode_fetched(Bytes::from_static(&[0u8; 20]), 0, true).is_err());
        assert_eq!(decode_fetched(Bytes::new(), 7, true).unwrap(), FetchedRecords { records: vec![], next_offset: 7 });
    }
}
