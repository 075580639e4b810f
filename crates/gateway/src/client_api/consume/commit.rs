//! A managed stream's group offsets: where newly claimed partitions start (the group's committed
//! offsets) and, with `auto_commit`, the commits of delivered positions (every
//! `auto_commit_interval_ms`, on revocation and when the stream ends).

use std::collections::BTreeMap;

use tokio::time::Instant;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::{CommitOffsetsRequest, FetchOffsetsRequest, OffsetCommit, TopicPartition};

use super::position::{PartitionState, Start};
use super::stream::{Exit, StreamTask};

impl StreamTask {
    /// Positions the partitions waiting for the group's committed offset at it, or at
    /// `auto_offset_reset` for those without one. A failed lookup backs them off (or, not
    /// transient, ends the stream).
    pub(super) async fn start_from_committed(&mut self) -> Result<(), Exit> {
        let topic = self.settings.topic.clone();
        let ask = self.ready_at(Start::Committed);
        let (false, Some(group_id)) = (ask.is_empty(), self.settings.group_id.clone()) else { return Ok(()) };
        let partitions = ask.iter().map(|&partition| TopicPartition { topic: topic.clone(), partition }).collect();
        match self.brokers.fetch_offsets(FetchOffsetsRequest { group_id, partitions }).await {
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
                Ok(())
            }
            Err(status) => self.failed(&ask, &WireError::from_status(&status)),
        }
    }

    /// With `auto_commit`, commits every partition's position once the interval has elapsed.
    pub(super) async fn commit_if_due(&mut self) {
        if self.settings.auto_commit && Instant::now() >= self.next_commit {
            let all: Vec<i32> = self.owned.keys().copied().collect();
            self.commit(&all).await;
            self.next_commit = Instant::now() + self.settings.commit_interval;
        }
    }

    /// With `auto_commit`, commits the positions of `partitions` that moved since their last
    /// commit. Failures are logged; the next commit tries again.
    pub(super) async fn commit(&mut self, partitions: &[i32]) {
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
        // A member's commit carries its id and epoch (the coordinator fences zombies with them).
        let (member_id, member_epoch) = self.member.as_ref().map(|m| m.commit_as()).unwrap_or_default();
        let request = CommitOffsetsRequest { group_id, offsets: offsets.clone(), member_id, member_epoch };
        match self.brokers.commit_offsets(request).await {
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
