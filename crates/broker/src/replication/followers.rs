//! What a partition leader knows about its followers: their log end offsets and when each was
//! last caught up, from which it derives the high watermark and the ISR changes to propose.
//!
//! Pure bookkeeping (no I/O, no clock: callers pass `now_ms`), kept under the partition's lock.

use std::collections::BTreeMap;

/// One follower as seen by the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerState {
    /// The follower's log end offset (its last fetch offset), -1 until it fetched from this leader.
    pub log_end_offset: i64,
    /// When the follower last had everything the leader had (Kafka's `lastCaughtUpTimeMs`).
    pub last_caught_up_ms: i64,
    /// When it last fetched.
    pub last_fetch_ms: i64,
    /// The leader's log end offset at that fetch.
    pub leader_end_at_last_fetch: i64,
    /// Whether that fetch was at or past the high watermark of the moment (under steady
    /// produce traffic the high watermark has usually moved on by the next ISR check).
    pub reached_high_watermark: bool,
}

/// An ISR change sent to the controller and not answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingIsr {
    /// The proposed ISR.
    isr: Vec<i32>,
    /// The partition epoch the proposal was based on.
    partition_epoch: i32,
    /// When it was sent.
    sent_ms: i64,
}

/// The partition as the leader holds it, for an ISR proposal.
#[derive(Debug, Clone, Copy)]
pub struct IsrView<'a> {
    /// The current ISR.
    pub isr: &'a [i32],
    /// This broker (the leader).
    pub me: i32,
    /// The current high watermark.
    pub high_watermark: i64,
    /// The partition epoch a proposal is based on.
    pub partition_epoch: i32,
}

/// The leader's view of every other replica of one partition.
#[derive(Debug, Default)]
pub struct Followers {
    states: BTreeMap<i32, FollowerState>,
    /// The offset where the current leader epoch began: a follower must reach it to join the ISR.
    epoch_start_offset: i64,
    /// The ISR change in flight, if any.
    pending: Option<PendingIsr>,
}

impl Followers {
    /// Starts leading: every other replica is unknown, and gets a full `replica.lag.time.max.ms`
    /// of grace before it can be dropped from the ISR.
    pub fn become_leader(&mut self, replicas: &[i32], me: i32, epoch_start_offset: i64, now_ms: i64) {
        self.states.clear();
        self.pending = None;
        self.epoch_start_offset = epoch_start_offset;
        self.sync_replicas(replicas, me, now_ms);
    }

    /// Stops leading.
    pub fn clear(&mut self) {
        self.states.clear();
        self.pending = None;
    }

    /// Takes a newer partition state while still leading: tracks replicas added by a
    /// reassignment, forgets removed ones, and forgets an ISR proposal the new state supersedes.
    pub fn on_partition_state(&mut self, replicas: &[i32], me: i32, partition_epoch: i32, now_ms: i64) {
        self.sync_replicas(replicas, me, now_ms);
        if self.pending.as_ref().is_some_and(|p| p.partition_epoch < partition_epoch) {
            self.pending = None;
        }
    }

    /// Tracks replicas added by a reassignment and forgets removed ones.
    fn sync_replicas(&mut self, replicas: &[i32], me: i32, now_ms: i64) {
        self.states.retain(|id, _| replicas.contains(id));
        for id in replicas.iter().filter(|id| **id != me) {
            self.states.entry(*id).or_insert(FollowerState {
                log_end_offset: -1,
                last_caught_up_ms: now_ms,
                last_fetch_ms: now_ms,
                leader_end_at_last_fetch: -1,
                reached_high_watermark: false,
            });
        }
    }

