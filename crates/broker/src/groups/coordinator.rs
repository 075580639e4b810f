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

use parking_lot::Mutex;
use vltava_common::{ErrorCode, WireError};
use vltava_metadata::ClusterImage;

use super::classic_groups::ClassicGroups;
use super::consumer_group::{ConsumerGroup, GroupState, MemberState};
use super::heartbeat::{self, HeartbeatDecision, HeartbeatRequest, Record};
use super::partition_offsets;
use super::records::{GroupKey, GroupValue, OffsetValue};
use super::shard_state::{GroupOffsets, GroupShardState};
use crate::config::GroupCoordinatorConfig;
use crate::coordinator::shard::{Shard, ShardRecord, TxnProducer};
use crate::coordinator::shards::Shards;
use crate::error::BrokerError;
use crate::replica_manager::ReplicaManager;

/// The most metadata an offset commit may carry (Kafka's `offset.metadata.max.bytes`): commits
/// live in the coordinator's memory and in `__consumer_offsets`.
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;

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

impl OffsetToCommit {
    /// The offset `offset` (the next to read) of `topic`-`partition` with `metadata`, committed
    /// at `now_ms`, and its key.
    pub fn new(topic: String, partition: i32, offset: i64, metadata: String, now_ms: i64) -> ((String, i32), Self) {
        let value = OffsetValue { offset, leader_epoch: -1, metadata, commit_timestamp: now_ms };
        ((topic.clone(), partition), OffsetToCommit { topic, partition, value })
    }
}

/// The group coordinator of this broker (see the module documentation).
pub struct GroupCoordinator {
    broker_id: i32,
    config: GroupCoordinatorConfig,
    shards: Shards<GroupShardState>,
    /// Session deadline of every member heard from (or loaded).
    sessions: Mutex<HashMap<MemberKey, Instant>>,
    /// Since when a member has been revoking partitions.
    revoking: Mutex<HashMap<MemberKey, Instant>>,
    /// Since when each group has been rebalancing (its epoch bumped, not yet stable).
    rebalancing: Mutex<HashMap<String, Instant>>,
    /// Log end offsets of committed partitions this broker does not host, for the lag gauge
    /// (refreshed by [`GroupCoordinator::refresh_log_ends`]).
    remote_log_ends: Mutex<HashMap<(String, i32), i64>>,
    /// The classic (JoinGroup protocol) groups of the shards this broker leads.
    pub classic: ClassicGroups,
}

