//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4) or the first
//! offset at or after a time, through the broker's ListOffsets path (the last stable offset
//! bounds answers for READ_COMMITTED).

use kafka_protocol::messages::ListOffsetsRequest;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use vltava_broker::Broker;
use vltava_common::WireError;
use vltava_proto::v1 as pb;

use super::code;
use super::fetch::epoch_error;

/// Kafka's READ_COMMITTED isolation level.
const READ_COMMITTED: i8 = 1;

/// Answers every requested partition.
pub async fn handle(broker: &Broker, req: ListOffsetsRequest, _version: i16) -> ListOffsetsResponse {
    let isolation = match req.isolation_level {
        READ_COMMITTED => pb::IsolationLevel::ReadCommitted,
        _ => pb::IsolationLevel::ReadUncommitted,
    };
    // Partitions asked with another leader epoch than the leader's are answered with the fencing
    // error, unlooked-up (as fetches are).
    let refused: Vec<Option<i16>> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| epoch_error(broker, &t.name, p.partition_index, p.current_leader_epoch))
        })
        .collect();
    let partitions = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| pb::ListOffsetsPartition {
                topic: t.name.to_string(),
                partition: p.partition_index,
                timestamp: p.timestamp,
            })
        })
        .zip(&refused)
        .filter(|(_, r)| r.is_none())
        .map(|(p, _)| p)
        .collect();
    let asked = pb::ListOffsetsRequest { partitions, isolation_level: isolation as i32 };
    let answered = vltava_broker::list_offsets::handle(broker, asked).await.map_err(WireError::from);
    let mut answers = match answered {
        Ok(r) => r.partitions.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => vec![Err(e); refused.iter().filter(|r| r.is_none()).count()],
    }
    .into_iter();
    let mut refused = refused.into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let out = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                    if let Some(error) = refused.next().flatten() {
                        return out.with_error_code(error).with_offset(-1).with_timestamp(-1);
                    }
                    match answers.next() {
                        Some(Ok(a)) => out
                            .with_error_code(a.error_code as i16)
                            .with_offset(a.offset)
                            .with_timestamp(a.timestamp)
                            .with_leader_epoch(-1),
                        Some(Err(e)) => out.with_error_code(code(&e)).with_offset(-1).with_timestamp(-1),
                        None => out.with_offset(-1).with_timestamp(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
