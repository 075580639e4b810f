//! The binary encoding of coordinator records (`__consumer_offsets`, `__transaction_state`),
//! Kafka's: integers big-endian; a string is an `i16` length (-1: none) and UTF-8 bytes; a list
//! is an `i32` count and its items; partitions are a list of (topic, list of `i32`).
//!
//! Decoders take `&mut &[u8]` and name the field they were reading in every error.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, BytesMut};

/// Partitions by topic, sorted.
pub type TopicPartitions = BTreeMap<String, BTreeSet<i32>>;

/// Why a coordinator record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecError {
    /// The bytes end before the named field.
    Truncated(&'static str),
    /// This many bytes follow the last field.
    Trailing(usize),
    /// The named field holds an impossible value.
    Invalid(&'static str),
}

/// Writes a string.
pub fn put_str(b: &mut BytesMut, s: &str) {
    put_opt(b, Some(s));
}

/// Writes an optional string (-1 length for none).
pub fn put_opt(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => {
            // Group ids, topics and member ids are far below 32 KiB (validated at the edge); a
            // longer string is cut at a character boundary rather than corrupting the record.
            let mut end = s.len().min(i16::MAX as usize);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            b.put_i16(end as i16);
            b.put_slice(&s.as_bytes()[..end]);
        }
        None => b.put_i16(-1),
    }
}

/// Writes partitions by topic.
pub fn put_partitions(b: &mut BytesMut, parts: &TopicPartitions) {
    b.put_i32(parts.len() as i32);
    for (topic, ps) in parts {
        put_str(b, topic);
        b.put_i32(ps.len() as i32);
        for p in ps {
            b.put_i32(*p);
        }
    }
}

/// Fails unless `n` bytes remain.
pub fn need(buf: &&[u8], n: usize, what: &'static str) -> Result<(), CodecError> {
    if buf.remaining() < n { Err(CodecError::Truncated(what)) } else { Ok(()) }
}

/// Reads an `i8`.
pub fn get_i8(buf: &mut &[u8], what: &'static str) -> Result<i8, CodecError> {
    need(buf, 1, what)?;
    Ok(buf.get_i8())
}

/// Reads an `i16`.
pub fn get_i16(buf: &mut &[u8], what: &'static str) -> Result<i16, CodecError> {
    need(buf, 2, what)?;
    Ok(buf.get_i16())
}

/// Reads an `i32`.
pub fn get_i32(buf: &mut &[u8], what: &'static str) -> Result<i32, CodecError> {
    need(buf, 4, what)?;
    Ok(buf.get_i32())
}

/// Reads an `i64`.
pub fn get_i64(buf: &mut &[u8], what: &'static str) -> Result<i64, CodecError> {
    need(buf, 8, what)?;
    Ok(buf.get_i64())
}

/// Reads a list count, refusing counts the remaining bytes cannot hold.
pub fn get_count(buf: &mut &[u8], what: &'static str) -> Result<usize, CodecError> {
    let n = get_i32(buf, what)?;
    // Every item takes at least two bytes: a count beyond that is corrupt, not a huge allocation.
    if n < 0 || n as usize > buf.remaining() / 2 + 1 {
        return Err(CodecError::Invalid(what));
    }
    Ok(n as usize)
}

/// Reads an optional string.
pub fn get_opt(buf: &mut &[u8], what: &'static str) -> Result<Option<String>, CodecError> {
    let len = get_i16(buf, what)?;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 {
        return Err(CodecError::Invalid(what));
    }
    need(buf, len as usize, what)?;
    let s = std::str::from_utf8(&buf[..len as usize]).map_err(|_| CodecError::Invalid(what))?.to_string();
    buf.advance(len as usize);
    Ok(Some(s))
}

/// Reads a string that must be present.
pub fn get_string(buf: &mut &[u8], what: &'static str) -> Result<String, CodecError> {
    get_opt(buf, what)?.ok_or(CodecError::Invalid(what))
}

/// Reads partitions by topic.
pub fn get_partitions(buf: &mut &[u8]) -> Result<TopicPartitions, CodecError> {
    let topics = get_count(buf, "topic count")?;
    let mut out = TopicPartitions::new();
    for _ in 0..topics {
        let topic = get_string(buf, "topic")?;
        let n = get_count(buf, "partition count")?;
        let mut set = BTreeSet::new();
        for _ in 0..n {
            let p = get_i32(buf, "partition")?;
            if p < 0 {
                return Err(CodecError::Invalid("partition"));
            }
            set.insert(p);
        }
        out.insert(topic, set);
    }
    Ok(out)
}

/// Fails if bytes remain.
pub fn done(buf: &&[u8]) -> Result<(), CodecError> {
    match buf.remaining() {
        0 => Ok(()),
        n => Err(CodecError::Trailing(n)),
    }
}
