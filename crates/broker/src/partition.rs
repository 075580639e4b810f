//! One partition hosted by this broker: its log, its leadership state and its high watermark.
//!
//! Log I/O is blocking (page-cache writes and `pread`s), so callers run it on Tokio's blocking
//! pool. The high watermark is published on a watch channel so that long-polling fetches and
//! subscriptions wake as soon as new records become visible.

use std::path::Path;

use bytes::Bytes;
use parking_lot::RwLock;
use tokio::sync::watch;
use vltava_controller::PartitionState;
use vltava_storage::{AppendInfo, Log, LogConfig, ReadResult};

use crate::error::BrokerError;

/// Leadership state from the latest cluster image.
#[derive(Debug, Clone)]
pub struct LeaderState {
    /// Leader broker id.
    pub leader: i32,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Leader epoch, stamped into appended batches.
    pub leader_epoch: i32,
    /// The topic's `min.insync.replicas`.
    pub min_insync_replicas: i32,
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
}

impl Partition {
    /// Opens (recovering if needed) the log in `dir`.
    pub fn open(
        dir: &Path,
        topic: &str,
        state: &PartitionState,
        topic_id: &str,
        broker_id: i32,
        config: LogConfig,
        min_insync_replicas: i32,
    ) -> Result<Self, BrokerError> {
        let log = Log::open(dir, config)?;
        // With replication (followers tracked by the leader) the high watermark comes from a
        // checkpoint and the followers' positions; a sole replica has everything committed.
        let hw = log.log_end_offset();
        let (high_watermark, _) = watch::channel(hw);
        Ok(Self {
            topic: topic.to_string(),
            index: state.partition,
            topic_id: topic_id.to_string(),
            broker_id,
            log: RwLock::new(Some(log)),
            state: RwLock::new(leader_state(state, min_insync_replicas)),
            high_watermark,
        })
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

    /// Applies leadership and configuration changes from a new cluster image.
    pub fn update(&self, state: &PartitionState, config: LogConfig, min_insync_replicas: i32) {
        *self.state.write() = leader_state(state, min_insync_replicas);
        if let Some(log) = self.log.write().as_mut() {
            log.set_config(config);
        }
    }

    /// Fails unless this broker leads the partition.
    pub fn ensure_leader(&self) -> Result<LeaderState, BrokerError> {
        let s = self.state.read();
        if s.leader != self.broker_id {
            return Err(BrokerError::NotLeader {
                topic: self.topic.clone(),
                partition: self.index,
                broker: self.broker_id,
                leader: s.leader,
            });
        }
        Ok(s.clone())
    }

    /// Appends producer batches (blocking: call from the blocking pool). Validation failures
    /// append nothing.
    pub fn append_blocking(&self, records: Bytes, leader_epoch: i32, now_ms: i64) -> Result<AppendInfo, BrokerError> {
        let mut guard = self.log.write();
        let log = guard.as_mut().ok_or_else(|| self.closed())?;
        let info = log.append(records, leader_epoch, now_ms)?;
        let leo = log.log_end_offset();
        drop(guard);
        self.maybe_advance_high_watermark(leo);
        Ok(info)
    }

    /// Moves the high watermark when this broker is the only in-sync replica (replication
    /// moves it from the followers' fetch positions otherwise).
    fn maybe_advance_high_watermark(&self, leo: i64) {
        let sole = {
            let s = self.state.read();
            s.isr.len() <= 1 && s.isr.first().is_none_or(|id| *id == self.broker_id)
        };
        if sole {
            self.high_watermark.send_if_modified(|hw| {
                let moved = leo > *hw;
                if moved {
                    *hw = leo;
                }
                moved
            });
        }
    }

    /// Reads committed batches from `offset` (blocking): never above the high watermark.
    pub fn read_blocking(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, BrokerError> {
        let hw = self.high_watermark();
        let guard = self.log.read();
        let log = guard.as_ref().ok_or_else(|| self.closed())?;
        // Offsets between the high watermark and the log end exist but are not visible yet.
        if offset > hw && offset <= log.log_end_offset() {
            return Err(vltava_storage::StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: log.log_start_offset(),
                log_end_offset: hw,
            }
            .into());
        }
        Ok(log.read(offset, max_bytes, Some(hw))?)
    }

    /// First offset whose record timestamp is at or after `timestamp_ms`, if any is committed.
    pub fn offset_for_timestamp_blocking(&self, timestamp_ms: i64) -> Result<Option<(i64, i64)>, BrokerError> {
        let hw = self.high_watermark();
        let guard = self.log.read();
        let log = guard.as_ref().ok_or_else(|| self.closed())?;
        Ok(log.offset_for_timestamp(timestamp_ms)?.filter(|(offset, _)| *offset < hw))
    }

    /// The high watermark: consumers see offsets below it.
    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    /// A receiver woken whenever the high watermark moves.
    pub fn watch_high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
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

    fn closed(&self) -> BrokerError {
        BrokerError::UnknownTopicOrPartition { topic: self.topic.clone(), partition: self.index }
    }
}

fn leader_state(state: &PartitionState, min_insync_replicas: i32) -> LeaderState {
    LeaderState { leader: state.leader, isr: state.isr.clone(), leader_epoch: state.leader_epoch, min_insync_replicas }
}
