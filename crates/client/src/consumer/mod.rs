//! [`Consumer`]: reads partitions with pipelined fetches and commits group offsets.
//!
//! Partitions come from the consumer's group ([`Consumer::subscribe`],
//! [`Consumer::subscribe_pattern`]: the group's coordinator assigns them and moves them between
//! members, see the `membership` and `group` modules) or are assigned by hand
//! ([`Consumer::assign`], [`Consumer::assign_topic`]). Positions start from the group's
//! committed offset, else from `auto.offset.reset`; `poll` returns buffered records and keeps
//! the next fetch of every leader in flight (see the `fetcher` module).

pub(crate) mod decode;
pub(crate) mod fetcher;
mod group;
mod listener;
pub(crate) mod membership;

pub use listener::RebalanceListener;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use self::fetcher::FetchResult;
use crate::cluster::Cluster;
use crate::config::{ConsumerConfig, OffsetReset};
use crate::error::ClientError;
use crate::offsets;
use crate::types::{ConsumerRecord, OffsetSpec, TopicPartition};

/// Pause before re-fetching a partition after an error, and between metadata refreshes.
pub(crate) const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Per-partition consumer state.
#[derive(Debug)]
struct PartState {
    topic: Arc<str>,
    /// Next offset to return; `None` until initialised.
    position: Option<i64>,
    /// A pending `seek_to_*` / offset reset, resolved with `ListOffsets` before fetching.
    reset: Option<OffsetSpec>,
    /// Bumped by seeks: fetched data of an older epoch is dropped.
    epoch: u64,
    /// A fetch including this partition is outstanding.
    fetching: bool,
    /// Fetched records are waiting to be returned.
    buffered: bool,
    /// Do not fetch before this instant (after an error).
    retry_at: Option<Instant>,
    /// Paused by the application: not fetched, nothing returned.
    paused: bool,
    /// High watermark from the last fetch.
    high_watermark: Option<i64>,
    /// Log start offset from the last fetch.
    log_start_offset: Option<i64>,
}

/// Fetched records of one partition not yet returned by `poll`.
#[derive(Debug)]
struct Buffered {
    tp: TopicPartition,
    epoch: u64,
    records: std::vec::IntoIter<ConsumerRecord>,
    /// Position once all of them are returned.
    next_offset: i64,
}

/// A consumer: of its group's partitions once subscribed, else of partitions assigned by hand
/// (Kafka's `KafkaConsumer`).
///
/// Not `Clone`: like Kafka's consumer it is driven by one task through `&mut self`.
pub struct Consumer {
    config: ConsumerConfig,
    cluster: Arc<Cluster>,
    assignment: BTreeMap<TopicPartition, PartState>,
    buffered: VecDeque<Buffered>,
    tx: mpsc::UnboundedSender<FetchResult>,
    rx: mpsc::UnboundedReceiver<FetchResult>,
    in_flight: HashMap<i32, AbortHandle>,
    next_epoch: u64,
    pending_error: Option<ClientError>,
    metadata_stale: bool,
    last_refresh: Option<Instant>,
    last_commit: Instant,
    /// The group membership while subscribed.
    membership: Option<membership::Membership>,
    /// In a mutex only so that `Consumer` is `Sync` (it is used through `&mut self` alone).
    listener: parking_lot::Mutex<Box<dyn RebalanceListener>>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("bootstrap", &self.config.bootstrap)
            .field("group_id", &self.config.group_id)
            .field("assignment", &self.assignment.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        for handle in self.in_flight.values() {
            handle.abort();
        }
    }
}

