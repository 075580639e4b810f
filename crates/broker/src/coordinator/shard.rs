//! A coordinator shard: one partition of an internal topic (`__consumer_offsets`, later
//! `__transaction_state`) materialised in memory on that partition's leader.
//!
//! - **Load.** When this broker becomes the leader, the shard replays the partition's log from
//!   its start to its end into a fresh state; until then every call answers
//!   `COORDINATOR_LOAD_IN_PROGRESS`.
//! - **Write.** A write decides its records from the current state, appends them as one batch
//!   with `acks=all`, waits until they are replicated, and only then replays them into the state
//!   and answers. Writes are serialised per shard, so every decision sees the previous one.
//!   When the wait fails after the append (leadership lost, replication timed out), the log may
//!   hold records the state lacks: the shard reloads from the log, so memory never differs from
//!   what a successor would rebuild.
//! - **Transactions.** Records written inside a producer's transaction (offsets committed with
//!   `TxnOffsetCommit`) are replayed as pending and take effect with the transaction's COMMIT
//!   marker ([`ShardState::replay_transactional`], [`ShardState::replay_marker`]).
//! - **Leadership lost.** A shard whose partition moved on to another leader epoch answers
//!   `NOT_COORDINATOR`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Mutex, watch};
use vltava_common::time::now_ms;
use vltava_record::{BatchBuilder, Compression, MarkerKind, parse_marker};
use vltava_storage::StorageError;

use crate::error::BrokerError;
use crate::partition::Partition;
use crate::replication::wait::wait_for_replication;

/// The in-memory state a shard materialises.
pub trait ShardState: Default + Send + 'static {
    /// Applies one record, from the log at load or just made durable. An `Err` names a record
    /// this version cannot read; loading logs it and goes on.
    fn replay(&mut self, offset: i64, key: &[u8], value: Option<&[u8]>) -> Result<(), String>;

    /// Applies one record written inside producer `producer_id`'s open transaction (offsets
    /// committed by `TxnOffsetCommit`): it must take effect only when the transaction's COMMIT
    /// marker is replayed. The default applies it at once (states that never see transactions).
    fn replay_transactional(
        &mut self,
        producer_id: i64,
        offset: i64,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), String> {
        let _ = producer_id;
        self.replay(offset, key, value)
    }

    /// Ends producer `producer_id`'s transaction in this partition: its records take effect
    /// (`commit`) or are dropped.
    fn replay_marker(&mut self, producer_id: i64, commit: bool) {
        let _ = (producer_id, commit);
    }
}

/// The producer whose open transaction a shard write belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnProducer {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
}

/// A record to append: a key and a value, or a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRecord {
    /// The key.
    pub key: Bytes,
    /// The value; `None` deletes what the key names.
    pub value: Option<Bytes>,
}

/// Where a shard is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Replaying the log.
    Loading,
    /// Serving.
    Active,
    /// No longer the leader.
    Closed,
}

/// Bytes read per step while loading.
const LOAD_CHUNK: usize = 1 << 20;

/// One coordinator shard (see the module documentation).
pub struct Shard<S> {
    part: Arc<Partition>,
    leader_epoch: i32,
    write_timeout: Duration,
    state: Mutex<S>,
    status: watch::Sender<Status>,
}

