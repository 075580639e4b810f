//! One controller's Raft node: a raft-rs `RawNode` driven by a single task.
//!
//! The task ticks, steps incoming messages, takes requests (proposals, configuration changes,
//! read-index reads) and handles every `Ready` in raft-rs's documented order: send messages,
//! install a snapshot, apply committed entries, persist new entries and the hard state, send the
//! messages that wait for persistence, advance, then the same for the light ready. Committed
//! commands go through the [`MetadataState`] and are persisted with their applied index; the new
//! image is published on a watch channel and each change is kept in a [`DeltaLog`] for watchers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protobuf::Message as _;
use raft::prelude::{ConfChange, ConfChangeType, Entry, EntryType, Message, Snapshot};
use raft::{RawNode, StateRole};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use crate::deltas::DeltaLog;
use crate::raft_store::RaftStore;
use crate::transport::{Feedback, Transport};
use vltava_metadata::command::{Command, Envelope};
use vltava_metadata::error::MetadataError;
use vltava_metadata::model::ClusterImage;
use vltava_metadata::state::{MetadataState, Outcome};

/// Settings of the Raft node.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// This controller's node id (non-zero).
    pub id: u64,
    /// Time between two Raft ticks.
    pub tick: Duration,
    /// Ticks without a leader before a follower campaigns.
    pub election_ticks: usize,
    /// Ticks between leader heartbeats.
    pub heartbeat_ticks: usize,
    /// Compact the log once it holds this many applied entries.
    pub snapshot_entries: u64,
    /// How long a proposal or read may wait for the quorum.
    pub request_timeout: Duration,
}

/// A snapshot of the node's Raft status, published after every change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuorumStatus {
    /// This node's id.
    pub id: u64,
    /// Leader id, 0 when unknown.
    pub leader_id: u64,
    /// Current term.
    pub term: u64,
    /// Commit index.
    pub commit: u64,
    /// Applied index.
    pub applied: u64,
    /// Whether this node leads.
    pub is_leader: bool,
    /// Voters.
    pub voters: Vec<u64>,
    /// Learners.
    pub learners: Vec<u64>,
    /// Replication progress (matched index) per node, known on the leader only.
    pub matched: HashMap<u64, u64>,
    /// Controller addresses.
    pub controllers: std::collections::BTreeMap<u64, String>,
}

/// What the node is asked to do.
pub(crate) enum Request {
    Propose { command: Command, reply: oneshot::Sender<Result<Outcome, MetadataError>> },
    ConfChange { change: ConfChange, address: Option<String>, reply: oneshot::Sender<Result<Outcome, MetadataError>> },
    ReadIndex { reply: oneshot::Sender<Result<(), MetadataError>> },
}

/// Context of a proposed configuration change (in the entry's context).
#[derive(Debug, Serialize, Deserialize)]
struct ConfContext {
    origin: u64,
    request_id: u64,
    address: Option<String>,
}

/// A handle on a running node.
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) requests: mpsc::Sender<Request>,
    /// Incoming Raft messages from peers.
    pub raft_inbox: mpsc::Sender<Vec<Message>>,
    /// The latest image.
    pub image: watch::Receiver<Arc<ClusterImage>>,
    /// The latest status.
    pub status: watch::Receiver<QuorumStatus>,
    /// Recent deltas, for watchers.
    pub deltas: Arc<DeltaLog>,
    /// Request timeout.
    pub timeout: Duration,
}

impl NodeHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, MetadataError>>) -> Request,
    ) -> Result<T, MetadataError> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(make(tx)).await.map_err(|_| MetadataError::Raft("controller is stopping".into()))?;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(MetadataError::Raft("controller is stopping".into())),
            Err(_) => Err(MetadataError::Timeout(format!("no commit within {:?}", self.timeout))),
        }
    }

    /// Proposes a command and waits until it is committed and applied here.
    pub async fn propose(&self, command: Command) -> Result<Outcome, MetadataError> {
        self.ask(|reply| Request::Propose { command, reply }).await
    }

    /// Proposes a configuration change (adding a voter needs its address).
    pub async fn change_conf(&self, change: ConfChange, address: Option<String>) -> Result<Outcome, MetadataError> {
        self.ask(|reply| Request::ConfChange { change, address, reply }).await
    }

    /// Waits until this node has applied everything committed when the call was made (read index).
    pub async fn read_barrier(&self) -> Result<(), MetadataError> {
        self.ask(|reply| Request::ReadIndex { reply }).await
    }
}

type ReadReply = oneshot::Sender<Result<(), MetadataError>>;

type Pending = HashMap<u64, (oneshot::Sender<Result<Outcome, MetadataError>>, Instant)>;

