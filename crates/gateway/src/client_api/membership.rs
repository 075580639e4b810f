//! Managed group subscriptions: each Consume stream with a `group_id` is an ordinary member of
//! the broker-side consumer group (Kafka 4's KIP-848 protocol), so streams behind different
//! gateways, SDK consumers and CLI consumers of one group share its partitions.
//!
//! Each [`Member`] runs a heartbeat task: it sends `ConsumerGroupHeartbeat` to the group's
//! coordinator (through [`Brokers`], which finds it) every interval the coordinator asks for,
//! subscribed to the stream's topic and reporting the partitions the stream holds. The
//! coordinator answers with the member's assignment whenever it changes; it is published to the
//! stream ([`Member::current`], [`Member::changed`]), whose generation is the
//! member epoch. The coordinator only gives a member partitions that no other member still
//! holds, so the stream reads a newly assigned partition at once ([`Member::claim`]); it gives up
//! a revoked one by committing it and [`Member::release`]-ing it, which the next heartbeat (sent
//! at once) reports.
//!
//! A fenced member (`UNKNOWN_MEMBER_ID`, `FENCED_MEMBER_EPOCH`: its session lapsed) is told it
//! has no partitions, then rejoins. Dropping a [`Member`] leaves the group.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, watch};
use vltava_common::ErrorCode;
use vltava_proto::v1::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, PartitionSet, Subscription, TopicPartitions,
};

use crate::brokers::Brokers;
use crate::routing::broker_error_code;

/// Member epoch of a member leaving for good.
const LEAVE_EPOCH: i32 = -1;
/// Heartbeat interval until the coordinator names one.
const INITIAL_INTERVAL: Duration = Duration::from_secs(1);
/// Pause before retrying a heartbeat that failed.
const RETRY_BACKOFF: Duration = Duration::from_millis(250);
/// How long a stream may take to give up revoked partitions (the member's rebalance timeout).
const REBALANCE_TIMEOUT_MS: i32 = 60_000;

/// The managed subscriptions of one gateway: counts for metrics, and the call layer members
/// heartbeat through.
pub struct Membership {
    brokers: Brokers,
    rebalances: AtomicU64,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership").field("rebalances", &self.rebalances()).finish_non_exhaustive()
    }
}

/// A member's share of its group's topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberAssignment {
    /// The member epoch this share belongs to (0 before the first).
    pub generation: i64,
    /// The partitions assigned to the member, sorted.
    pub partitions: Vec<i32>,
}

impl Membership {
    /// No members yet; members heartbeat through `brokers`.
    pub fn new(brokers: Brokers) -> Self {
        Self { brokers, rebalances: AtomicU64::new(0) }
    }

    /// How many new assignments this gateway's streams have received from their coordinators.
    pub fn rebalances(&self) -> u64 {
        self.rebalances.load(Ordering::Relaxed)
    }

    /// Joins `group_id` as a new member subscribed to `topic`. The stream leaves when the
    /// returned [`Member`] is dropped.
    pub fn join(self: &Arc<Self>, group_id: &str, topic: &str) -> Member {
        let bytes: [u8; 16] = rand::random();
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let (tx, assignment) = watch::channel(MemberAssignment::default());
        let shared = Arc::new(Shared {
            state: Mutex::new(State { epoch: 0, held: BTreeSet::new(), leaving: false }),
            wake: Notify::new(),
        });
        let task = Heartbeats {
            membership: Arc::clone(self),
            group: group_id.to_string(),
            topic: topic.to_string(),
            id: id.clone(),
            shared: shared.clone(),
            tx,
        };
        tokio::spawn(task.run());
        tracing::debug!(group = group_id, topic, member = %id, "stream joined its group");
        Member { id, assignment, shared }
    }
}

#[derive(Debug)]
struct State {
    epoch: i32,
    /// The partitions the stream holds (reported by every heartbeat).
    held: BTreeSet<i32>,
    leaving: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the heartbeat task: something to report, or leave.
    wake: Notify,
}

/// One stream's membership of its group; dropping it leaves the group.
#[derive(Debug)]
pub struct Member {
    id: String,
    assignment: watch::Receiver<MemberAssignment>,
    shared: Arc<Shared>,
}

impl Member {
    /// The member id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The member id and epoch a commit carries.
    pub fn commit_as(&self) -> (String, i32) {
        (self.id.clone(), self.shared.state.lock().epoch)
    }

    /// The latest assignment, marked as seen.
    pub fn current(&mut self) -> MemberAssignment {
        self.assignment.borrow_and_update().clone()
    }

    /// Whether an assignment not yet seen with [`Member::current`] was published.
    pub fn has_changed(&self) -> bool {
        self.assignment.has_changed().unwrap_or(false)
    }

