//! The transaction state machine: what a `__transaction_state` partition holds (one
//! [`TxnMetadata`] per transactional id) and the pure decisions of every transactional call, so
//! that they can be tested without a cluster.
//!
//! ```text
//!            InitProducerId                 AddPartitions / AddOffsets
//!   (none) ───────────────▶ Empty ───────────────────────────▶ Ongoing
//!                             ▲                                 │  │ EndTxn(commit)
//!      InitProducerId         │                   EndTxn(abort),│  ▼
//!      (epoch + 1)            │           timeout, new producer │ PrepareCommit ─▶ CompleteCommit
//!                             │                                 ▼      markers
//!   CompleteCommit/Abort ─────┘                           PrepareAbort ─▶ CompleteAbort
//! ```
//!
//! A Prepare state is the decision: once it is durable the transaction ends that way, whoever
//! coordinates it next. A new InitProducerId for an id with an Ongoing transaction, and a
//! transaction that outlives its timeout, move to PrepareAbort with the epoch bumped, which fences
//! the old producer (its sends, commit and abort carry the old epoch).

use std::collections::BTreeMap;

use vltava_common::{ErrorCode, WireError};

use super::records::{TxnMetadata, TxnStatus, decode_key};
use crate::coordinator::codec::TopicPartitions;
use crate::coordinator::shard::ShardState;

/// The largest epoch handed out; the next InitProducerId gets a new producer id (Kafka's rule,
/// which keeps `epoch + 1` for fencing within range).
pub const MAX_EPOCH: i16 = i16::MAX - 1;

/// The transactional ids of one `__transaction_state` partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TxnShardState {
    /// Metadata by transactional id.
    pub txns: BTreeMap<String, TxnMetadata>,
}

impl ShardState for TxnShardState {
    fn replay(&mut self, _offset: i64, key: &[u8], value: Option<&[u8]>) -> Result<(), String> {
        let id = decode_key(key).map_err(|e| format!("transaction key: {e:?}"))?;
        match value {
            None => {
                self.txns.remove(&id);
            }
            Some(v) => {
                let meta = TxnMetadata::decode(v).map_err(|e| format!("transaction value: {e:?}"))?;
                self.txns.insert(id, meta);
            }
        }
        Ok(())
    }
}

/// What InitProducerId decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitDecision {
    /// Write this metadata and answer its producer id and epoch.
    Ready(TxnMetadata),
    /// The id had an open transaction: write this PrepareAbort (epoch bumped, fencing the old
    /// producer), finish the abort, then try again.
    AbortFirst(TxnMetadata),
    /// A commit or abort is being completed: wait for it, then try again.
    Busy(TxnMetadata),
}

/// Decides InitProducerId for an id whose metadata is `current`. `new_producer_id` is used when
/// the id is new or its epochs are exhausted (`None` then asks the caller to allocate one and
/// call again).
///
/// # Errors
///
/// `INVALID_TRANSACTION_TIMEOUT` for a timeout outside `1..=max_timeout_ms`.
pub fn init(
    current: Option<&TxnMetadata>,
    timeout_ms: i32,
    max_timeout_ms: i32,
    new_producer_id: Option<i64>,
    now_ms: i64,
) -> Result<Option<InitDecision>, WireError> {
    if timeout_ms <= 0 || timeout_ms > max_timeout_ms {
        return Err(WireError::new(
            ErrorCode::InvalidTransactionTimeout,
            format!("transaction timeout {timeout_ms} ms is not within 1..={max_timeout_ms} ms"),
        ));
    }
    let fresh = |producer_id| TxnMetadata {
        producer_id,
        producer_epoch: 0,
        timeout_ms,
        status: TxnStatus::Empty,
        partitions: TopicPartitions::new(),
        last_update_ms: now_ms,
        start_ms: -1,
    };
    let Some(m) = current else {
        return Ok(new_producer_id.map(|id| InitDecision::Ready(fresh(id))));
    };
    Ok(Some(match m.status {
        TxnStatus::Ongoing => InitDecision::AbortFirst(prepare(m, false, true, now_ms)),
        TxnStatus::PrepareCommit | TxnStatus::PrepareAbort => InitDecision::Busy(m.clone()),
        TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort => {
            if m.producer_epoch >= MAX_EPOCH {
                let Some(id) = new_producer_id else { return Ok(None) };
                InitDecision::Ready(fresh(id))
            } else {
                InitDecision::Ready(TxnMetadata {
                    producer_epoch: m.producer_epoch + 1,
                    timeout_ms,
                    status: TxnStatus::Empty,
                    partitions: TopicPartitions::new(),
                    last_update_ms: now_ms,
                    start_ms: -1,
                    ..m.clone()
                })
            }
        }
    }))
}

