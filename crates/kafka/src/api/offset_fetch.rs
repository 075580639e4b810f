//! OffsetFetch: a group's committed offsets (of the partitions asked for, or all), with the
//! committed leader epoch; -1 where nothing was committed. Version 8 batches groups. With
//! `require_stable` (version 7, read_committed consumers), a partition whose offset an open
//! transaction committed answers `UNSTABLE_OFFSET_COMMIT`, and the consumer asks again.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest};
use vltava_broker::Broker;
use vltava_broker::groups::records::OffsetValue;
use vltava_common::WireError;
use vltava_common::names::validate_group_id;

use super::{code, str_bytes, topic_name};

/// Committed offsets by topic, in the order asked (or sorted when all were asked for); `Err`
/// where an open transaction is about to change it.
type Committed = Vec<(String, Vec<(i32, Result<Option<OffsetValue>, i16>)>)>;

/// Kafka's `UNSTABLE_OFFSET_COMMIT`.
const UNSTABLE: i16 = vltava_common::ErrorCode::UnstableOffsetCommit as i16;

/// Answers the request's group (or groups, from version 8).
pub async fn handle(broker: &Broker, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let mut groups = Vec::with_capacity(req.groups.len());
        for g in &req.groups {
            let wanted = g
                .topics
                .as_ref()
                .map(|ts| ts.iter().map(|t| (t.name.to_string(), t.partition_indexes.clone())).collect::<Vec<_>>());
            let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
            groups.push(match fetch(broker, &g.group_id, wanted, req.require_stable).await {
                Ok(committed) => group.with_topics(
                    committed
                        .into_iter()
                        .map(|(t, ps)| {
                            let partitions = ps.into_iter().map(|(p, v)| partitions(p, v)).collect();
                            OffsetFetchResponseTopics::default().with_name(topic_name(&t)).with_partitions(partitions)
                        })
                        .collect(),
                ),
                Err(e) => group.with_error_code(code(&e)),
            });
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted =
        req.topics.as_ref().map(|ts| ts.iter().map(|t| (t.name.to_string(), t.partition_indexes.clone())).collect());
    match fetch(broker, &req.group_id, wanted, req.require_stable && version >= 7).await {
        Ok(committed) => OffsetFetchResponse::default().with_topics(
            committed
                .into_iter()
                .map(|(t, ps)| {
                    let partitions = ps.into_iter().map(|(p, v)| partition(p, v)).collect();
                    OffsetFetchResponseTopic::default().with_name(topic_name(&t)).with_partitions(partitions)
                })
                .collect(),
        ),
        Err(e) => {
            // Before version 2 the error travels in every partition asked for.
            let topics = req
                .topics
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    let partitions =
                        t.partition_indexes.iter().map(|&p| partition(p, Ok(None)).with_error_code(code(&e))).collect();
                    OffsetFetchResponseTopic::default().with_name(t.name).with_partitions(partitions)
                })
                .collect();
            OffsetFetchResponse::default().with_error_code(code(&e)).with_topics(topics)
        }
    }
}

async fn fetch(
    broker: &Broker,
    group: &GroupId,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Committed, WireError> {
    validate_group_id(group)?;
    let image = broker.replicas.image();
    let flat = wanted.as_ref().map(|w| w.iter().flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p))).collect());
    let found = broker.groups.fetch_offsets(&image, group, flat).await?;
    let pending = match require_stable {
        true => broker.groups.pending_offsets(&image, group).await?,
        false => Default::default(),
    };
    let mut out: Committed = Vec::new();
    for (topic, partition, value) in found {
        let value = if pending.contains(&(topic.clone(), partition)) { Err(UNSTABLE) } else { Ok(value) };
        match out.last_mut() {
            Some((t, ps)) if *t == topic => ps.push((partition, value)),
            _ => out.push((topic, vec![(partition, value)])),
        }
    }
    if wanted.is_none() {
        out.sort_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(out)
}

fn partition(index: i32, value: Result<Option<OffsetValue>, i16>) -> OffsetFetchResponsePartition {
    let (value, error) = match value {
        Ok(v) => (v, 0),
        Err(e) => (None, e),
    };
    OffsetFetchResponsePartition::default()
        .with_partition_index(index)
        .with_error_code(error)
        .with_committed_offset(value.as_ref().map_or(-1, |v| v.offset))
        .with_committed_leader_epoch(value.as_ref().map_or(-1, |v| v.leader_epoch))
        .with_metadata(Some(str_bytes(value.map(|v| v.metadata).unwrap_or_default())))
}

fn partitions(index: i32, value: Result<Option<OffsetValue>, i16>) -> OffsetFetchResponsePartitions {
    let (value, error) = match value {
        Ok(v) => (v, 0),
        Err(e) => (None, e),
    };
    OffsetFetchResponsePartitions::default()
        .with_partition_index(index)
        .with_error_code(error)
        .with_committed_offset(value.as_ref().map_or(-1, |v| v.offset))
        .with_committed_leader_epoch(value.as_ref().map_or(-1, |v| v.leader_epoch))
        .with_metadata(Some(str_bytes(value.map(|v| v.metadata).unwrap_or_default())))
}
