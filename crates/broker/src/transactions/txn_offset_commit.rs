//! TransactionService.TxnOffsetCommit, served by the group's coordinator: offsets committed
//! inside a transaction, visible once it commits.

use vltava_proto::v1::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::markers::result;
use crate::broker::Broker;
use crate::coordinator::shard::TxnProducer;
use crate::error::BrokerError;
use crate::groups::coordinator::OffsetToCommit;

/// Commits the offsets in the producer's transaction.
///
/// # Errors
///
/// `INVALID_GROUP_ID`, `INVALID_REQUEST` for a missing producer; `NOT_COORDINATOR`; a write
/// failure (`INVALID_PRODUCER_EPOCH` for a fenced producer).
pub async fn handle(broker: &Broker, req: TxnOffsetCommitRequest) -> Result<TxnOffsetCommitResponse, BrokerError> {
    vltava_common::names::validate_group_id(&req.group_id)?;
    if req.producer_id < 0 || req.producer_epoch < 0 {
        return Err(BrokerError::InvalidRequest("TxnOffsetCommit needs the producer id and epoch".into()));
    }
    let now = vltava_common::time::now_ms();
    let (keys, offsets): (Vec<_>, Vec<_>) =
        req.offsets.into_iter().map(|o| OffsetToCommit::new(o.topic, o.partition, o.offset, o.metadata, now)).unzip();
    let txn = TxnProducer { producer_id: req.producer_id, producer_epoch: req.producer_epoch as i16 };
    let image = broker.replicas.image();
    let outcomes = broker
        .groups
        .commit_transactional(&image, &req.group_id, txn, &req.member_id, req.member_epoch, offsets)
        .await?;
    let results = keys
        .into_iter()
        .zip(outcomes)
        .map(|((topic, partition), outcome)| result(&topic, partition, outcome))
        .collect();
    Ok(TxnOffsetCommitResponse { results })
}
