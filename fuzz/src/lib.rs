//! Shared helpers of the fuzz targets in `fuzz_targets/` (see `docs/reliability.md`).
//!
//! Random bytes almost never carry a valid CRC-32C, so a target that fed them to the decoders
//! unchanged would exercise the CRC check and little else. [`fix_crcs`] rewrites the CRC of every
//! batch it can frame in a buffer, so that what follows the check (decompression, record
//! decoding, producer state, recovery) is reached too; targets do so for half of their inputs.

use vltava_record::header::{BATCH_LENGTH, CRC, CRC_START, HEADER_LEN, LOG_OVERHEAD};

/// Rewrites the CRC-32C of each batch framed in `buf` (stopping at the first length that does not
/// fit), as a producer or a log would have computed it.
pub fn fix_crcs(buf: &mut [u8]) {
    let mut pos = 0usize;
    while buf.len().saturating_sub(pos) >= HEADER_LEN {
        let at = pos + BATCH_LENGTH;
        let length = i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        let Ok(length) = usize::try_from(length) else { return };
        let Some(end) = (pos + LOG_OVERHEAD).checked_add(length).filter(|e| *e <= buf.len()) else { return };
        if end < pos + HEADER_LEN {
            return;
        }
        let crc = crc32c::crc32c(&buf[pos + CRC_START..end]);
        buf[pos + CRC..pos + CRC + 4].copy_from_slice(&crc.to_be_bytes());
        pos = end;
    }
}

/// The CRC-32C of `bytes` after a big-endian `i16` version, as producer snapshots store it:
/// writes it at `bytes[2..6]` when the buffer is long enough.
pub fn fix_snapshot_crc(bytes: &mut [u8]) {
    if bytes.len() >= 6 {
        let crc = crc32c::crc32c(&bytes[6..]);
        bytes[2..6].copy_from_slice(&crc.to_be_bytes());
    }
}

/// A scratch directory for one input, under `/dev/shm` when it exists (memory, not disk), emptied
/// when dropped.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new().prefix("vltava-fuzz-").tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::Builder::new().prefix("vltava-fuzz-").tempdir().expect("a temporary directory")
}

/// Reads the framed entries the storage targets take: `kind u8, number u32 LE, length u16 LE,
/// bytes` repeated (the last entry may be cut short). `examples/fuzz_seeds.rs` in the kafka crate
/// writes seeds in this format.
pub fn entries(mut data: &[u8]) -> Vec<(u8, u32, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 7 {
        let kind = data[0];
        let number = u32::from_le_bytes([data[1], data[2], data[3], data[4]]);
        let len = usize::from(u16::from_le_bytes([data[5], data[6]]));
        let end = (7 + len).min(data.len());
        out.push((kind, number, &data[7..end]));
        data = &data[end..];
    }
    out
}