    /// Records a fetch from `replica` at `fetch_offset` (its log end offset) while the leader's
    /// log ends at `leader_end` and its high watermark is `high_watermark`. Returns false for a
    /// replica that is not tracked.
    pub fn record_fetch(
        &mut self,
        replica: i32,
        fetch_offset: i64,
        leader_end: i64,
        high_watermark: i64,
        now_ms: i64,
    ) -> bool {
        let Some(s) = self.states.get_mut(&replica) else { return false };
        // Kafka's rule: caught up now if it has everything; caught up at its previous fetch if it
        // now has everything the leader had back then.
        if fetch_offset >= leader_end {
            s.last_caught_up_ms = s.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= s.leader_end_at_last_fetch {
            s.last_caught_up_ms = s.last_caught_up_ms.max(s.last_fetch_ms);
        }
        s.log_end_offset = fetch_offset;
        s.reached_high_watermark = fetch_offset >= high_watermark;
        s.leader_end_at_last_fetch = leader_end;
        s.last_fetch_ms = now_ms;
        true
    }

    /// A follower's state.
    pub fn get(&self, replica: i32) -> Option<FollowerState> {
        self.states.get(&replica).copied()
    }

    /// The high watermark the ISR allows: the lowest log end offset among the leader (`my_end`)
    /// and the ISR members, counting a pending expansion's new members too (the "maximal ISR",
    /// so a member being added never sees the high watermark move past it).
    pub fn high_watermark(&self, isr: &[i32], me: i32, my_end: i64) -> i64 {
        let pending = self.pending.as_ref().map(|p| p.isr.as_slice()).unwrap_or_default();
        isr.iter()
            .chain(pending)
            .filter(|id| **id != me)
            .map(|id| self.states.get(id).map_or(-1, |s| s.log_end_offset))
            .fold(my_end, i64::min)
    }

    /// The ISR change to send to the controller now, if one is needed and none is in flight
    /// (an unanswered proposal blocks the next for `pending_timeout_ms`); it is then in flight
    /// until [`Followers::proposal_refused`] or a newer partition state.
    pub fn propose_isr(
        &mut self,
        current: &IsrView<'_>,
        now_ms: i64,
        lag_max_ms: i64,
        pending_timeout_ms: i64,
        eligible: impl Fn(i32) -> bool,
    ) -> Option<Vec<i32>> {
        if self.pending.as_ref().is_some_and(|p| now_ms - p.sent_ms < pending_timeout_ms) {
            return None;
        }
        let isr = self.proposed_isr(current.isr, current.me, current.high_watermark, now_ms, lag_max_ms, eligible)?;
        self.pending = Some(PendingIsr { isr: isr.clone(), partition_epoch: current.partition_epoch, sent_ms: now_ms });
        Some(isr)
    }

    /// The controller refused the ISR change in flight: the next check may propose again.
    pub fn proposal_refused(&mut self) {
        self.pending = None;
    }

    /// The ISR the leader should propose now, if it differs from `isr`: members (other than the
    /// leader) not caught up for `lag_max_ms` leave; replicas that reached both the high
    /// watermark (now, or when they last fetched) and the current epoch's start offset join
    /// (unless `eligible` says no).
    fn proposed_isr(
        &self,
        isr: &[i32],
        me: i32,
        high_watermark: i64,
        now_ms: i64,
        lag_max_ms: i64,
        eligible: impl Fn(i32) -> bool,
    ) -> Option<Vec<i32>> {
        let mut next: Vec<i32> = isr
            .iter()
            .copied()
            .filter(|id| {
                *id == me
                    || self.states.get(id).is_some_and(|s| now_ms.saturating_sub(s.last_caught_up_ms) <= lag_max_ms)
            })
            .collect();
        for (id, s) in &self.states {
            let at_hw = s.reached_high_watermark || s.log_end_offset >= high_watermark;
            let caught_up = at_hw && s.log_end_offset >= self.epoch_start_offset;
            if !next.contains(id) && caught_up && eligible(*id) {
                next.push(*id);
            }
        }
        if !next.contains(&me) {
            next.insert(0, me);
        }
        let same = next.len() == isr.len() && next.iter().all(|id| isr.contains(id));
        (!same).then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(now: i64) -> Followers {
        let mut f = Followers::default();
        f.become_leader(&[1, 2, 3], 1, 100, now);
        f
    }

    #[test]
    fn high_watermark_is_the_lowest_isr_end_and_waits_for_unknown_followers() {
        let mut f = leader(0);
        assert_eq!(f.high_watermark(&[1, 2, 3], 1, 150), -1, "followers have not fetched yet");
        f.record_fetch(2, 140, 150, i64::MAX, 10);
        f.record_fetch(3, 120, 150, i64::MAX, 10);
        assert_eq!(f.high_watermark(&[1, 2, 3], 1, 150), 120);
        assert_eq!(f.high_watermark(&[1, 2], 1, 150), 140, "a replica outside the ISR does not hold it back");
        assert_eq!(f.high_watermark(&[1], 1, 150), 150, "a sole leader commits its own end");
        f.pending = Some(PendingIsr { isr: vec![1, 2, 3], partition_epoch: 0, sent_ms: 0 });
        assert_eq!(f.high_watermark(&[1, 2], 1, 150), 120, "a member being added counts");
    }

    #[test]
    fn one_proposal_is_in_flight_until_refused_superseded_or_timed_out() {
        let mut f = leader(0);
        f.record_fetch(2, 150, 150, i64::MAX, 5_000);
        let view = IsrView { isr: &[1, 2, 3], me: 1, high_watermark: 150, partition_epoch: 4 };
        assert_eq!(f.propose_isr(&view, 10_001, 10_000, 1_000, |_| true), Some(vec![1, 2]));
        assert_eq!(f.propose_isr(&view, 10_002, 10_000, 1_000, |_| true), None, "in flight");
        f.proposal_refused();
        assert_eq!(f.propose_isr(&view, 10_003, 10_000, 1_000, |_| true), Some(vec![1, 2]), "refused: again");
        assert_eq!(f.propose_isr(&view, 11_004, 10_000, 1_000, |_| true), Some(vec![1, 2]), "timed out: again");
        f.on_partition_state(&[1, 2, 3], 1, 4, 11_005);
        assert_eq!(f.propose_isr(&view, 11_006, 10_000, 1_000, |_| true), None, "same epoch: still in flight");
        f.on_partition_state(&[1, 2, 3], 1, 5, 11_007);
        assert_eq!(f.propose_isr(&view, 11_008, 10_000, 1_000, |_| true), Some(vec![1, 2]), "superseded");
    }

    #[test]
    fn caught_up_time_follows_kafkas_rule() {
        let mut f = leader(0);
        f.record_fetch(2, 150, 150, i64::MAX, 1_000);
        assert_eq!(f.get(2).unwrap().last_caught_up_ms, 1_000);
        // Behind at 2000, but has what the leader had at 1000: caught up as of 1000.
        f.record_fetch(2, 150, 200, i64::MAX, 2_000);
        assert_eq!(f.get(2).unwrap().last_caught_up_ms, 1_000);
        f.record_fetch(2, 200, 260, i64::MAX, 3_000);
        assert_eq!(f.get(2).unwrap().last_caught_up_ms, 2_000);
        // Falling further behind leaves the time where it was.
        f.record_fetch(2, 210, 400, i64::MAX, 4_000);
        assert_eq!(f.get(2).unwrap().last_caught_up_ms, 2_000);
    }

    #[test]
    fn lagging_members_leave_and_caught_up_replicas_join() {
        let mut f = leader(0);
        f.record_fetch(2, 150, 150, i64::MAX, 5_000);
        // 3 never fetched: after the lag limit it leaves.
        assert_eq!(f.proposed_isr(&[1, 2, 3], 1, 150, 5_000, 10_000, |_| true), None);
        assert_eq!(f.proposed_isr(&[1, 2, 3], 1, 150, 10_001, 10_000, |_| true), Some(vec![1, 2]));
        // It joins again once at the high watermark and past the epoch start offset.
        f.record_fetch(3, 99, 150, i64::MAX, 11_000);
        assert_eq!(f.proposed_isr(&[1, 2], 1, 90, 11_000, 10_000, |_| true), None, "before the epoch start");
        f.record_fetch(3, 150, 150, i64::MAX, 12_000);
        assert_eq!(f.proposed_isr(&[1, 2], 1, 150, 12_000, 10_000, |_| true), Some(vec![1, 2, 3]));
        assert_eq!(f.proposed_isr(&[1, 2], 1, 150, 12_000, 10_000, |id| id != 3), None, "ineligible");
        // Under steady traffic: it had reached the high watermark when it fetched, though the
        // high watermark has moved on since.
        f.record_fetch(3, 160, 170, 160, 13_000);
        assert_eq!(f.proposed_isr(&[1, 2], 1, 170, 13_000, 10_000, |_| true), Some(vec![1, 2, 3]));
    }

    #[test]
    fn reassignment_adds_and_removes_tracked_replicas() {
        let mut f = leader(0);
        f.sync_replicas(&[1, 2, 3, 4], 1, 50);
        assert_eq!(f.get(4).unwrap().log_end_offset, -1);
        f.sync_replicas(&[1, 4], 1, 60);
        assert!(f.get(2).is_none());
        assert!(!f.record_fetch(2, 1, 1, i64::MAX, 70), "an untracked replica's fetch is not recorded");
    }
}
