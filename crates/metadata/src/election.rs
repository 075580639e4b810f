//! Partition leader election, as Kafka's KRaft controller does it.
//!
//! - When a broker goes away (fenced or shut down), it leaves every ISR it is in unless it is the
//!   last member (the ISR never becomes empty, so the last in-sync replica is known), and every
//!   partition it leads gets a new leader: the first replica, in preference order, that is in the
//!   ISR and alive. With none, the partition has no leader (-1) unless the topic allows unclean
//!   election, which then picks any live replica and makes it the whole ISR.
//! - When a broker comes back, leaderless partitions whose ISR holds it are led by it again.
//!
//! Every leader change bumps the leader epoch; every change bumps the partition epoch.
//!
//! During a reassignment `replicas` holds both the target and the replicas being removed, and
//! these rules apply to all of them alike (an added replica that is in sync may lead);
//! [`crate::partition_change`] completes the move when the ISR allows.

use crate::model::{BrokerId, PartitionState, TopicMetadata};

/// Whether a topic allows electing a leader from outside the ISR.
pub fn unclean_allowed(topic: &TopicMetadata) -> bool {
    topic.configs.get("unclean.leader.election.enable").is_some_and(|v| v == "true")
}

/// Takes `gone` out of the partition's ISR and leadership. Returns whether anything changed.
pub fn on_broker_gone(p: &mut PartitionState, gone: BrokerId, alive: &dyn Fn(BrokerId) -> bool, unclean: bool) -> bool {
    let mut changed = false;
    if p.isr.len() > 1 && p.isr.contains(&gone) {
        p.isr.retain(|b| *b != gone);
        changed = true;
    }
    if p.leader == gone {
        let next = p.replicas.iter().copied().find(|b| *b != gone && p.isr.contains(b) && alive(*b));
        match next {
            Some(b) => p.leader = b,
            None if unclean => match p.replicas.iter().copied().find(|b| *b != gone && alive(*b)) {
                Some(b) => {
                    p.leader = b;
                    p.isr = vec![b];
                }
                None => p.leader = -1,
            },
            None => p.leader = -1,
        }
        p.leader_epoch += 1;
        changed = true;
    }
    if changed {
        p.partition_epoch += 1;
    }
    changed
}

/// Gives leaderless partitions a leader now that `back` is alive again. Returns whether anything changed.
pub fn on_broker_back(p: &mut PartitionState, back: BrokerId, unclean: bool) -> bool {
    if p.leader != -1 || !p.replicas.contains(&back) {
        return false;
    }
    if p.isr.contains(&back) {
        p.leader = back;
    } else if unclean {
        p.leader = back;
        p.isr = vec![back];
    } else {
        return false;
    }
    p.leader_epoch += 1;
    p.partition_epoch += 1;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionState {
        PartitionState {
            partition: 0,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 3,
            partition_epoch: 7,
            adding_replicas: vec![],
            removing_replicas: vec![],
        }
    }

    #[test]
    fn the_leader_moves_to_the_next_live_isr_member_in_preference_order() {
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        let alive = |b: i32| b != 1 && b != 2;
        assert!(on_broker_gone(&mut p, 1, &alive, false));
        assert_eq!((p.leader, p.isr.clone(), p.leader_epoch, p.partition_epoch), (3, vec![2, 3], 4, 8));
    }

    #[test]
    fn a_follower_leaving_only_shrinks_the_isr() {
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        assert!(on_broker_gone(&mut p, 2, &|_| true, false));
        assert_eq!((p.leader, p.isr.clone(), p.leader_epoch, p.partition_epoch), (1, vec![1, 3], 3, 8));
        assert!(!on_broker_gone(&mut p, 4, &|_| true, false), "not a replica: nothing changes");
    }

    #[test]
    fn the_last_isr_member_stays_and_comes_back_as_leader() {
        let mut p = part(&[1, 2], &[1], 1);
        assert!(on_broker_gone(&mut p, 1, &|b| b == 2, false));
        assert_eq!((p.leader, p.isr.clone()), (-1, vec![1]), "2 is not in the ISR: no clean leader");
        assert!(!on_broker_back(&mut p, 2, false));
        assert!(on_broker_back(&mut p, 1, false));
        assert_eq!((p.leader, p.leader_epoch), (1, 5));
    }

    #[test]
    fn unclean_election_picks_a_live_replica_outside_the_isr() {
        let mut p = part(&[1, 2], &[1], 1);
        assert!(on_broker_gone(&mut p, 1, &|b| b == 2, true));
        assert_eq!((p.leader, p.isr.clone()), (2, vec![2]));
    }
}
