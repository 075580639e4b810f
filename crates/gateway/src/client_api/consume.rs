//! Consume: one task per stream reads the stream's partitions from their leaders and hands the
//! records to the client, a message of at most `max_records` at a time.
//!
//! Flow control: the task sends through a channel of capacity 1 and fetches again only once the
//! previous fetch's records were all taken, so a client that stops reading (HTTP/2 flow control
//! stops tonic from taking messages) stops the fetching too; the gateway holds at most one fetch
//! (`max_bytes`) per stream. The task ends when the client hangs up.
//!
//! Each fetch long-polls the leaders for up to [`POLL_WAIT_MS`]. Transient errors (leader changes,
//! unreachable brokers, a topic being re-created) back the partition off, growing from the
//! gateway's `retry_backoff` to [`MAX_BACKOFF`], with a metadata refresh; `OFFSET_OUT_OF_RANGE`
//! moves the partition to `auto_offset_reset` (as Kafka consumers do); any other error ends the
//! stream with that error.
//!
//! A managed subscription (a `group_id`) reads what the gateway's [`Membership`] assigns it: it
//! sends an `Assignment` first and after every rebalance, stops reading (and, with `auto_commit`,
//! commits and releases) revoked partitions, and starts newly assigned ones from the group's
//! committed offset, else `auto_offset_reset`. With `auto_commit` it commits its delivered positions
//! (the offset after the last record handed to the stream) every `auto_commit_interval_ms`, on
//! revocation and when the stream ends. "Delivered" means handed to gRPC: records still in flight
//! when a client hangs up count as delivered, as records returned by a Kafka consumer's `poll` do.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::consume_response::Payload;
use vltava_proto::v1::{
    Assignment, CommitOffsetsRequest, ConsumeRequest, ConsumeResponse, ConsumedRecord, FetchOffsetsRequest,
    FetchPartition, OffsetCommit, PartitionRead, RecordSet, TopicPartition,
};

use super::membership::{Member, Membership};
use super::read::{self, FetchLimits};
use super::{convert, topic};
use crate::routing::Router;

/// The stream of a Consume call.
pub type ConsumeStream = ReceiverStream<Result<ConsumeResponse, Status>>;

/// Longest long-poll of one fetch, in milliseconds.
const POLL_WAIT_MS: i32 = 500;
/// Records per message when the request does not say (Kafka's `max.poll.records`).
const DEFAULT_MAX_RECORDS: usize = 500;
/// Auto-commit interval when the request does not say (Kafka's `auto.commit.interval.ms`).
const DEFAULT_COMMIT_INTERVAL_MS: usize = 5_000;
/// Longest pause before retrying a failing partition (Kafka's `retry.backoff.max.ms`).
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How often an idle stream looks for new partitions of its topic.
const IDLE_RECHECK: Duration = Duration::from_secs(1);

/// What a stream was asked for, checked.
#[derive(Debug)]
struct Settings {
    topic: String,
    /// Explicit partitions of a plain subscription; `None` means all.
    partitions: Option<BTreeSet<i32>>,
    /// ListOffsets spec of `auto_offset_reset`.
    reset: i64,
    group_id: Option<String>,
    auto_commit: bool,
    max_records: usize,
    max_bytes: i32,
    commit_interval: Duration,
}

impl Settings {
    fn of(request: ConsumeRequest) -> Result<Self, Status> {
        convert::check_topic(&request.topic)?;
        let group_id = (!request.group_id.is_empty()).then_some(request.group_id);
        if let Some(group) = &group_id {
            vltava_common::names::validate_group_id(group).map_err(WireError::into_status)?;
        } else if request.auto_commit {
            return Err(convert::invalid("auto_commit needs a group_id (a plain subscription has nothing to commit)"));
        }
        let commit_ms =
            convert::count_or(request.auto_commit_interval_ms, "auto_commit_interval_ms", DEFAULT_COMMIT_INTERVAL_MS)?;
        let max_bytes = convert::count_or(request.max_bytes, "max_bytes", read::DEFAULT_MAX_BYTES)?;
        Ok(Self {
            partitions: (group_id.is_none() && !request.partitions.is_empty())
                .then(|| request.partitions.iter().copied().collect()),
            reset: convert::reset_spec(request.auto_offset_reset)?,
            auto_commit: request.auto_commit,
            max_records: convert::count_or(request.max_records, "max_records", DEFAULT_MAX_RECORDS)?,
            max_bytes: i32::try_from(max_bytes).unwrap_or(i32::MAX),
            commit_interval: Duration::from_millis(commit_ms as u64),
            topic: request.topic,
            group_id,
        })
    }
}

