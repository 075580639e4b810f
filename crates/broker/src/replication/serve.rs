//! The leader's side of replication: `ReplicaFetch` and `OffsetForLeaderEpoch`.
//!
//! A follower's fetch offset is its log end offset, so every fetch tells the leader where the
//! follower is: the leader records it (which may move the high watermark and complete waiting
//! `acks=all` produces) before it reads. Records go out exactly as stored, up to the leader's
//! log end. With nothing new, the fetch waits on the partitions' log ends up to `max_wait_ms`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use vltava_common::time::now_ms;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::{
    EpochEndOffset, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, OffsetForLeaderEpochResult,
    ReplicaFetchPartition, ReplicaFetchPartitionData, ReplicaFetchRequest, ReplicaFetchResponse,
};

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::long_poll;
use crate::partition::Partition;

/// Serves a follower's fetch.
pub async fn replica_fetch(broker: &Broker, req: ReplicaFetchRequest) -> Result<ReplicaFetchResponse, BrokerError> {
    if req.partitions.is_empty() {
        return Err(BrokerError::InvalidRequest("the replica fetch names no partition".into()));
    }
    let max_wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(broker.config.fetch_max_wait);
    let deadline = tokio::time::Instant::now() + max_wait;
    let max_bytes = match req.max_bytes {
        m if m > 0 => m as usize,
        _ => broker.config.replication.fetch_response_max_bytes,
    };
    let now = now_ms();
    let targets: Arc<Vec<Target>> = Arc::new(
        req.partitions.iter().map(|p| Target { req: p.clone(), part: check(broker, req.replica_id, p, now) }).collect(),
    );
    // Subscribe before the first read so that an append between read and wait is not missed.
    let watches = targets.iter().filter_map(|t| t.part.as_ref().ok()).map(|p| p.watch_log_end()).collect();
    let partitions = long_poll::poll(watches, deadline, move || {
        let (partitions, bytes) = read_all(&targets, max_bytes);
        (partitions, bytes > 0)
    })
    .await?;
    Ok(ReplicaFetchResponse { partitions })
}

/// One requested partition and what the checks made of it.
struct Target {
    req: ReplicaFetchPartition,
    /// The partition to read, or the answer instead (an error or a diverging epoch).
    part: Result<Arc<Partition>, Refusal>,
}

enum Refusal {
    Error(WireError),
    Diverging(EpochEndOffset),
}

/// Validates one partition of the fetch and records the follower's position.
fn check(broker: &Broker, replica: i32, p: &ReplicaFetchPartition, now: i64) -> Result<Arc<Partition>, Refusal> {
    let err = |e: BrokerError| Refusal::Error(WireError::from(e));
    let part = broker.replicas.partition(&p.topic, p.partition).map_err(err)?;
    if !p.topic_id.is_empty() && p.topic_id != part.topic_id() {
        return Err(Refusal::Error(WireError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("{}-{} is now a different topic (id {})", p.topic, p.partition, part.topic_id()),
        )));
    }
    part.check_leader_epoch(p.current_leader_epoch).map_err(err)?;
    // KIP-320: a follower whose last fetched epoch ends earlier on the leader has diverged; it
    // truncates to the returned end offset before it fetches again.
    if p.last_fetched_epoch >= 0 {
        let (epoch, end) = part.end_offset_for_epoch(p.last_fetched_epoch);
        if epoch != p.last_fetched_epoch || end < p.fetch_offset {
            return Err(Refusal::Diverging(EpochEndOffset { leader_epoch: epoch, end_offset: end }));
        }
    }
    if !part.record_follower_fetch(replica, p.fetch_offset, now) {
        return Err(Refusal::Error(WireError::new(
            ErrorCode::NotLeaderOrFollower,
            format!("broker {replica} is not a replica of {}-{}", p.topic, p.partition),
        )));
    }
    Ok(part)
}

/// Reads every target within the response budget; returns the results and their total size.
fn read_all(targets: &[Target], max_bytes: usize) -> (Vec<ReplicaFetchPartitionData>, usize) {
    let mut remaining = max_bytes;
    let mut total = 0;
    let out = targets
        .iter()
        .map(|t| {
            let mut r = ReplicaFetchPartitionData {
                topic: t.req.topic.clone(),
                partition: t.req.partition,
                error_code: ErrorCode::None as i32,
                error_message: String::new(),
                high_watermark: -1,
                log_start_offset: -1,
                log_end_offset: -1,
                records: Bytes::new(),
                diverging_epoch: None,
            };
            let part = match &t.part {
                Ok(p) => p,
                Err(Refusal::Error(e)) => {
                    r.error_code = e.code as i32;
                    r.error_message = e.to_string();
                    return r;
                }
                Err(Refusal::Diverging(d)) => {
                    r.diverging_epoch = Some(*d);
                    return r;
                }
            };
            r.high_watermark = part.high_watermark();
            r.log_start_offset = part.log_start_offset();
            r.log_end_offset = part.log_end_offset();
            if remaining == 0 && total > 0 {
                return r;
            }
            let limit = match t.req.partition_max_bytes {
                m if m > 0 => m as usize,
                _ => remaining,
            };
            match part.read_for_replica_blocking(t.req.fetch_offset, limit.min(remaining.max(1))) {
                Ok(read) => {
                    remaining = remaining.saturating_sub(read.records.len());
                    total += read.records.len();
                    r.log_start_offset = read.log_start_offset;
                    r.log_end_offset = read.log_end_offset;
                    r.records = read.records;
                }
                Err(e) => {
                    let e = WireError::from(e);
                    r.error_code = e.code as i32;
                    r.error_message = e.to_string();
                }
            }
            r
        })
        .collect();
    (out, total)
}

/// Answers where each asked epoch ends in this leader's log.
pub fn offset_for_leader_epoch(broker: &Broker, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let partitions = req
        .partitions
        .into_iter()
        .map(|p| {
            let mut r = OffsetForLeaderEpochResult {
                topic: p.topic.clone(),
                partition: p.partition,
                error_code: ErrorCode::None as i32,
                error_message: String::new(),
                end: None,
            };
            let answer = broker
                .replicas
                .partition(&p.topic, p.partition)
                .and_then(|part| part.check_leader_epoch(p.current_leader_epoch).map(|_| part));
            match answer {
                Ok(part) => {
                    let (leader_epoch, end_offset) = part.end_offset_for_epoch(p.leader_epoch);
                    r.end = Some(EpochEndOffset { leader_epoch, end_offset });
                }
                Err(e) => {
                    let e = WireError::from(e);
                    r.error_code = e.code as i32;
                    r.error_message = e.to_string();
                }
            }
            r
        })
        .collect();
    OffsetForLeaderEpochResponse { partitions }
}