impl<S: ShardState> Shard<S> {
    /// A shard of `part`, led by this broker at `leader_epoch`, still to be loaded.
    pub fn new(part: Arc<Partition>, leader_epoch: i32, write_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            part,
            leader_epoch,
            write_timeout,
            state: Mutex::new(S::default()),
            status: watch::channel(Status::Loading).0,
        })
    }

    /// The partition's index.
    pub fn partition(&self) -> i32 {
        self.part.index()
    }

    /// The leader epoch this shard serves.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// Where the shard is.
    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// Waits until the shard is active (or closed), up to `timeout`; returns its status then.
    pub async fn wait_loaded(&self, timeout: Duration) -> Status {
        let mut rx = self.status.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|s| *s != Status::Loading)).await;
        self.status()
    }

    /// Stops serving (leadership moved).
    pub fn close(&self) {
        self.status.send_replace(Status::Closed);
    }

    /// Replays the whole log into a fresh state, then serves.
    ///
    /// # Errors
    ///
    /// Reading the log failed (the shard stays loading; the caller retries or closes it).
    pub async fn load(&self) -> Result<(), BrokerError> {
        let mut state = self.state.lock().await;
        *state = S::default();
        let started = std::time::Instant::now();
        let records = replay_log(&self.part, &mut *state).await?;
        drop(state);
        self.status.send_if_modified(|s| {
            let loading = *s == Status::Loading;
            if loading {
                *s = Status::Active;
            }
            loading
        });
        tracing::info!(
            topic = self.part.topic(),
            partition = self.part.index(),
            leader_epoch = self.leader_epoch,
            records,
            ms = started.elapsed().as_millis() as u64,
            "coordinator shard loaded"
        );
        Ok(())
    }

    /// Answers from the current state.
    ///
    /// # Errors
    ///
    /// `COORDINATOR_LOAD_IN_PROGRESS` while loading, `NOT_COORDINATOR` once closed.
    pub async fn read<R>(&self, f: impl FnOnce(&S) -> R) -> Result<R, BrokerError> {
        self.check()?;
        let state = self.state.lock().await;
        self.check()?;
        Ok(f(&state))
    }

    /// Answers from the current state without waiting: `None` while loading, closed, or while a
    /// write holds the state.
    pub fn try_read<R>(&self, f: impl FnOnce(&S) -> R) -> Option<R> {
        if self.check().is_err() {
            return None;
        }
        self.state.try_lock().ok().map(|state| f(&state))
    }

    /// Decides, appends and applies a write (see the module documentation). `decide` returns
    /// the records to append and the answer to give once they are durable.
    ///
    /// # Errors
    ///
    /// What `decide` refused (nothing is written then); `COORDINATOR_LOAD_IN_PROGRESS`,
    /// `NOT_COORDINATOR`; an append or replication failure.
    pub async fn write<R, E>(
        self: &Arc<Self>,
        decide: impl FnOnce(&S) -> Result<(Vec<ShardRecord>, R), E>,
    ) -> Result<R, BrokerError>
    where
        BrokerError: From<E>,
    {
        self.write_as(None, decide).await
    }

    /// [`Shard::write`] inside `txn`'s open transaction: the batch carries its producer id and
    /// epoch (no sequence number) and the transactional flag, and the records are replayed with
    /// [`ShardState::replay_transactional`]. The partition refuses a stale epoch.
    ///
    /// # Errors
    ///
    /// As [`Shard::write`], and `INVALID_PRODUCER_EPOCH` for a fenced producer.
    pub async fn write_transactional<R, E>(
        self: &Arc<Self>,
        txn: TxnProducer,
        decide: impl FnOnce(&S) -> Result<(Vec<ShardRecord>, R), E>,
    ) -> Result<R, BrokerError>
    where
        BrokerError: From<E>,
    {
        self.write_as(Some(txn), decide).await
    }

    /// Applies a transaction marker just written to this shard's partition (the transaction
    /// coordinator's WriteTxnMarkers), so that committed offsets become visible at once.
    pub async fn apply_marker(&self, producer_id: i64, commit: bool) {
        self.state.lock().await.replay_marker(producer_id, commit);
    }

    async fn write_as<R, E>(
        self: &Arc<Self>,
        txn: Option<TxnProducer>,
        decide: impl FnOnce(&S) -> Result<(Vec<ShardRecord>, R), E>,
    ) -> Result<R, BrokerError>
    where
        BrokerError: From<E>,
    {
        self.check()?;
        let mut state = self.state.lock().await;
        self.check()?;
        let (records, answer) = decide(&state)?;
        if records.is_empty() {
            return Ok(answer);
        }
        let mut builder = match txn {
            Some(t) => {
                let mut b = BatchBuilder::new(Compression::None).with_producer(t.producer_id, t.producer_epoch, -1);
                b.set_transactional(true);
                b
            }
            None => BatchBuilder::new(Compression::None),
        };
        let now = now_ms();
        for r in &records {
            builder.append(now, Some(r.key.as_ref()), r.value.as_deref(), &[]);
        }
        let batch = builder.build();
        let part = self.part.clone();
        let appended = tokio::task::spawn_blocking(move || part.append_as_leader_blocking(batch, true, now))
            .await
            .map_err(|e| BrokerError::Internal(e.to_string()))?;
        let (info, _) = appended.map_err(|e| self.not_coordinator_if_moved(e))?;
        let waited =
            wait_for_replication(&self.part, info.last_offset + 1, self.leader_epoch, self.write_timeout).await;
        if let Err(e) = waited {
            // The records may be in the log (and become committed) without being in memory.
            drop(state);
            self.reload();
            return Err(self.not_coordinator_if_moved(e));
        }
        for (i, r) in records.iter().enumerate() {
            let offset = info.first_offset + i as i64;
            let replayed = match txn {
                Some(t) => state.replay_transactional(t.producer_id, offset, &r.key, r.value.as_deref()),
                None => state.replay(offset, &r.key, r.value.as_deref()),
            };
            if let Err(reason) = replayed {
                tracing::error!(partition = self.part.index(), %reason, "a record the coordinator wrote does not replay");
            }
        }
        Ok(answer)
    }

    fn check(&self) -> Result<(), BrokerError> {
        let moved = self.part.ensure_leader_epoch(self.leader_epoch).is_err();
        match self.status() {
            _ if moved => {
                self.close();
                Err(self.not_coordinator())
            }
            Status::Active => Ok(()),
            Status::Loading => Err(BrokerError::CoordinatorLoadInProgress {
                topic: self.part.topic().to_string(),
                partition: self.part.index(),
            }),
            Status::Closed => Err(self.not_coordinator()),
        }
    }

    fn not_coordinator(&self) -> BrokerError {
        BrokerError::NotCoordinator { topic: self.part.topic().to_string(), partition: self.part.index() }
    }

    fn not_coordinator_if_moved(&self, e: BrokerError) -> BrokerError {
        if self.part.ensure_leader_epoch(self.leader_epoch).is_err() {
            self.close();
            self.not_coordinator()
        } else {
            e
        }
    }

    /// Goes back to loading and replays the log again in the background.
    fn reload(self: &Arc<Self>) {
        let loading = self.status.send_if_modified(|s| {
            let active = *s == Status::Active;
            if active {
                *s = Status::Loading;
            }
            active
        });
        if loading {
            let shard = self.clone();
            tokio::spawn(async move {
                if let Err(e) = shard.load().await {
                    tracing::warn!(partition = shard.partition(), error = %e, "coordinator shard reload failed");
                    shard.close();
                }
            });
        }
    }
}

