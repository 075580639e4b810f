//! Compression codecs for the records section of a batch.
//!
//! Kafka compresses the whole records section (everything after the 61-byte header) as one
//! unit. Snappy uses the xerial "snappy-java" stream framing, LZ4 the standard LZ4 frame format.

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use crate::RecordError;

/// Mask of the compression codec bits (0-2) in the batch attributes.
pub(crate) const COMPRESSION_MASK: i16 = 0x07;

/// The compression codec of a record batch (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (id 0).
    #[default]
    None,
    /// GZIP (id 1).
    Gzip,
    /// Snappy in xerial framing (id 2).
    Snappy,
    /// LZ4 frame format (id 3).
    Lz4,
    /// Zstandard (id 4).
    Zstd,
}

impl Compression {
    /// Extracts the codec from batch attributes.
    pub fn from_attributes(attributes: i16) -> Result<Self, RecordError> {
        match attributes & COMPRESSION_MASK {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(RecordError::UnsupportedCompression(other)),
        }
    }

    /// The codec id as stored in attribute bits 0-2.
    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The Kafka name of the codec (`compression.type`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = RecordError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "snappy" => Ok(Compression::Snappy),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            other => Err(RecordError::Malformed(format!(
                "unknown compression type {other:?} (expected none, gzip, snappy, lz4 or zstd)"
            ))),
        }
    }
}

fn codec_err(codec: Compression, e: impl fmt::Display) -> RecordError {
    RecordError::Compression(format!("{codec}: {e}"))
}

/// Compresses `data` with `codec` (identity for `None`).
pub(crate) fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, RecordError> {
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut enc =
                flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 2 + 64), flate2::Compression::default());
            enc.write_all(data).map_err(|e| codec_err(codec, e))?;
            enc.finish().map_err(|e| codec_err(codec, e))
        }
        Compression::Snappy => xerial_compress(data),
        Compression::Lz4 => {
            let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::with_capacity(data.len() / 2 + 64));
            enc.write_all(data).map_err(|e| codec_err(codec, e))?;
            enc.finish().map_err(|e| codec_err(codec, e))
        }
        Compression::Zstd => zstd::bulk::compress(data, 3).map_err(|e| codec_err(codec, e)),
    }
}

/// The most a batch's records section may inflate to. Kafka itself sets no bound, so a few
/// hundred bytes claiming gigabytes (a decompression bomb, found by the `record_batch` fuzz
/// target with snappy) made the reader allocate them. 128 MiB is far above any batch a producer
/// sends: `max.message.bytes` bounds the compressed batch to 1 MiB by default.
pub const MAX_DECOMPRESSED_BYTES: usize = 128 * 1024 * 1024;

fn too_large(codec: Compression) -> RecordError {
    codec_err(codec, format!("the records inflate beyond {MAX_DECOMPRESSED_BYTES} bytes"))
}

/// Reads `reader` to its end, failing once more than [`MAX_DECOMPRESSED_BYTES`] come out.
fn read_bounded(codec: Compression, reader: impl Read, out: &mut Vec<u8>) -> Result<(), RecordError> {
    let limit = MAX_DECOMPRESSED_BYTES as u64 + 1;
    reader.take(limit).read_to_end(out).map_err(|e| codec_err(codec, e))?;
    if out.len() > MAX_DECOMPRESSED_BYTES {
        return Err(too_large(codec));
    }
    Ok(())
}

/// Decompresses `data` that was compressed with `codec`, up to [`MAX_DECOMPRESSED_BYTES`].
pub(crate) fn decompress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, RecordError> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(2).min(MAX_DECOMPRESSED_BYTES));
    match codec {
        Compression::None => out.extend_from_slice(data),
        Compression::Gzip => read_bounded(codec, flate2::read::GzDecoder::new(data), &mut out)?,
        Compression::Snappy => return xerial_decompress(data),
        Compression::Lz4 => read_bounded(codec, lz4_flex::frame::FrameDecoder::new(data), &mut out)?,
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| codec_err(codec, e))?;
            read_bounded(codec, decoder, &mut out)?;
        }
    }
    Ok(out)
}

/// The xerial snappy-java stream header magic.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
/// Header: magic + version (i32 BE) + minimum compatible version (i32 BE).
const XERIAL_HEADER_LEN: usize = 16;
/// Uncompressed bytes per xerial block (snappy-java's default block size).
const XERIAL_BLOCK_SIZE: usize = 32 * 1024;

fn xerial_compress(data: &[u8]) -> Result<Vec<u8>, RecordError> {
    let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + data.len() / 2 + 64);
    out.extend_from_slice(XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    let mut block = vec![0u8; snap::raw::max_compress_len(XERIAL_BLOCK_SIZE)];
    for chunk in data.chunks(XERIAL_BLOCK_SIZE) {
        let n = encoder.compress(chunk, &mut block).map_err(|e| codec_err(Compression::Snappy, e))?;
        out.extend_from_slice(&(n as i32).to_be_bytes());
        out.extend_from_slice(&block[..n]);
    }
    Ok(out)
}