struct Node {
    raw: RawNode<RaftStore>,
    store: RaftStore,
    settings: NodeSettings,
    transport: Transport,
    image_tx: watch::Sender<Arc<ClusterImage>>,
    status_tx: watch::Sender<QuorumStatus>,
    deltas: Arc<DeltaLog>,
    next_request: u64,
    pending: Pending,
    reads: HashMap<Vec<u8>, (ReadReply, Instant)>,
    /// Reads whose index is known, waiting for it to be applied.
    ready_reads: Vec<(u64, ReadReply)>,
}

/// Starts the node's task. `store` must be initialized (or joining: empty, waiting for the leader).
pub fn start(
    settings: NodeSettings,
    store: RaftStore,
    transport: Transport,
    feedback: mpsc::Receiver<Feedback>,
    logger: slog::Logger,
    stop: watch::Receiver<bool>,
) -> Result<(NodeHandle, tokio::task::JoinHandle<()>), MetadataError> {
    let applied_index = store.applied().read().index;
    let config = raft::Config {
        id: settings.id,
        election_tick: settings.election_ticks,
        heartbeat_tick: settings.heartbeat_ticks,
        applied: applied_index,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        check_quorum: true,
        pre_vote: true,
        read_only_option: raft::ReadOnlyOption::Safe,
        ..raft::Config::default()
    };
    config.validate().map_err(crate::raft_error)?;
    let mut raw = RawNode::new(&config, store.clone(), &logger).map_err(crate::raft_error)?;
    let sole_voter = {
        let cs = store.conf_state();
        cs.voters == vec![settings.id] && cs.learners.is_empty()
    };
    if sole_voter {
        // A one-voter quorum needs no election timeout: lead at once (`vltava dev`).
        raw.campaign().map_err(crate::raft_error)?;
    }
    let image = Arc::new(store.applied().read().state.image.clone());
    let (image_tx, image_rx) = watch::channel(image.clone());
    let (status_tx, status_rx) = watch::channel(QuorumStatus::default());
    let deltas = Arc::new(DeltaLog::new());
    let (req_tx, req_rx) = mpsc::channel(1024);
    let (raft_tx, raft_rx) = mpsc::channel(4096);
    transport.set_peers(&store.applied().read().state.controllers, settings.id);
    let node = Node {
        raw,
        store,
        transport,
        image_tx,
        status_tx,
        deltas: deltas.clone(),
        next_request: 1,
        pending: HashMap::new(),
        reads: HashMap::new(),
        ready_reads: Vec::new(),
        settings: settings.clone(),
    };
    let task = tokio::spawn(node.run(req_rx, raft_rx, feedback, stop));
    let handle = NodeHandle {
        requests: req_tx,
        raft_inbox: raft_tx,
        image: image_rx,
        status: status_rx,
        deltas,
        timeout: settings.request_timeout,
    };
    Ok((handle, task))
}

