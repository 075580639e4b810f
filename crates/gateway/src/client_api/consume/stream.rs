//! The task behind one Consume stream: it follows the topic's growth and the group's
//! assignments, positions its partitions, fetches from the leaders and hands the records to the
//! client as it takes them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::consume_response::Payload;
use vltava_proto::v1::{Assignment, ConsumeResponse, ConsumedRecord, FetchPartition, PartitionRead, RecordSet};

use super::position::{PartitionState, Start};
use super::validate::Settings;
use crate::brokers::Brokers;
use crate::client_api::membership::Member;
use crate::client_api::read::{self, FetchLimits};
use crate::client_api::topic;

/// Longest long-poll of one fetch, in milliseconds.
const POLL_WAIT_MS: i32 = 500;
/// How often an idle stream looks for new partitions of its topic.
const IDLE_RECHECK: Duration = Duration::from_secs(1);

/// Why a stream's task stops.
pub(super) enum Exit {
    /// The client hung up.
    Gone,
    /// An error the stream cannot get past; sent to the client last.
    Failed(Status),
}

/// What became of a message handed to the client.
enum Sent {
    Delivered,
    /// The group rebalanced before the client took it; it was dropped.
    Rebalanced,
    Gone,
}

/// One Consume stream's task.
pub(super) struct StreamTask {
    pub(super) brokers: Brokers,
    pub(super) settings: Settings,
    tx: mpsc::Sender<Result<ConsumeResponse, Status>>,
    pub(super) member: Option<Member>,
    /// Generation (member epoch) of the last assignment applied (managed subscriptions).
    generation: i64,
    /// Partitions the stream should read: all of `owned` plus, in a group, those not yet claimed.
    assigned: BTreeSet<i32>,
    /// Partitions the stream reads now.
    pub(super) owned: BTreeMap<i32, PartitionState>,
    known_partitions: i32,
    /// When the next auto-commit is due.
    pub(super) next_commit: Instant,
}

impl StreamTask {
    /// The task of a stream that reads `owned` (a group member's partitions are claimed later)
    /// of a topic of `partitions` partitions, sending to `tx`.
    pub(super) fn new(
        brokers: Brokers,
        settings: Settings,
        tx: mpsc::Sender<Result<ConsumeResponse, Status>>,
        member: Option<Member>,
        owned: BTreeMap<i32, PartitionState>,
        partitions: i32,
    ) -> Self {
        Self {
            next_commit: Instant::now() + settings.commit_interval,
            assigned: owned.keys().copied().collect(),
            generation: 0,
            known_partitions: partitions,
            brokers,
            settings,
            tx,
            member,
            owned,
        }
    }

    /// Whether the stream has a group to read for (its partitions come with assignments).
    pub(super) fn is_managed(&self) -> bool {
        self.member.is_some()
    }

    /// Serves the stream until the client hangs up or an error ends it, then commits (with
    /// `auto_commit`), leaves the group and sends the error, if any.
    pub(super) async fn run(mut self) {
        let exit = self.serve().await;
        let all: Vec<i32> = self.owned.keys().copied().collect();
        self.commit(&all).await;
        // Leave the group before anything else, so the others take the partitions over.
        drop(self.member.take());
        tracing::debug!(topic = %self.settings.topic, group = ?self.settings.group_id, "consume stream ended");
        if let Exit::Failed(status) = exit {
            let _ = self.tx.send(Err(status)).await;
        }
    }

    async fn serve(&mut self) -> Exit {
        loop {
            if let Some(exit) = self.follow_topic_and_group().await {
                return exit;
            }
            self.commit_if_due().await;
            if let Err(exit) = self.resolve_positions().await {
                return exit;
            }
            let fetches = self.fetchable();
            if fetches.is_empty() {
                if let Some(exit) = self.idle().await {
                    return exit;
                }
                continue;
            }
            let limits = FetchLimits {
                max_wait_ms: POLL_WAIT_MS,
                max_bytes: self.settings.max_bytes,
                max_records: usize::MAX,
                isolation_level: self.settings.isolation_level,
            };
            let reads = tokio::select! {
                reads = read::fetch_records(&self.brokers, fetches, limits) => reads,
                () = self.tx.closed() => return Exit::Gone,
                () = group_event(&mut self.member) => continue,
            };
            if let Some(exit) = self.deliver(reads).await {
                return exit;
            }
        }
    }