fn xerial_decompress(data: &[u8]) -> Result<Vec<u8>, RecordError> {
    let mut decoder = snap::raw::Decoder::new();
    if data.len() < XERIAL_HEADER_LEN || &data[..8] != XERIAL_MAGIC {
        // Not xerial framed: accept a plain raw snappy block.
        let n = snap::raw::decompress_len(data).map_err(|e| codec_err(Compression::Snappy, e))?;
        if n > MAX_DECOMPRESSED_BYTES {
            return Err(too_large(Compression::Snappy));
        }
        return decoder.decompress_vec(data).map_err(|e| codec_err(Compression::Snappy, e));
    }
    let mut out = Vec::with_capacity(data.len().saturating_mul(2).min(MAX_DECOMPRESSED_BYTES));
    let mut pos = XERIAL_HEADER_LEN;
    while pos < data.len() {
        let Some(len_bytes) = data.get(pos..pos + 4) else {
            return Err(codec_err(Compression::Snappy, "truncated xerial block length"));
        };
        let len = i32::from_be_bytes(len_bytes.try_into().expect("4 bytes"));
        pos += 4;
        let block = usize::try_from(len)
            .ok()
            .and_then(|len| data.get(pos..pos.checked_add(len)?))
            .ok_or_else(|| codec_err(Compression::Snappy, format!("bad xerial block length {len}")))?;
        let start = out.len();
        let n = snap::raw::decompress_len(block).map_err(|e| codec_err(Compression::Snappy, e))?;
        if start + n > MAX_DECOMPRESSED_BYTES {
            return Err(too_large(Compression::Snappy));
        }
        out.resize(start + n, 0);
        decoder.decompress(block, &mut out[start..]).map_err(|e| codec_err(Compression::Snappy, e))?;
        pos += block.len();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

    /// Found by the `record_batch` fuzz target: 161 bytes whose snappy block claimed gigabytes.
    #[test]
    fn decompression_bombs_are_refused_before_they_allocate() {
        // A raw snappy block whose header claims 1 GiB.
        let claim = [0x80, 0x80, 0x80, 0x80, 0x04];
        assert!(decompress(Compression::Snappy, &claim).unwrap_err().to_string().contains("inflate beyond"));
        // The same inside xerial framing.
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&(claim.len() as i32).to_be_bytes());
        framed.extend_from_slice(&claim);
        assert!(decompress(Compression::Snappy, &framed).unwrap_err().to_string().contains("inflate beyond"));
        // zstd: 129 MiB of zeros compress to a few kilobytes.
        let zeros = vec![0u8; MAX_DECOMPRESSED_BYTES + (1 << 20)];
        let bomb = zstd::bulk::compress(&zeros, 3).unwrap();
        assert!(bomb.len() < 64 * 1024);
        assert!(decompress(Compression::Zstd, &bomb).unwrap_err().to_string().contains("inflate beyond"));
        // Any streaming codec: the reader is cut right after the limit.
        let mut out = Vec::new();
        let err = read_bounded(Compression::Gzip, std::io::repeat(0), &mut out).unwrap_err();
        assert!(err.to_string().contains("inflate beyond"));
        assert_eq!(out.len(), MAX_DECOMPRESSED_BYTES + 1);
    }

    #[test]
    fn every_codec_round_trips_multi_block_input() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for codec in ALL {
            let packed = compress(codec, &data).unwrap();
            assert_eq!(decompress(codec, &packed).unwrap(), data, "{codec}");
        }
    }

    #[test]
    fn snappy_uses_xerial_framing_and_accepts_raw_blocks() {
        let data = b"hello hello hello hello".to_vec();
        let packed = compress(Compression::Snappy, &data).unwrap();
        assert_eq!(&packed[..8], XERIAL_MAGIC);
        assert_eq!(&packed[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(Compression::Snappy, &raw).unwrap(), data);
    }

    #[test]
    fn names_parse_and_ids_map_back() {
        for codec in ALL {
            assert_eq!(codec.name().parse::<Compression>().unwrap(), codec);
            assert_eq!(Compression::from_attributes(codec.id() | 0x30).unwrap(), codec);
            assert_eq!(codec.to_string(), codec.name());
        }
        assert!("brotli".parse::<Compression>().is_err());
        assert_eq!(Compression::from_attributes(5), Err(RecordError::UnsupportedCompression(5)));
    }

    #[test]
    fn garbage_input_is_a_compression_error() {
        for codec in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
            assert!(matches!(decompress(codec, b"definitely not compressed"), Err(RecordError::Compression(_))));
        }
    }
}
