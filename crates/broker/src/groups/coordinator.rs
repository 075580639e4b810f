//! The group coordinator: the `__consumer_offsets` shards this broker leads, and the group
//! operations routed to them (heartbeats, offset commits and fetches).
//!
//! Group G belongs to partition `abs(java_hashcode(G)) % partitions` of `__consumer_offsets`
//! (Kafka's rule); the leader of that partition is G's coordinator. [`GroupCoordinator::sync`]
//! runs after every metadata image: a partition this broker starts leading gets a new shard,
//! loaded from the log before it serves; one it stops leading is closed (its callers then get
//! `NOT_COORDINATOR` and look the coordinator up again).
//!
//! Sessions are not replicated: a new coordinator gives every member it loads a full session
//! timeout, as Kafka does. [`GroupCoordinator::expire`] removes members whose session lapsed
//! and members that took longer than their rebalance timeout to revoke partitions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use vltava_common::{ErrorCode, WireError};
use vltava_metadata::ClusterImage;

use super::consumer_group::{ConsumerGroup, GroupState, MemberState};
use super::heartbeat::{self, HeartbeatDecision, HeartbeatRequest, Record};
use super::partition_offsets;
use super::records::{GroupKey, GroupValue, OffsetValue};
use super::shard_state::{GroupOffsets, GroupShardState};
use crate::config::GroupCoordinatorConfig;
use crate::coordinator::placement;
use crate::coordinator::shard::{Shard, ShardRecord, Status};
use crate::error::BrokerError;
use crate::replica_manager::ReplicaManager;

/// How long a call waits for its group's shard to finish loading before it answers
/// `COORDINATOR_LOAD_IN_PROGRESS`.
pub const LOAD_WAIT: Duration = Duration::from_secs(5);

/// Kafka's name of the internal topic of committed offsets and group state.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

type GroupShard = Shard<GroupShardState>;
type MemberKey = (String, String);

/// One partition's outcome in an offset commit.
pub type CommitResult = Result<(), WireError>;

/// An offset to commit.
#[derive(Debug, Clone)]
pub struct OffsetToCommit {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed position and its metadata.
    pub value: OffsetValue,
}

/// The group coordinator of this broker (see the module documentation).
pub struct GroupCoordinator {
    broker_id: i32,
    config: GroupCoordinatorConfig,
    shards: RwLock<HashMap<i32, Arc<GroupShard>>>,
    /// Session deadline of every member heard from (or loaded).
    sessions: Mutex<HashMap<MemberKey, Instant>>,
    /// Since when a member has been revoking partitions.
    revoking: Mutex<HashMap<MemberKey, Instant>>,
    /// Since when each group has been rebalancing (its epoch bumped, not yet stable).
    rebalancing: Mutex<HashMap<String, Instant>>,
    /// Log end offsets of committed partitions this broker does not host, for the lag gauge
    /// (refreshed by [`GroupCoordinator::refresh_log_ends`]).
    remote_log_ends: Mutex<HashMap<(String, i32), i64>>,
}

