//! The follower's side of replication: one task per leader broker (Kafka's replica fetcher
//! thread) fetching every partition this broker follows from that leader in one request.
//!
//! A partition assigned to a fetcher (a new leader, or a new leader epoch) first truncates: it
//! asks the leader where its latest epoch ends (`OffsetForLeaderEpoch`) and cuts its log there,
//! so a deposed leader's unreplicated records disappear before anything is fetched (KIP-101,
//! KIP-279). Then it fetches from its log end offset, appends the batches as stored, and takes
//! the leader's high watermark (capped by its own log end). A fetch response also reports a
//! diverging epoch (KIP-320), handled the same way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;
use vltava_common::ErrorCode;
use vltava_proto::v1::replication_service_client::ReplicationServiceClient;
use vltava_proto::v1::{
    EpochEndOffset, OffsetForLeaderEpochPartition, OffsetForLeaderEpochRequest, ReplicaFetchPartition,
    ReplicaFetchPartitionData, ReplicaFetchRequest,
};

use crate::config::ReplicationConfig;
use crate::error::BrokerError;
use crate::partition::Partition;

/// A partition's key.
pub type Key = (String, i32);

/// A partition a fetcher replicates.
#[derive(Clone)]
pub struct Assignment {
    /// The local replica.
    pub part: Arc<Partition>,
    /// The leader epoch it follows.
    pub leader_epoch: i32,
    /// Whether the log was already truncated against this leader epoch.
    pub truncated: bool,
    /// Not before then (after an error).
    pub retry_at: Option<Instant>,
}

/// The partitions of one fetcher, shared with the manager that assigns them.
#[derive(Default)]
pub struct FetcherShared {
    /// Partitions by key.
    pub partitions: Mutex<HashMap<Key, Assignment>>,
    /// Signalled when the assignment changes (an in-flight long poll is abandoned).
    pub changed: Notify,
}

/// What a fetcher task needs.
pub struct FetcherContext {
    /// This broker.
    pub broker_id: i32,
    /// This broker's registration epoch, read at each request.
    pub broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// The leader broker's id, for logs.
    pub leader: i32,
    /// The leader's address.
    pub address: String,
    /// Limits and timings.
    pub config: ReplicationConfig,
    /// The assigned partitions.
    pub shared: Arc<FetcherShared>,
}

type Client = ReplicationServiceClient<vltava_common::grpc::TracedChannel>;

