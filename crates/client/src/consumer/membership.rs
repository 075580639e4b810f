//! Group membership of a subscribed [`Consumer`](super::Consumer): Kafka 4's KIP-848 protocol,
//! driven by a background heartbeat task.
//!
//! The task sends `ConsumerGroupHeartbeat` to the group's coordinator every interval the
//! coordinator asks for, reporting the partitions the consumer owns. The coordinator answers
//! with the member's assignment whenever it changes; the task parks it as a [`Change`] for the
//! consumer, which applies it on its next `poll` (commit and revoke first, then assign) and
//! [acknowledges](Membership::acknowledge) what it owns now, which wakes the task to report it
//! at once. So revocations wait for the application, as in Kafka, and a consumer that stops
//! polling for `max.poll.interval.ms` leaves the group (its partitions go to the others) and
//! rejoins on its next `poll`.
//!
//! A member the coordinator fenced (`UNKNOWN_MEMBER_ID`, `FENCED_MEMBER_EPOCH`: its session
//! lapsed) loses its partitions without committing them, then rejoins with epoch 0 and the
//! same member id. Errors that retrying cannot fix (`FENCED_INSTANCE_ID`, a pattern that does
//! not compile, an unknown assignor) end the membership and are returned by `poll`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use vltava_proto::v1::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, ErrorCode, PartitionSet, Subscription as Wire,
    TopicPartitions,
};

use crate::cluster::Cluster;
use crate::error::ClientError;
use crate::offsets::{self, timed};
use crate::types::TopicPartition;

/// Member epoch of a member leaving for good.
const LEAVE_EPOCH: i32 = -1;
/// Member epoch of a static member leaving for a restart (it keeps its partitions).
const STATIC_LEAVE_EPOCH: i32 = -2;
/// Pause before retrying a heartbeat that failed in a retriable way.
const RETRY_BACKOFF: Duration = Duration::from_millis(250);
/// Heartbeat interval until the coordinator names one.
const INITIAL_INTERVAL: Duration = Duration::from_secs(1);

/// What a subscribed consumer asks the group for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subscription {
    /// These topics.
    Topics(Vec<String>),
    /// Every topic whose whole name matches this regular expression.
    Pattern(String),
}

/// The membership's fixed settings.
#[derive(Debug, Clone)]
pub(crate) struct MemberSettings {
    pub group: String,
    pub instance_id: Option<String>,
    pub rack: Option<String>,
    pub assignor: Option<String>,
    pub client_id: String,
    pub max_poll_interval: Duration,
}

/// What the consumer must do on its next `poll`.
#[derive(Debug)]
pub(crate) enum Change {
    /// Own exactly these partitions (sorted) from now on.
    Assign(Vec<TopicPartition>),
    /// Drop every partition without committing, then acknowledge (the member rejoins).
    Lost,
    /// The membership ended for good.
    Fatal(ClientError),
}

#[derive(Debug)]
struct State {
    member_id: String,
    epoch: i32,
    subscription: Subscription,
    /// What the consumer owns (reported by every heartbeat).
    owned: Vec<TopicPartition>,
    /// Waiting for the consumer.
    change: Option<Change>,
    /// A `Lost` was handed out and not acknowledged yet: no heartbeats meanwhile.
    lost: bool,
    last_poll: Instant,
    interval: Duration,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the heartbeat task (an acknowledgement or a new subscription to report).
    wake_task: Notify,
    /// Wakes a `poll` waiting for a change.
    changed: Arc<Notify>,
}

