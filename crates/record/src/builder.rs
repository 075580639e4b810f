//! [`BatchBuilder`]: encodes records into a RecordBatch v2.

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::{CONTROL_FLAG, TIMESTAMP_TYPE_FLAG, TRANSACTIONAL_FLAG};
use crate::compression::compress;
use crate::header;
use crate::varint::{put_varint, put_varlong, varint_size, varlong_size};
use crate::{Compression, Header, MAGIC};

/// Accumulates records and encodes them as one RecordBatch v2.
///
/// Records are encoded as they are appended, so [`BatchBuilder::estimated_size`] is O(1).
/// The first appended record's timestamp becomes the batch's base timestamp.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    compression: Compression,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    count: usize,
    /// Offset delta of the next record (the count, unless [`BatchBuilder::append_at`] skipped).
    next_delta: i32,
    /// `lastOffsetDelta` when set by [`BatchBuilder::set_last_offset_delta`].
    last_delta: Option<i32>,
    records: Vec<u8>,
}

impl BatchBuilder {
    /// A builder for a non-idempotent batch (producer id -1, epoch -1, base sequence -1).
    pub fn new(compression: Compression) -> Self {
        BatchBuilder {
            compression,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            base_timestamp: None,
            max_timestamp: -1,
            count: 0,
            next_delta: 0,
            last_delta: None,
            records: Vec::new(),
        }
    }

    /// Sets the idempotent producer fields.
    pub fn with_producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks (or unmarks) the batch as transactional (attribute bit 4).
    pub fn set_transactional(&mut self, on: bool) {
        self.transactional = on;
    }

    /// Marks (or unmarks) the batch as a control batch (attribute bit 5): its records are
    /// transaction markers, never returned to applications (see [`crate::control`]).
    pub fn set_control(&mut self, on: bool) {
        self.control = on;
    }

    /// Appends a record; its offset delta follows the previous record's.
    pub fn append(&mut self, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) {
        self.append_at(self.next_delta, timestamp, key, value, headers);
    }

    /// Appends a record at `offset_delta`, which must be above the previous record's: the batches
    /// a log cleaner writes keep each surviving record's original offset. (Produced batches use
    /// [`BatchBuilder::append`].)
    pub fn append_at(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        debug_assert!(offset_delta >= self.next_delta, "offset deltas must grow");
        let base_timestamp = *self.base_timestamp.get_or_insert(timestamp);
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let timestamp_delta = timestamp.wrapping_sub(base_timestamp);
        self.next_delta = offset_delta + 1;

        let body_len = 1
            + varlong_size(timestamp_delta)
            + varint_size(offset_delta)
            + nullable_size(key)
            + nullable_size(value)
            + varint_size(headers.len() as i32)
            + headers
                .iter()
                .map(|h| varint_size(h.key.len() as i32) + h.key.len() + nullable_size(h.value.as_deref()))
                .sum::<usize>();

        let buf = &mut self.records;
        buf.reserve(body_len + 5);
        put_varint(buf, body_len as i32);
        buf.push(0); // record attributes (unused)
        put_varlong(buf, timestamp_delta);
        put_varint(buf, offset_delta);
        put_nullable(buf, key);
        put_nullable(buf, value);
        put_varint(buf, headers.len() as i32);
        for h in headers {
            put_varint(buf, h.key.len() as i32);
            buf.extend_from_slice(h.key.as_bytes());
            put_nullable(buf, h.value.as_deref());
        }
        self.count += 1;
    }

    /// Sets `lastOffsetDelta` beyond the last record's (a cleaned batch keeps its original
    /// offset range, so the offsets after it do not move).
    pub fn set_last_offset_delta(&mut self, delta: i32) {
        self.last_delta = Some(delta);
    }

    /// Number of records appended so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True if no record has been appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Uncompressed size of the batch so far, including the 61-byte ([`header::HEADER_LEN`]) header.
    pub fn estimated_size(&self) -> usize {
        header::HEADER_LEN + self.records.len()
    }

    /// Encodes the batch: base offset 0, partition leader epoch -1, CRC filled in.
    ///
    /// An empty builder produces a batch with record count 0 (which
    /// [`crate::RecordBatch::validate`] rejects). If compression fails (it cannot for
    /// in-memory buffers in practice) the records are stored uncompressed.
    pub fn build(self) -> Bytes {
        self.build_at(0)
    }

    /// Like [`BatchBuilder::build`], with the records at offsets from `base_offset` on, as a log
    /// that stored the batch would return it (the base offset is outside the CRC).
    pub fn build_at(self, base_offset: i64) -> Bytes {
        let (codec, payload) = match self.compression {
            Compression::None => (Compression::None, self.records),
            codec => match compress(codec, &self.records) {
                Ok(packed) => (codec, packed),
                Err(_) => (Compression::None, self.records),
            },
        };
        let mut attributes = codec.id();
        if self.transactional {
            attributes |= TRANSACTIONAL_FLAG;
        }
        if self.control {
            attributes |= CONTROL_FLAG;
        }
        debug_assert_eq!(attributes & TIMESTAMP_TYPE_FLAG, 0, "CreateTime");
        let total = header::HEADER_LEN + payload.len();
        let mut buf = BytesMut::with_capacity(total);
        buf.put_i64(base_offset);
        buf.put_i32((total - header::LOG_OVERHEAD) as i32); // batch length
        buf.put_i32(-1); // partition leader epoch
        buf.put_i8(MAGIC);
        buf.put_u32(0); // crc, filled below
        buf.put_i16(attributes);
        buf.put_i32(self.last_delta.unwrap_or(self.next_delta - 1).max(self.next_delta - 1)); // last offset delta
        buf.put_i64(self.base_timestamp.unwrap_or(-1));
        buf.put_i64(self.max_timestamp);
        buf.put_i64(self.producer_id);
        buf.put_i16(self.producer_epoch);
        buf.put_i32(self.base_sequence);
        buf.put_i32(self.count as i32);
        buf.extend_from_slice(&payload);
        let crc = crc32c::crc32c(&buf[header::CRC_START..]);
        buf[header::CRC..header::CRC + 4].copy_from_slice(&crc.to_be_bytes());
        buf.freeze()
    }
}

fn nullable_size(data: Option<&[u8]>) -> usize {
    match data {
        None => varint_size(-1),
        Some(d) => varint_size(d.len() as i32) + d.len(),
    }
}

fn put_nullable(buf: &mut Vec<u8>, data: Option<&[u8]>) {
    match data {
        None => put_varint(buf, -1),
        Some(d) => {
            put_varint(buf, d.len() as i32);
            buf.extend_from_slice(d);
        }
    }
}