/// Checks the request, joins the group (managed subscriptions) and starts the stream's task.
/// An unknown topic, or an explicit partition it does not have, fails the call.
pub(super) async fn start(
    router: Arc<Router>,
    membership: &Arc<Membership>,
    request: ConsumeRequest,
) -> Result<ConsumeStream, Status> {
    let settings = Settings::of(request)?;
    let partitions = topic::partition_count(&router, &settings.topic).await?;
    let unknown = |message: String| WireError::new(ErrorCode::UnknownTopicOrPartition, message).into_status();
    if partitions == 0 {
        return Err(unknown(format!("topic {:?} does not exist", settings.topic)));
    }
    if let Some(p) = settings.partitions.iter().flatten().find(|p| !(0..partitions).contains(*p)) {
        return Err(unknown(format!(
            "partition {p} does not exist: topic {} has partitions 0..{partitions}",
            settings.topic
        )));
    }
    let member = settings.group_id.as_deref().map(|group| membership.join(group, &settings.topic, partitions));
    let owned: BTreeMap<i32, PartitionState> = match (&member, &settings.partitions) {
        (Some(_), _) => BTreeMap::new(), // claimed as the group assigns them
        (None, Some(explicit)) => explicit.iter().map(|&p| (p, PartitionState::new(Start::Reset))).collect(),
        (None, None) => (0..partitions).map(|p| (p, PartitionState::new(Start::Reset))).collect(),
    };
    let (tx, rx) = mpsc::channel(1);
    tracing::debug!(topic = %settings.topic, group = ?settings.group_id, "consume stream started");
    let mut task = StreamTask {
        next_commit: Instant::now() + settings.commit_interval,
        assigned: owned.keys().copied().collect(),
        generation: 0,
        known_partitions: partitions,
        router,
        settings,
        tx,
        member,
        owned,
    };
    // A plain stream knows its partitions: it finds its start offsets before answering, so that
    // whatever is published once the call has returned is delivered.
    if task.member.is_none()
        && let Err(Exit::Failed(status)) = task.resolve_positions().await
    {
        return Err(status);
    }
    tokio::spawn(task.run());
    Ok(ReceiverStream::new(rx))
}

/// Where a partition's reading starts (or goes on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// At the group's committed offset, else `auto_offset_reset`.
    Committed,
    /// At `auto_offset_reset`.
    Reset,
    /// At this offset.
    At(i64),
}

/// A partition the stream reads.
#[derive(Debug)]
struct PartitionState {
    position: Start,
    /// The offset last committed for the group (or found committed).
    committed: Option<i64>,
    retry_at: Option<Instant>,
    failures: u32,
}

impl PartitionState {
    fn new(position: Start) -> Self {
        Self { position, committed: None, retry_at: None, failures: 0 }
    }

    fn ready(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|t| t <= now)
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }

    fn back_off(&mut self, base: Duration) {
        self.failures = self.failures.saturating_add(1);
        let delay = base.saturating_mul(1 << self.failures.min(16).saturating_sub(1)).min(MAX_BACKOFF);
        self.retry_at = Some(Instant::now() + delay);
    }
}

/// Why a stream's task stops.
enum Exit {
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
struct StreamTask {
    router: Arc<Router>,
    settings: Settings,
    tx: mpsc::Sender<Result<ConsumeResponse, Status>>,
    member: Option<Member>,
    /// Generation of the last assignment applied (managed subscriptions).
    generation: i64,
    /// Partitions the stream should read: all of `owned` plus, in a group, those not yet claimed.
    assigned: BTreeSet<i32>,
    /// Partitions the stream reads now.
    owned: BTreeMap<i32, PartitionState>,
    known_partitions: i32,
    next_commit: Instant,
}

impl StreamTask {
    async fn run(mut self) {
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
            let limits =
                FetchLimits { max_wait_ms: POLL_WAIT_MS, max_bytes: self.settings.max_bytes, max_records: usize::MAX };
            let waiting = self.waits_for_claims();
            let reads = tokio::select! {
                reads = read::fetch_records(&self.router, fetches, limits) => reads,
                () = self.tx.closed() => return Exit::Gone,
                () = group_event(&mut self.member, waiting) => continue,
            };
            if let Some(exit) = self.deliver(reads).await {
                return exit;
            }
        }
    }