    /// Picks up new partitions of the topic and, in a group, applies a new assignment (sending it
    /// to the client) and claims the assigned partitions that are free.
    async fn follow_topic_and_group(&mut self) -> Option<Exit> {
        let view = self.brokers.router().view().await;
        let partitions = topic::partitions_in(&view, &self.settings.topic);
        if partitions > self.known_partitions {
            tracing::debug!(topic = %self.settings.topic, partitions, "the topic grew");
            // A group member's coordinator notices the growth itself and reassigns.
            if self.member.is_none() && self.settings.partitions.is_none() {
                for p in self.known_partitions..partitions {
                    self.owned.insert(p, PartitionState::new(Start::Reset));
                    self.assigned.insert(p);
                }
            }
            self.known_partitions = partitions;
        }
        loop {
            let assignment = match self.member.as_mut() {
                Some(member) => member.current(),
                None => return None,
            };
            // Incremental rebalances change the partitions within one member epoch (a revocation
            // keeps the epoch until it is acknowledged): compare both.
            let same_partitions = assignment.partitions.iter().copied().eq(self.assigned.iter().copied());
            if assignment.generation == self.generation && same_partitions {
                break;
            }
            self.generation = assignment.generation;
            let revoked: Vec<i32> = self.owned.keys().copied().filter(|p| !assignment.partitions.contains(p)).collect();
            self.commit(&revoked).await;
            for p in &revoked {
                self.owned.remove(p);
            }
            if let Some(member) = &self.member {
                member.release(&revoked);
            }
            self.assigned = assignment.partitions.iter().copied().collect();
            tracing::debug!(
                topic = %self.settings.topic, generation = self.generation, partitions = ?assignment.partitions,
                ?revoked, "new assignment"
            );
            let member_id = self.member.as_ref().map(|m| m.id().to_string()).unwrap_or_default();
            let message = Payload::Assignment(Assignment {
                topic: self.settings.topic.clone(),
                partitions: assignment.partitions,
                generation: assignment.generation,
                member_epoch: i32::try_from(assignment.generation).unwrap_or(i32::MAX),
                member_id,
            });
            match self.send(message).await {
                // A newer assignment supersedes this one: the loop sends that instead.
                Sent::Delivered | Sent::Rebalanced => {}
                Sent::Gone => return Some(Exit::Gone),
            }
        }
        if let Some(member) = &self.member {
            for &p in &self.assigned {
                if !self.owned.contains_key(&p) && member.claim(p) {
                    self.owned.insert(p, PartitionState::new(Start::Committed));
                }
            }
        }
        None
    }

    /// Finds where partitions without a position start: the group's committed offsets, then
    /// `auto_offset_reset` (ListOffsets on the leaders).
    pub(super) async fn resolve_positions(&mut self) -> Result<(), Exit> {
        self.start_from_committed().await?;
        let topic = self.settings.topic.clone();
        let reset = self.ready_at(Start::Reset);
        if !reset.is_empty() {
            let wanted: Vec<(&str, i32, i64)> =
                reset.iter().map(|&p| (topic.as_str(), p, self.settings.reset)).collect();
            for (p, offset) in
                reset.iter().zip(read::resolve(&self.brokers, &wanted, self.settings.isolation_level).await)
            {
                match offset {
                    Ok(offset) => {
                        if let Some(state) = self.owned.get_mut(p) {
                            state.position = Start::At(offset);
                        }
                    }
                    Err(e) => self.failed(&[*p], &e)?,
                }
            }
        }
        Ok(())
    }

    /// The partitions waiting for `start` that are not backing off.
    pub(super) fn ready_at(&self, start: Start) -> Vec<i32> {
        let now = Instant::now();
        self.owned.iter().filter(|(_, s)| s.position == start && s.ready(now)).map(|(&p, _)| p).collect()
    }

    /// Backs `partitions` off after a transient error; any other error ends the stream.
    pub(super) fn failed(&mut self, partitions: &[i32], e: &WireError) -> Result<(), Exit> {
        if !is_transient(e.code) {
            return Err(Exit::Failed(e.clone().into_status()));
        }
        tracing::debug!(topic = %self.settings.topic, ?partitions, error = %e, "backing off");
        let router = self.brokers.router();
        router.invalidate();
        let base = router.config().retry_backoff;
        for p in partitions {
            if let Some(state) = self.owned.get_mut(p) {
                state.back_off(base);
            }
        }
        Ok(())
    }

    /// The partitions to fetch now: positioned and not backing off.
    fn fetchable(&self) -> Vec<FetchPartition> {
        let now = Instant::now();
        self.owned
            .iter()
            .filter(|(_, s)| s.ready(now))
            .filter_map(|(&partition, s)| match s.position {
                Start::At(offset) => Some(FetchPartition {
                    topic: self.settings.topic.clone(),
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes: 0,
                }),
                Start::Committed | Start::Reset => None,
            })
            .collect()
    }

