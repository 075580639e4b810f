//! Transaction markers: writing them on the partitions this broker leads (the WriteTxnMarkers
//! handler, and the coordinator for its local partitions), and the coordinator's side that has
//! every leader of a transaction's partitions write them.
//!
//! A marker is appended by the partition leader and replicated to every in-sync replica before
//! it counts as written (as with `acks=all`). A marker on a `__consumer_offsets` partition also
//! makes the group coordinator apply (or drop) the transaction's pending offsets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::transaction_service_client::TransactionServiceClient;
use vltava_proto::v1::{
    TxnMarker, TxnMarkerResult, TxnPartitionResult, TxnTopic, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use vltava_record::{Marker, MarkerKind};

use crate::coordinator::codec::TopicPartitions;
use crate::error::BrokerError;
use crate::groups::coordinator::{GroupCoordinator, OFFSETS_TOPIC};
use crate::replica_manager::ReplicaManager;
use crate::replication::wait::wait_for_replication;

/// Pause between rounds of marker writes that failed in a retriable way.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// What writes markers: this broker's partitions and its group coordinator.
#[derive(Clone)]
pub struct MarkerWriter {
    /// This broker's id.
    pub broker_id: i32,
    /// Hosted partitions.
    pub replicas: Arc<ReplicaManager>,
    /// The group coordinator (for markers on `__consumer_offsets`).
    pub groups: Arc<GroupCoordinator>,
    /// How long a marker waits for replication.
    pub write_timeout: Duration,
}

/// One transaction's markers to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Markers {
    /// The producer id.
    pub producer_id: i64,
    /// The epoch the markers carry.
    pub producer_epoch: i16,
    /// Commit or abort.
    pub commit: bool,
    /// The coordinator's epoch.
    pub coordinator_epoch: i32,
}

impl MarkerWriter {
    /// Writes `m`'s marker on `topic`-`partition`, which this broker must lead, and waits until
    /// every in-sync replica has it.
    ///
    /// # Errors
    ///
    /// `NOT_LEADER_OR_FOLLOWER`, `UNKNOWN_TOPIC_OR_PARTITION`, `INVALID_PRODUCER_EPOCH`,
    /// `TRANSACTION_COORDINATOR_FENCED`, replication timeouts.
    pub async fn write_local(&self, m: &Markers, topic: &str, partition: i32) -> Result<(), BrokerError> {
        let part = self.replicas.leader_partition(topic, partition)?;
        let kind = if m.commit { MarkerKind::Commit } else { MarkerKind::Abort };
        let marker = Marker { kind, coordinator_epoch: m.coordinator_epoch };
        let (pid, epoch) = (m.producer_id, m.producer_epoch);
        let p = part.clone();
        let now = vltava_common::time::now_ms();
        let (offset, state) = tokio::task::spawn_blocking(move || p.append_marker_blocking(pid, epoch, marker, now))
            .await
            .map_err(|e| BrokerError::Internal(e.to_string()))??;
        wait_for_replication(&part, offset + 1, state.leader_epoch, self.write_timeout).await?;
        if topic == OFFSETS_TOPIC {
            self.groups.apply_marker(partition, pid, m.commit).await;
        }
        Ok(())
    }

    /// Writes `m`'s marker on every partition of `parts` (all led here) concurrently; one outcome
    /// each, in order.
    async fn write_local_all(
        &self,
        m: &Markers,
        parts: Vec<(String, i32)>,
    ) -> Vec<((String, i32), Result<(), WireError>)> {
        let writes = parts.into_iter().map(|(topic, partition)| async move {
            let outcome = self.write_local(m, &topic, partition).await.map_err(WireError::from);
            ((topic, partition), outcome)
        });
        futures::future::join_all(writes).await
    }

