//! [`RecordBatch`]: a zero-copy view of one encoded RecordBatch v2, plus the free
//! functions that patch the fields outside the CRC.

use bytes::Bytes;

use crate::compression::decompress;
use crate::header::{self, HEADER_LEN, LOG_OVERHEAD, MIN_BATCH_LENGTH};
use crate::varint::Reader;
use crate::{Compression, Header, MAGIC, Record, RecordError};

pub(crate) const TIMESTAMP_TYPE_FLAG: i16 = 0x08;
pub(crate) use crate::header::{CONTROL_FLAG, TRANSACTIONAL_FLAG};

/// `sequence + increment`, wrapping from `i32::MAX` to 0 as Kafka's producer sequence numbers do.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment { increment - (i32::MAX - sequence) - 1 } else { sequence + increment }
}

/// One whole RecordBatch v2 backed by [`Bytes`] (cloning is cheap).
///
/// Header accessors read straight from the buffer; [`RecordBatch::records`] decodes
/// (and decompresses) the records on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl RecordBatch {
    /// Wraps `bytes`, which must be exactly one whole batch.
    ///
    /// Checks the header is present, the magic is 2 and the batch length matches
    /// `bytes.len()`; does NOT check the CRC (see [`RecordBatch::verify_crc`]).
    pub fn parse(bytes: Bytes) -> Result<RecordBatch, RecordError> {
        if bytes.len() < HEADER_LEN {
            return Err(RecordError::Truncated { needed: HEADER_LEN, available: bytes.len() });
        }
        let magic = bytes[header::MAGIC] as i8;
        if magic != MAGIC {
            return Err(RecordError::InvalidMagic(magic));
        }
        let length = i32_at(&bytes, header::BATCH_LENGTH);
        if length < MIN_BATCH_LENGTH {
            return Err(RecordError::InvalidLength(length));
        }
        let total = LOG_OVERHEAD + length as usize;
        if total > bytes.len() {
            return Err(RecordError::Truncated { needed: total, available: bytes.len() });
        }
        if total < bytes.len() {
            return Err(RecordError::Malformed(format!(
                "batch length says {total} bytes but {} were given",
                bytes.len()
            )));
        }
        Ok(RecordBatch { bytes })
    }

    /// Offset of the first record (header offset 0).
    pub fn base_offset(&self) -> i64 {
        i64_at(&self.bytes, header::BASE_OFFSET)
    }

    /// Number of bytes after the length field (header offset 8).
    pub fn batch_length(&self) -> i32 {
        i32_at(&self.bytes, header::BATCH_LENGTH)
    }

    /// Partition leader epoch stamped by the broker (header offset 12).
    pub fn partition_leader_epoch(&self) -> i32 {
        i32_at(&self.bytes, header::PARTITION_LEADER_EPOCH)
    }

    /// Magic byte; always 2 for a parsed batch (header offset 16).
    pub fn magic(&self) -> i8 {
        self.bytes[header::MAGIC] as i8
    }

    /// Stored CRC-32C (header offset 17).
    pub fn crc(&self) -> u32 {
        i32_at(&self.bytes, header::CRC) as u32
    }

    /// Raw attributes (header offset 21).
    pub fn attributes(&self) -> i16 {
        i16_at(&self.bytes, header::ATTRIBUTES)
    }

    /// Compression codec from attribute bits 0-2.
    pub fn compression(&self) -> Result<Compression, RecordError> {
        Compression::from_attributes(self.attributes())
    }

    /// True if the timestamp type is LogAppendTime (attribute bit 3).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & TIMESTAMP_TYPE_FLAG != 0
    }

    /// Attribute bit 4.
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_FLAG != 0
    }

    /// Attribute bit 5.
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_FLAG != 0
    }

    /// Offset delta of the last record (header offset 23).
    pub fn last_offset_delta(&self) -> i32 {
        i32_at(&self.bytes, header::LAST_OFFSET_DELTA)
    }

    /// Timestamp of the first record (header offset 27).
    pub fn base_timestamp(&self) -> i64 {
        i64_at(&self.bytes, header::BASE_TIMESTAMP)
    }

    /// Largest record timestamp (header offset 35).
    pub fn max_timestamp(&self) -> i64 {
        i64_at(&self.bytes, header::MAX_TIMESTAMP)
    }

    /// Producer id, -1 if not idempotent (header offset 43).
    pub fn producer_id(&self) -> i64 {
        i64_at(&self.bytes, header::PRODUCER_ID)
    }

    /// Producer epoch (header offset 51).
    pub fn producer_epoch(&self) -> i16 {
        i16_at(&self.bytes, header::PRODUCER_EPOCH)
    }

    /// Sequence number of the first record (header offset 53).
    pub fn base_sequence(&self) -> i32 {
        i32_at(&self.bytes, header::BASE_SEQUENCE)
    }

    /// Number of records (header offset 57).
    pub fn record_count(&self) -> i32 {
        i32_at(&self.bytes, header::RECORD_COUNT)
    }

    /// `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> i64 {
        // Saturating: a corrupt header must not overflow (no valid batch gets near i64::MAX).
        self.base_offset().saturating_add(i64::from(self.last_offset_delta()))
    }

    /// `last_offset + 1`.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// Total encoded size in bytes (header included).
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The encoded batch.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The encoded batch, consuming `self`.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// CRC-32C over everything from the attributes to the end of the batch.
    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[header::CRC_START..])
    }

    /// Checks the stored CRC against the batch contents.
    pub fn verify_crc(&self) -> Result<(), RecordError> {
        let (stored, computed) = (self.crc(), self.compute_crc());
        if stored == computed { Ok(()) } else { Err(RecordError::CrcMismatch { stored, computed }) }
    }

    /// The checks a broker performs on produce without decompressing: magic 2, CRC,
    /// at least one record, `last_offset_delta == record_count - 1`, known codec.
    pub fn validate(&self) -> Result<(), RecordError> {
        if self.magic() != MAGIC {
            return Err(RecordError::InvalidMagic(self.magic()));
        }
        self.verify_crc()?;
        let count = self.record_count();
        if count < 1 {
            return Err(RecordError::Malformed(format!(
                "record count {count} (a batch must hold at least one record)"
            )));
        }
        if self.last_offset_delta() != count - 1 {
            return Err(RecordError::Malformed(format!(
                "last offset delta {} does not match record count {count}",
                self.last_offset_delta()
            )));
        }
        self.compression()?;
        Ok(())
    }

    /// The checks on a batch a log already stored (a follower's append, recovery): as
    /// [`RecordBatch::validate`], but a compacted log's batch may hold fewer records than its
    /// offset range (`record_count <= last_offset_delta + 1`, possibly none): the cleaner removed
    /// some, keeping the others' offsets.
    pub fn validate_stored(&self) -> Result<(), RecordError> {
        if self.magic() != MAGIC {
            return Err(RecordError::InvalidMagic(self.magic()));
        }
        self.verify_crc()?;
        let count = self.record_count();
        if count < 0 || self.last_offset_delta() < 0 || i64::from(count) > i64::from(self.last_offset_delta()) + 1 {
            return Err(RecordError::Malformed(format!(
                "record count {count} does not fit last offset delta {}",
                self.last_offset_delta()
            )));
        }
        if self.base_offset() < 0 || self.base_offset().checked_add(i64::from(self.last_offset_delta()) + 1).is_none() {
            return Err(RecordError::Malformed(format!(
                "base offset {} and last offset delta {} are outside the offset range",
                self.base_offset(),
                self.last_offset_delta()
            )));
        }
        self.compression()?;
        Ok(())
    }

    /// Decodes (and decompresses) all records. Offsets are `base_offset + offsetDelta`,
    /// timestamps `base_timestamp + timestampDelta` (or `max_timestamp` for LogAppendTime).
    pub fn records(&self) -> Result<Vec<Record>, RecordError> {
        let codec = self.compression()?;
        let section = self.bytes.slice(HEADER_LEN..);
        let data = match codec {
            Compression::None => section,
            codec => Bytes::from(decompress(codec, &section)?),
        };
        let count = self.record_count();
        let count =
            usize::try_from(count).map_err(|_| RecordError::Malformed(format!("negative record count {count}")))?;
        // Every record takes at least 7 bytes; never trust the count for the allocation.
        let mut records = Vec::with_capacity(count.min(data.len() / 7 + 1));
        let mut reader = Reader::new(&data);
        for _ in 0..count {
            records.push(self.decode_record(&mut reader, &data)?);
        }
        if reader.remaining() != 0 {
            return Err(RecordError::Malformed(format!("{} trailing bytes after {count} records", reader.remaining())));
        }
        Ok(records)
    }

    /// Calls `f(offset, key)` for every record, in order, without decoding values and headers
    /// (what a log cleaner's offset map needs: cheaper than [`RecordBatch::records`]).
    pub fn for_each_key(&self, mut f: impl FnMut(i64, Option<&[u8]>)) -> Result<(), RecordError> {
        let codec = self.compression()?;
        let section = self.bytes.slice(HEADER_LEN..);
        let data = match codec {
            Compression::None => section,
            codec => Bytes::from(decompress(codec, &section)?),
        };
        let mut reader = Reader::new(&data);
        for _ in 0..self.record_count().max(0) {
            let length = reader.varint()?;
            let length = usize::try_from(length)
                .map_err(|_| RecordError::Malformed(format!("negative record length {length}")))?;
            let start = reader.position();
            let _attributes = reader.i8()?;
            let _timestamp_delta = reader.varlong()?;
            let offset_delta = reader.varint()?;
            let key = reader.nullable_bytes()?;
            let consumed = reader.position() - start;
            let rest = length
                .checked_sub(consumed)
                .ok_or_else(|| RecordError::Malformed(format!("record length {length} shorter than its key")))?;
            reader.bytes(rest)?;
            f(self.base_offset().saturating_add(i64::from(offset_delta)), key);
        }
        if reader.remaining() != 0 {
            return Err(RecordError::Malformed(format!("{} trailing bytes after the records", reader.remaining())));
        }
        Ok(())
    }

    fn decode_record(&self, reader: &mut Reader<'_>, data: &Bytes) -> Result<Record, RecordError> {
        let length = reader.varint()?;
        let length =
            usize::try_from(length).map_err(|_| RecordError::Malformed(format!("negative record length {length}")))?;
        let start = reader.position();
        if reader.remaining() < length {
            return Err(RecordError::Truncated { needed: start + length, available: data.len() });
        }
        let _attributes = reader.i8()?;
        let timestamp_delta = reader.varlong()?;
        let offset_delta = reader.varint()?;
        let slice = |reader: &mut Reader<'_>| -> Result<Option<Bytes>, RecordError> {
            Ok(reader.nullable_bytes()?.map(|b| data.slice_ref(b)))
        };
        let key = slice(reader)?;
        let value = slice(reader)?;
        let header_count = reader.varint()?;
        let header_count = usize::try_from(header_count)
            .map_err(|_| RecordError::Malformed(format!("negative header count {header_count}")))?;
        let mut headers = Vec::with_capacity(header_count.min(reader.remaining() / 2 + 1));
        for _ in 0..header_count {
            let key = reader.nullable_bytes()?.ok_or_else(|| RecordError::Malformed("null header key".into()))?;
            let key = std::str::from_utf8(key)
                .map_err(|e| RecordError::Malformed(format!("header key is not utf-8: {e}")))?
                .to_owned();
            let value = slice(reader)?;
            headers.push(Header { key, value });
        }
        if reader.position() - start != length {
            return Err(RecordError::Malformed(format!(
                "record length {length} but {} bytes were decoded",
                reader.position() - start
            )));
        }
        let timestamp = if self.is_log_append_time() {
            self.max_timestamp()
        } else {
            self.base_timestamp().wrapping_add(timestamp_delta)
        };
        Ok(Record {
            offset: self.base_offset().saturating_add(i64::from(offset_delta)),
            timestamp,
            key,
            value,
            headers,
        })
    }
}

/// Writes the base offset (header offset 0, outside the CRC). Panics if `batch` is shorter than 8 bytes.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[header::BASE_OFFSET..header::BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Writes the partition leader epoch (header offset 12, outside the CRC). Panics if `batch`
/// is shorter than 16 bytes.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[header::PARTITION_LEADER_EPOCH..header::PARTITION_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Total size (`12 + batchLength`) of the batch starting at `buf[0]`, read from its length
/// field. `None` if `buf` has fewer than 12 bytes or the length field is negative.
pub fn batch_size_at(buf: &[u8]) -> Option<usize> {
    if buf.len() < LOG_OVERHEAD {
        return None;
    }
    let length = usize::try_from(i32_at(buf, header::BATCH_LENGTH)).ok()?;
    Some(LOG_OVERHEAD + length)
}
