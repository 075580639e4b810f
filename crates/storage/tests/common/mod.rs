//! Helpers shared by the storage integration tests.
#![allow(dead_code)]

use std::path::Path;

use bytes::{Bytes, BytesMut};
use vltava_record::{BatchBuilder, Compression, Record, batches};
use vltava_storage::{Log, LogConfig};

/// A batch of `count` records with values `"{tag}-{i}"` padded to `value_len` bytes, all
/// stamped `timestamp`.
pub fn batch(tag: &str, count: usize, timestamp: i64, value_len: usize) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..count {
        let mut v = format!("{tag}-{i}").into_bytes();
        v.resize(value_len.max(v.len()), b'.');
        b.append(timestamp, Some(format!("k{i}").as_bytes()), Some(&v), &[]);
    }
    b.build()
}

/// A batch whose records carry the given timestamps.
pub fn batch_with_timestamps(timestamps: &[i64]) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    for (i, ts) in timestamps.iter().enumerate() {
        b.append(*ts, None, Some(format!("t{i}").as_bytes()), &[]);
    }
    b.build()
}

/// Concatenates batches into one produce payload.
pub fn concat(parts: &[Bytes]) -> Bytes {
    let mut buf = BytesMut::new();
    parts.iter().for_each(|p| buf.extend_from_slice(p));
    buf.freeze()
}

/// A small config: 1 KiB segments, index entry every 100 bytes, no retention.
pub fn small_config() -> LogConfig {
    LogConfig { segment_bytes: 1024, index_interval_bytes: 100, retention_ms: -1, ..LogConfig::default() }
}

/// Decodes every record of a read result, checking each batch's CRC.
pub fn decode(records: &Bytes) -> Vec<Record> {
    batches(records.clone())
        .flat_map(|b| {
            let b = b.expect("whole batches");
            b.validate().expect("valid batch");
            b.records().expect("decodable")
        })
        .collect()
}

/// Reads the whole log from `from` in small reads and returns every record.
pub fn read_all(log: &Log, from: i64) -> Vec<Record> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let r = log.read(offset, 300, None).expect("read");
        let records = decode(&r.records);
        assert!(!records.is_empty(), "read at {offset} returned nothing");
        out.extend(records.into_iter().filter(|r| r.offset >= offset));
        offset = out.last().unwrap().offset + 1;
    }
    out
}

/// Value of a record as a string.
pub fn value(r: &Record) -> String {
    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()
}

/// Paths of the segment `.log` files in `dir`, sorted.
pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// A compacted log's config for the cleaner tests: 400-byte segments, tombstones kept 1 s.
pub fn compact_config() -> LogConfig {
    LogConfig { compact: true, delete_retention_ms: 1_000, segment_bytes: 400, ..small_config() }
}

/// One record of key `key-{key}` at time `ts` (`None`: a tombstone).
pub fn put(key: u8, value: Option<&str>, ts: i64) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    b.append(ts, Some(format!("key-{key}").as_bytes()), value.map(str::as_bytes), &[]);
    b.build()
}