impl Consumer {
    /// Validates `config` and connects to a bootstrap server.
    pub async fn connect(config: ConsumerConfig) -> Result<Consumer, ClientError> {
        config.validate()?;
        let cluster = Cluster::connect(&config.bootstrap, config.request_timeout, config.via_gateway).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        Ok(Consumer {
            config,
            cluster,
            assignment: BTreeMap::new(),
            buffered: VecDeque::new(),
            tx,
            rx,
            in_flight: HashMap::new(),
            next_epoch: 1,
            pending_error: None,
            metadata_stale: false,
            last_refresh: None,
            last_commit: Instant::now(),
            membership: None,
            listener: parking_lot::Mutex::new(Box::new(listener::NoopListener)),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Replaces the assignment. Partitions kept keep their position; new ones start from the
    /// committed offset or `auto.offset.reset` on first use. Not for a subscribed consumer
    /// (its group assigns its partitions; the next rebalance would undo this).
    pub fn assign(&mut self, partitions: Vec<TopicPartition>) {
        let mut old = std::mem::take(&mut self.assignment);
        for tp in partitions {
            let state = match old.remove(&tp) {
                Some(state) => state,
                None => {
                    let topic = old
                        .values()
                        .chain(self.assignment.values())
                        .find(|s| *s.topic == *tp.topic)
                        .map_or_else(|| Arc::from(tp.topic.as_str()), |s| s.topic.clone());
                    let epoch = self.bump_epoch();
                    PartState {
                        topic,
                        position: None,
                        reset: None,
                        epoch,
                        fetching: false,
                        buffered: false,
                        retry_at: None,
                        paused: false,
                        high_watermark: None,
                        log_start_offset: None,
                    }
                }
            };
            self.assignment.insert(tp, state);
        }
        let assignment = &self.assignment;
        self.buffered.retain(|b| assignment.contains_key(&b.tp));
        self.pending_error = None;
    }

    /// Adds every partition of `topic` to the assignment.
    pub async fn assign_topic(&mut self, topic: &str) -> Result<(), ClientError> {
        let meta = self.cluster.topic_or_fetch(topic, Duration::ZERO).await?;
        let mut partitions: Vec<TopicPartition> = self.assignment.keys().cloned().collect();
        partitions.extend((0..meta.partition_count()).map(|p| TopicPartition::new(topic, p)));
        partitions.sort();
        partitions.dedup();
        self.last_refresh = Some(Instant::now());
        self.assign(partitions);
        Ok(())
    }

    /// The assigned partitions, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.keys().cloned().collect()
    }

    fn bump_epoch(&mut self) -> u64 {
        self.next_epoch += 1;
        self.next_epoch
    }

    fn state_mut(&mut self, tp: &TopicPartition) -> Result<&mut PartState, ClientError> {
        self.assignment
            .get_mut(tp)
            .ok_or_else(|| ClientError::NotAssigned { topic: tp.topic.clone(), partition: tp.partition })
    }

    /// Drops fetched data of `tp` and sets where to read next.
    fn reposition(
        &mut self,
        tp: &TopicPartition,
        position: Option<i64>,
        reset: Option<OffsetSpec>,
    ) -> Result<(), ClientError> {
        let epoch = self.bump_epoch();
        let st = self.state_mut(tp)?;
        st.epoch = epoch;
        st.position = position;
        st.reset = reset;
        st.buffered = false;
        st.retry_at = None;
        self.buffered.retain(|b| b.tp != *tp);
        self.pending_error = None;
        Ok(())
    }

    /// Reads `tp` from `offset` next.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<(), ClientError> {
        self.reposition(tp, Some(offset), None)
    }

    /// Reads these partitions from their log start next (resolved lazily, like Kafka).
    pub fn seek_to_beginning(&mut self, partitions: &[TopicPartition]) -> Result<(), ClientError> {
        partitions.iter().try_for_each(|tp| self.reposition(tp, None, Some(OffsetSpec::Earliest)))
    }

    /// Reads these partitions from their high watermark next (only new records).
    pub fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<(), ClientError> {
        partitions.iter().try_for_each(|tp| self.reposition(tp, None, Some(OffsetSpec::Latest)))
    }

    /// Reads `tp` from the first record with a timestamp at or after `timestamp` (ms) next; from
    /// the end if there is none.
    pub fn seek_to_timestamp(&mut self, tp: &TopicPartition, timestamp: i64) -> Result<(), ClientError> {
        self.reposition(tp, None, Some(OffsetSpec::Timestamp(timestamp)))
    }

    /// The offset of the next record `poll` returns for `tp`, initialising it if needed.
    pub async fn position(&mut self, tp: &TopicPartition) -> Result<i64, ClientError> {
        self.state_mut(tp)?;
        self.update_positions().await?;
        let st = self.state_mut(tp)?;
        st.position.ok_or_else(|| ClientError::Timeout {
            what: format!("resolving the position of {tp}"),
            after: RETRY_BACKOFF,
        })
    }

    /// The high watermark of `tp` from the last fetch.
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.assignment.get(tp)?.high_watermark
    }

