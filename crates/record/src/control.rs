//! Transaction markers: the control records that end a transaction in a partition.
//!
//! When a transaction commits or aborts, its coordinator has every partition leader append a
//! **control batch** (attributes: transactional and control bits set) holding one control
//! record, in Kafka's format:
//!
//! - key: `version i16 (0)`, `type i16` (0 = ABORT, 1 = COMMIT);
//! - value (`EndTransactionMarker`): `version i16 (0)`, `coordinator_epoch i32`.
//!
//! The batch carries the transactional producer's id and epoch (base sequence -1). Consumers
//! never see control records: they use them to drop aborted records (read_committed) and skip
//! them otherwise.

use bytes::{BufMut, Bytes, BytesMut};

use crate::{BatchBuilder, Compression, RecordBatch, RecordError};

/// Version of the control record key and of the end-transaction marker value.
const CONTROL_VERSION: i16 = 0;

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MarkerKind {
    /// The transaction's records are discarded (type 0).
    Abort,
    /// The transaction's records become visible to read_committed consumers (type 1).
    Commit,
}

impl MarkerKind {
    /// Kafka's control record type.
    pub fn code(self) -> i16 {
        match self {
            MarkerKind::Abort => 0,
            MarkerKind::Commit => 1,
        }
    }

    /// The kind for a control record type, `None` for types that are not transaction markers.
    pub fn from_code(code: i16) -> Option<MarkerKind> {
        match code {
            0 => Some(MarkerKind::Abort),
            1 => Some(MarkerKind::Commit),
            _ => None,
        }
    }
}

/// A decoded transaction marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// Commit or abort.
    pub kind: MarkerKind,
    /// The epoch of the transaction coordinator that wrote it (fences stale coordinators).
    pub coordinator_epoch: i32,
}

/// Encodes the control batch ending producer `producer_id`'s (in `producer_epoch`) transaction
/// in one partition. Its base offset is 0 (the log assigns the real one).
pub fn marker_batch(producer_id: i64, producer_epoch: i16, marker: Marker, timestamp_ms: i64) -> Bytes {
    let mut key = BytesMut::with_capacity(4);
    key.put_i16(CONTROL_VERSION);
    key.put_i16(marker.kind.code());
    let mut value = BytesMut::with_capacity(6);
    value.put_i16(CONTROL_VERSION);
    value.put_i32(marker.coordinator_epoch);
    let mut builder = BatchBuilder::new(Compression::None).with_producer(producer_id, producer_epoch, -1);
    builder.set_transactional(true);
    builder.set_control(true);
    builder.append(timestamp_ms, Some(&key), Some(&value), &[]);
    builder.build()
}

/// The marker in a control batch; `Ok(None)` for a batch that is not a control batch or whose
/// control record is of a type other than a transaction marker.
pub fn parse_marker(batch: &RecordBatch) -> Result<Option<Marker>, RecordError> {
    if !batch.is_control() {
        return Ok(None);
    }
    let records = batch.records()?;
    let Some(record) = records.first() else {
        return Err(RecordError::Malformed("control batch without a record".into()));
    };
    let key = record.key.as_deref().unwrap_or_default();
    if key.len() < 4 {
        return Err(RecordError::Malformed(format!("control record key of {} bytes", key.len())));
    }
    let Some(kind) = MarkerKind::from_code(i16::from_be_bytes([key[2], key[3]])) else {
        return Ok(None);
    };
    let value = record.value.as_deref().unwrap_or_default();
    let coordinator_epoch = match value.get(2..6) {
        Some(b) => i32::from_be_bytes(b.try_into().expect("4 bytes")),
        None => return Err(RecordError::Malformed(format!("transaction marker value of {} bytes", value.len()))),
    };
    Ok(Some(Marker { kind, coordinator_epoch }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_batch_round_trips_and_is_a_transactional_control_batch() {
        for kind in [MarkerKind::Abort, MarkerKind::Commit] {
            let marker = Marker { kind, coordinator_epoch: 7 };
            let batch = RecordBatch::parse(marker_batch(42, 3, marker, 1_000)).unwrap();
            batch.validate().unwrap();
            assert!(batch.is_control() && batch.is_transactional());
            assert_eq!((batch.producer_id(), batch.producer_epoch(), batch.base_sequence()), (42, 3, -1));
            assert_eq!(batch.record_count(), 1);
            assert_eq!(parse_marker(&batch).unwrap(), Some(marker));
        }
    }

    #[test]
    fn data_batches_and_unknown_control_types_are_not_markers() {
        let mut b = BatchBuilder::new(Compression::None);
        b.append(1, Some(b"k"), Some(b"v"), &[]);
        assert_eq!(parse_marker(&RecordBatch::parse(b.build()).unwrap()).unwrap(), None);

        let mut b = BatchBuilder::new(Compression::None).with_producer(1, 0, -1);
        b.set_control(true);
        b.append(1, Some(&[0, 0, 0, 5]), Some(&[0, 0, 0, 0, 0, 1]), &[]);
        assert_eq!(parse_marker(&RecordBatch::parse(b.build()).unwrap()).unwrap(), None);
    }

    #[test]
    fn a_truncated_control_record_is_malformed() {
        let mut b = BatchBuilder::new(Compression::None).with_producer(1, 0, -1);
        b.set_control(true);
        b.append(1, Some(&[0, 0]), None, &[]);
        assert!(matches!(parse_marker(&RecordBatch::parse(b.build()).unwrap()), Err(RecordError::Malformed(_))));
    }
}
