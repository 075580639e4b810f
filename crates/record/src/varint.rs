//! Zigzag variable-length integers (protobuf style) as used inside Kafka records.

use crate::RecordError;

/// Appends `value` as a zigzag varint (at most 5 bytes).
pub(crate) fn put_varint(buf: &mut Vec<u8>, value: i32) {
    put_unsigned(buf, ((value << 1) ^ (value >> 31)) as u32 as u64);
}

/// Appends `value` as a zigzag varlong (at most 10 bytes).
pub(crate) fn put_varlong(buf: &mut Vec<u8>, value: i64) {
    put_unsigned(buf, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_unsigned(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Number of bytes `put_varint(value)` writes.
pub(crate) fn varint_size(value: i32) -> usize {
    unsigned_size(((value << 1) ^ (value >> 31)) as u32 as u64)
}

/// Number of bytes `put_varlong(value)` writes.
pub(crate) fn varlong_size(value: i64) -> usize {
    unsigned_size(((value << 1) ^ (value >> 63)) as u64)
}

fn unsigned_size(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// A cursor over a byte slice that decodes the primitive types used in records.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn unsigned(&mut self, max_bytes: usize) -> Result<u64, RecordError> {
        let mut result = 0u64;
        for i in 0..max_bytes {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(RecordError::Truncated { needed: self.pos + 1, available: self.buf.len() });
            };
            self.pos += 1;
            result |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(result);
            }
        }
        Err(RecordError::Malformed(format!("varint longer than {max_bytes} bytes")))
    }

    pub(crate) fn varint(&mut self) -> Result<i32, RecordError> {
        let raw = self.unsigned(5)?;
        let raw = u32::try_from(raw).map_err(|_| RecordError::Malformed("varint overflows 32 bits".into()))?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    pub(crate) fn varlong(&mut self) -> Result<i64, RecordError> {
        let raw = self.unsigned(10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    pub(crate) fn i8(&mut self) -> Result<i8, RecordError> {
        Ok(self.bytes(1)?[0] as i8)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.remaining() < n {
            return Err(RecordError::Truncated { needed: self.pos + n, available: self.buf.len() });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Reads a varint length followed by that many bytes; a length of -1 means null.
    pub(crate) fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, RecordError> {
        let len = self.varint()?;
        match len {
            -1 => Ok(None),
            n if n < 0 => Err(RecordError::Malformed(format!("negative length {n}"))),
            n => self.bytes(n as usize).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_known_encodings_match_kafka() {
        let cases: &[(i32, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for (value, bytes) in cases {
            let mut buf = Vec::new();
            put_varint(&mut buf, *value);
            assert_eq!(&buf[..], *bytes, "encoding {value}");
            assert_eq!(varint_size(*value), bytes.len());
            assert_eq!(Reader::new(bytes).varint().unwrap(), *value);
        }
    }

    #[test]
    fn varlong_round_trips_extremes() {
        for value in [0i64, -1, 1, i64::MAX, i64::MIN, 1_700_000_000_000, -300] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, value);
            assert_eq!(buf.len(), varlong_size(value));
            let mut r = Reader::new(&buf);
            assert_eq!(r.varlong().unwrap(), value);
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn overlong_varint_is_malformed() {
        let bytes = [0xff; 6];
        assert!(matches!(Reader::new(&bytes).varint(), Err(RecordError::Malformed(_))));
        assert!(matches!(Reader::new(&[0x80]).varint(), Err(RecordError::Truncated { .. })));
    }
}
