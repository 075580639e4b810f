//! Reading batch headers from a segment file and scanning a segment batch by batch
//! (used by recovery, index rebuilding and lookups). Never decodes records.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use vltava_record::MAGIC;
use vltava_record::header::{self, CRC_START, HEADER_LEN, LOG_OVERHEAD, MIN_BATCH_LENGTH};

use crate::StorageError;
use crate::error::IoContext;

/// Read size used by verifying scans.
const SCAN_CHUNK: usize = 1 << 20;

/// The header fields the log needs, parsed from the first [`HEADER_LEN`] bytes of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub base_offset: i64,
    /// The partition leader epoch stamped into the batch (-1 if none).
    pub partition_leader_epoch: i32,
    /// Total size in bytes, header included.
    pub size: u64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub magic: i8,
    pub crc: u32,
    pub record_count: i32,
    pub last_offset_delta: i32,
    /// The batch attributes (compression, timestamp type, transactional and control bits).
    pub attributes: i16,
    /// The idempotent producer's id (-1 if none), epoch and first sequence number.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl BatchHeader {
    /// Parses a [`HEADER_LEN`]-byte header. `Err` explains what is structurally wrong.
    pub(crate) fn parse(b: &[u8]) -> Result<BatchHeader, String> {
        debug_assert!(b.len() >= HEADER_LEN);
        let i32_at = |at: usize| i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let i64_at = |at: usize| i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let i16_at = |at: usize| i16::from_be_bytes(b[at..at + 2].try_into().expect("2 bytes"));
        let length = i32_at(header::BATCH_LENGTH);
        if length < MIN_BATCH_LENGTH {
            return Err(format!("invalid batch length {length}"));
        }
        let magic = b[header::MAGIC] as i8;
        if magic != MAGIC {
            return Err(format!("invalid magic {magic}"));
        }
        let base_offset = i64_at(header::BASE_OFFSET);
        let last_offset_delta = i32_at(header::LAST_OFFSET_DELTA);
        let record_count = i32_at(header::RECORD_COUNT);
        if last_offset_delta < 0 || base_offset < 0 {
            return Err(format!("invalid offsets: base {base_offset}, last delta {last_offset_delta}"));
        }
        Ok(BatchHeader {
            base_offset,
            partition_leader_epoch: i32_at(header::PARTITION_LEADER_EPOCH),
            size: (LOG_OVERHEAD + length as usize) as u64,
            last_offset: base_offset.saturating_add(i64::from(last_offset_delta)),
            max_timestamp: i64_at(header::MAX_TIMESTAMP),
            magic,
            crc: i32_at(header::CRC) as u32,
            record_count,
            last_offset_delta,
            attributes: i16_at(header::ATTRIBUTES),
            producer_id: i64_at(header::PRODUCER_ID),
            producer_epoch: i16_at(header::PRODUCER_EPOCH),
            base_sequence: i32_at(header::BASE_SEQUENCE),
        })
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.last_offset + 1
    }
}

/// Reads and parses the header of the batch at `pos` of a file that is `file_size` long.
pub(crate) fn read_header(file: &File, path: &Path, pos: u64, file_size: u64) -> Result<BatchHeader, StorageError> {
    let corrupt = |reason: String| StorageError::Corrupt { path: path.to_path_buf(), position: pos, reason };
    if file_size.saturating_sub(pos) < HEADER_LEN as u64 {
        return Err(corrupt("batch header extends past the end of the file".into()));
    }
    let mut buf = [0u8; HEADER_LEN];
    file.read_exact_at(&mut buf, pos).at(path)?;
    let header = BatchHeader::parse(&buf).map_err(corrupt)?;
    if pos + header.size > file_size {
        return Err(corrupt(format!("batch of {} bytes extends past the end of the file", header.size)));
    }
    Ok(header)
}

/// How a scan ended.
#[derive(Debug)]
pub(crate) struct ScanEnd {
    /// Position just after the last good batch.
    pub valid_end: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub error: Option<String>,
}

/// Walks the batches in `[from, file_size)`, calling `visit(position, header)` for each good
/// one. With `verify`, batches are read whole and their CRC-32C, record count (at most the
/// offset range) and offset order (each base offset at least the previous batch's next offset,
/// the first at least `expected_first` when given: a compacted log has gaps) are checked. Stops
/// at the first bad or torn batch.
pub(crate) fn scan(
    file: &File,
    path: &Path,
    from: u64,
    file_size: u64,
    verify: bool,
    expected_first: Option<i64>,
    mut visit: impl FnMut(u64, &BatchHeader),
) -> Result<ScanEnd, StorageError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_start = from;
    let mut pos = from;
    let mut expected = expected_first;
    let chunk = if verify { SCAN_CHUNK } else { HEADER_LEN };
    // Makes `[pos, pos + n)` available in `buf`; `n` must fit in the file.
    let ensure = |buf: &mut Vec<u8>, buf_start: &mut u64, pos: u64, n: usize| {
        let have = *buf_start <= pos && pos + n as u64 <= *buf_start + buf.len() as u64;
        if !have {
            let len = (n.max(chunk) as u64).min(file_size - pos) as usize;
            buf.resize(len, 0);
            file.read_exact_at(buf, pos).at(path)?;
            *buf_start = pos;
        }
        Ok::<usize, StorageError>((pos - *buf_start) as usize)
    };
    let end = |pos: u64, reason: Option<String>| ScanEnd { valid_end: pos, error: reason };
    while pos < file_size {
        if file_size - pos < HEADER_LEN as u64 {
            return Ok(end(pos, Some(format!("torn header of {} bytes", file_size - pos))));
        }
        let at = ensure(&mut buf, &mut buf_start, pos, HEADER_LEN)?;
        let header = match BatchHeader::parse(&buf[at..at + HEADER_LEN]) {
            Ok(h) => h,
            Err(reason) => return Ok(end(pos, Some(reason))),
        };
        if pos + header.size > file_size {
            return Ok(end(
                pos,
                Some(format!("torn batch: {} bytes declared, {} present", header.size, file_size - pos)),
            ));
        }
        if verify {
            if let Some(exp) = expected
                && header.base_offset < exp
            {
                return Ok(end(pos, Some(format!("expected base offset {exp} or more, found {}", header.base_offset))));
            }
            // A compacted batch may hold fewer records than its offset range, never more.
            if header.record_count < 0 || i64::from(header.record_count) > i64::from(header.last_offset_delta) + 1 {
                return Ok(end(
                    pos,
                    Some(format!(
                        "record count {} does not match last offset delta {}",
                        header.record_count, header.last_offset_delta
                    )),
                ));
            }
            let at = ensure(&mut buf, &mut buf_start, pos, header.size as usize)?;
            let computed = crc32c::crc32c(&buf[at + CRC_START..at + header.size as usize]);
            if computed != header.crc {
                return Ok(end(
                    pos,
                    Some(format!("crc mismatch: stored {:#010x}, computed {computed:#010x}", header.crc)),
                ));
            }
            expected = Some(header.next_offset());
        }
        visit(pos, &header);
        pos += header.size;
    }
    Ok(end(pos, None))
}
