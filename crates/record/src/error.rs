//! The error type of this crate.

use thiserror::Error;

/// Everything that can go wrong while encoding, decoding or validating a record batch.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The input ended before a complete structure could be read.
    #[error("truncated input: needed {needed} bytes but only {available} are available")]
    Truncated {
        /// How many bytes were required.
        needed: usize,
        /// How many bytes were present.
        available: usize,
    },
    /// The batch's magic byte is not 2 (only RecordBatch v2 is supported).
    #[error("unsupported record batch magic {0} (only magic 2 is supported)")]
    InvalidMagic(i8),
    /// The CRC-32C stored in the batch header does not match the batch contents.
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The checksum stored in the header.
        stored: u32,
        /// The checksum computed over the batch bytes.
        computed: u32,
    },
    /// A length field (the batch length) is out of range.
    #[error("invalid batch length {0}")]
    InvalidLength(i32),
    /// The compression codec id in the attributes is unknown.
    #[error("unsupported compression codec id {0}")]
    UnsupportedCompression(i16),
    /// Compressing or decompressing the records section failed.
    #[error("compression error: {0}")]
    Compression(String),
    /// The batch or one of its records is structurally invalid.
    #[error("malformed record batch: {0}")]
    Malformed(String),
}
