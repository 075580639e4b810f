//! The transaction coordinator: the `__transaction_state` shards this broker leads and the
//! transactional calls routed to them.
//!
//! Transactional id T belongs to partition `abs(java_hashcode(T)) % partitions` of
//! `__transaction_state`; that partition's leader is T's coordinator, and its leader epoch is
//! the coordinator epoch every marker carries. Each transition of T (see [`super::state`]) is a
//! record written with `acks=all` before it is answered, so a successor replays exactly what
//! was decided.
//!
//! Ending a transaction: the Prepare record is written, then the markers
//! ([`MarkerWriter::write_all`]), then the Complete record. [`TransactionCoordinator::sweep`]
//! runs every `cleanup_interval` and finishes what was left halfway: Prepare states whose markers
//! no task is writing (after a coordinator failover, or when a leader was unreachable), and
//! Ongoing transactions past their timeout, which are aborted with the producer's epoch bumped;
//! it also forgets (tombstones) ids idle longer than `transactional_id_expiration`.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;
use vltava_common::time::now_ms;
use vltava_common::{ErrorCode, WireError};
use vltava_metadata::ClusterImage;

use super::markers::{MarkerWriter, Markers};
use super::producer_ids::ProducerIdManager;
use super::records::{TxnMetadata, encode_key};
use super::state::{self, EndDecision, InitDecision, TxnShardState};
use crate::config::TransactionCoordinatorConfig;
use crate::coordinator::codec::TopicPartitions;
use crate::coordinator::shard::{Shard, ShardRecord, Status};
use crate::coordinator::shards::Shards;
use crate::error::BrokerError;
use crate::replica_manager::ReplicaManager;

/// Kafka's name of the internal topic of transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// How many times InitProducerId finishes an old transaction and tries again before it answers
/// `CONCURRENT_TRANSACTIONS`.
const INIT_ATTEMPTS: usize = 3;

type TxnShard = Shard<TxnShardState>;

/// The transaction coordinator of this broker (see the module documentation).
pub struct TransactionCoordinator {
    config: TransactionCoordinatorConfig,
    shards: Shards<TxnShardState>,
    replicas: Arc<ReplicaManager>,
    producer_ids: Arc<ProducerIdManager>,
    markers: MarkerWriter,
    /// Transactional ids whose markers a task is writing now.
    completing: Mutex<HashSet<String>>,
}

impl TransactionCoordinator {
    /// A coordinator with no shard yet; call [`TransactionCoordinator::sync`] after every image.
    pub fn new(
        config: TransactionCoordinatorConfig,
        replicas: Arc<ReplicaManager>,
        producer_ids: Arc<ProducerIdManager>,
        markers: MarkerWriter,
    ) -> Arc<Self> {
        let shards = Shards::new(TRANSACTION_STATE_TOPIC, markers.broker_id, config.write_timeout);
        Arc::new(Self { config, shards, replicas, producer_ids, markers, completing: Mutex::new(HashSet::new()) })
    }

    /// The configuration.
    pub fn config(&self) -> &TransactionCoordinatorConfig {
        &self.config
    }

    /// The marker writer (also serves WriteTxnMarkers).
    pub fn markers(&self) -> &MarkerWriter {
        &self.markers
    }

    /// Opens and closes shards as leadership moved (see [`Shards::sync`]).
    pub fn sync(&self) {
        self.shards.sync(&self.replicas);
    }

    /// Closes every shard (shutdown).
    pub fn close_all(&self) {
        self.shards.close_all();
    }

    /// The `__transaction_state` partition of `transactional_id`.
    ///
    /// # Errors
    ///
    /// `COORDINATOR_NOT_AVAILABLE` while the topic does not exist.
    pub fn partition_for(&self, image: &ClusterImage, transactional_id: &str) -> Result<i32, BrokerError> {
        self.shards.partition_for(image, transactional_id)
    }

    async fn shard(&self, id: &str) -> Result<Arc<TxnShard>, BrokerError> {
        self.shards.get(&self.replicas.image(), id).await
    }

