//! One partition hosted by this broker: its log, its leadership state and its high watermark.
//!
//! Log I/O is blocking (page-cache writes and `pread`s), so callers run it on Tokio's blocking
//! pool. The high watermark is published on a watch channel so that long-polling fetches and
//! subscriptions wake as soon as new records become visible.

use std::path::Path;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use vltava_metadata::PartitionState;
use vltava_record::Marker;
use vltava_storage::{AbortedTxn, AppendInfo, Log, LogConfig, ReadResult};

use crate::error::BrokerError;
use crate::replication::followers::Followers;

/// Leadership state from the latest cluster image (or the controller's answer to an ISR change).
#[derive(Debug, Clone)]
pub struct LeaderState {
    /// Leader broker id.
    pub leader: i32,
    /// Every replica.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Leader epoch, stamped into appended batches.
    pub leader_epoch: i32,
    /// Partition epoch: bumped by every change of leader, ISR or replicas.
    pub partition_epoch: i32,
    /// The topic's `min.insync.replicas`.
    pub min_insync_replicas: i32,
}

/// How a new partition state changed this broker's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    /// Nothing that the replication machinery must react to.
    None,
    /// This broker now leads the partition.
    Leader,
    /// This broker now follows `leader` in `leader_epoch` (-1: no leader for now).
    Follower {
        /// The leader to fetch from.
        leader: i32,
        /// Its epoch.
        leader_epoch: i32,
    },
}

/// What [`Partition::open`] needs besides the directory and the partition's state.
#[derive(Debug, Clone)]
pub struct PartitionSpec<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Topic id (changes when a topic of the same name is re-created).
    pub topic_id: &'a str,
    /// This broker's id.
    pub broker_id: i32,
    /// The topic's log configuration.
    pub config: LogConfig,
    /// The topic's `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// The high watermark the data directory's checkpoint holds for this partition, if any.
    pub high_watermark: Option<i64>,
}

/// Kafka's `isolation.level` for reads on the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Everything below the high watermark.
    #[default]
    ReadUncommitted,
    /// Only below the last stable offset, with the aborted transactions of the range.
    ReadCommitted,
}

impl Isolation {
    /// The isolation level of a request's `isolation_level` field.
    pub fn from_proto(level: i32) -> Isolation {
        if level == vltava_proto::v1::IsolationLevel::ReadCommitted as i32 {
            Isolation::ReadCommitted
        } else {
            Isolation::ReadUncommitted
        }
    }
}

/// What [`Partition::read_blocking`] returns.
#[derive(Debug, Clone)]
pub struct PartitionRead {
    /// The batches read (and the log bounds at the time).
    pub read: ReadResult,
    /// The last stable offset at the time of the read.
    pub last_stable_offset: i64,
    /// READ_COMMITTED: the aborted transactions overlapping the returned batches.
    pub aborted: Vec<AbortedTxn>,
}

impl PartitionRead {
    /// The aborted transactions as a fetch response carries them.
    pub fn aborted_transactions(&self) -> Vec<vltava_proto::v1::AbortedTransaction> {
        self.aborted
            .iter()
            .map(|a| vltava_proto::v1::AbortedTransaction { producer_id: a.producer_id, first_offset: a.first_offset })
            .collect()
    }
}

/// A partition replica on this broker.
pub struct Partition {
    topic: String,
    index: i32,
    topic_id: String,
    broker_id: i32,
    log: RwLock<Option<Log>>,
    state: RwLock<LeaderState>,
    high_watermark: watch::Sender<i64>,
    log_end: watch::Sender<i64>,
    followers: Mutex<Followers>,
}

impl Partition {
    /// Opens (recovering if needed) the log in `dir` and takes the role `state` gives this broker.
    pub fn open(dir: &Path, state: &PartitionState, spec: PartitionSpec<'_>) -> Result<Self, BrokerError> {
        let PartitionSpec { topic, topic_id, broker_id, config, min_insync_replicas, high_watermark } = spec;
        let log = Log::open(dir, config)?;
        let leo = log.log_end_offset();
        // The checkpointed high watermark (never above what survived recovery). A leader that is
        // its partition's only in-sync replica moves it to its log end right away.
        let hw = high_watermark.unwrap_or(log.log_start_offset()).clamp(log.log_start_offset(), leo);
        let part = Self {
            topic: topic.to_string(),
            index: state.partition,
            topic_id: topic_id.to_string(),
            broker_id,
            log: RwLock::new(Some(log)),
            state: RwLock::new(LeaderState {
                leader: -1,
                replicas: Vec::new(),
                isr: Vec::new(),
                leader_epoch: -1,
                partition_epoch: -1,
                min_insync_replicas,
            }),
            high_watermark: watch::channel(hw).0,
            log_end: watch::channel(leo).0,
            followers: Mutex::new(Followers::default()),
        };
        part.apply_state(state, min_insync_replicas)?;
        Ok(part)
    }