impl Node {
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request>,
        mut inbox: mpsc::Receiver<Vec<Message>>,
        mut feedback: mpsc::Receiver<Feedback>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut ticker = tokio::time::interval(self.settings.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = ticker.tick() => {
                    self.raw.tick();
                    self.expire_requests();
                }
                msgs = inbox.recv() => match msgs {
                    Some(msgs) => for m in msgs {
                        if let Err(e) = self.raw.step(m) {
                            tracing::debug!(error = %e, "raft message ignored");
                        }
                    },
                    None => break,
                },
                req = requests.recv() => match req {
                    Some(r) => self.handle_request(r),
                    None => break,
                },
                Some(f) = feedback.recv() => match f {
                    Feedback::Unreachable(id) => self.raw.report_unreachable(id),
                    Feedback::SnapshotSent(id, ok) => {
                        let status = if ok { raft::SnapshotStatus::Finish } else { raft::SnapshotStatus::Failure };
                        self.raw.report_snapshot(id, status);
                    }
                },
            }
            if let Err(e) = self.on_ready() {
                // A storage failure leaves Raft's state unknown: stop rather than risk divergence.
                tracing::error!(error = %e, "controller storage failed; the Raft node stops");
                break;
            }
            self.publish_status();
        }
        for (_, (reply, _)) in self.pending.drain() {
            let _ = reply.send(Err(MetadataError::Raft("controller stopped".into())));
        }
    }

    fn not_leader(&self) -> MetadataError {
        let leader = self.raw.raft.leader_id;
        let address = self.store.applied().read().state.controllers.get(&leader).cloned();
        MetadataError::NotController { leader: address.map(|a| (leader, a)) }
    }

    fn handle_request(&mut self, request: Request) {
        let deadline = Instant::now() + self.settings.request_timeout;
        match request {
            Request::Propose { command, reply } => {
                if self.raw.raft.state != StateRole::Leader {
                    let _ = reply.send(Err(self.not_leader()));
                    return;
                }
                let request_id = self.next_request;
                self.next_request += 1;
                let data = Envelope { origin: self.settings.id, request_id, command }.encode();
                match self.raw.propose(vec![], data) {
                    Ok(()) => {
                        self.pending.insert(request_id, (reply, deadline));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(MetadataError::NotController { leader: None }.or_raft(e)));
                    }
                }
            }
            Request::ConfChange { change, address, reply } => {
                if self.raw.raft.state != StateRole::Leader {
                    let _ = reply.send(Err(self.not_leader()));
                    return;
                }
                if self.raw.raft.has_pending_conf() {
                    let why = "another configuration change is still in progress; retry when it has committed";
                    let _ = reply.send(Err(MetadataError::InvalidVoterChange(why.into())));
                    return;
                }
                let request_id = self.next_request;
                self.next_request += 1;
                let context = serde_json::to_vec(&ConfContext { origin: self.settings.id, request_id, address })
                    .expect("context serializes");
                match self.raw.propose_conf_change(context, change) {
                    Ok(()) => {
                        self.pending.insert(request_id, (reply, deadline));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(MetadataError::InvalidVoterChange(e.to_string())));
                    }
                }
            }
            Request::ReadIndex { reply } => {
                let ctx = self.next_request.to_be_bytes().to_vec();
                self.next_request += 1;
                self.raw.read_index(ctx.clone());
                self.reads.insert(ctx, (reply, deadline));
            }
        }
    }

    fn expire_requests(&mut self) {
        let now = Instant::now();
        let expired: Vec<u64> = self.pending.iter().filter(|(_, (_, d))| *d <= now).map(|(k, _)| *k).collect();
        for k in expired {
            if let Some((reply, _)) = self.pending.remove(&k) {
                let _ = reply.send(Err(MetadataError::Timeout("the quorum did not commit the change".into())));
            }
        }
        let expired: Vec<Vec<u8>> = self.reads.iter().filter(|(_, (_, d))| *d <= now).map(|(k, _)| k.clone()).collect();
        for k in expired {
            if let Some((reply, _)) = self.reads.remove(&k) {
                let _ = reply.send(Err(MetadataError::Timeout("no quorum confirmed the read".into())));
            }
        }
    }

    fn on_ready(&mut self) -> Result<(), MetadataError> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        if !ready.messages().is_empty() {
            self.transport.send(ready.take_messages());
        }
        if !ready.snapshot().is_empty() {
            self.install_snapshot(ready.snapshot().clone())?;
        }
        for rs in ready.take_read_states() {
            if let Some((reply, _)) = self.reads.remove(&rs.request_ctx) {
                self.ready_reads.push((rs.index, reply));
            }
        }
        self.apply_entries(ready.take_committed_entries())?;
        self.store.append(ready.entries(), ready.hs())?;
        if !ready.persisted_messages().is_empty() {
            self.transport.send(ready.take_persisted_messages());
        }
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.store.set_commit(commit)?;
        }
        self.transport.send(light.take_messages());
        self.apply_entries(light.take_committed_entries())?;
        self.raw.advance_apply();
        self.maybe_compact()?;
        Ok(())
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), MetadataError> {
        let state = MetadataState::decode(&snapshot.data)?;
        let index = snapshot.get_metadata().index;
        tracing::info!(index, version = state.image.version, "installing a snapshot from the leader");
        self.store.apply_snapshot(&snapshot, state.clone())?;
        self.transport.set_peers(&state.controllers, self.settings.id);
        self.deltas.reset();
        self.image_tx.send_replace(Arc::new(state.image));
        Ok(())
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) -> Result<(), MetadataError> {
        if entries.is_empty() {
            return Ok(());
        }
        let applied_arc = self.store.applied().clone();
        let mut replies = Vec::new();
        let mut published = Vec::new();
        let mut controllers = Vec::new();
        let mut last = 0;
        let leading = self.raw.raft.state == StateRole::Leader;
        for entry in entries {
            last = entry.index;
            match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => {}
                EntryType::EntryNormal => {
                    let envelope = match Envelope::decode(&entry.data) {
                        Ok(e) => e,
                        Err(e) => {
                            tracing::error!(index = entry.index, error = %e, "undecodable command skipped");
                            continue;
                        }
                    };
                    let mut applied = applied_arc.write();
                    let prev = applied.state.image.version;
                    let before = (leading && crate::metrics::may_elect(&envelope.command))
                        .then(|| applied.state.image.topics.clone());
                    let result = applied.state.apply(entry.index, &envelope.command);
                    let result = match result {
                        Ok((outcome, delta)) => {
                            if let Some(before) = &before {
                                crate::metrics::count_leader_elections(before, &delta);
                            }
                            published.push((prev, delta));
                            Ok(outcome)
                        }
                        Err(e) => {
                            tracing::debug!(index = entry.index, command = envelope.command.kind(), error = %e, "command rejected");
                            Err(e)
                        }
                    };
                    if envelope.origin == self.settings.id {
                        replies.push((envelope.request_id, result));
                    }
                }
                EntryType::EntryConfChange => {
                    let mut cc = ConfChange::default();
                    cc.merge_from_bytes(&entry.data).map_err(|e| MetadataError::Store(e.to_string()))?;
                    let cs = self.raw.apply_conf_change(&cc).map_err(crate::raft_error)?;
                    self.store.set_conf_state(cs.clone())?;
                    let context: Option<ConfContext> = serde_json::from_slice(&entry.context).ok();
                    let mut applied = applied_arc.write();
                    applied.conf_state = cs;
                    match cc.get_change_type() {
                        ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                            if let Some(address) = context.as_ref().and_then(|c| c.address.clone()) {
                                controllers.push((cc.node_id, Some(address.clone())));
                                applied.state.controllers.insert(cc.node_id, address);
                            }
                        }
                        ConfChangeType::RemoveNode => {
                            controllers.push((cc.node_id, None));
                            applied.state.controllers.remove(&cc.node_id);
                        }
                    }
                    self.transport.set_peers(&applied.state.controllers, self.settings.id);
                    tracing::info!(node = cc.node_id, change = ?cc.get_change_type(), "quorum configuration changed");
                    if let Some(c) = context
                        && c.origin == self.settings.id
                    {
                        replies.push((c.request_id, Ok(Outcome::Done)));
                    }
                }
                EntryType::EntryConfChangeV2 => {
                    tracing::warn!(index = entry.index, "joint configuration changes are not used; entry skipped");
                }
            }
        }
        self.store.persist_applied(published.iter().map(|(_, delta)| delta), &controllers, last)?;
        let image = {
            let mut applied = applied_arc.write();
            applied.index = last;
            Arc::new(applied.state.image.clone())
        };
        if !published.is_empty() {
            for (prev, delta) in published {
                self.deltas.push(prev, delta);
            }
            self.image_tx.send_replace(image);
        }
        for (id, result) in replies {
            if let Some((reply, _)) = self.pending.remove(&id) {
                let _ = reply.send(result);
            }
        }
        let still_waiting = std::mem::take(&mut self.ready_reads);
        for (index, reply) in still_waiting {
            if index <= last {
                let _ = reply.send(Ok(()));
            } else {
                self.ready_reads.push((index, reply));
            }
        }
        Ok(())
    }

    fn maybe_compact(&mut self) -> Result<(), MetadataError> {
        let threshold = self.settings.snapshot_entries.max(2);
        if (self.store.log_len() as u64) < threshold {
            return Ok(());
        }
        let applied = self.store.applied().read().index;
        // Keep the newest half so followers a little behind still catch up from the log.
        let to = applied.saturating_sub(threshold / 2);
        if to > 0 {
            self.store.compact(to)?;
            tracing::debug!(compacted_to = to, applied, "raft log compacted");
        }
        Ok(())
    }

    fn publish_status(&mut self) {
        // Answer reads whose index is already applied (e.g. a read on an idle leader).
        let applied_index = self.store.applied().read().index;
        let waiting = std::mem::take(&mut self.ready_reads);
        for (index, reply) in waiting {
            if index <= applied_index {
                let _ = reply.send(Ok(()));
            } else {
                self.ready_reads.push((index, reply));
            }
        }
        let raft = &self.raw.raft;
        let is_leader = raft.state == StateRole::Leader;
        let cs = self.store.conf_state();
        let matched =
            if is_leader { raft.prs().iter().map(|(id, p)| (*id, p.matched)).collect() } else { HashMap::new() };
        let status = QuorumStatus {
            id: self.settings.id,
            leader_id: raft.leader_id,
            term: raft.term,
            commit: raft.raft_log.committed,
            applied: applied_index,
            is_leader,
            voters: cs.voters.clone(),
            learners: cs.learners.clone(),
            matched,
            controllers: self.store.applied().read().state.controllers.clone(),
        };
        self.status_tx.send_if_modified(|old| {
            if *old == status {
                false
            } else {
                *old = status;
                true
            }
        });
    }
}

trait OrRaft {
    fn or_raft(self, e: raft::Error) -> MetadataError;
}

impl OrRaft for MetadataError {
    /// A dropped proposal (leadership moving) reads as NOT_CONTROLLER; anything else as a Raft error.
    fn or_raft(self, e: raft::Error) -> MetadataError {
        match e {
            raft::Error::ProposalDropped => self,
            other => MetadataError::Raft(other.to_string()),
        }
    }
}