    /// InitProducerId for `id`: its producer id and the next epoch (fencing older producers).
    /// An open transaction of the old producer is aborted first.
    ///
    /// # Errors
    ///
    /// `INVALID_TRANSACTION_TIMEOUT`; `CONCURRENT_TRANSACTIONS` when the previous transaction
    /// could not be finished in time; coordinator and write failures.
    pub async fn init_producer_id(self: &Arc<Self>, id: &str, timeout_ms: i32) -> Result<(i64, i16), BrokerError> {
        let max = i32::try_from(self.config.max_timeout.as_millis()).unwrap_or(i32::MAX);
        for _ in 0..INIT_ATTEMPTS {
            let shard = self.shard(id).await?;
            let mut new_id = None;
            loop {
                let current = shard.read(|s| s.txns.get(id).cloned()).await?;
                match state::init(current.as_ref(), timeout_ms, max, new_id, now_ms())? {
                    Some(_) => break,
                    None => new_id = Some(self.producer_ids.next_id().await?),
                }
            }
            let decision = shard
                .write(|s| {
                    let decision = state::init(s.txns.get(id), timeout_ms, max, new_id, now_ms())?;
                    let decision = decision.ok_or_else(|| {
                        WireError::new(ErrorCode::ConcurrentTransactions, "the transactional id changed: retry")
                    })?;
                    let records = match &decision {
                        InitDecision::Ready(m) | InitDecision::AbortFirst(m) => vec![record(id, m)],
                        InitDecision::Busy(_) => Vec::new(),
                    };
                    Ok::<_, WireError>((records, decision))
                })
                .await?;
            match decision {
                InitDecision::Ready(m) => return Ok((m.producer_id, m.producer_epoch)),
                InitDecision::AbortFirst(m) | InitDecision::Busy(m) => {
                    tracing::info!(
                        transactional_id = id,
                        status = m.status.name(),
                        "finishing the previous transaction before InitProducerId"
                    );
                    self.complete(&shard, id, m).await?;
                }
            }
        }
        Err(BrokerError::Refused(WireError::new(
            ErrorCode::ConcurrentTransactions,
            format!("the previous transaction of {id:?} is still being completed: retry"),
        )))
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn with the group's `__consumer_offsets` partition).
    ///
    /// # Errors
    ///
    /// The state machine's refusals; coordinator and write failures.
    pub async fn add_partitions(
        &self,
        id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &TopicPartitions,
    ) -> Result<(), BrokerError> {
        let shard = self.shard(id).await?;
        shard
            .write(|s| {
                let next =
                    state::add_partitions(id, s.txns.get(id), producer_id, producer_epoch, partitions, now_ms())?;
                Ok::<_, WireError>((next.iter().map(|m| record(id, m)).collect(), ()))
            })
            .await
    }

    /// EndTxn: makes the decision durable, then writes the markers. Answers once every marker
    /// is written, or once the decision is durable if the markers take longer than the write
    /// timeout (they are then finished by [`TransactionCoordinator::sweep`]).
    ///
    /// # Errors
    ///
    /// The state machine's refusals; coordinator and write failures.
    pub async fn end_txn(
        self: &Arc<Self>,
        id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), BrokerError> {
        let shard = self.shard(id).await?;
        let decision = shard
            .write(|s| {
                let d = state::end(id, s.txns.get(id), producer_id, producer_epoch, commit, now_ms())?;
                let records = match &d {
                    EndDecision::Prepare(m) => vec![record(id, m)],
                    _ => Vec::new(),
                };
                Ok::<_, WireError>((records, d))
            })
            .await?;
        match decision {
            EndDecision::Prepare(m) | EndDecision::InProgress(m) => {
                if let Err(e) = self.complete(&shard, id, m).await {
                    // Decided: the sweep finishes the markers.
                    tracing::warn!(transactional_id = id, error = %e, "transaction markers not written yet; they will be retried");
                }
                Ok(())
            }
            EndDecision::Done => Ok(()),
        }
    }

    /// The metadata of `id`, `None` when it is unknown.
    ///
    /// # Errors
    ///
    /// Coordinator failures.
    pub async fn describe(&self, id: &str) -> Result<Option<TxnMetadata>, BrokerError> {
        self.shard(id).await?.read(|s| s.txns.get(id).cloned()).await
    }

    /// Writes the markers of the Prepare state `m` of `id`, then its Complete state. Only one
    /// task completes an id at a time: a concurrent call waits for the running one.
    async fn complete(&self, shard: &Arc<TxnShard>, id: &str, m: TxnMetadata) -> Result<(), BrokerError> {
        let deadline = tokio::time::Instant::now() + self.config.write_timeout;
        // Claim the id, or wait (bounded) for the task that holds it.
        loop {
            if self.completing.lock().insert(id.to_string()) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BrokerError::Refused(WireError::new(
                    ErrorCode::ConcurrentTransactions,
                    format!("the markers of {id:?} are still being written"),
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let result = self.write_markers_and_complete(shard, id, m, deadline).await;
        self.completing.lock().remove(id);
        result
    }

    async fn write_markers_and_complete(
        &self,
        shard: &Arc<TxnShard>,
        id: &str,
        m: TxnMetadata,
        deadline: tokio::time::Instant,
    ) -> Result<(), BrokerError> {
        // Re-read: another task may have completed it meanwhile.
        let current = shard.read(|s| s.txns.get(id).cloned()).await?;
        let Some(current) = current.filter(|c| c.status.is_prepare() && c.producer_epoch == m.producer_epoch) else {
            return Ok(());
        };
        // Tests hold a decided transaction here to kill its coordinator (see `failpoint`).
        vltava_common::failpoint::pause("txn.before_markers").await;
        let markers = Markers {
            producer_id: current.producer_id,
            producer_epoch: current.producer_epoch,
            commit: current.status == super::records::TxnStatus::PrepareCommit,
            coordinator_epoch: shard.leader_epoch(),
        };
        self.markers.write_all(&markers, &current.partitions, deadline).await?;
        shard
            .write(|s| {
                let still = s.txns.get(id).is_some_and(|c| *c == current);
                let records = if still { vec![record(id, &state::complete(&current, now_ms()))] } else { Vec::new() };
                Ok::<_, WireError>((records, ()))
            })
            .await?;
        let outcome = if markers.commit { "commit" } else { "abort" };
        crate::metrics::get().transactions_completed.add(1, &[opentelemetry::KeyValue::new("outcome", outcome)]);
        tracing::debug!(transactional_id = id, outcome, "transaction completed");
        Ok(())
    }

    /// Aborts Ongoing transactions past their timeout (bumping the producer's epoch), finishes
    /// Prepare states no task is completing and forgets idle transactional ids. Returns how many transactions it ended or
    /// finished. Run it every `cleanup_interval`.
    pub async fn sweep(self: &Arc<Self>) -> usize {
        let mut handled = 0;
        for shard in self.shards.active() {
            let now = now_ms();
            let expiration_ms = i64::try_from(self.config.transactional_id_expiration.as_millis()).unwrap_or(i64::MAX);
            let Ok((late, unfinished, idle)) = shard
                .read(|s| {
                    let unfinished: Vec<(String, TxnMetadata)> = s
                        .txns
                        .iter()
                        .filter(|(_, m)| m.status.is_prepare())
                        .map(|(i, m)| (i.clone(), m.clone()))
                        .collect();
                    (state::timed_out(s, now), unfinished, state::expired(s, now, expiration_ms))
                })
                .await
            else {
                continue;
            };
            for (id, m) in idle {
                let forgotten = shard
                    .write(|s| {
                        let still = s.txns.get(&id).is_some_and(|c| *c == m);
                        let tombstone = ShardRecord { key: encode_key(&id), value: None };
                        Ok::<_, WireError>((if still { vec![tombstone] } else { Vec::new() }, still))
                    })
                    .await;
                if let Ok(true) = forgotten {
                    tracing::info!(transactional_id = id, "transactional id expired");
                    handled += 1;
                }
            }
            for (id, m) in late {
                let aborted = shard
                    .write(|s| {
                        let still = s.txns.get(&id).is_some_and(|c| *c == m);
                        let p = state::prepare(&m, false, true, now_ms());
                        let records = if still { vec![record(&id, &p)] } else { Vec::new() };
                        Ok::<_, WireError>((records, still.then_some(p)))
                    })
                    .await;
                if let Ok(Some(p)) = aborted {
                    tracing::info!(
                        transactional_id = id,
                        timeout_ms = m.timeout_ms,
                        "aborting a transaction that timed out"
                    );
                    crate::metrics::get().transactions_timed_out.add(1, &[]);
                    self.spawn_complete(&shard, id, p);
                    handled += 1;
                }
            }
            for (id, m) in unfinished {
                if !self.completing.lock().contains(&id) {
                    self.spawn_complete(&shard, id, m);
                    handled += 1;
                }
            }
        }
        handled
    }

    fn spawn_complete(self: &Arc<Self>, shard: &Arc<TxnShard>, id: String, m: TxnMetadata) {
        let this = self.clone();
        let shard = shard.clone();
        tokio::spawn(async move {
            if let Err(e) = this.complete(&shard, &id, m).await
                && shard.status() == Status::Active
            {
                tracing::warn!(transactional_id = id, error = %e, "transaction markers not written yet; retrying later");
            }
        });
    }
}

fn record(id: &str, m: &TxnMetadata) -> ShardRecord {
    ShardRecord { key: encode_key(id), value: Some(m.encode()) }
}