    /// Topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Partition index.
    pub fn index(&self) -> i32 {
        self.index
    }

    /// Id of the topic this log belongs to.
    pub fn topic_id(&self) -> &str {
        &self.topic_id
    }

    /// Current leadership state.
    pub fn leader_state(&self) -> LeaderState {
        self.state.read().clone()
    }

    /// This broker's id.
    pub fn broker_id(&self) -> i32 {
        self.broker_id
    }

    /// Applies leadership and configuration changes from a new cluster image (blocking: a new
    /// leader records its epoch's start offset on disk).
    pub fn update(
        &self,
        state: &PartitionState,
        config: LogConfig,
        min_insync_replicas: i32,
    ) -> Result<RoleChange, BrokerError> {
        if let Some(log) = self.log.write().as_mut() {
            log.set_config(config);
        }
        self.apply_state(state, min_insync_replicas)
    }

    /// Takes a partition state from the controller unless it is older than the one held (by
    /// leader epoch, then partition epoch). Blocking.
    pub fn apply_state(&self, state: &PartitionState, min_insync_replicas: i32) -> Result<RoleChange, BrokerError> {
        let me = self.broker_id;
        let now = vltava_common::time::now_ms();
        let mut current = self.state.write();
        current.min_insync_replicas = min_insync_replicas;
        let newer_epoch = state.leader_epoch > current.leader_epoch;
        if !newer_epoch
            && (state.leader_epoch < current.leader_epoch || state.partition_epoch <= current.partition_epoch)
        {
            return Ok(RoleChange::None);
        }
        let was_leader = current.leader == me;
        if was_leader && state.leader == me && current.isr != state.isr {
            crate::metrics::isr_changed(&current.isr, &state.isr);
        }
        *current = LeaderState {
            leader: state.leader,
            replicas: state.replicas.clone(),
            isr: state.isr.clone(),
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            min_insync_replicas,
        };
        let change = if state.leader == me {
            let mut followers = self.followers.lock();
            if newer_epoch || !was_leader {
                let start = self.with_log_mut(|log| {
                    let leo = log.log_end_offset();
                    log.assign_epoch_start_offset(state.leader_epoch, leo)?;
                    Ok(leo)
                })?;
                followers.become_leader(&state.replicas, me, start, now);
                tracing::info!(topic = %self.topic, partition = self.index, epoch = state.leader_epoch, start_offset = start, "leading");
                RoleChange::Leader
            } else {
                followers.on_partition_state(&state.replicas, me, state.partition_epoch, now);
                RoleChange::None
            }
        } else {
            self.followers.lock().clear();
            if newer_epoch || was_leader {
                RoleChange::Follower { leader: state.leader, leader_epoch: state.leader_epoch }
            } else {
                RoleChange::None
            }
        };
        drop(current);
        if was_leader && change != RoleChange::None && state.leader != me {
            // Wake produce requests waiting for replication: they answer NOT_LEADER_OR_FOLLOWER.
            self.high_watermark.send_modify(|_| {});
        }
        self.maybe_advance_high_watermark();
        Ok(change)
    }

    /// Fails unless this broker leads the partition.
    pub fn ensure_leader(&self) -> Result<LeaderState, BrokerError> {
        let s = self.state.read();
        if s.leader != self.broker_id {
            return Err(self.not_leader(s.leader));
        }
        Ok(s.clone())
    }

    /// Fails unless this broker leads the partition in `leader_epoch`.
    pub fn ensure_leader_epoch(&self, leader_epoch: i32) -> Result<LeaderState, BrokerError> {
        let s = self.ensure_leader()?;
        if s.leader_epoch != leader_epoch {
            return Err(self.not_leader(s.leader));
        }
        Ok(s)
    }

