//! [`batches`]: iterate over concatenated batches in one buffer.

use bytes::Bytes;

use crate::header::{BATCH_LENGTH, LOG_OVERHEAD, MIN_BATCH_LENGTH};
use crate::{RecordBatch, RecordError};

/// Iterates over the batches concatenated in `buf` (see [`BatchIter`]).
pub fn batches(buf: Bytes) -> BatchIter {
    BatchIter { buf, pos: 0, done: false }
}

/// Iterator over concatenated batches, yielding zero-copy [`RecordBatch`]es.
///
/// A partial trailing batch yields `Err(RecordError::Truncated { .. })` once; any other
/// error (bad length, bad magic) is also yielded once. After an error the iterator is done.
#[derive(Debug, Clone)]
pub struct BatchIter {
    buf: Bytes,
    pos: usize,
    done: bool,
}

impl BatchIter {
    /// Byte position of the next batch within the buffer (the end of the valid prefix once
    /// the iterator has returned `None` or an error).
    pub fn position(&self) -> usize {
        self.pos
    }

    fn next_batch(&mut self) -> Result<RecordBatch, RecordError> {
        let rest = &self.buf[self.pos..];
        if rest.len() < LOG_OVERHEAD {
            return Err(RecordError::Truncated { needed: LOG_OVERHEAD, available: rest.len() });
        }
        let length = i32::from_be_bytes(rest[BATCH_LENGTH..BATCH_LENGTH + 4].try_into().expect("4 bytes"));
        if length < MIN_BATCH_LENGTH {
            return Err(RecordError::InvalidLength(length));
        }
        let size = LOG_OVERHEAD + length as usize;
        if size > rest.len() {
            return Err(RecordError::Truncated { needed: size, available: rest.len() });
        }
        let batch = RecordBatch::parse(self.buf.slice(self.pos..self.pos + size))?;
        self.pos += size;
        Ok(batch)
    }
}

impl Iterator for BatchIter {
    type Item = Result<RecordBatch, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        let result = self.next_batch();
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}