    /// The log start offset of `tp` from the last fetch.
    pub fn log_start_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.assignment.get(tp)?.log_start_offset
    }

    /// Records of `tp` not yet returned: last fetched high watermark minus position.
    pub fn lag(&self, tp: &TopicPartition) -> Option<i64> {
        let st = self.assignment.get(tp)?;
        Some((st.high_watermark? - st.position?).max(0))
    }

    /// Returns fetched records, waiting up to `timeout` for some to arrive.
    ///
    /// Returns at most `max.poll.records`; an empty `Vec` when nothing arrived in time. Errors
    /// (`OFFSET_OUT_OF_RANGE` with `auto.offset.reset=none`, corrupt batches, ...) are returned
    /// after the records fetched before them. Auto-commits positions when the interval elapsed.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>, ClientError> {
        if self.assignment.is_empty() && self.membership.is_none() {
            return Err(ClientError::Config("poll() needs partitions: call subscribe() or assign() first".into()));
        }
        let deadline = Instant::now() + timeout;
        self.maybe_auto_commit().await;
        let changed = self.membership.as_ref().map(membership::Membership::changed);
        loop {
            self.apply_group_change().await?;
            while let Ok(result) = self.rx.try_recv() {
                self.handle_fetch(result);
            }
            let records = self.take_buffered(self.config.max_poll_records);
            if records.is_empty()
                && let Some(e) = self.pending_error.take()
            {
                return Err(e);
            }
            self.refresh_metadata_if_needed().await;
            if let Err(e) = self.update_positions().await {
                if records.is_empty() {
                    return Err(e);
                }
                self.pending_error.get_or_insert(e);
            }
            self.send_fetches();
            if !records.is_empty() {
                return Ok(records);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(records);
            }
            let mut wait = deadline - now;
            if self.needs_retry() {
                wait = wait.min(RETRY_BACKOFF);
            }
            let group_change = async {
                match &changed {
                    Some(notify) => notify.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = tokio::time::timeout(wait, self.rx.recv()) => {
                    if let Ok(Some(result)) = result {
                        self.handle_fetch(result);
                    }
                }
                () = group_change => {}
            }
        }
    }

    /// Whether some partition waits for metadata, a position or a backoff (so `poll` must
    /// wake up without a fetch arriving).
    fn needs_retry(&self) -> bool {
        self.metadata_stale
            || self.assignment.values().any(|st| {
                !st.paused && !st.fetching && !st.buffered && (st.position.is_none() || st.retry_at.is_some())
            })
    }

    /// Takes up to `max` buffered records, advancing positions.
    fn take_buffered(&mut self, max: usize) -> Vec<ConsumerRecord> {
        let mut out = Vec::new();
        let mut parked = Vec::new();
        while out.len() < max {
            let Some(mut b) = self.buffered.pop_front() else { break };
            let Some(st) = self.assignment.get_mut(&b.tp) else { continue };
            if st.epoch != b.epoch {
                continue;
            }
            if st.paused {
                parked.push(b);
                continue;
            }
            let want = max - out.len();
            if b.records.len() <= want {
                if out.capacity() == 0 {
                    out.reserve(b.records.len().min(max));
                }
                out.extend(b.records);
                st.position = Some(b.next_offset);
                st.buffered = false;
            } else {
                out.reserve(want);
                out.extend(b.records.by_ref().take(want));
                st.position = out.last().map(|r| r.offset + 1);
                // Round-robin: the rest goes behind the other partitions' data.
                self.buffered.push_back(b);
            }
        }
        for b in parked.into_iter().rev() {
            self.buffered.push_front(b);
        }
        out
    }

    /// Stops fetching and returning records of these partitions until [`Consumer::resume`];
    /// their positions and group ownership stay (Kafka's `pause`).
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<(), ClientError> {
        partitions.iter().try_for_each(|tp| self.state_mut(tp).map(|st| st.paused = true))
    }

    /// Fetches and returns records of these paused partitions again.
    pub fn resume(&mut self, partitions: &[TopicPartition]) -> Result<(), ClientError> {
        partitions.iter().try_for_each(|tp| self.state_mut(tp).map(|st| st.paused = false))
    }

    /// The paused partitions, sorted.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.assignment.iter().filter(|(_, st)| st.paused).map(|(tp, _)| tp.clone()).collect()
    }

    async fn refresh_metadata_if_needed(&mut self) {
        let missing = self.assignment.keys().any(|tp| self.cluster.topic(&tp.topic).is_none());
        if !(self.metadata_stale || missing) || self.last_refresh.is_some_and(|t| t.elapsed() < RETRY_BACKOFF) {
            return;
        }
        let mut topics: Vec<String> = self.assignment.keys().map(|tp| tp.topic.clone()).collect();
        topics.dedup();
        self.last_refresh = Some(Instant::now());
        match self.cluster.refresh(&topics).await {
            Ok(_) => self.metadata_stale = false,
            Err(e) => tracing::debug!(error = %e, "consumer metadata refresh failed"),
        }
    }

    /// Initialises missing positions (committed offset, else `auto.offset.reset`) and resolves
    /// pending seeks. Retriable look-up failures are left for the next attempt.
    async fn update_positions(&mut self) -> Result<(), ClientError> {
        let missing: Vec<TopicPartition> = self
            .assignment
            .iter()
            .filter(|(_, st)| st.position.is_none() && st.reset.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        if !missing.is_empty() {
            if let Some(group) = self.config.group_id.clone() {
                match offsets::fetch_committed(&self.cluster, &group, &missing).await {
                    Ok(committed) => {
                        for (tp, offset) in committed {
                            if let Some(st) = self.assignment.get_mut(&tp)
                                && offset >= 0
                                && st.position.is_none()
                                && st.reset.is_none()
                            {
                                st.position = Some(offset);
                            }
                        }
                    }
                    Err(e) if e.is_retriable() => {
                        tracing::debug!(error = %e, "fetching committed offsets failed");
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            }
            for tp in &missing {
                let policy = self.config.auto_offset_reset;
                let Some(st) = self.assignment.get_mut(tp) else { continue };
                if st.position.is_some() {
                    continue;
                }
                st.reset = Some(match policy {
                    OffsetReset::Earliest => OffsetSpec::Earliest,
                    OffsetReset::Latest => OffsetSpec::Latest,
                    OffsetReset::None => {
                        return Err(ClientError::NoOffset { topic: tp.topic.clone(), partition: tp.partition });
                    }
                });
            }
        }
        // Twice: a timestamp with no record at or after it falls back to the end.
        for _ in 0..2 {
            let resets: Vec<(TopicPartition, i64)> =
                self.assignment.iter().filter_map(|(tp, st)| st.reset.map(|spec| (tp.clone(), spec.wire()))).collect();
            if resets.is_empty() {
                break;
            }
            let found = match offsets::list_offsets(&self.cluster, &resets, self.config.isolation_level).await {
                Ok(found) => found,
                Err(e) if e.is_retriable() => {
                    tracing::debug!(error = %e, "resolving offsets failed");
                    self.metadata_stale = true;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            for (tp, offset) in found {
                let Some(st) = self.assignment.get_mut(&tp) else { continue };
                match st.reset {
                    Some(OffsetSpec::Timestamp(_)) if offset < 0 => st.reset = Some(OffsetSpec::Latest),
                    Some(_) => {
                        st.position = Some(offset.max(0));
                        st.reset = None;
                    }
                    None => {}
                }
            }
        }
        Ok(())
    }
}
