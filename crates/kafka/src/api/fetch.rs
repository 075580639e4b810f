//! Fetch: the broker's fetch path (long-poll until `min.bytes` or `max.wait.ms`, `max.bytes`
//! and per-partition limits, isolation level and aborted transactions, whole batches even when
//! the fetch offset falls inside one, as Kafka returns them).
//!
//! Fetch sessions (KIP-227) are optional for a broker: every request is answered in full and
//! with session id 0, which tells the client that no session was created, so it keeps sending
//! full requests. A request naming a session this broker never created gets
//! `FETCH_SESSION_ID_NOT_FOUND`. From version 13 topics are named by id. A partition whose
//! `current_leader_epoch` is not the leader's is answered with Kafka's fencing error unread.

use std::sync::Arc;

use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use uuid::Uuid;
use vltava_broker::Broker;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1 as pb;

use super::codes::{FETCH_SESSION_ID_NOT_FOUND, UNKNOWN_TOPIC_ID};
use super::{code, topic_by_id, topic_name};

/// Kafka's READ_COMMITTED isolation level.
const READ_COMMITTED: i8 = 1;

/// One requested topic, resolved to its name.
struct Topic {
    name: TopicName,
    id: Uuid,
    /// Each partition, with the error that keeps it from being read (an unknown topic id, a
    /// leader epoch other than the leader's).
    partitions: Vec<(i32, Option<i16>)>,
}

/// The error of a fetch naming `epoch` as the leader's (-1: not checked), when it is not:
/// `FENCED_LEADER_EPOCH` for an older one, `UNKNOWN_LEADER_EPOCH` for a newer one, as Kafka
/// answers, so that the client refreshes its metadata and validates its position.
pub fn epoch_error(broker: &Broker, topic: &str, partition: i32, epoch: i32) -> Option<i16> {
    if epoch < 0 {
        return None;
    }
    let checked = broker.replicas.partition(topic, partition).and_then(|p| p.check_leader_epoch(epoch).map(|_| ()));
    let code = code(&WireError::from(checked.err()?));
    let fencing = [ErrorCode::FencedLeaderEpoch as i16, ErrorCode::UnknownLeaderEpoch as i16];
    fencing.contains(&code).then_some(code)
}

/// Reads the requested partitions; the future long-polls as the request allows.
pub async fn handle(broker: Arc<Broker>, req: FetchRequest, version: i16) -> FetchResponse {
    if req.session_id != 0 {
        return FetchResponse::default().with_error_code(FETCH_SESSION_ID_NOT_FOUND);
    }
    let image = broker.metadata.image();
    let by_id = version >= 13;
    let mut partitions = Vec::new();
    let topics: Vec<Topic> = req
        .topics
        .iter()
        .map(|t| {
            let name = match by_id {
                true => topic_by_id(&image, &t.topic_id).map(|m| topic_name(&m.name)),
                false => Some(t.topic.clone()),
            };
            let checked = t
                .partitions
                .iter()
                .map(|p| {
                    let Some(name) = &name else { return (p.partition, Some(UNKNOWN_TOPIC_ID)) };
                    let refused = epoch_error(&broker, name, p.partition, p.current_leader_epoch);
                    if refused.is_none() {
                        partitions.push(pb::FetchPartition {
                            topic: name.to_string(),
                            partition: p.partition,
                            fetch_offset: p.fetch_offset,
                            partition_max_bytes: p.partition_max_bytes,
                        });
                    }
                    (p.partition, refused)
                })
                .collect();
            Topic { name: name.unwrap_or_else(|| t.topic.clone()), id: t.topic_id, partitions: checked }
        })
        .collect();
    let isolation = match req.isolation_level {
        READ_COMMITTED => pb::IsolationLevel::ReadCommitted,
        _ => pb::IsolationLevel::ReadUncommitted,
    };
    let read = match partitions.is_empty() {
        true => Ok(Vec::new()),
        false => {
            let fetch = pb::FetchRequest {
                max_wait_ms: req.max_wait_ms,
                min_bytes: req.min_bytes,
                max_bytes: req.max_bytes,
                partitions,
                isolation_level: isolation as i32,
            };
            vltava_broker::fetch::handle(&broker, fetch).await.map(|r| r.partitions).map_err(WireError::from)
        }
    };
    let committed = req.isolation_level == READ_COMMITTED;
    let mut read = match read {
        Ok(r) => r.into_iter().map(Ok).collect::<Vec<_>>().into_iter(),
        Err(e) => {
            let n = topics.iter().flat_map(|t| &t.partitions).filter(|(_, refused)| refused.is_none()).count();
            vec![Err(e); n].into_iter()
        }
    };
    let responses = topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|&(p, refused)| match refused {
                    None => partition(p, read.next(), committed),
                    Some(error) => PartitionData::default().with_partition_index(p).with_error_code(error),
                })
                .collect();
            FetchableTopicResponse::default().with_topic(t.name).with_topic_id(t.id).with_partitions(partitions)
        })
        .collect();
    FetchResponse::default().with_responses(responses)
}

fn partition(index: i32, read: Option<Result<pb::PartitionRecords, WireError>>, committed: bool) -> PartitionData {
    let out = PartitionData::default().with_partition_index(index);
    let r = match read {
        Some(Ok(r)) => r,
        Some(Err(e)) => return out.with_error_code(code(&e)),
        None => return out.with_error_code(ErrorCode::UnknownServerError as i16),
    };
    let aborted = committed.then(|| {
        r.aborted_transactions
            .iter()
            .map(|a| {
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(a.producer_id))
                    .with_first_offset(a.first_offset)
            })
            .collect()
    });
    out.with_error_code(r.error_code as i16)
        .with_high_watermark(r.high_watermark)
        .with_last_stable_offset(r.last_stable_offset)
        .with_log_start_offset(r.log_start_offset)
        .with_aborted_transactions(aborted)
        .with_records(Some(r.records))
}