/// A consumer's membership of its group; dropping it stops the heartbeats (the coordinator
/// then removes the member after its session timeout, like a crash).
#[derive(Debug)]
pub(crate) struct Membership {
    settings: MemberSettings,
    cluster: Arc<Cluster>,
    shared: Arc<Shared>,
    task: AbortHandle,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Membership {
    /// Joins `settings.group` with `subscription`; the first assignment arrives as a change.
    pub(crate) fn start(cluster: Arc<Cluster>, settings: MemberSettings, subscription: Subscription) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                member_id: new_member_id(),
                epoch: 0,
                subscription,
                owned: Vec::new(),
                change: None,
                lost: false,
                last_poll: Instant::now(),
                interval: INITIAL_INTERVAL,
            }),
            wake_task: Notify::new(),
            changed: Arc::new(Notify::new()),
        });
        let task = tokio::spawn(heartbeat_loop(cluster.clone(), settings.clone(), shared.clone())).abort_handle();
        Membership { settings, cluster, shared, task }
    }

    /// Notified when a change is waiting for the consumer.
    pub(crate) fn changed(&self) -> Arc<Notify> {
        self.shared.changed.clone()
    }

    /// Replaces the subscription (reported by the next heartbeat, sent at once).
    pub(crate) fn set_subscription(&self, subscription: Subscription) {
        self.shared.state.lock().subscription = subscription;
        self.shared.wake_task.notify_one();
    }

    /// Records a `poll` (for `max.poll.interval.ms`) and takes the waiting change, if any.
    pub(crate) fn poll(&self) -> Option<Change> {
        let mut state = self.shared.state.lock();
        state.last_poll = Instant::now();
        state.change.take()
    }

    /// The consumer owns `owned` now (after applying a change); a lost member rejoins.
    pub(crate) fn acknowledge(&self, owned: Vec<TopicPartition>) {
        let mut state = self.shared.state.lock();
        if state.lost {
            state.lost = false;
            state.epoch = 0;
        }
        state.owned = owned;
        drop(state);
        self.shared.wake_task.notify_one();
    }

    /// The member id and epoch offset commits carry (`None` before the first join).
    pub(crate) fn member(&self) -> Option<(String, i32)> {
        let state = self.shared.state.lock();
        (state.epoch > 0).then(|| (state.member_id.clone(), state.epoch))
    }

    /// Asks for a heartbeat now (to refresh a stale member epoch).
    pub(crate) fn wake(&self) {
        self.shared.wake_task.notify_one();
    }

    /// Leaves the group: stops the heartbeats and tells the coordinator (a static member leaves
    /// with epoch -2 and keeps its partitions until its session times out).
    pub(crate) async fn leave(self) -> Result<(), ClientError> {
        self.task.abort();
        let (member_id, epoch) = {
            let state = self.shared.state.lock();
            (state.member_id.clone(), state.epoch)
        };
        if epoch <= 0 {
            return Ok(());
        }
        let leave_epoch = if self.settings.instance_id.is_some() { STATIC_LEAVE_EPOCH } else { LEAVE_EPOCH };
        let request = ConsumerGroupHeartbeatRequest {
            group_id: self.settings.group.clone(),
            member_id,
            member_epoch: leave_epoch,
            instance_id: self.settings.instance_id.clone(),
            ..Default::default()
        };
        match send(&self.cluster, request).await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.code(), Some(ErrorCode::UnknownMemberId | ErrorCode::FencedMemberEpoch)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// What the heartbeat task does next.
enum Next {
    /// Send this heartbeat.
    Send(ConsumerGroupHeartbeatRequest),
    /// The consumer stopped polling: leave (the consumer rejoins on its next `poll`).
    Leave(ConsumerGroupHeartbeatRequest),
    /// Nothing until the consumer acknowledges a change.
    Wait,
}

async fn heartbeat_loop(cluster: Arc<Cluster>, settings: MemberSettings, shared: Arc<Shared>) {
    loop {
        let mut retry = false;
        match next(&settings, &shared) {
            Next::Wait => {}
            Next::Leave(request) => {
                tracing::warn!(
                    group = settings.group,
                    "poll() was not called within max.poll.interval.ms: leaving the group"
                );
                if let Err(e) = send(&cluster, request).await {
                    tracing::debug!(error = %e, "leave heartbeat failed");
                }
            }
            Next::Send(request) => {
                let result = send(&cluster, request).await;
                match apply(&shared, result) {
                    Applied::Continue => {}
                    Applied::Retry => retry = true,
                    Applied::Stop => return,
                }
            }
        }
        // The interval the coordinator just named (shorter while the member converges).
        let mut wait = shared.state.lock().interval;
        if retry {
            wait = wait.min(RETRY_BACKOFF);
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.wake_task.notified() => {}
        }
    }
}

fn next(settings: &MemberSettings, shared: &Shared) -> Next {
    let mut state = shared.state.lock();
    if state.lost || matches!(state.change, Some(Change::Fatal(_))) {
        return Next::Wait;
    }
    let request = ConsumerGroupHeartbeatRequest {
        group_id: settings.group.clone(),
        member_id: state.member_id.clone(),
        member_epoch: state.epoch,
        instance_id: settings.instance_id.clone(),
        rack: settings.rack.clone(),
        rebalance_timeout_ms: i32::try_from(settings.max_poll_interval.as_millis()).unwrap_or(i32::MAX),
        subscription: Some(match &state.subscription {
            Subscription::Topics(topics) => Wire { topics: topics.clone(), pattern: String::new() },
            Subscription::Pattern(p) => Wire { topics: Vec::new(), pattern: p.clone() },
        }),
        server_assignor: settings.assignor.clone().unwrap_or_default(),
        owned: Some(to_wire(&state.owned)),
        client_id: settings.client_id.clone(),
    };
    if state.epoch > 0 && state.last_poll.elapsed() > settings.max_poll_interval {
        state.lost = true;
        state.change = Some(Change::Lost);
        shared.changed.notify_one();
        return Next::Leave(ConsumerGroupHeartbeatRequest { member_epoch: LEAVE_EPOCH, ..request });
    }
    Next::Send(request)
}

enum Applied {
    Continue,
    Retry,
    Stop,
}

/// Applies a heartbeat's answer. No heartbeat is in flight while `lost` is set (the task waits),
/// except the leave of a consumer that stopped polling, whose answer is ignored.
fn apply(shared: &Shared, result: Result<ConsumerGroupHeartbeatResponse, ClientError>) -> Applied {
    let mut state = shared.state.lock();
    if state.lost {
        // The consumer was told to drop everything meanwhile: this answer is moot.
        return Applied::Continue;
    }
    match result {
        Ok(response) => {
            state.member_id = response.member_id;
            state.epoch = response.member_epoch;
            if response.heartbeat_interval_ms > 0 {
                state.interval = Duration::from_millis(response.heartbeat_interval_ms as u64);
            }
            if let Some(assignment) = response.assignment {
                let assignment = from_wire(&assignment);
                if assignment != state.owned || matches!(state.change, Some(Change::Assign(_))) {
                    state.change = Some(Change::Assign(assignment));
                    shared.changed.notify_one();
                }
            }
            Applied::Continue
        }
        Err(e) if matches!(e.code(), Some(ErrorCode::UnknownMemberId | ErrorCode::FencedMemberEpoch)) => {
            tracing::info!(error = %e, "fenced by the group coordinator: rejoining");
            state.epoch = 0;
            if !state.owned.is_empty() || state.change.is_some() {
                state.lost = true;
                state.change = Some(Change::Lost);
                shared.changed.notify_one();
            }
            Applied::Retry
        }
        Err(e) if e.is_retriable() => {
            tracing::debug!(error = %e, "heartbeat failed; retrying");
            Applied::Retry
        }
        Err(e) => {
            tracing::warn!(error = %e, "group membership failed");
            state.change = Some(Change::Fatal(e));
            shared.changed.notify_one();
            Applied::Stop
        }
    }
}

async fn send(
    cluster: &Cluster,
    request: ConsumerGroupHeartbeatRequest,
) -> Result<ConsumerGroupHeartbeatResponse, ClientError> {
    let timeout = cluster.request_timeout();
    let group = request.group_id.clone();
    let response = offsets::on_coordinator(cluster, &group, |node| {
        let request = timed(request.clone(), timeout);
        async move { node.groups().consumer_group_heartbeat(request).await }
    })
    .await?;
    Ok(response.into_inner())
}

/// A random member id (Kafka 4 clients pick their own, so a lost join answer leaves no ghost).
fn new_member_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn to_wire(partitions: &[TopicPartition]) -> PartitionSet {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    PartitionSet {
        topics: by_topic
            .into_iter()
            .map(|(topic, partitions)| TopicPartitions { topic: topic.to_string(), partitions })
            .collect(),
    }
}

fn from_wire(set: &PartitionSet) -> Vec<TopicPartition> {
    let mut out: Vec<TopicPartition> =
        set.topics.iter().flat_map(|t| t.partitions.iter().map(|p| TopicPartition::new(t.topic.clone(), *p))).collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_sets_round_trip_sorted() {
        let parts = vec![TopicPartition::new("b", 1), TopicPartition::new("a", 2), TopicPartition::new("a", 0)];
        let wire = to_wire(&parts);
        assert_eq!(wire.topics.len(), 2);
        assert_eq!(wire.topics[0].topic, "a");
        let mut sorted = parts.clone();
        sorted.sort();
        assert_eq!(from_wire(&wire), sorted);
    }

    #[test]
    fn member_ids_are_random_hex() {
        let (a, b) = (new_member_id(), new_member_id());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
