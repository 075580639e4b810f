//! TxnOffsetCommit: offsets committed inside the producer's transaction (visible when it
//! commits), by the group's coordinator. A classic member's generation is checked by the
//! classic coordinator first, as for plain commits.

use kafka_protocol::messages::TxnOffsetCommitRequest;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use vltava_broker::Broker;
use vltava_broker::groups::classic_rpc::{self, MemberRef};
use vltava_common::WireError;
use vltava_proto::v1 as pb;

use super::code;

/// Commits the offsets in the transaction; one result per partition, in request order.
pub async fn handle(broker: &Broker, req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let offsets: Vec<pb::TxnOffset> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| pb::TxnOffset {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default(),
            })
        })
        .collect();
    let n = offsets.len();
    let group = req.group_id.to_string();
    let classic = req.member_id.is_empty() || broker.groups.classic.has_members(&group);
    let checked = match classic && !req.member_id.is_empty() {
        true => {
            let instance = req.group_instance_id.as_deref();
            let who = MemberRef { id: &req.member_id, instance, generation: req.generation_id };
            classic_rpc::check_commit(broker, &group, who, true)
        }
        false => Ok(()),
    };
    let (member_id, member_epoch) =
        if classic { (String::new(), -1) } else { (req.member_id.to_string(), req.generation_id) };
    let asked = pb::TxnOffsetCommitRequest {
        transactional_id: req.transactional_id.to_string(),
        group_id: group,
        producer_id: req.producer_id.0,
        producer_epoch: i32::from(req.producer_epoch),
        offsets,
        member_id,
        member_epoch,
    };
    let outcomes: Vec<i16> = match checked {
        Err(e) => vec![code(&e); n],
        Ok(()) => {
            match vltava_broker::transactions::txn_offset_commit::handle(broker, asked).await.map_err(WireError::from) {
                Ok(r) => r.results.iter().map(|p| p.error_code as i16).collect(),
                Err(e) => vec![code(&e); n],
            }
        }
    };
    let mut outcomes = outcomes.into_iter();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(outcomes.next().unwrap_or(0))
                })
                .collect();
            TxnOffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