/// Runs the fetcher until the task is aborted.
pub async fn run(ctx: FetcherContext) {
    // 1 MiB frames (replica fetch responses are megabytes); windows sized by BDP estimation.
    let client = match vltava_common::grpc::data_endpoint(&ctx.address) {
        Ok(e) => ReplicationServiceClient::new(vltava_common::grpc::traced(
            e.connect_timeout(Duration::from_secs(2)).http2_adaptive_window(true).connect_lazy(),
        ))
        .max_decoding_message_size(ctx.config.fetch_response_max_bytes + 1024 * 1024),
        Err(e) => {
            tracing::error!(leader = ctx.leader, address = %ctx.address, error = %e, "bad leader address");
            return;
        }
    };
    tracing::info!(leader = ctx.leader, address = %ctx.address, "replica fetcher started");
    loop {
        let now = Instant::now();
        let (ready, next_retry) = {
            let map = ctx.shared.partitions.lock();
            let ready: Vec<(Key, Assignment)> = map
                .iter()
                .filter(|(_, a)| a.retry_at.is_none_or(|t| t <= now))
                .map(|(k, a)| (k.clone(), a.clone()))
                .collect();
            (ready, map.values().filter_map(|a| a.retry_at).min())
        };
        if ready.is_empty() {
            let wake = next_retry.unwrap_or(now + Duration::from_secs(5));
            tokio::select! {
                _ = ctx.shared.changed.notified() => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
            continue;
        }
        let (truncate, fetch): (Vec<_>, Vec<_>) = ready.into_iter().partition(|(_, a)| !a.truncated);
        let round = if truncate.is_empty() {
            fetch_round(&ctx, client.clone(), fetch).await
        } else {
            truncate_round(&ctx, client.clone(), truncate).await
        };
        if let Err(e) = round {
            tracing::debug!(leader = ctx.leader, error = %e, "replica fetch failed; backing off");
            tokio::select! {
                _ = ctx.shared.changed.notified() => {}
                _ = tokio::time::sleep(ctx.config.fetch_backoff) => {}
            }
        }
    }
}

/// Whether `key` is still assigned for `epoch` (a result for an older assignment is dropped).
fn current(shared: &FetcherShared, key: &Key, epoch: i32) -> bool {
    shared.partitions.lock().get(key).is_some_and(|a| a.leader_epoch == epoch)
}

fn update(shared: &FetcherShared, key: &Key, epoch: i32, f: impl FnOnce(&mut Assignment)) {
    if let Some(a) = shared.partitions.lock().get_mut(key).filter(|a| a.leader_epoch == epoch) {
        f(a);
    }
}

fn back_off(ctx: &FetcherContext, key: &Key, epoch: i32) {
    let at = Instant::now() + ctx.config.fetch_backoff;
    update(&ctx.shared, key, epoch, |a| a.retry_at = Some(at));
}

/// Asks the leader where each partition's latest epoch ends and truncates there.
async fn truncate_round(
    ctx: &FetcherContext,
    mut client: Client,
    partitions: Vec<(Key, Assignment)>,
) -> Result<(), tonic::Status> {
    let mut asked = Vec::new();
    for (key, a) in partitions {
        match a.part.latest_epoch() {
            // An empty log has nothing to truncate.
            None => update(&ctx.shared, &key, a.leader_epoch, |x| x.truncated = true),
            Some(epoch) => asked.push((key, a, epoch)),
        }
    }
    if asked.is_empty() {
        return Ok(());
    }
    let req = OffsetForLeaderEpochRequest {
        replica_id: ctx.broker_id,
        partitions: asked
            .iter()
            .map(|((topic, partition), a, epoch)| OffsetForLeaderEpochPartition {
                topic: topic.clone(),
                partition: *partition,
                current_leader_epoch: a.leader_epoch,
                leader_epoch: *epoch,
            })
            .collect(),
    };
    let resp = client.offset_for_leader_epoch(req).await?.into_inner();
    for ((key, a, _), r) in asked.into_iter().zip(resp.partitions) {
        if r.error_code != ErrorCode::None as i32 {
            tracing::debug!(topic = %key.0, partition = key.1, error = %r.error_message, "epoch end offset refused");
            back_off(ctx, &key, a.leader_epoch);
            continue;
        }
        let end = r.end.unwrap_or(EpochEndOffset { leader_epoch: -1, end_offset: -1 });
        match truncate_to_leader(&a, end).await {
            Ok(()) => update(&ctx.shared, &key, a.leader_epoch, |x| x.truncated = true),
            Err(e) => {
                tracing::warn!(topic = %key.0, partition = key.1, error = %e, "truncation failed");
                back_off(ctx, &key, a.leader_epoch);
            }
        }
    }
    Ok(())
}

/// Truncates the replica against the leader's answer, on the blocking pool.
async fn truncate_to_leader(a: &Assignment, end: EpochEndOffset) -> Result<(), BrokerError> {
    let a = a.clone();
    tokio::task::spawn_blocking(move || truncate_diverging(&a, end))
        .await
        .map_err(|e| BrokerError::Internal(e.to_string()))?
}

/// One replica fetch for every ready partition, and what the answer does to each.
async fn fetch_round(
    ctx: &FetcherContext,
    mut client: Client,
    partitions: Vec<(Key, Assignment)>,
) -> Result<(), tonic::Status> {
    let req = ReplicaFetchRequest {
        replica_id: ctx.broker_id,
        broker_epoch: (ctx.broker_epoch)(),
        max_wait_ms: ctx.config.fetch_wait_max.as_millis() as i32,
        max_bytes: ctx.config.fetch_response_max_bytes as i32,
        partitions: partitions
            .iter()
            .map(|((topic, partition), a)| ReplicaFetchPartition {
                topic: topic.clone(),
                partition: *partition,
                topic_id: a.part.topic_id().to_string(),
                current_leader_epoch: a.leader_epoch,
                fetch_offset: a.part.log_end_offset(),
                last_fetched_epoch: a.part.latest_epoch().unwrap_or(-1),
                log_start_offset: a.part.log_start_offset(),
                partition_max_bytes: ctx.config.fetch_max_bytes as i32,
            })
            .collect(),
    };
    let resp = tokio::select! {
        r = client.replica_fetch(req) => r?.into_inner(),
        // The assignment changed: start over with the new one.
        _ = ctx.shared.changed.notified() => return Ok(()),
    };
    let mut work = Vec::new();
    for ((key, a), data) in partitions.into_iter().zip(resp.partitions) {
        let code = ErrorCode::try_from(data.error_code).unwrap_or(ErrorCode::UnknownServerError);
        match code {
            ErrorCode::None => work.push((key, a, data)),
            ErrorCode::OffsetOutOfRange => work.push((key, a, data)),
            _ => {
                tracing::debug!(topic = %key.0, partition = key.1, error = %data.error_message, "replica fetch refused");
                back_off(ctx, &key, a.leader_epoch);
            }
        }
    }
    if work.is_empty() {
        return Ok(());
    }
    let shared = ctx.shared.clone();
    let outcomes = tokio::task::spawn_blocking(move || {
        work.into_iter()
            .filter(|(key, a, _)| current(&shared, key, a.leader_epoch))
            .map(|(key, a, data)| {
                let outcome = apply(&a, data);
                (key, a.leader_epoch, outcome)
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| tonic::Status::internal(e.to_string()))?;
    for (key, epoch, outcome) in outcomes {
        match outcome {
            Ok(Next::Fetch) => {}
            Ok(Next::Truncate) => update(&ctx.shared, &key, epoch, |a| a.truncated = false),
            Err(BrokerError::StaleFetch { .. }) => {}
            Err(e) => {
                tracing::warn!(topic = %key.0, partition = key.1, error = %e, "applying fetched records failed");
                back_off(ctx, &key, epoch);
            }
        }
    }
    Ok(())
}

/// What a partition does after a fetch answer was applied.
enum Next {
    Fetch,
    /// Check the epochs against the leader again.
    Truncate,
}

/// Applies one partition's fetch answer (blocking).
fn apply(a: &Assignment, data: ReplicaFetchPartitionData) -> Result<Next, BrokerError> {
    let part = &a.part;
    if data.error_code == ErrorCode::OffsetOutOfRange as i32 {
        let fetch_offset = part.log_end_offset();
        if data.log_start_offset > fetch_offset {
            // The leader deleted what this replica needs next (retention): start over there.
            tracing::info!(
                topic = part.topic(),
                partition = part.index(),
                offset = data.log_start_offset,
                "behind the leader's log start: restarting the log there"
            );
            part.truncate_as_follower_blocking(data.log_start_offset, a.leader_epoch, true)?;
            return Ok(Next::Fetch);
        }
        return Ok(Next::Truncate);
    }
    if let Some(d) = data.diverging_epoch {
        truncate_diverging(a, d)?;
        return Ok(Next::Fetch);
    }
    if !data.records.is_empty() {
        part.append_as_follower_blocking(data.records, a.leader_epoch)?;
    }
    part.set_follower_high_watermark(data.high_watermark);
    Ok(Next::Fetch)
}

/// Truncates the replica to where its log stops agreeing with the leader's: the end of the
/// leader's epoch `d.leader_epoch`, or of this log's part at or below that epoch if earlier
/// (blocking).
fn truncate_diverging(a: &Assignment, d: EpochEndOffset) -> Result<(), BrokerError> {
    let part = &a.part;
    let target = if d.leader_epoch < 0 {
        // The leader knows no epoch this old: keep only what was committed.
        part.high_watermark()
    } else {
        let (mine, my_end) = part.end_offset_for_epoch(d.leader_epoch);
        d.end_offset.min(if mine < 0 { part.log_start_offset() } else { my_end })
    };
    let before = part.log_end_offset();
    let after = part.truncate_as_follower_blocking(target, a.leader_epoch, false)?;
    if after < before {
        tracing::info!(
            topic = part.topic(),
            partition = part.index(),
            from = before,
            to = after,
            leader_epoch = a.leader_epoch,
            "truncated records the leader does not have"
        );
    }
    Ok(())
}
