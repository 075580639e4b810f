//! OffsetCommit: a classic member's commit is checked against its generation by the classic
//! coordinator, a KIP-848 member's against its member epoch, then both are written by the
//! same group coordinator as gRPC commits (with the committed leader epoch, which OffsetFetch
//! returns for the client's position validation).

use kafka_protocol::messages::OffsetCommitRequest;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use vltava_broker::Broker;
use vltava_broker::groups::classic_rpc::{self, MemberRef};
use vltava_broker::groups::coordinator::OffsetToCommit;
use vltava_broker::groups::records::OffsetValue;
use vltava_common::WireError;
use vltava_common::names::validate_group_id;
use vltava_common::time::now_ms;

use super::code;

/// Commits the request's offsets; one result per partition, in request order.
pub async fn handle(broker: &Broker, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let now = now_ms();
    let offsets: Vec<OffsetToCommit> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| OffsetToCommit {
                topic: t.name.to_string(),
                partition: p.partition_index,
                value: OffsetValue {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default(),
                    commit_timestamp: now,
                },
            })
        })
        .collect();
    let outcomes = commit(broker, &req, offsets).await;
    let mut outcomes = outcomes.into_iter();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let error = outcomes.next().and_then(Result::err).map_or(0, |e| code(&e));
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

async fn commit(
    broker: &Broker,
    req: &OffsetCommitRequest,
    offsets: Vec<OffsetToCommit>,
) -> Vec<Result<(), WireError>> {
    let n = offsets.len();
    let group = req.group_id.as_str();
    let member = req.member_id.as_str();
    let generation = req.generation_id_or_member_epoch;
    let checked = validate_group_id(group).and_then(|()| {
        // A classic group's member (or a commit from outside any membership) is checked by its
        // generation; otherwise the id and epoch are a KIP-848 member's.
        if member.is_empty() || broker.groups.classic.has_members(group) {
            let instance = req.group_instance_id.as_deref();
            let who = MemberRef { id: member, instance, generation };
            classic_rpc::check_commit(broker, group, who, false).map(|()| ("", -1))
        } else {
            Ok((member, generation))
        }
    });
    let (member, epoch) = match checked {
        Ok(m) => m,
        Err(e) => return vec![Err(e); n],
    };
    let image = broker.replicas.image();
    match broker.groups.commit(&image, group, member, epoch, offsets).await {
        Ok(results) => results,
        Err(e) => vec![Err(WireError::from(e)); n],
    }
}