    /// Picks up new partitions of the topic and, in a group, applies a new assignment (sending it
    /// to the client) and claims the assigned partitions that are free.
    async fn follow_topic_and_group(&mut self) -> Option<Exit> {
        let view = self.router.view().await;
        let partitions = topic::partitions_in(&view, &self.settings.topic);
        if partitions > self.known_partitions {
            tracing::debug!(topic = %self.settings.topic, partitions, "the topic grew");
            match &self.member {
                Some(member) => member.topic_grew(partitions),
                None if self.settings.partitions.is_none() => {
                    for p in self.known_partitions..partitions {
                        self.owned.insert(p, PartitionState::new(Start::Reset));
                        self.assigned.insert(p);
                    }
                }
                None => {}
            }
            self.known_partitions = partitions;
        }
        loop {
            let assignment = match self.member.as_mut() {
                Some(member) => member.current(),
                None => return None,
            };
            if assignment.generation == self.generation {
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
            let message = Payload::Assignment(Assignment {
                topic: self.settings.topic.clone(),
                partitions: assignment.partitions,
                generation: assignment.generation,
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
    async fn resolve_positions(&mut self) -> Result<(), Exit> {
        let topic = self.settings.topic.clone();
        let ask = self.ready_at(Start::Committed);
        if let (false, Some(group_id)) = (ask.is_empty(), self.settings.group_id.clone()) {
            let partitions = ask.iter().map(|&partition| TopicPartition { topic: topic.clone(), partition }).collect();
            match crate::forward::fetch_offsets(&self.router, FetchOffsetsRequest { group_id, partitions }).await {
                Ok(response) => {
                    let committed: BTreeMap<i32, i64> = response
                        .offsets
                        .into_iter()
                        .filter(|o| o.topic == topic && o.offset >= 0)
                        .map(|o| (o.partition, o.offset))
                        .collect();
                    for p in &ask {
                        let Some(state) = self.owned.get_mut(p) else { continue };
                        state.position = committed.get(p).map_or(Start::Reset, |&o| Start::At(o));
                        state.committed = committed.get(p).copied();
                    }
                }
                Err(status) => self.failed(&ask, &WireError::from_status(&status))?,
            }
        }
        let reset = self.ready_at(Start::Reset);
        if !reset.is_empty() {
            let wanted: Vec<(&str, i32, i64)> =
                reset.iter().map(|&p| (topic.as_str(), p, self.settings.reset)).collect();
            for (p, offset) in reset.iter().zip(read::resolve(&self.router, &wanted).await) {
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
    fn ready_at(&self, start: Start) -> Vec<i32> {
        let now = Instant::now();
        self.owned.iter().filter(|(_, s)| s.position == start && s.ready(now)).map(|(&p, _)| p).collect()
    }

    /// Backs `partitions` off after a transient error; any other error ends the stream.
    fn failed(&mut self, partitions: &[i32], e: &WireError) -> Result<(), Exit> {
        if !is_transient(e.code) {
            return Err(Exit::Failed(e.clone().into_status()));
        }
        tracing::debug!(topic = %self.settings.topic, ?partitions, error = %e, "backing off");
        self.router.invalidate();
        let base = self.router.config().retry_backoff;
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

    /// Whether assigned partitions wait for their previous owner to release them.
    fn waits_for_claims(&self) -> bool {
        self.assigned.iter().any(|p| !self.owned.contains_key(p))
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
        let waiting = self.waits_for_claims();
        tokio::select! {
            () = self.tx.closed() => Some(Exit::Gone),
            () = group_event(&mut self.member, waiting) => None,
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
                () = group_event(&mut self.member, false) => return Sent::Rebalanced,
                () = tokio::time::sleep_until(self.next_commit), if self.settings.auto_commit => true,
            };
            if commit_due {
                self.commit_if_due().await;
            }
        }
    }

    /// With `auto_commit`, commits every partition's position once the interval has elapsed.
    async fn commit_if_due(&mut self) {
        if self.settings.auto_commit && Instant::now() >= self.next_commit {
            let all: Vec<i32> = self.owned.keys().copied().collect();
            self.commit(&all).await;
            self.next_commit = Instant::now() + self.settings.commit_interval;
        }
    }

    /// With `auto_commit`, commits the positions of `partitions` that moved since their last
    /// commit. Failures are logged; the next commit tries again.
    async fn commit(&mut self, partitions: &[i32]) {
        let Some(group_id) = self.settings.group_id.clone().filter(|_| self.settings.auto_commit) else { return };
        let offsets: Vec<OffsetCommit> = partitions
            .iter()
            .filter_map(|&partition| match self.owned.get(&partition)? {
                PartitionState { position: Start::At(offset), committed, .. } if *committed != Some(*offset) => {
                    Some(OffsetCommit {
                        topic: self.settings.topic.clone(),
                        partition,
                        offset: *offset,
                        metadata: String::new(),
                    })
                }
                _ => None,
            })
            .collect();
        if offsets.is_empty() {
            return;
        }
        let request = CommitOffsetsRequest { group_id, offsets: offsets.clone() };
        match crate::forward::commit_offsets(&self.router, request).await {
            Ok(response) => {
                for (offset, result) in offsets.iter().zip(response.results) {
                    if result.error_code == ErrorCode::None as i32 {
                        if let Some(state) = self.owned.get_mut(&offset.partition) {
                            state.committed = Some(offset.offset);
                        }
                    } else {
                        tracing::warn!(
                            topic = %offset.topic, partition = offset.partition, error = %result.error_message,
                            "auto-commit refused"
                        );
                    }
                }
            }
            Err(status) => tracing::warn!(group = ?self.settings.group_id, error = %status, "auto-commit failed"),
        }
    }
}

/// Resolves when a managed subscription's assignment changes or, with `releases`, when group
/// members release partitions; never for a plain subscription.
async fn group_event(member: &mut Option<Member>, releases: bool) {
    match member {
        Some(member) => member.changed_or_released(releases).await,
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
    fn backoff_grows_from_the_base_to_the_cap() {
        let mut state = PartitionState::new(Start::Reset);
        let base = Duration::from_millis(100);
        let mut delays = Vec::new();
        for _ in 0..6 {
            let before = Instant::now();
            state.back_off(base);
            delays.push(state.retry_at.unwrap().duration_since(before));
        }
        assert!(delays[0] >= base && delays[0] < base * 2, "{delays:?}");
        assert!(delays[2] >= base * 4, "{delays:?}");
        assert!(delays[5] <= MAX_BACKOFF + Duration::from_millis(50), "{delays:?}");
        state.succeeded();
        assert!(state.ready(Instant::now()));
        assert_eq!(state.failures, 0);
    }

    #[test]
    fn settings_check_the_request() {
        let request = |f: fn(&mut ConsumeRequest)| {
            let mut r = ConsumeRequest { topic: "t".into(), ..Default::default() };
            f(&mut r);
            Settings::of(r)
        };
        let plain = request(|_| {}).unwrap();
        assert_eq!((plain.max_records, plain.reset, plain.partitions), (500, convert::LATEST, None));
        assert_eq!(plain.commit_interval, Duration::from_secs(5));
        let explicit = request(|r| r.partitions = vec![2, 0, 2]).unwrap();
        assert_eq!(explicit.partitions, Some(BTreeSet::from([0, 2])));
        let grouped = request(|r| {
            r.group_id = "g".into();
            r.partitions = vec![1];
        })
        .unwrap();
        assert_eq!(grouped.partitions, None, "a group assigns the partitions");
        assert!(request(|r| r.topic.clear()).is_err());
        assert!(request(|r| r.auto_commit = true).is_err(), "auto_commit without a group");
        assert!(request(|r| r.max_records = -1).is_err());
    }

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