    /// Checks a replica's view of the leader epoch against this leader's (Kafka's fencing):
    /// older is FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH.
    pub fn check_leader_epoch(&self, requested: i32) -> Result<LeaderState, BrokerError> {
        let s = self.ensure_leader()?;
        if requested >= 0 && requested != s.leader_epoch {
            return Err(BrokerError::LeaderEpoch {
                topic: self.topic.clone(),
                partition: self.index,
                requested,
                current: s.leader_epoch,
            });
        }
        Ok(s)
    }

    /// Appends producer batches as leader (blocking: call from the blocking pool). With
    /// `acks=all` (`check_min_isr`) the ISR must hold at least `min.insync.replicas` members.
    /// Validation failures append nothing.
    pub fn append_as_leader_blocking(
        &self,
        records: Bytes,
        check_min_isr: bool,
        now_ms: i64,
    ) -> Result<(AppendInfo, LeaderState), BrokerError> {
        self.leader_append(check_min_isr, |log, epoch| log.append(records, epoch, now_ms))
    }

    /// Runs `append` on the log as this partition's leader, with the leader epoch, holding the
    /// leadership state so that it cannot change meanwhile; then publishes the new log end and
    /// moves the high watermark if it can. With `check_min_isr` the ISR must hold at least
    /// `min.insync.replicas` members.
    fn leader_append<T>(
        &self,
        check_min_isr: bool,
        append: impl FnOnce(&mut Log, i32) -> Result<T, vltava_storage::StorageError>,
    ) -> Result<(T, LeaderState), BrokerError> {
        let state = self.state.read();
        if state.leader != self.broker_id {
            return Err(self.not_leader(state.leader));
        }
        if check_min_isr && (state.isr.len() as i32) < state.min_insync_replicas {
            return Err(BrokerError::NotEnoughReplicas {
                topic: self.topic.clone(),
                partition: self.index,
                isr: state.isr.len(),
                min: state.min_insync_replicas,
            });
        }
        let mut guard = self.log.write();
        let log = guard.as_mut().ok_or_else(|| self.closed())?;
        let out = append(log, state.leader_epoch)?;
        let leo = log.log_end_offset();
        drop(guard);
        let snapshot = state.clone();
        drop(state);
        self.log_end.send_replace(leo);
        self.maybe_advance_high_watermark();
        Ok((out, snapshot))
    }

    /// Appends batches fetched from the leader of `leader_epoch`, as stored there (blocking).
    pub fn append_as_follower_blocking(&self, records: Bytes, leader_epoch: i32) -> Result<AppendInfo, BrokerError> {
        let state = self.ensure_follower(leader_epoch)?;
        let mut guard = self.log.write();
        let log = guard.as_mut().ok_or_else(|| self.closed())?;
        let info = log.append_as_follower(records)?;
        let leo = log.log_end_offset();
        drop(guard);
        drop(state);
        self.log_end.send_replace(leo);
        Ok(info)
    }

    /// Truncates this follower's log to `offset` (blocking); `restart` empties the log and
    /// restarts it at `offset` instead (the leader's log no longer holds what this one needs).
    pub fn truncate_as_follower_blocking(
        &self,
        offset: i64,
        leader_epoch: i32,
        restart: bool,
    ) -> Result<i64, BrokerError> {
        let state = self.ensure_follower(leader_epoch)?;
        let mut guard = self.log.write();
        let log = guard.as_mut().ok_or_else(|| self.closed())?;
        if restart {
            log.truncate_fully_and_start_at(offset)?;
        } else {
            log.truncate_to(offset)?;
        }
        let leo = log.log_end_offset();
        drop(guard);
        drop(state);
        self.log_end.send_replace(leo);
        self.high_watermark.send_if_modified(|hw| {
            let moved = *hw > leo;
            if moved {
                *hw = leo;
            }
            moved
        });
        Ok(leo)
    }

    /// A follower's high watermark: the leader's, capped by what this replica holds.
    pub fn set_follower_high_watermark(&self, leader_hw: i64) {
        let new = leader_hw.min(self.log_end_offset());
        self.high_watermark.send_if_modified(|hw| {
            let moved = *hw != new && new >= 0;
            if moved {
                *hw = new;
            }
            moved
        });
    }

