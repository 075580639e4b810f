//! The records of the `__transaction_state` topic: one per transactional id, Kafka's layout
//! (`TransactionLogKey` / `TransactionLogValue` version 0), so that every transition of a
//! transaction is a record a new coordinator can replay.
//!
//! - key: `version i16 (0)`, `transactional_id string`;
//! - value: `version i16 (0)`, `producer_id i64`, `producer_epoch i16`,
//!   `transaction_timeout_ms i32`, `status i8` ([`TxnStatus`]), `partitions` (list of topic and
//!   partition indexes), `last_update_ms i64`, `start_ms i64`;
//! - no value (a tombstone): the transactional id expired and is forgotten.
//!
//! Encoding as in [`crate::coordinator::codec`].

use bytes::{BufMut, Bytes, BytesMut};

use crate::coordinator::codec::{
    CodecError, TopicPartitions, done, get_i8, get_i16, get_i32, get_i64, get_partitions, get_string, put_partitions,
    put_str,
};

const VERSION: i16 = 0;

/// Where a transaction is (Kafka's `TransactionState`, with its codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnStatus {
    /// No transaction open (after InitProducerId).
    Empty,
    /// Partitions were added: records may be written.
    Ongoing,
    /// Commit decided; markers being written.
    PrepareCommit,
    /// Abort decided; markers being written.
    PrepareAbort,
    /// Every COMMIT marker is written.
    CompleteCommit,
    /// Every ABORT marker is written.
    CompleteAbort,
}

impl TxnStatus {
    /// Kafka's code.
    pub fn code(self) -> i8 {
        match self {
            TxnStatus::Empty => 0,
            TxnStatus::Ongoing => 1,
            TxnStatus::PrepareCommit => 2,
            TxnStatus::PrepareAbort => 3,
            TxnStatus::CompleteCommit => 4,
            TxnStatus::CompleteAbort => 5,
        }
    }

    /// The status of a code.
    pub fn from_code(code: i8) -> Option<TxnStatus> {
        Some(match code {
            0 => TxnStatus::Empty,
            1 => TxnStatus::Ongoing,
            2 => TxnStatus::PrepareCommit,
            3 => TxnStatus::PrepareAbort,
            4 => TxnStatus::CompleteCommit,
            5 => TxnStatus::CompleteAbort,
            _ => return None,
        })
    }

    /// Kafka's name (as `DescribeTransactions` spells it).
    pub fn name(self) -> &'static str {
        match self {
            TxnStatus::Empty => "Empty",
            TxnStatus::Ongoing => "Ongoing",
            TxnStatus::PrepareCommit => "PrepareCommit",
            TxnStatus::PrepareAbort => "PrepareAbort",
            TxnStatus::CompleteCommit => "CompleteCommit",
            TxnStatus::CompleteAbort => "CompleteAbort",
        }
    }

    /// Markers are being written.
    pub fn is_prepare(self) -> bool {
        matches!(self, TxnStatus::PrepareCommit | TxnStatus::PrepareAbort)
    }
}

/// What the coordinator stores about one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    /// The producer id it was given.
    pub producer_id: i64,
    /// The current epoch: older epochs are fenced.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms`: an Ongoing transaction older than this is aborted.
    pub timeout_ms: i32,
    /// Where the current (or last) transaction is.
    pub status: TxnStatus,
    /// The partitions of the current transaction.
    pub partitions: TopicPartitions,
    /// When this record was written.
    pub last_update_ms: i64,
    /// When the current transaction started (-1 when none is open).
    pub start_ms: i64,
}

/// Encodes the key of `transactional_id`.
pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + transactional_id.len());
    b.put_i16(VERSION);
    put_str(&mut b, transactional_id);
    b.freeze()
}

/// Decodes a key into its transactional id.
///
/// # Errors
///
/// A short, long or unknown-version key.
pub fn decode_key(mut bytes: &[u8]) -> Result<String, CodecError> {
    let buf = &mut bytes;
    let version = get_i16(buf, "key version")?;
    if version != VERSION {
        return Err(CodecError::Invalid("key version"));
    }
    let id = get_string(buf, "transactional id")?;
    done(buf)?;
    Ok(id)
}

impl TxnMetadata {
    /// Encodes the value.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(64);
        b.put_i16(VERSION);
        b.put_i64(self.producer_id);
        b.put_i16(self.producer_epoch);
        b.put_i32(self.timeout_ms);
        b.put_i8(self.status.code());
        put_partitions(&mut b, &self.partitions);
        b.put_i64(self.last_update_ms);
        b.put_i64(self.start_ms);
        b.freeze()
    }

    /// Decodes a value.
    ///
    /// # Errors
    ///
    /// A short, long, unknown-version or impossible value.
    pub fn decode(mut bytes: &[u8]) -> Result<TxnMetadata, CodecError> {
        let buf = &mut bytes;
        if get_i16(buf, "value version")? != VERSION {
            return Err(CodecError::Invalid("value version"));
        }
        let producer_id = get_i64(buf, "producer id")?;
        let producer_epoch = get_i16(buf, "producer epoch")?;
        let timeout_ms = get_i32(buf, "transaction timeout")?;
        let status = TxnStatus::from_code(get_i8(buf, "status")?).ok_or(CodecError::Invalid("status"))?;
        let partitions = get_partitions(buf)?;
        let last_update_ms = get_i64(buf, "last update")?;
        let start_ms = get_i64(buf, "start")?;
        done(buf)?;
        if producer_id < 0 || producer_epoch < 0 {
            return Err(CodecError::Invalid("producer id or epoch"));
        }
        Ok(TxnMetadata { producer_id, producer_epoch, timeout_ms, status, partitions, last_update_ms, start_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TxnMetadata {
        TxnMetadata {
            producer_id: 4_000,
            producer_epoch: 3,
            timeout_ms: 60_000,
            status: TxnStatus::Ongoing,
            partitions: TopicPartitions::from([("orders".into(), [0, 2].into()), ("audit".into(), [1].into())]),
            last_update_ms: 1_700_000_000_000,
            start_ms: 1_699_999_999_000,
        }
    }

    #[test]
    fn keys_and_values_round_trip() {
        assert_eq!(decode_key(&encode_key("payments-1")).unwrap(), "payments-1");
        for code in 0..6 {
            let m = TxnMetadata { status: TxnStatus::from_code(code).unwrap(), ..sample() };
            assert_eq!(TxnMetadata::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn the_key_has_kafkas_layout() {
        assert_eq!(&encode_key("t")[..], &[0, 0, 0, 1, b't']);
    }

    #[test]
    fn truncated_extended_or_impossible_records_are_refused() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(TxnMetadata::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(TxnMetadata::decode(&longer), Err(CodecError::Trailing(1)));
        let mut bad_status = bytes.to_vec();
        bad_status[16] = 9;
        assert_eq!(TxnMetadata::decode(&bad_status), Err(CodecError::Invalid("status")));
        assert!(decode_key(&[0, 1, 0, 1, b't']).is_err(), "unknown key version");
    }
}
