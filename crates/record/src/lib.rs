//! Kafka RecordBatch v2 (magic 2): encoding, decoding, validation, compression and the
//! murmur2 key partitioner.
//!
//! # Layout
//!
//! - [`builder`] — [`BatchBuilder`], which encodes records into a batch (CRC included).
//! - [`batch`] — [`RecordBatch`], a zero-copy view over one encoded batch (header accessors,
//!   CRC check, produce-time validation, record decoding), plus [`set_base_offset`],
//!   [`set_partition_leader_epoch`] and [`batch_size_at`], which the log uses to stamp and
//!   frame batches without decoding them.
//! - [`header`] — the byte offsets of the batch header fields ([`header::BASE_OFFSET`] ...
//!   [`header::HEADER_LEN`]), shared with the storage crate.
//! - [`iter`] — [`batches`] / [`BatchIter`], iterating over concatenated batches.
//! - [`fetched`] — [`decode_fetched`], the records of a partition's fetch from a position on
//!   (shared by every consumer of fetched bytes).
//! - [`control`] — transaction markers ([`marker_batch`], [`parse_marker`]): the COMMIT/ABORT
//!   control records that end a transaction in a partition.
//! - [`compression`] — [`Compression`] and the codecs (gzip, xerial-framed snappy, LZ4 frame,
//!   zstd) applied to the whole records section.
//! - `varint`: zigzag varint / varlong encoding used inside records (private).
//! - [`rewrite`] — [`rewrite_batch`]: a leader's recompression and LogAppendTime stamping.
//! - [`murmur2`] — Kafka's murmur2 hash and default partitioner.
//! - [`placement`] — [`place`]: which partition a record goes to (explicit, keyed or keyless),
//!   the rule the SDK's producer and the gateway share.
//! - [`error`] — [`RecordError`].
//!
//! # Wire format
//!
//! A batch is a big-endian header of [`RECORD_BATCH_OVERHEAD`] bytes followed by the (possibly
//! compressed) records. The header's fields and their byte positions (baseOffset @0 ...
//! recordCount @57) are defined once, in [`header`], and every reader of batch headers (this
//! crate and the storage crate) uses those constants.

pub mod batch;
pub mod builder;
pub mod compression;
pub mod control;
pub mod error;
pub mod fetched;
pub mod header;
pub mod iter;
pub mod murmur2;
pub mod placement;
pub mod rewrite;
mod varint;

use bytes::Bytes;

pub use batch::{RecordBatch, batch_size_at, increment_sequence, set_base_offset, set_partition_leader_epoch};
pub use builder::BatchBuilder;
pub use compression::Compression;
pub use control::{Marker, MarkerKind, marker_batch, parse_marker};
pub use error::RecordError;
pub use fetched::{AbortedTransaction, FetchedRecords, decode_fetched, decode_fetched_committed};
pub use iter::{BatchIter, batches};
pub use placement::{Placement, place};
pub use rewrite::{emptied_batch, rewrite_batch};

/// The only supported batch magic (RecordBatch v2).
pub const MAGIC: i8 = 2;

/// Size of the RecordBatch v2 header in bytes (Kafka's name for [`header::HEADER_LEN`]).
pub const RECORD_BATCH_OVERHEAD: usize = header::HEADER_LEN;

/// A record header: a UTF-8 key and an optional value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header key.
    pub key: String,
    /// Header value (`None` = null).
    pub value: Option<Bytes>,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset (`base_offset + offsetDelta`).
    pub offset: i64,
    /// Absolute timestamp in ms (`base_timestamp + timestampDelta`).
    pub timestamp: i64,
    /// Key (`None` = null).
    pub key: Option<Bytes>,
    /// Value (`None` = null, e.g. a tombstone).
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<Header>,
}