    fn ensure_follower(&self, leader_epoch: i32) -> Result<parking_lot::RwLockReadGuard<'_, LeaderState>, BrokerError> {
        let state = self.state.read();
        if state.leader == self.broker_id || state.leader_epoch != leader_epoch {
            return Err(BrokerError::StaleFetch {
                topic: self.topic.clone(),
                partition: self.index,
                fetched_for: leader_epoch,
                current: state.leader_epoch,
            });
        }
        Ok(state)
    }

    /// Records a follower's fetch at `fetch_offset` (its log end offset) and moves the high
    /// watermark if that lets it. Returns false when `replica` is not one of the partition's.
    pub fn record_follower_fetch(&self, replica: i32, fetch_offset: i64, now_ms: i64) -> bool {
        let leo = self.log_end_offset();
        let hw = self.high_watermark();
        let known = self.followers.lock().record_fetch(replica, fetch_offset, leo, hw, now_ms);
        if known {
            self.maybe_advance_high_watermark();
        }
        known
    }

    /// Runs `f` on the leader's follower bookkeeping and state (for ISR management).
    pub fn with_followers<T>(&self, f: impl FnOnce(&mut Followers, &LeaderState, i64) -> T) -> T {
        let state = self.state.read();
        let mut followers = self.followers.lock();
        f(&mut followers, &state, self.high_watermark())
    }

    /// Moves the high watermark to the lowest log end offset of the ISR when this broker leads.
    fn maybe_advance_high_watermark(&self) {
        let state = self.state.read();
        if state.leader != self.broker_id {
            return;
        }
        let candidate = self.followers.lock().high_watermark(&state.isr, self.broker_id, self.log_end_offset());
        drop(state);
        self.high_watermark.send_if_modified(|hw| {
            let moved = candidate > *hw;
            if moved {
                *hw = candidate;
            }
            moved
        });
    }

    /// Reads committed batches from `offset` (blocking): never above the high watermark, and
    /// with [`Isolation::ReadCommitted`] never above the last stable offset. Offsets between
    /// that bound and the log end exist but are not visible yet, so reading there returns
    /// nothing rather than an error.
    pub fn read_blocking(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<PartitionRead, BrokerError> {
        let hw = self.high_watermark();
        let guard = self.log.read();
        let log = guard.as_ref().ok_or_else(|| self.closed())?;
        if offset > log.log_end_offset() || offset < log.log_start_offset() {
            return Err(vltava_storage::StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: log.log_start_offset(),
                log_end_offset: hw,
            }
            .into());
        }
        let last_stable_offset = stable_limit(log, hw);
        let limit = match isolation {
            Isolation::ReadUncommitted => hw,
            Isolation::ReadCommitted => last_stable_offset,
        };
        let read = log.read(offset, max_bytes, Some(limit))?;
        let aborted = match isolation {
            Isolation::ReadCommitted if !read.records.is_empty() => {
                let upper = read_end(&read.records).unwrap_or(limit);
                log.aborted_transactions(offset, upper)
            }
            _ => Vec::new(),
        };
        Ok(PartitionRead { read, last_stable_offset, aborted })
    }

    /// The last stable offset: the high watermark, or the first offset of the oldest open
    /// transaction when that is lower. READ_COMMITTED readers see nothing at or above it.
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        self.log.read().as_ref().map_or(hw, |log| stable_limit(log, hw))
    }

    /// Appends, as leader, the marker ending producer `producer_id`'s transaction (blocking).
    /// Returns the marker's offset and the leader state it was written under.
    pub fn append_marker_blocking(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
        now_ms: i64,
    ) -> Result<(i64, LeaderState), BrokerError> {
        self.leader_append(false, |log, epoch| log.append_marker(producer_id, producer_epoch, marker, epoch, now_ms))
    }

    /// Reads batches from `offset` up to the log end, for a follower (blocking).
    pub fn read_for_replica_blocking(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, BrokerError> {
        let guard = self.log.read();
        let log = guard.as_ref().ok_or_else(|| self.closed())?;
        Ok(log.read(offset, max_bytes, None)?)
    }

    /// The latest leader epoch in this replica's log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.log.read().as_ref().and_then(Log::latest_epoch)
    }

    /// `(largest known epoch <= epoch, its end offset)`, `(-1, -1)` when unknown.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.log.read().as_ref().map_or((-1, -1), |log| log.end_offset_for_epoch(epoch))
    }

    /// First offset whose record timestamp is at or after `timestamp_ms`, if any is visible at
    /// `isolation` (below the high watermark, or the last stable offset).
    pub fn offset_for_timestamp_blocking(
        &self,
        timestamp_ms: i64,
        isolation: Isolation,
    ) -> Result<Option<(i64, i64)>, BrokerError> {
        let limit = match isolation {
            Isolation::ReadUncommitted => self.high_watermark(),
            Isolation::ReadCommitted => self.last_stable_offset(),
        };
        let guard = self.log.read();
        let log = guard.as_ref().ok_or_else(|| self.closed())?;
        Ok(log.offset_for_timestamp(timestamp_ms)?.filter(|(offset, _)| *offset < limit))
    }

    /// ListOffsets `MAX_TIMESTAMP`: `(offset, timestamp)` of the visible record with the largest
    /// timestamp (below the high watermark, or the last stable offset for READ_COMMITTED).
    pub fn offset_of_max_timestamp_blocking(&self, isolation: Isolation) -> Result<Option<(i64, i64)>, BrokerError> {
        let limit = match isolation {
            Isolation::ReadUncommitted => self.high_watermark(),
            Isolation::ReadCommitted => self.last_stable_offset(),
        };
        let guard = self.log.read();
        let log = guard.as_ref().ok_or_else(|| self.closed())?;
        Ok(log.offset_of_max_timestamp(limit)?)
    }

    /// The high watermark: consumers see offsets below it.
    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    /// A receiver woken whenever the high watermark moves (and when leadership is lost).
    pub fn watch_high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// A receiver woken whenever the log end offset moves.
    pub fn watch_log_end(&self) -> watch::Receiver<i64> {
        self.log_end.subscribe()
    }

    /// First offset in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log.read().as_ref().map_or(-1, Log::log_start_offset)
    }

    /// Offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.log.read().as_ref().map_or(-1, Log::log_end_offset)
    }

    /// Size of the log on disk.
    pub fn size_bytes(&self) -> u64 {
        self.log.read().as_ref().map_or(0, Log::size_bytes)
    }

    /// How dirty the log is, `None` unless it is compacted (or closed).
    pub fn dirty_stats(&self, now_ms: i64) -> Option<vltava_storage::DirtyStats> {
        self.log.read().as_ref().and_then(|log| log.dirty_stats(now_ms))
    }

    /// Runs `f` on the log under the read lock (blocking), e.g. to prepare a cleaning pass.
    pub fn with_log<T>(
        &self,
        f: impl FnOnce(&Log) -> Result<T, vltava_storage::StorageError>,
    ) -> Result<T, BrokerError> {
        let guard = self.log.read();
        let log = guard.as_ref().ok_or_else(|| self.closed())?;
        Ok(f(log)?)
    }

    /// Runs `f` on the log under the write lock (blocking), e.g. for retention and flushes.
    pub fn with_log_mut<T>(
        &self,
        f: impl FnOnce(&mut Log) -> Result<T, vltava_storage::StorageError>,
    ) -> Result<T, BrokerError> {
        let mut guard = self.log.write();
        let log = guard.as_mut().ok_or_else(|| self.closed())?;
        Ok(f(log)?)
    }

    /// Flushes and closes the log, writing the clean-shutdown marker (blocking).
    pub fn close_blocking(&self) -> Result<(), BrokerError> {
        if let Some(log) = self.log.write().take() {
            log.close()?;
        }
        Ok(())
    }

    /// Closes the log and deletes its directory (blocking).
    pub fn delete_blocking(&self) -> Result<(), BrokerError> {
        if let Some(log) = self.log.write().take() {
            log.delete()?;
        }
        Ok(())
    }

    fn not_leader(&self, leader: i32) -> BrokerError {
        BrokerError::NotLeader { topic: self.topic.clone(), partition: self.index, broker: self.broker_id, leader }
    }

    fn closed(&self) -> BrokerError {
        BrokerError::UnknownTopicOrPartition { topic: self.topic.clone(), partition: self.index }
    }
}

/// The last stable offset of `log` with high watermark `hw`: the smaller of `hw` and the first
/// offset of the oldest open transaction.
fn stable_limit(log: &Log, hw: i64) -> i64 {
    log.first_unstable_offset().map_or(hw, |f| f.min(hw))
}

/// The offset after the last whole batch in `records` (batches as a log returns them).
pub(crate) fn read_end(records: &Bytes) -> Option<i64> {
    vltava_record::batches(records.clone()).map_while(Result::ok).last().map(|b| b.next_offset())
}