impl GroupCoordinator {
    /// A coordinator with no shard yet; call [`GroupCoordinator::sync`] after every image.
    pub fn new(broker_id: i32, config: GroupCoordinatorConfig) -> Arc<Self> {
        let classic = ClassicGroups::new(&config);
        Arc::new(Self {
            broker_id,
            shards: Shards::new(OFFSETS_TOPIC, broker_id, config.write_timeout),
            config,
            sessions: Mutex::new(HashMap::new()),
            revoking: Mutex::new(HashMap::new()),
            rebalancing: Mutex::new(HashMap::new()),
            remote_log_ends: Mutex::new(HashMap::new()),
            classic,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GroupCoordinatorConfig {
        &self.config
    }

    /// Opens a shard for every `__consumer_offsets` partition this broker now leads (loading it
    /// in the background) and closes the shards of partitions it no longer leads.
    pub fn sync(&self, replicas: &ReplicaManager) {
        self.shards.sync(replicas);
        self.classic.retain_partitions(|p| self.shards.by_partition(p).is_some());
    }

    /// Checks this broker coordinates `group` (its shard is loaded) and returns its partition
    /// and whether its KIP-848 form has members (then classic members may not join).
    ///
    /// # Errors
    ///
    /// `NOT_COORDINATOR`, `COORDINATOR_LOAD_IN_PROGRESS`, `COORDINATOR_NOT_AVAILABLE`.
    pub async fn coordinate(&self, image: &ClusterImage, group: &str) -> Result<(i32, bool), BrokerError> {
        let shard = self.shard(image, group).await?;
        let consumer_members = shard.read(|s| s.groups.get(group).is_some_and(|g| !g.members.is_empty())).await?;
        Ok((shard.partition(), consumer_members))
    }

    /// Waits until every shard opened so far has loaded (or closed), up to `timeout`; returns
    /// whether all of them are active.
    pub async fn wait_loaded(&self, timeout: Duration) -> bool {
        self.shards.wait_loaded(timeout).await
    }

    /// Closes every shard (shutdown).
    pub fn close_all(&self) {
        self.shards.close_all();
    }

    /// The `__consumer_offsets` partition of `group`.
    ///
    /// # Errors
    ///
    /// `COORDINATOR_NOT_AVAILABLE` while the topic does not exist.
    pub fn partition_for(&self, image: &ClusterImage, group: &str) -> Result<i32, BrokerError> {
        self.shards.partition_for(image, group)
    }

    async fn shard(&self, image: &ClusterImage, group: &str) -> Result<Arc<GroupShard>, BrokerError> {
        self.shards.get(image, group).await
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
        if self.classic.has_members(group) {
            return Err(BrokerError::Refused(WireError::new(
                ErrorCode::InconsistentGroupProtocol,
                format!("group {group} has members of the classic protocol (JoinGroup): use another group id"),
            )));
        }
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
        let shards: Vec<Arc<GroupShard>> = self.shards.all();
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
        self.commit_as(image, group, None, member, member_epoch, offsets).await
    }

    /// Commits offsets inside producer `txn`'s transaction (`TxnOffsetCommit`): they are
    /// written now, but take effect only when the transaction's COMMIT marker reaches the group's
    /// partition. The member check is the same as for plain commits, skipped without a member id
    /// (as Kafka does).
    ///
    /// # Errors
    ///
    /// A coordinator or write failure (`INVALID_PRODUCER_EPOCH` for a fenced producer).
    pub async fn commit_transactional(
        &self,
        image: &ClusterImage,
        group: &str,
        txn: TxnProducer,
        member: &str,
        member_epoch: i32,
        offsets: Vec<OffsetToCommit>,
    ) -> Result<Vec<CommitResult>, BrokerError> {
        self.commit_as(image, group, Some(txn), member, member_epoch, offsets).await
    }

    async fn commit_as(
        &self,
        image: &ClusterImage,
        group: &str,
        txn: Option<TxnProducer>,
        member: &str,
        member_epoch: i32,
        offsets: Vec<OffsetToCommit>,
    ) -> Result<Vec<CommitResult>, BrokerError> {
        let shard = self.shard(image, group).await?;
        let check_member = txn.is_none() || !member.is_empty();
        let decide = |state: &GroupShardState| {
            let (records, results) =
                offset_records(image, &state.group(group), member, member_epoch, check_member, offsets);
            Ok::<_, BrokerError>((encode(&records), results))
        };
        match txn {
            Some(txn) => shard.write_transactional(txn, decide).await,
            None => shard.write(decide).await,
        }
    }

    /// Applies a transaction marker just written to `__consumer_offsets` partition `partition`
    /// (a no-op when this broker holds no shard of it: a shard opened later replays the marker).
    pub async fn apply_marker(&self, partition: i32, producer_id: i64, commit: bool) {
        if let Some(shard) = self.shards.by_partition(partition) {
            shard.apply_marker(producer_id, commit).await;
        }
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

    /// The partitions of `group` whose offsets a still-open transaction committed (Kafka's
    /// OffsetFetch with `require_stable` answers them `UNSTABLE_OFFSET_COMMIT`, so that an
    /// exactly-once consumer does not start from an offset about to move).
    ///
    /// # Errors
    ///
    /// A coordinator failure.
    pub async fn pending_offsets(
        &self,
        image: &ClusterImage,
        group: &str,
    ) -> Result<std::collections::BTreeSet<(String, i32)>, BrokerError> {
        let shard = self.shard(image, group).await?;
        shard
            .read(|s| {
                s.pending
                    .values()
                    .flatten()
                    .filter_map(|(k, _)| match k {
                        GroupKey::Offset { group: g, topic, partition } if g == group => {
                            Some((topic.clone(), *partition))
                        }
                        _ => None,
                    })
                    .collect()
            })
            .await
    }

    /// Deletes `group`'s committed offsets of `partitions` (Kafka's OffsetDelete); one result per
    /// partition, in order. Partitions of topics the group's members subscribe to
    /// (`subscribed` adds the classic members' subscriptions) keep theirs
    /// (`GROUP_SUBSCRIBED_TO_TOPIC`); a partition without an offset is fine.
    ///
    /// # Errors
    ///
    /// `GROUP_ID_NOT_FOUND` when the group has no offsets; a coordinator or write failure.
    pub async fn delete_offsets(
        &self,
        image: &ClusterImage,
        group: &str,
        partitions: Vec<(String, i32)>,
        subscribed: &[String],
    ) -> Result<Vec<CommitResult>, BrokerError> {
        let shard = self.shard(image, group).await?;
        shard
            .write(|state| {
                let Some(offsets) = state.offsets.get(group) else {
                    return Err(BrokerError::Refused(WireError::new(
                        ErrorCode::GroupIdNotFound,
                        format!("group {group} has no committed offsets"),
                    )));
                };
                let g = state.group(group);
                let in_use = |t: &str| {
                    subscribed.iter().any(|s| s == t)
                        || g.members.values().any(|m| m.meta.subscribed_topics.iter().any(|s| s == t))
                };
                let mut records = Vec::new();
                let results = partitions
                    .iter()
                    .map(|(topic, partition)| {
                        if in_use(topic) {
                            return Err(WireError::new(
                                ErrorCode::GroupSubscribedToTopic,
                                format!("group {group}'s members subscribe to {topic}"),
                            ));
                        }
                        if offsets.contains_key(&(topic.clone(), *partition)) {
                            let key = GroupKey::Offset {
                                group: group.to_string(),
                                topic: topic.clone(),
                                partition: *partition,
                            };
                            records.push((key, None));
                        }
                        Ok(())
                    })
                    .collect();
                Ok((encode(&records), results))
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
                if g.is_some_and(|g| !g.members.is_empty()) || self.classic.has_members(group) {
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
        let shards: Vec<Arc<GroupShard>> = self.shards.all();
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
        groups.extend(self.classic.ids());
        groups.sort();
        groups.dedup();
        groups
    }

    /// Deletes (with tombstones) the committed offsets of topics that no longer exist in
    /// `image`, in every active shard. Returns how many offsets were deleted.
    pub async fn forget_deleted_topics(&self, image: &ClusterImage) -> usize {
        let shards: Vec<Arc<GroupShard>> = self.shards.active();
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
        let shards: Vec<Arc<GroupShard>> = self.shards.all();
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
        let shards: Vec<Arc<GroupShard>> = self.shards.active();
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

/// The records committing `offsets` for `member` of `g` (checked to own each partition when
/// `check_member`), and one result per offset: only the accepted offsets get a record.
fn offset_records(
    image: &ClusterImage,
    g: &ConsumerGroup,
    member: &str,
    member_epoch: i32,
    check_member: bool,
    offsets: Vec<OffsetToCommit>,
) -> (Vec<Record>, Vec<CommitResult>) {
    let mut records = Vec::new();
    let results = offsets
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
            if o.value.metadata.len() > OFFSET_METADATA_MAX_BYTES {
                return Err(WireError::new(
                    ErrorCode::OffsetMetadataTooLarge,
                    format!(
                        "{} bytes of metadata: at most {OFFSET_METADATA_MAX_BYTES} (offset.metadata.max.bytes)",
                        o.value.metadata.len()
                    ),
                ));
            }
            if check_member {
                heartbeat::validate_commit(g, member, member_epoch, &o.topic, o.partition)?;
            }
            let key = GroupKey::Offset { group: g.id.clone(), topic: o.topic, partition: o.partition };
            records.push((key, Some(GroupValue::Offset(o.value))));
            Ok(())
        })
        .collect();
    (records, results)
}

fn encode(records: &[Record]) -> Vec<ShardRecord> {
    records.iter().map(|(k, v)| ShardRecord { key: k.encode(), value: v.as_ref().map(GroupValue::encode) }).collect()
}
