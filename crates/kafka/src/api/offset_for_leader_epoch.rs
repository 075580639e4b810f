//! OffsetForLeaderEpoch: where a leader epoch ends in the leader's log, so that a consumer whose
//! position came from an older leader finds out whether its log diverged (KIP-320). Answered
//! by the partition leader only, through the same code as replicas' gRPC calls.

use kafka_protocol::messages::OffsetForLeaderEpochRequest;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};
use vltava_broker::Broker;
use vltava_common::WireError;
use vltava_proto::v1 as pb;

use super::code;

/// Answers every requested partition.
pub fn handle(broker: &Broker, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.topic.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let out =
                        EpochEndOffset::default().with_partition(p.partition).with_leader_epoch(-1).with_end_offset(-1);
                    if let Err(e) = broker.replicas.leader_partition(&name, p.partition) {
                        return out.with_error_code(code(&WireError::from(e)));
                    }
                    let asked = pb::OffsetForLeaderEpochRequest {
                        replica_id: -1,
                        partitions: vec![pb::OffsetForLeaderEpochPartition {
                            topic: name.clone(),
                            partition: p.partition,
                            current_leader_epoch: p.current_leader_epoch,
                            leader_epoch: p.leader_epoch,
                        }],
                    };
                    let answer = vltava_broker::replication::serve::offset_for_leader_epoch(broker, asked);
                    match answer.partitions.into_iter().next() {
                        Some(r) if r.error_code != 0 => out.with_error_code(r.error_code as i16),
                        Some(r) => match r.end {
                            Some(end) => out.with_leader_epoch(end.leader_epoch).with_end_offset(end.end_offset),
                            None => out,
                        },
                        None => out,
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(t.topic).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