impl GroupCoordinator {
    /// A coordinator with no shard yet; call [`GroupCoordinator::sync`] after every image.
    pub fn new(broker_id: i32, config: GroupCoordinatorConfig) -> Arc<Self> {
        Arc::new(Self {
            broker_id,
            config,
            shards: RwLock::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            revoking: Mutex::new(HashMap::new()),
            rebalancing: Mutex::new(HashMap::new()),
            remote_log_ends: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GroupCoordinatorConfig {
        &self.config
    }

    /// Opens a shard for every `__consumer_offsets` partition this broker now leads (loading it
    /// in the background) and closes the shards of partitions it no longer leads.
    pub fn sync(self: &Arc<Self>, replicas: &ReplicaManager) {
        let mut led = HashMap::new();
        for part in replicas.all().into_iter().filter(|p| p.topic() == OFFSETS_TOPIC) {
            let state = part.leader_state();
            if state.leader == self.broker_id {
                led.insert(part.index(), (part, state.leader_epoch));
            }
        }
        let mut shards = self.shards.write();
        shards.retain(|p, shard| {
            let keep = led.get(p).is_some_and(|(_, epoch)| *epoch == shard.leader_epoch());
            if !keep {
                shard.close();
                tracing::info!(partition = p, "no longer coordinating this __consumer_offsets partition");
            }
            keep
        });
        for (p, (part, epoch)) in led {
            if shards.contains_key(&p) {
                continue;
            }
            let shard = GroupShard::new(part, epoch, self.config.write_timeout);
            shards.insert(p, shard.clone());
            tokio::spawn(async move {
                if let Err(e) = shard.load().await {
                    tracing::warn!(partition = p, error = %e, "loading a __consumer_offsets partition failed");
                    shard.close();
                }
            });
        }
    }

    /// Waits until every shard opened so far has loaded (or closed), up to `timeout`; returns
    /// whether all of them are active.
    pub async fn wait_loaded(&self, timeout: Duration) -> bool {
        let shards: Vec<Arc<GroupShard>> = self.shards.read().values().cloned().collect();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut all = true;
        for shard in shards {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            all &= shard.wait_loaded(left).await == Status::Active;
        }
        all
    }

    /// Closes every shard (shutdown).
    pub fn close_all(&self) {
        for (_, shard) in self.shards.write().drain() {
            shard.close();
        }
    }

    /// The `__consumer_offsets` partition of `group`.
    ///
    /// # Errors
    ///
    /// `COORDINATOR_NOT_AVAILABLE` while the topic does not exist.
    pub fn partition_for(image: &ClusterImage, group: &str) -> Result<i32, BrokerError> {
        match image.topic(OFFSETS_TOPIC) {
            Some(t) if !t.partitions.is_empty() => Ok(placement::partition_for(group, t.partitions.len() as i32)),
            _ => Err(BrokerError::Refused(WireError::new(
                ErrorCode::CoordinatorNotAvailable,
                format!("{OFFSETS_TOPIC} does not exist yet: find the coordinator first"),
            ))),
        }
    }

    /// The shard of `group`'s partition; a shard still loading is waited for (up to
    /// [`LOAD_WAIT`]), so that clients rarely see `COORDINATOR_LOAD_IN_PROGRESS`.
    async fn shard(&self, image: &ClusterImage, group: &str) -> Result<Arc<GroupShard>, BrokerError> {
        let partition = Self::partition_for(image, group)?;
        let shard = self
            .shards
            .read()
            .get(&partition)
            .cloned()
            .ok_or_else(|| BrokerError::NotCoordinator { topic: OFFSETS_TOPIC.into(), partition })?;
        if shard.status() == Status::Loading {
            shard.wait_loaded(LOAD_WAIT).await;
        }
        Ok(shard)
    }

    /// Handles a `ConsumerGroupHeartbeat` (see `heartbeat`).
    ///
    /// # Errors
    ///
    /// The group's refusal, or a coordinator or write failure.
    pub async fn heartbeat(
        &self,
        image: &ClusterImage,
        group: &str,
        req: HeartbeatRequest,
    ) -> Result<HeartbeatDecision, BrokerError> {
        let shard = self.shard(image, group).await?;
        let topics: BTreeMap<String, i32> =
            image.topics.values().map(|t| (t.name.clone(), t.partitions.len() as i32)).collect();
        let decision = shard
            .write(|state| {
                let d = heartbeat::heartbeat(&state.group(group), &req, &topics, || uuid::Uuid::new_v4().to_string())?;
                Ok::<_, BrokerError>((encode(&d.records), d))
            })
            .await?;
        self.observe_rebalance(&shard, group, &decision.records);
        let key = (group.to_string(), decision.member_id.clone());
        if decision.member_epoch >= 0 {
            self.sessions.lock().insert(key, Instant::now() + self.config.session_timeout);
        } else {
            self.sessions.lock().remove(&key);
            self.revoking.lock().remove(&key);
        }
        Ok(decision)
    }

    /// Counts a rebalance when `records` bump the group's epoch, and records how long the last
    /// one took once the group is stable again.
    fn observe_rebalance(&self, shard: &GroupShard, group: &str, records: &[Record]) {
        let metrics = crate::metrics::get();
        let labels = [opentelemetry::KeyValue::new("group", group.to_string())];
        if records.iter().any(|(k, v)| matches!(k, GroupKey::Group { .. }) && v.is_some()) {
            metrics.group_rebalances.add(1, &labels);
            self.rebalancing.lock().entry(group.to_string()).or_insert_with(Instant::now);
        }
        let stable = shard.try_read(|s| s.groups.get(group).is_none_or(|g| g.state() == GroupState::Stable));
        if stable == Some(true)
            && let Some(since) = self.rebalancing.lock().remove(group)
        {
            metrics.group_rebalance_duration.record(since.elapsed().as_secs_f64(), &labels);
        }
    }

    /// Members of every group of the active shards whose state is not being written right now
    /// (for gauges): `(group, members)`.
    pub fn members_snapshot(&self) -> Vec<(String, usize)> {
        let shards: Vec<Arc<GroupShard>> = self.shards.read().values().cloned().collect();
        shards
            .iter()
            .filter_map(|shard| {
                shard.try_read(|state| {
                    state.groups.values().map(|g| (g.id.clone(), g.members.len())).collect::<Vec<_>>()
                })
            })
            .flatten()
            .collect()
    }

    /// Commits offsets for `member` at `member_epoch` (an empty member id and epoch -1 for a
    /// consumer outside the group's membership). Returns one result per offset, in order; only
    /// the accepted ones are written.
    ///
    /// # Errors
    ///
    /// A coordinator or write failure (then nothing was committed).
    pub async fn commit(
        &self,
        image: &ClusterImage,
        group: &str,
        member: &str,
        member_epoch: i32,
        offsets: Vec<OffsetToCommit>,
    ) -> Result<Vec<CommitResult>, BrokerError> {
        let shard = self.shard(image, group).await?;
        shard
            .write(|state| {
                let g = state.group(group);
                let mut records = Vec::new();
                let results: Vec<CommitResult> = offsets
                    .into_iter()
                    .map(|o| {
                        if image.partition(&o.topic, o.partition).is_none() {
                            return Err(WireError::from(BrokerError::UnknownTopicOrPartition {
                                topic: o.topic,
                                partition: o.partition,
                            }));
                        }
                        if o.value.offset < 0 {
                            return Err(WireError::new(
                                ErrorCode::InvalidRequest,
                                format!("offset {} is negative", o.value.offset),
                            ));
                        }
                        heartbeat::validate_commit(&g, member, member_epoch, &o.topic, o.partition)?;
                        let key = GroupKey::Offset { group: group.to_string(), topic: o.topic, partition: o.partition };
                        records.push((key, Some(GroupValue::Offset(o.value))));
                        Ok(())
                    })
                    .collect();
                Ok::<_, BrokerError>((encode(&records), results))
            })
            .await
    }

    /// The committed offsets of `group`: of `partitions`, or every one when `None` (`None`
    /// values where nothing was committed).
    ///
    /// # Errors
    ///
    /// A coordinator failure.
    pub async fn fetch_offsets(
        &self,
        image: &ClusterImage,
        group: &str,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<(String, i32, Option<OffsetValue>)>, BrokerError> {
        let shard = self.shard(image, group).await?;
        shard
            .read(|state| {
                let committed = state.offsets.get(group);
                match partitions {
                    None => {
                        committed.into_iter().flatten().map(|((t, p), v)| (t.clone(), *p, Some(v.clone()))).collect()
                    }
                    Some(wanted) => wanted
                        .into_iter()
                        .map(|(t, p)| {
                            let v = committed.and_then(|c| c.get(&(t.clone(), p))).cloned();
                            (t, p, v)
                        })
                        .collect(),
                }
            })
            .await
    }

    /// Deletes `group` (its committed offsets and state) if it has no members.
    ///
    /// # Errors
    ///
    /// `NON_EMPTY_GROUP` while it has members, `GROUP_ID_NOT_FOUND` when it has neither state
    /// nor offsets; a coordinator or write failure.
    pub async fn delete_group(&self, image: &ClusterImage, group: &str) -> Result<(), BrokerError> {
        let shard = self.shard(image, group).await?;
        shard
            .write(|state| {
                let g = state.groups.get(group);
                if g.is_some_and(|g| !g.members.is_empty()) {
                    return Err(BrokerError::Refused(WireError::new(
                        ErrorCode::NonEmptyGroup,
                        format!("group {group} has members: they must leave (or time out) first"),
                    )));
                }
                let offsets = state.offsets.get(group);
                if g.is_none() && offsets.is_none() {
                    return Err(BrokerError::Refused(WireError::new(
                        ErrorCode::GroupIdNotFound,
                        format!("group {group} does not exist"),
                    )));
                }
                let mut records: Vec<Record> = offsets
                    .into_iter()
                    .flatten()
                    .map(|((topic, partition), _)| {
                        let key =
                            GroupKey::Offset { group: group.to_string(), topic: topic.clone(), partition: *partition };
                        (key, None)
                    })
                    .collect();
                if g.is_some() {
                    records.push((GroupKey::TargetEpoch { group: group.to_string() }, None));
                    records.push((GroupKey::Group { group: group.to_string() }, None));
                }
                Ok((encode(&records), ()))
            })
            .await
    }

    /// A copy of `group`'s state and committed offsets (`None` when it has neither).
    ///
    /// # Errors
    ///
    /// A coordinator failure.
    pub async fn describe(
        &self,
        image: &ClusterImage,
        group: &str,
    ) -> Result<Option<(ConsumerGroup, GroupOffsets)>, BrokerError> {
        let shard = self.shard(image, group).await?;
        shard
            .read(|state| {
                let g = state.groups.get(group).cloned();
                let offsets = state.offsets.get(group).cloned();
                if g.is_none() && offsets.is_none() {
                    return None;
                }
                Some((g.unwrap_or_else(|| ConsumerGroup::new(group)), offsets.unwrap_or_default()))
            })
            .await
    }

    /// The groups of every active shard that have members or committed offsets, sorted.
    pub async fn list_groups(&self) -> Vec<String> {
        let shards: Vec<Arc<GroupShard>> = self.shards.read().values().cloned().collect();
        let mut groups = Vec::new();
        for shard in shards {
            let listed = shard
                .read(|state| {
                    let with_members = state.groups.values().filter(|g| !g.members.is_empty()).map(|g| g.id.clone());
                    with_members.chain(state.offsets.keys().cloned()).collect::<Vec<_>>()
                })
                .await;
            groups.extend(listed.unwrap_or_default());
        }
        groups.sort();
        groups.dedup();
        groups
    }

    /// Deletes (with tombstones) the committed offsets of topics that no longer exist in
    /// `image`, in every active shard. Returns how many offsets were deleted.
    pub async fn forget_deleted_topics(&self, image: &ClusterImage) -> usize {
        let shards: Vec<Arc<GroupShard>> =
            self.shards.read().values().filter(|s| s.status() == Status::Active).cloned().collect();
        let mut deleted = 0;
        for shard in shards {
            let write = shard
                .write(|state| {
                    let records: Vec<Record> = state
                        .offsets
                        .iter()
                        .flat_map(|(group, offsets)| {
                            offsets.keys().filter(|(topic, _)| image.topic(topic).is_none()).map(
                                |(topic, partition)| {
                                    let key = GroupKey::Offset {
                                        group: group.clone(),
                                        topic: topic.clone(),
                                        partition: *partition,
                                    };
                                    (key, None)
                                },
                            )
                        })
                        .collect();
                    Ok::<_, BrokerError>((encode(&records), records.len()))
                })
                .await;
            match write {
                Ok(n) => deleted += n,
                Err(e) => {
                    tracing::warn!(partition = shard.partition(), error = %e, "deleting offsets of deleted topics failed")
                }
            }
        }
        deleted
    }

    /// Every committed offset of the active shards whose state is not being written right now
    /// (for gauges, which cannot wait): `(group, topic, partition, offset)`.
    pub fn committed_snapshot(&self) -> Vec<(String, String, i32, i64)> {
        let shards: Vec<Arc<GroupShard>> = self.shards.read().values().cloned().collect();
        shards
            .iter()
            .filter_map(|shard| {
                shard.try_read(|state| {
                    state
                        .offsets
                        .iter()
                        .flat_map(|(g, offsets)| {
                            offsets.iter().map(move |((t, p), v)| (g.clone(), t.clone(), *p, v.offset))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .flatten()
            .collect()
    }

    /// Asks the leaders for the log end offsets of the committed partitions this broker does not
    /// host, so that the lag gauge covers every partition of the groups it coordinates.
    pub async fn refresh_log_ends(&self, replicas: &ReplicaManager) {
        let keys: std::collections::BTreeSet<(String, i32)> = self
            .committed_snapshot()
            .into_iter()
            .filter(|(_, topic, partition, _)| replicas.partition(topic, *partition).is_err())
            .map(|(_, topic, partition, _)| (topic, partition))
            .collect();
        let ends = if keys.is_empty() {
            HashMap::new()
        } else {
            partition_offsets::offsets_at(self.broker_id, replicas, &replicas.image(), &keys, partition_offsets::LATEST)
                .await
        };
        *self.remote_log_ends.lock() = ends;
    }

    /// The last known log end offset of a committed partition this broker does not host.
    pub fn remote_log_end(&self, topic: &str, partition: i32) -> Option<i64> {
        self.remote_log_ends.lock().get(&(topic.to_string(), partition)).copied()
    }

    /// Removes members whose session lapsed or whose revocation outlasted their rebalance
    /// timeout; gives members loaded by a new shard a fresh session. Returns how many members
    /// were removed. Run it periodically.
    pub async fn expire(&self) -> usize {
        let now = Instant::now();
        let shards: Vec<Arc<GroupShard>> =
            self.shards.read().values().filter(|s| s.status() == Status::Active).cloned().collect();
        let mut removed = 0;
        for shard in shards {
            let Ok(expired) = shard.read(|state| self.expired_members(state, now)).await else { continue };
            for (group, member, why) in expired {
                let write = shard
                    .write(|state| {
                        let records = heartbeat::remove_member(&state.group(&group), &member);
                        Ok::<_, BrokerError>((encode(&records), records.len()))
                    })
                    .await;
                let key = (group.clone(), member.clone());
                match write {
                    Ok(n) if n > 0 => {
                        removed += 1;
                        crate::metrics::get()
                            .group_rebalances
                            .add(1, &[opentelemetry::KeyValue::new("group", group.clone())]);
                        self.rebalancing.lock().entry(group.clone()).or_insert_with(Instant::now);
                        tracing::info!(group, member, why, "member removed from its group");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(group, member, error = %e, "removing an expired member failed");
                        continue;
                    }
                }
                self.sessions.lock().remove(&key);
                self.revoking.lock().remove(&key);
            }
        }
        removed
    }

    fn expired_members(&self, state: &GroupShardState, now: Instant) -> Vec<(String, String, &'static str)> {
        let mut sessions = self.sessions.lock();
        let mut revoking = self.revoking.lock();
        let mut expired = Vec::new();
        for group in state.groups.values() {
            for m in group.members.values() {
                let key = (group.id.clone(), m.id.clone());
                let deadline = *sessions.entry(key.clone()).or_insert(now + self.config.session_timeout);
                if deadline <= now {
                    expired.push((key.0, key.1, "session timeout"));
                    continue;
                }
                if m.state == MemberState::UnrevokedPartitions {
                    let since = *revoking.entry(key.clone()).or_insert(now);
                    let limit = Duration::from_millis(m.meta.rebalance_timeout_ms.max(1) as u64);
                    if now.duration_since(since) > limit {
                        expired.push((key.0, key.1, "rebalance timeout"));
                    }
                } else {
                    revoking.remove(&key);
                }
            }
        }
        expired
    }
}

fn encode(records: &[Record]) -> Vec<ShardRecord> {
    records.iter().map(|(k, v)| ShardRecord { key: k.encode(), value: v.as_ref().map(GroupValue::encode) }).collect()
}