/// Replays `part` from its log start to its log end into `state`; returns how many records.
async fn replay_log<S: ShardState>(part: &Arc<Partition>, state: &mut S) -> Result<u64, BrokerError> {
    let mut offset = part.log_start_offset();
    let mut count = 0u64;
    while offset < part.log_end_offset() {
        let p = part.clone();
        let read = tokio::task::spawn_blocking(move || p.read_for_replica_blocking(offset, LOAD_CHUNK))
            .await
            .map_err(|e| BrokerError::Internal(e.to_string()))??;
        if read.records.is_empty() {
            break;
        }
        for batch in vltava_record::batches(read.records) {
            let batch = batch.map_err(|e| BrokerError::Storage(StorageError::Record(e)))?;
            if batch.is_control() {
                if let Some(marker) = parse_marker(&batch).map_err(|e| BrokerError::Storage(StorageError::Record(e)))? {
                    state.replay_marker(batch.producer_id(), marker.kind == MarkerKind::Commit);
                }
                offset = offset.max(batch.next_offset());
                continue;
            }
            let txn = batch.is_transactional().then(|| batch.producer_id());
            for r in batch.records().map_err(|e| BrokerError::Storage(StorageError::Record(e)))? {
                let key = r.key.unwrap_or_default();
                let replayed = match txn {
                    Some(pid) => state.replay_transactional(pid, r.offset, &key, r.value.as_deref()),
                    None => state.replay(r.offset, &key, r.value.as_deref()),
                };
                if let Err(reason) = replayed {
                    tracing::warn!(partition = part.index(), offset = r.offset, %reason, "skipping an unreadable coordinator record");
                }
                count += 1;
            }
            offset = offset.max(batch.next_offset());
        }
    }
    Ok(count)
}