    /// Serves a WriteTxnMarkers request: every marker on every partition, one result each.
    pub async fn handle(&self, req: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
        let mut out = Vec::with_capacity(req.markers.len());
        for marker in req.markers {
            let m = Markers {
                producer_id: marker.producer_id,
                producer_epoch: marker.producer_epoch as i16,
                commit: marker.commit,
                coordinator_epoch: marker.coordinator_epoch,
            };
            let parts: Vec<(String, i32)> =
                marker.topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), *p))).collect();
            let results = self
                .write_local_all(&m, parts)
                .await
                .into_iter()
                .map(|((topic, partition), outcome)| result(&topic, partition, outcome))
                .collect();
            out.push(TxnMarkerResult { producer_id: marker.producer_id, results });
        }
        WriteTxnMarkersResponse { markers: out }
    }

    /// Has the leader of every partition in `partitions` write `m`'s marker, retrying what
    /// failed in a retriable way (a moved leader, a replication timeout) until `deadline`.
    /// Partitions of deleted topics are skipped.
    ///
    /// # Errors
    ///
    /// `TRANSACTION_COORDINATOR_FENCED` (a newer coordinator took over), or the last retriable
    /// error when the deadline passed with partitions still missing their marker.
    pub async fn write_all(
        &self,
        m: &Markers,
        partitions: &TopicPartitions,
        deadline: tokio::time::Instant,
    ) -> Result<(), WireError> {
        let mut pending: Vec<(String, i32)> =
            partitions.iter().flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p))).collect();
        loop {
            let image = self.replicas.image();
            let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
            let mut last_error = None;
            let mut retry = Vec::new();
            for (topic, partition) in std::mem::take(&mut pending) {
                match image.partition(&topic, partition) {
                    None if image.topic(&topic).is_none() => {
                        tracing::info!(topic, partition, "skipping the marker of a deleted topic");
                    }
                    Some(state) if state.leader >= 0 => {
                        by_leader.entry(state.leader).or_default().push((topic, partition))
                    }
                    _ => {
                        last_error = Some(WireError::new(
                            ErrorCode::LeaderNotAvailable,
                            format!("{topic}-{partition} has no leader for its transaction marker"),
                        ));
                        retry.push((topic, partition));
                    }
                }
            }
            pending = retry;
            // Every leader at once (and every local partition at once): the markers' replication
            // waits overlap.
            let calls = by_leader.into_iter().map(|(leader, parts)| {
                let address = image.brokers.get(&leader).map(|b| b.address.clone());
                async move {
                    if leader == self.broker_id {
                        return self.write_local_all(m, parts).await;
                    }
                    match address {
                        Some(address) => self.write_remote(&address, m, parts).await,
                        None => parts
                            .into_iter()
                            .map(|k| (k, Err(WireError::new(ErrorCode::BrokerNotAvailable, "leader unknown"))))
                            .collect(),
                    }
                }
            });
            for (key, outcome) in futures::future::join_all(calls).await.into_iter().flatten() {
                match outcome {
                    Ok(()) => {}
                    Err(e) if e.code == ErrorCode::TransactionCoordinatorFenced => return Err(e),
                    Err(e) if e.code == ErrorCode::UnknownTopicOrPartition && image.topic(&key.0).is_none() => {}
                    Err(e) if e.code == ErrorCode::InvalidProducerEpoch => {
                        // A newer epoch of the producer already wrote there: its transaction
                        // ended in that partition.
                        tracing::warn!(topic = key.0, partition = key.1, error = %e, "marker superseded");
                    }
                    Err(e) => {
                        last_error = Some(e);
                        pending.push(key);
                    }
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() + RETRY_BACKOFF >= deadline {
                return Err(last_error.unwrap_or_else(|| WireError::new(ErrorCode::RequestTimedOut, "markers")));
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }

    async fn write_remote(
        &self,
        address: &str,
        m: &Markers,
        parts: Vec<(String, i32)>,
    ) -> Vec<((String, i32), Result<(), WireError>)> {
        let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in &parts {
            topics.entry(t.clone()).or_default().push(*p);
        }
        let request = WriteTxnMarkersRequest {
            markers: vec![TxnMarker {
                producer_id: m.producer_id,
                producer_epoch: i32::from(m.producer_epoch),
                commit: m.commit,
                coordinator_epoch: m.coordinator_epoch,
                topics: topics.into_iter().map(|(topic, partitions)| TxnTopic { topic, partitions }).collect(),
            }],
        };
        let call = async {
            let endpoint = vltava_common::grpc::data_endpoint(address)
                .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?
                .connect_timeout(self.write_timeout)
                .timeout(self.write_timeout * 2);
            let mut client = TransactionServiceClient::new(vltava_common::grpc::traced(endpoint.connect_lazy()));
            client.write_txn_markers(request).await.map(tonic::Response::into_inner)
        };
        match call.await {
            Ok(resp) => resp
                .markers
                .into_iter()
                .flat_map(|r| r.results)
                .map(|r| {
                    let outcome = match ErrorCode::try_from(r.error_code).unwrap_or(ErrorCode::UnknownServerError) {
                        ErrorCode::None => Ok(()),
                        code => Err(WireError::new(code, r.error_message)),
                    };
                    ((r.topic, r.partition), outcome)
                })
                .collect(),
            Err(status) => {
                let e = WireError::from_status(&status);
                parts.into_iter().map(|k| (k, Err(e.clone()))).collect()
            }
        }
    }
}

/// A partition's result.
pub fn result(topic: &str, partition: i32, outcome: Result<(), WireError>) -> TxnPartitionResult {
    match outcome {
        Ok(()) => TxnPartitionResult {
            topic: topic.to_string(),
            partition,
            error_code: ErrorCode::None as i32,
            error_message: String::new(),
        },
        Err(e) => TxnPartitionResult {
            topic: topic.to_string(),
            partition,
            error_code: e.code as i32,
            error_message: e.to_string(),
        },
    }
}