/// Checks that the caller is the id's current producer.
///
/// # Errors
///
/// `INVALID_PRODUCER_ID_MAPPING` for an unknown id or another producer id, `PRODUCER_FENCED`
/// for another epoch (a zombie).
pub fn check_producer(
    id: &str,
    current: Option<&TxnMetadata>,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<TxnMetadata, WireError> {
    let Some(m) = current else {
        return Err(WireError::new(
            ErrorCode::InvalidProducerIdMapping,
            format!("transactional id {id:?} is unknown: call InitProducerId first"),
        ));
    };
    if m.producer_id != producer_id {
        return Err(WireError::new(
            ErrorCode::InvalidProducerIdMapping,
            format!("transactional id {id:?} belongs to producer id {}, not {producer_id}", m.producer_id),
        ));
    }
    if m.producer_epoch != producer_epoch {
        return Err(WireError::new(
            ErrorCode::ProducerFenced,
            format!(
                "producer {producer_id} epoch {producer_epoch} is fenced: transactional id {id:?} is at epoch {}",
                m.producer_epoch
            ),
        ));
    }
    Ok(m.clone())
}

/// Decides AddPartitionsToTxn (and AddOffsetsToTxn, whose partition is the group's
/// `__consumer_offsets` partition): `None` when every partition is already in the transaction.
///
/// # Errors
///
/// As [`check_producer`]; `CONCURRENT_TRANSACTIONS` while the previous transaction's markers
/// are being written.
pub fn add_partitions(
    id: &str,
    current: Option<&TxnMetadata>,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &TopicPartitions,
    now_ms: i64,
) -> Result<Option<TxnMetadata>, WireError> {
    let m = check_producer(id, current, producer_id, producer_epoch)?;
    if m.status.is_prepare() {
        return Err(concurrent(id, m.status));
    }
    let ongoing = m.status == TxnStatus::Ongoing;
    let already = partitions.iter().all(|(t, ps)| m.partitions.get(t).is_some_and(|have| ps.is_subset(have)));
    if ongoing && already {
        return Ok(None);
    }
    let mut next = TxnMetadata {
        status: TxnStatus::Ongoing,
        last_update_ms: now_ms,
        start_ms: if ongoing { m.start_ms } else { now_ms },
        partitions: if ongoing { m.partitions.clone() } else { TopicPartitions::new() },
        ..m
    };
    for (topic, ps) in partitions {
        next.partitions.entry(topic.clone()).or_default().extend(ps.iter().copied());
    }
    Ok(Some(next))
}

/// What EndTxn decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndDecision {
    /// Write this Prepare state, then the markers.
    Prepare(TxnMetadata),
    /// The same end is already being completed (a retry): wait for it.
    InProgress(TxnMetadata),
    /// The same end already completed (a retry): answer success.
    Done,
}

/// Decides EndTxn.
///
/// # Errors
///
/// As [`check_producer`]; `INVALID_TXN_STATE` when no transaction is open or the other end was
/// already decided.
pub fn end(
    id: &str,
    current: Option<&TxnMetadata>,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    now_ms: i64,
) -> Result<EndDecision, WireError> {
    let m = check_producer(id, current, producer_id, producer_epoch)?;
    let wanted = if commit { "commit" } else { "abort" };
    match (m.status, commit) {
        (TxnStatus::Ongoing, _) => Ok(EndDecision::Prepare(prepare(&m, commit, false, now_ms))),
        (TxnStatus::PrepareCommit, true) | (TxnStatus::PrepareAbort, false) => Ok(EndDecision::InProgress(m)),
        (TxnStatus::CompleteCommit, true) | (TxnStatus::CompleteAbort, false) => Ok(EndDecision::Done),
        (TxnStatus::Empty, _) => Err(WireError::new(
            ErrorCode::InvalidTxnState,
            format!("cannot {wanted}: transactional id {id:?} has no open transaction"),
        )),
        (status, _) => Err(WireError::new(
            ErrorCode::InvalidTxnState,
            format!("cannot {wanted}: the transaction of {id:?} is already {}", status.name()),
        )),
    }
}

/// The Prepare state ending `m`'s transaction; `fence` bumps the epoch first (a new producer of
/// the same id, or a timeout), so the old producer can no longer write.
pub fn prepare(m: &TxnMetadata, commit: bool, fence: bool, now_ms: i64) -> TxnMetadata {
    TxnMetadata {
        producer_epoch: if fence { m.producer_epoch.saturating_add(1) } else { m.producer_epoch },
        status: if commit { TxnStatus::PrepareCommit } else { TxnStatus::PrepareAbort },
        last_update_ms: now_ms,
        ..m.clone()
    }
}

/// The Complete state after every marker of the Prepare state `m` is written.
pub fn complete(m: &TxnMetadata, now_ms: i64) -> TxnMetadata {
    TxnMetadata {
        status: if m.status == TxnStatus::PrepareCommit { TxnStatus::CompleteCommit } else { TxnStatus::CompleteAbort },
        partitions: TopicPartitions::new(),
        last_update_ms: now_ms,
        start_ms: -1,
        ..m.clone()
    }
}

/// Transactions of the shard that outlived their timeout at `now_ms`.
pub fn timed_out(state: &TxnShardState, now_ms: i64) -> Vec<(String, TxnMetadata)> {
    state
        .txns
        .iter()
        .filter(|(_, m)| m.status == TxnStatus::Ongoing && now_ms.saturating_sub(m.start_ms) > i64::from(m.timeout_ms))
        .map(|(id, m)| (id.clone(), m.clone()))
        .collect()
}

/// Transactional ids with nothing open whose last change is older than `expiration_ms` at `now_ms`.
pub fn expired(state: &TxnShardState, now_ms: i64, expiration_ms: i64) -> Vec<(String, TxnMetadata)> {
    state
        .txns
        .iter()
        .filter(|(_, m)| matches!(m.status, TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort))
        .filter(|(_, m)| now_ms.saturating_sub(m.last_update_ms) > expiration_ms)
        .map(|(id, m)| (id.clone(), m.clone()))
        .collect()
}

fn concurrent(id: &str, status: TxnStatus) -> WireError {
    WireError::new(
        ErrorCode::ConcurrentTransactions,
        format!("the previous transaction of {id:?} is still {}: retry shortly", status.name()),
    )
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