    /// Waits, with nothing to fetch, until something may have changed: a backoff or the commit
    /// interval elapsed, the group changed, or the client hung up.
    async fn idle(&mut self) -> Option<Exit> {
        let mut wake = Instant::now() + IDLE_RECHECK;
        for t in self.owned.values().filter_map(|s| s.retry_at) {
            wake = wake.min(t);
        }
        if self.settings.auto_commit {
            wake = wake.min(self.next_commit);
        }
        tokio::select! {
            () = self.tx.closed() => Some(Exit::Gone),
            () = group_event(&mut self.member) => None,
            () = tokio::time::sleep_until(wake) => None,
        }
    }

    /// Hands a fetch's records to the client, `max_records` at a time, advancing each partition's
    /// position as its records are taken. A rebalance stops the delivery (undelivered records are
    /// fetched again from the positions if still owned).
    async fn deliver(&mut self, reads: Vec<PartitionRead>) -> Option<Exit> {
        let mut records: Vec<ConsumedRecord> = Vec::new();
        let mut ends = Vec::new();
        for read in reads {
            let Some(state) = self.owned.get_mut(&read.partition) else { continue };
            match read::code_of(read.error_code) {
                ErrorCode::None => {
                    state.succeeded();
                    records.extend(read.records);
                    ends.push((read.partition, read.next_offset));
                }
                ErrorCode::OffsetOutOfRange => {
                    tracing::info!(
                        topic = %read.topic, partition = read.partition, position = ?state.position,
                        log_start_offset = read.log_start_offset, high_watermark = read.high_watermark,
                        "offset out of range; resetting"
                    );
                    state.position = Start::Reset;
                }
                code => {
                    let e = WireError::new(code, format!("{}-{}: {}", read.topic, read.partition, read.error_message));
                    if let Err(exit) = self.failed(&[read.partition], &e) {
                        return Some(exit);
                    }
                }
            }
        }
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let chunk: Vec<ConsumedRecord> = records.by_ref().take(self.settings.max_records).collect();
            let positions: Vec<(i32, i64)> = chunk.iter().map(|r| (r.partition, r.offset + 1)).collect();
            match self.send(Payload::Records(RecordSet { records: chunk })).await {
                Sent::Delivered => {
                    for (p, next) in positions {
                        if let Some(state) = self.owned.get_mut(&p) {
                            state.position = Start::At(next);
                        }
                    }
                }
                Sent::Rebalanced => return None,
                Sent::Gone => return Some(Exit::Gone),
            }
        }
        // Past control batches and the like, once every record was taken.
        for (p, next) in ends {
            if let Some(state) = self.owned.get_mut(&p)
                && let Start::At(position) = state.position
            {
                state.position = Start::At(position.max(next));
            }
        }
        None
    }

    /// Hands one message to the client, waiting for it to take the previous one (auto-committing
    /// meanwhile, as due); gives up when the group rebalances meanwhile.
    async fn send(&mut self, payload: Payload) -> Sent {
        loop {
            let commit_due = tokio::select! {
                biased;
                permit = self.tx.reserve() => return match permit {
                    Ok(permit) => {
                        permit.send(Ok(ConsumeResponse { payload: Some(payload) }));
                        Sent::Delivered
                    }
                    Err(_) => Sent::Gone,
                },
                () = group_event(&mut self.member) => return Sent::Rebalanced,
                () = tokio::time::sleep_until(self.next_commit), if self.settings.auto_commit => true,
            };
            if commit_due {
                self.commit_if_due().await;
            }
        }
    }
}

/// Resolves when a managed subscription's assignment changes; never for a plain subscription.
async fn group_event(member: &mut Option<Member>) {
    match member {
        Some(member) => member.changed().await,
        None => std::future::pending().await,
    }
}

/// Whether a stream should retry after this error rather than end.
fn is_transient(code: ErrorCode) -> bool {
    vltava_common::error::is_retriable(code)
        || matches!(code, ErrorCode::UnknownServerError | ErrorCode::StorageError | ErrorCode::RequestTimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_are_retried_and_others_end_the_stream() {
        for code in [ErrorCode::NotLeaderOrFollower, ErrorCode::LeaderNotAvailable, ErrorCode::UnknownTopicOrPartition]
        {
            assert!(is_transient(code), "{code:?}");
        }
        for code in [ErrorCode::CorruptMessage, ErrorCode::InvalidRequest, ErrorCode::InvalidGroupId] {
            assert!(!is_transient(code), "{code:?}");
        }
    }
}
