//! GroupService handlers: commit, fetch and list committed offsets.

use vltava_common::names::validate_group_id;
use vltava_common::time::now_ms;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::{
    CommitOffsetsRequest, CommitOffsetsResponse, FetchOffsetsRequest, FetchOffsetsResponse, ListGroupsResponse,
    OffsetCommit, PartitionResult,
};

use super::{CommittedOffset, PartitionOffset};
use crate::broker::Broker;
use crate::error::BrokerError;

/// Commits the offsets that name existing partitions; reports the others per partition.
pub fn commit(broker: &Broker, req: CommitOffsetsRequest) -> Result<CommitOffsetsResponse, BrokerError> {
    validate_group_id(&req.group_id)?;
    let image = broker.replicas.image();
    let now = now_ms();
    let mut accepted = Vec::new();
    let mut results = Vec::with_capacity(req.offsets.len());
    for o in req.offsets {
        let error = if image.partition(&o.topic, o.partition).is_none() {
            Some(WireError::from(BrokerError::UnknownTopicOrPartition {
                topic: o.topic.clone(),
                partition: o.partition,
            }))
        } else if o.offset < 0 {
            Some(WireError::new(ErrorCode::InvalidRequest, format!("offset {} is negative", o.offset)))
        } else {
            None
        };
        results.push(PartitionResult {
            topic: o.topic.clone(),
            partition: o.partition,
            error_code: error.as_ref().map_or(ErrorCode::None, |e| e.code) as i32,
            error_message: error.map(|e| e.to_string()).unwrap_or_default(),
        });
        if results.last().is_some_and(|r| r.error_code == ErrorCode::None as i32) {
            accepted.push(PartitionOffset {
                topic: o.topic,
                partition: o.partition,
                committed: CommittedOffset { offset: o.offset, metadata: o.metadata, commit_timestamp: now },
            });
        }
    }
    broker.offsets.commit(&req.group_id, &accepted).map_err(|e| BrokerError::OffsetStore(e.to_string()))?;
    Ok(CommitOffsetsResponse { results })
}

/// Returns the requested (or all) committed offsets of a group; -1 where none was committed.
pub fn fetch(broker: &Broker, req: FetchOffsetsRequest) -> Result<FetchOffsetsResponse, BrokerError> {
    validate_group_id(&req.group_id)?;
    let store_err = |e: super::OffsetStoreError| BrokerError::OffsetStore(e.to_string());
    let offsets = if req.partitions.is_empty() {
        broker
            .offsets
            .fetch_group(&req.group_id)
            .map_err(store_err)?
            .into_iter()
            .map(|p| OffsetCommit {
                topic: p.topic,
                partition: p.partition,
                offset: p.committed.offset,
                metadata: p.committed.metadata,
            })
            .collect()
    } else {
        let mut out = Vec::with_capacity(req.partitions.len());
        for tp in req.partitions {
            let c = broker.offsets.fetch(&req.group_id, &tp.topic, tp.partition).map_err(store_err)?;
            out.push(OffsetCommit {
                topic: tp.topic,
                partition: tp.partition,
                offset: c.as_ref().map_or(-1, |c| c.offset),
                metadata: c.map(|c| c.metadata).unwrap_or_default(),
            });
        }
        out
    };
    Ok(FetchOffsetsResponse { offsets })
}

/// Lists groups with committed offsets.
pub fn list(broker: &Broker) -> Result<ListGroupsResponse, BrokerError> {
    let group_ids = broker.offsets.list_groups().map_err(|e| BrokerError::OffsetStore(e.to_string()))?;
    Ok(ListGroupsResponse { group_ids })
}