    /// Resolves when an assignment not yet seen is published. (The coordinator only assigns
    /// partitions nobody holds, so a stream never waits for another to release one.)
    pub async fn changed(&mut self) {
        if self.assignment.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Takes `partition` for reading: succeeds when it is in the current assignment.
    pub fn claim(&self, partition: i32) -> bool {
        if !self.assignment.borrow().partitions.contains(&partition) {
            return false;
        }
        let mut state = self.shared.state.lock();
        if state.held.insert(partition) {
            drop(state);
            self.shared.wake.notify_one();
        }
        true
    }

    /// Stops holding `partitions` (after committing them); the next heartbeat, sent at once,
    /// tells the coordinator, which then gives them to their new owners.
    pub fn release(&self, partitions: &[i32]) {
        if partitions.is_empty() {
            return;
        }
        let mut state = self.shared.state.lock();
        for p in partitions {
            state.held.remove(p);
        }
        drop(state);
        self.shared.wake.notify_one();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.shared.state.lock().leaving = true;
        self.shared.wake.notify_one();
    }
}

/// The heartbeat task of one member.
struct Heartbeats {
    membership: Arc<Membership>,
    group: String,
    topic: String,
    id: String,
    shared: Arc<Shared>,
    tx: watch::Sender<MemberAssignment>,
}

impl Heartbeats {
    async fn run(self) {
        let mut interval = INITIAL_INTERVAL;
        loop {
            let (epoch, held, leaving) = {
                let s = self.shared.state.lock();
                (s.epoch, s.held.clone(), s.leaving)
            };
            if leaving {
                self.leave(epoch).await;
                break;
            }
            let request = ConsumerGroupHeartbeatRequest {
                group_id: self.group.clone(),
                member_id: self.id.clone(),
                member_epoch: epoch,
                rebalance_timeout_ms: REBALANCE_TIMEOUT_MS,
                subscription: Some(Subscription { topics: vec![self.topic.clone()], pattern: String::new() }),
                owned: Some(partition_set(&self.topic, &held)),
                client_id: "vltava-gateway".to_string(),
                ..Default::default()
            };
            let mut wait = interval;
            match self.membership.brokers.consumer_group_heartbeat(request).await {
                Ok(response) => {
                    if response.heartbeat_interval_ms > 0 {
                        interval = Duration::from_millis(response.heartbeat_interval_ms as u64);
                        wait = interval;
                    }
                    self.apply(response);
                }
                Err(status) => {
                    let code = broker_error_code(&status);
                    if matches!(code, Some(ErrorCode::UnknownMemberId | ErrorCode::FencedMemberEpoch)) {
                        tracing::info!(group = %self.group, member = %self.id, error = %status, "fenced: rejoining");
                        self.shared.state.lock().epoch = 0;
                        self.publish(0, Vec::new());
                    } else {
                        tracing::debug!(group = %self.group, error = %status, "heartbeat failed; retrying");
                    }
                    wait = RETRY_BACKOFF;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.shared.wake.notified() => {}
            }
        }
    }

    fn apply(&self, response: ConsumerGroupHeartbeatResponse) {
        self.shared.state.lock().epoch = response.member_epoch;
        let Some(assignment) = response.assignment else { return };
        let partitions: Vec<i32> = assignment
            .topics
            .iter()
            .filter(|t| t.topic == self.topic)
            .flat_map(|t| t.partitions.iter().copied())
            .collect::<BTreeSet<i32>>()
            .into_iter()
            .collect();
        self.publish(i64::from(response.member_epoch), partitions);
    }

    /// Publishes a new assignment to the stream, if it differs from the current one.
    fn publish(&self, generation: i64, partitions: Vec<i32>) {
        let next = MemberAssignment { generation, partitions };
        let changed = self.tx.send_if_modified(|current| {
            if *current == next {
                return false;
            }
            *current = next.clone();
            true
        });
        if changed {
            self.membership.rebalances.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn leave(&self, epoch: i32) {
        if epoch <= 0 {
            return;
        }
        let request = ConsumerGroupHeartbeatRequest {
            group_id: self.group.clone(),
            member_id: self.id.clone(),
            member_epoch: LEAVE_EPOCH,
            ..Default::default()
        };
        match self.membership.brokers.consumer_group_heartbeat(request).await {
            Ok(_) => tracing::debug!(group = %self.group, member = %self.id, "stream left its group"),
            Err(status) => tracing::debug!(group = %self.group, error = %status, "leave failed"),
        }
    }
}

fn partition_set(topic: &str, held: &BTreeSet<i32>) -> PartitionSet {
    let topics = if held.is_empty() {
        Vec::new()
    } else {
        vec![TopicPartitions { topic: topic.to_string(), partitions: held.iter().copied().collect() }]
    };
    PartitionSet { topics }
}
