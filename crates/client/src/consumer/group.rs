//! The group side of [`Consumer`]: subscribing, applying the coordinator's assignment changes
//! on `poll` (commit and revoke before assign), and committing offsets fenced by the member's
//! epoch.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use vltava_proto::v1::ErrorCode;

use super::membership::{Change, MemberSettings, Membership, Subscription};
use super::{Consumer, RebalanceListener};
use crate::error::ClientError;
use crate::offsets;
use crate::types::{OffsetAndMetadata, TopicPartition};

/// Attempts of a commit refused with `STALE_MEMBER_EPOCH` (the heartbeat carrying the new epoch
/// is on its way).
const STALE_EPOCH_ATTEMPTS: u32 = 5;

impl Consumer {
    /// Joins the consumer's group (`group.id`, required) and consumes the partitions the group
    /// assigns it from `topics`. Calling it again changes the subscription. Topics created
    /// later are picked up when they appear. The first partitions arrive during `poll`.
    pub fn subscribe<I, S>(&mut self, topics: I) -> Result<(), ClientError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut topics: Vec<String> = topics.into_iter().map(Into::into).collect();
        topics.sort();
        topics.dedup();
        if topics.is_empty() || topics.iter().any(|t| t.trim().is_empty()) {
            return Err(ClientError::Config("subscribe() needs at least one topic, and no empty name".into()));
        }
        self.start_membership(Subscription::Topics(topics))
    }

    /// Like [`Consumer::subscribe`], for every topic whose whole name matches `pattern` (a
    /// regular expression; internal topics such as `__consumer_offsets` never match). The
    /// coordinator resolves the pattern, so topics created later join the subscription.
    pub fn subscribe_pattern(&mut self, pattern: &str) -> Result<(), ClientError> {
        if pattern.is_empty() {
            return Err(ClientError::Config("subscribe_pattern() needs a non-empty pattern".into()));
        }
        self.start_membership(Subscription::Pattern(pattern.to_string()))
    }

    fn start_membership(&mut self, subscription: Subscription) -> Result<(), ClientError> {
        if let Some(m) = &self.membership {
            m.set_subscription(subscription);
            return Ok(());
        }
        let group = self.group()?.to_string();
        if !self.assignment.is_empty() {
            return Err(ClientError::Config(
                "subscribe() on a consumer with assigned partitions: use one of assign() and subscribe()".into(),
            ));
        }
        let settings = MemberSettings {
            group,
            instance_id: self.config.group_instance_id.clone(),
            rack: self.config.client_rack.clone(),
            assignor: self.config.group_remote_assignor.clone(),
            client_id: self.config.client_id.clone(),
            max_poll_interval: self.config.max_poll_interval,
        };
        self.membership = Some(Membership::start(self.cluster.clone(), settings, subscription));
        Ok(())
    }

    /// Sets what the application hears about rebalances (replacing the previous listener).
    pub fn set_rebalance_listener(&mut self, listener: impl RebalanceListener + 'static) {
        self.listener = parking_lot::Mutex::new(Box::new(listener));
    }

    /// Whether the consumer is a member of its group (subscribed).
    pub fn is_subscribed(&self) -> bool {
        self.membership.is_some()
    }

    /// Leaves the group (committing first with `enable.auto.commit`) and drops every partition.
    pub async fn unsubscribe(&mut self) -> Result<(), ClientError> {
        if self.membership.is_none() {
            return Ok(());
        }
        // Committed while still a member: the commit carries its id and epoch.
        let result = match self.auto_commits() {
            true => self.commit_now(self.positions_of(&self.assignment())).await,
            false => Ok(()),
        };
        let Some(m) = self.membership.take() else { return result };
        let revoked = self.assignment();
        self.assign(Vec::new());
        if !revoked.is_empty() {
            self.listener.get_mut().on_partitions_revoked(&revoked);
        }
        m.leave().await?;
        result
    }

    /// Applies a change the heartbeat task parked (called by `poll`): a new assignment
    /// (revocations first: commit with auto-commit, tell the listener, drop), lost partitions
    /// (dropped without a commit), or the membership's failure.
    pub(super) async fn apply_group_change(&mut self) -> Result<(), ClientError> {
        let Some(change) = self.membership.as_ref().and_then(Membership::poll) else { return Ok(()) };
        match change {
            Change::Fatal(e) => {
                self.membership = None;
                let lost = self.assignment();
                self.assign(Vec::new());
                if !lost.is_empty() {
                    self.listener.get_mut().on_partitions_lost(&lost);
                }
                Err(e)
            }
            Change::Lost => {
                let lost = self.assignment();
                self.assign(Vec::new());
                if !lost.is_empty() {
                    tracing::info!(partitions = lost.len(), "partitions lost: rejoining the group");
                    self.listener.get_mut().on_partitions_lost(&lost);
                }
                if let Some(m) = &self.membership {
                    m.acknowledge(Vec::new());
                }
                Ok(())
            }
            Change::Assign(target) => {
                let owned = self.assignment();
                let revoked: Vec<TopicPartition> = owned.iter().filter(|tp| !target.contains(tp)).cloned().collect();
                let added: Vec<TopicPartition> = target.iter().filter(|tp| !owned.contains(tp)).cloned().collect();
                if !revoked.is_empty() {
                    if self.auto_commits() {
                        let positions = self.positions_of(&revoked);
                        if let Err(e) = self.commit_now(positions).await {
                            tracing::warn!(error = %e, "committing revoked partitions failed");
                        }
                    }
                    self.listener.get_mut().on_partitions_revoked(&revoked);
                }
                self.assign(target.clone());
                if !added.is_empty() {
                    self.listener.get_mut().on_partitions_assigned(&added);
                }
                tracing::debug!(revoked = revoked.len(), added = added.len(), "group assignment applied");
                if let Some(m) = &self.membership {
                    m.acknowledge(target);
                }
                Ok(())
            }
        }
    }

    fn group(&self) -> Result<&str, ClientError> {
        self.config
            .group_id
            .as_deref()
            .ok_or_else(|| ClientError::Config("group.id is required to commit or read committed offsets".into()))
    }

    fn auto_commits(&self) -> bool {
        self.config.enable_auto_commit && self.config.group_id.is_some()
    }

    fn positions_of(&self, partitions: &[TopicPartition]) -> HashMap<TopicPartition, OffsetAndMetadata> {
        partitions
            .iter()
            .filter_map(|tp| {
                let position = self.assignment.get(tp)?.position?;
                Some((tp.clone(), OffsetAndMetadata::new(position)))
            })
            .collect()
    }

    /// The group and this member's identity, for a transactional producer's
    /// `send_offsets_to_transaction` (Kafka's `groupMetadata()`); `None` without a group.
    pub fn group_metadata(&self) -> Option<crate::ConsumerGroupMetadata> {
        let group_id = self.config.group_id.clone()?;
        let (member_id, member_epoch) =
            self.membership.as_ref().and_then(|m| m.member()).unwrap_or((String::new(), -1));
        Some(crate::ConsumerGroupMetadata { group_id, member_id, member_epoch })
    }

    /// The current position of every assigned partition that has one, as offsets to commit
    /// (for `send_offsets_to_transaction`).
    pub fn positions(&self) -> HashMap<TopicPartition, OffsetAndMetadata> {
        self.positions_of(&self.assignment())
    }

    /// Commits the current position of every assigned partition that has one (synchronously).
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        let offsets = self.positions_of(&self.assignment());
        self.commit_now(offsets).await?;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Commits the given offsets (each the NEXT offset to read).
    pub async fn commit_offsets(&mut self, offsets: HashMap<TopicPartition, i64>) -> Result<(), ClientError> {
        let offsets = offsets.into_iter().map(|(tp, o)| (tp, OffsetAndMetadata::new(o))).collect();
        self.commit_offsets_with_metadata(offsets).await
    }

    /// Commits the given offsets with their metadata.
    pub async fn commit_offsets_with_metadata(
        &mut self,
        offsets: HashMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), ClientError> {
        self.commit_now(offsets).await?;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Starts committing the current positions and returns at once; the returned future (which
    /// borrows nothing) resolves with the outcome. `poll` can go on meanwhile.
    pub fn commit_async(&mut self) -> impl Future<Output = Result<(), ClientError>> + Send + 'static {
        let offsets = self.positions_of(&self.assignment());
        let group = self.group().map(str::to_string);
        let member = self.membership.as_ref().and_then(Membership::member);
        let cluster = self.cluster.clone();
        self.last_commit = Instant::now();
        let task = tokio::spawn(async move { offsets::commit(&cluster, &group?, member, &offsets).await });
        async move { task.await.unwrap_or(Err(ClientError::Closed)) }
    }

    /// Commits as this member (its id and epoch), retrying a commit refused for a stale epoch
    /// after a heartbeat fetched the new one.
    async fn commit_now(&self, offsets: HashMap<TopicPartition, OffsetAndMetadata>) -> Result<(), ClientError> {
        let group = self.group()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let member = self.membership.as_ref().and_then(Membership::member);
            match offsets::commit(&self.cluster, group, member, &offsets).await {
                Err(e) if e.code() == Some(ErrorCode::StaleMemberEpoch) && attempt < STALE_EPOCH_ATTEMPTS => {
                    if let Some(m) = &self.membership {
                        m.wake();
                    }
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                result => return result,
            }
        }
    }

    /// The group's committed offsets of `partitions`; partitions without one are absent.
    pub async fn committed(&self, partitions: &[TopicPartition]) -> Result<HashMap<TopicPartition, i64>, ClientError> {
        let group = self.group()?;
        let committed = offsets::fetch_committed(&self.cluster, group, partitions).await?;
        Ok(committed.into_iter().filter(|(_, o)| *o >= 0).collect())
    }

    pub(super) async fn maybe_auto_commit(&mut self) {
        if !self.auto_commits() || self.last_commit.elapsed() < self.config.auto_commit_interval {
            return;
        }
        if let Err(e) = self.commit().await {
            tracing::warn!(error = %e, "auto-commit failed");
            self.last_commit = Instant::now();
        }
    }

    /// Commits positions when auto-commit is on (and a group is set), leaves the group when
    /// subscribed, then stops fetching.
    pub async fn close(mut self) -> Result<(), ClientError> {
        match self.membership.is_some() {
            true => self.unsubscribe().await,
            false if self.auto_commits() => self.commit().await,
            false => Ok(()),
        }
    }
}
