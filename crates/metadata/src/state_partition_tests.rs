//! The state machine's AlterPartition and reassignment commands, applied as the Raft node does.

use vltava_common::{ErrorCode, WireError};

use super::*;
use crate::model::{AlterPartition, PartitionState};

fn broker(id: i32) -> BrokerRegistration {
    BrokerRegistration::new(id, format!("127.0.0.1:{}", 9000 + id), None)
}

/// Brokers 1..=4 registered at indexes 1..=4 (so broker `b`'s epoch is `b`), then topic `t`
/// (index 5) with one partition on `replicas`, led by the first.
fn cluster(replicas: &[i32], configs: &[(&str, &str)]) -> MetadataState {
    let mut s = MetadataState::default();
    for id in 1..=4 {
        s.apply(id as u64, &Command::RegisterBroker(broker(id))).unwrap();
    }
    let topic = TopicMetadata {
        name: "t".into(),
        id: "id-t".into(),
        partitions: vec![PartitionState::new(0, replicas.to_vec())],
        configs: configs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    s.apply(5, &Command::CreateTopic(topic)).unwrap();
    s
}

fn part(s: &MetadataState) -> PartitionState {
    s.image.partition("t", 0).unwrap().clone()
}

/// An AlterPartition from the current leader, based on the current state, proposing `isr`.
fn alter(s: &MetadataState, isr: &[i32]) -> AlterPartition {
    let p = part(s);
    AlterPartition {
        topic: "t".into(),
        topic_id: "id-t".into(),
        partition: 0,
        broker_id: p.leader,
        broker_epoch: s.image.brokers[&p.leader].epoch,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        new_isr: isr.to_vec(),
    }
}

fn reassign(target: Option<&[i32]>) -> Command {
    Command::ReassignPartition {
        topic: "t".into(),
        topic_id: "id-t".into(),
        partition: 0,
        target: target.map(<[i32]>::to_vec),
    }
}

/// Applies `cmd` at `index`, expecting a refusal with `code` that changes nothing.
fn refused(s: &mut MetadataState, index: u64, cmd: Command, code: ErrorCode) {
    let before = s.encode();
    match s.apply(index, &cmd) {
        Err(e) => assert_eq!(WireError::from(e).code, code, "{cmd:?}"),
        Ok(r) => panic!("{cmd:?} should be refused with {code:?}, got {r:?}"),
    }
    assert_eq!(s.encode(), before, "a refused command changes nothing");
}

fn outcome_partition(r: Result<(Outcome, Delta), MetadataError>) -> (PartitionState, u64, Delta) {
    match r {
        Ok((Outcome::Partition { state, version }, delta)) => (state, version, delta),
        other => panic!("expected a partition outcome, got {other:?}"),
    }
}

#[test]
fn given_a_current_proposal_when_the_leader_shrinks_the_isr_then_only_the_partition_epoch_grows() {
    let mut s = cluster(&[1, 2, 3], &[]);
    let (state, version, delta) = outcome_partition(s.apply(6, &Command::AlterPartition(alter(&s, &[1, 3]))));
    assert_eq!((state.isr.clone(), state.leader, state.leader_epoch, state.partition_epoch), (vec![1, 3], 1, 0, 1));
    assert_eq!((version, delta.version, delta.topics.len()), (6, 6, 1));
    assert_eq!(part(&s), state);
    // Growing it back, based on the new epoch.
    let (state, _, _) = outcome_partition(s.apply(7, &Command::AlterPartition(alter(&s, &[1, 2, 3]))));
    assert_eq!((state.isr, state.partition_epoch), (vec![1, 2, 3], 2));
    // The same ISR again changes nothing (and bumps nothing).
    let (state, _, delta) = outcome_partition(s.apply(8, &Command::AlterPartition(alter(&s, &[1, 2, 3]))));
    assert_eq!(state.partition_epoch, 2);
    assert!(delta.is_empty());
}

#[test]
fn given_a_stale_or_foreign_proposal_when_applied_then_it_is_refused_with_kafkas_code() {
    let mut s = cluster(&[1, 2, 3], &[]);
    let ok = alter(&s, &[1, 2]);
    let with = |f: &dyn Fn(&mut AlterPartition)| {
        let mut r = ok.clone();
        f(&mut r);
        Command::AlterPartition(r)
    };
    use ErrorCode as E;
    refused(&mut s, 6, with(&|r| r.topic = "nope".into()), E::UnknownTopicOrPartition);
    refused(&mut s, 6, with(&|r| r.topic_id = "old-id".into()), E::UnknownTopicOrPartition);
    refused(&mut s, 6, with(&|r| r.partition = 1), E::UnknownTopicOrPartition);
    refused(&mut s, 6, with(&|r| r.broker_id = 2), E::NotLeaderOrFollower);
    refused(&mut s, 6, with(&|r| r.broker_epoch = 0), E::StaleBrokerEpoch);
    refused(&mut s, 6, with(&|r| r.leader_epoch = -1), E::FencedLeaderEpoch);
    refused(&mut s, 6, with(&|r| r.leader_epoch = 1), E::FencedLeaderEpoch);
    refused(&mut s, 6, with(&|r| r.partition_epoch = 1), E::InvalidUpdateVersion);
    refused(&mut s, 6, with(&|r| r.new_isr = vec![]), E::IneligibleReplica);
    refused(&mut s, 6, with(&|r| r.new_isr = vec![2, 3]), E::IneligibleReplica);
    refused(&mut s, 6, with(&|r| r.new_isr = vec![1, 2, 2]), E::IneligibleReplica);
    refused(&mut s, 6, with(&|r| r.new_isr = vec![1, 4]), E::IneligibleReplica);

    // A fenced replica cannot be added back; one already in sync may stay.
    s.apply(6, &Command::AlterPartition(alter(&s, &[1, 2]))).unwrap();
    s.apply(7, &Command::FenceBroker { id: 3, epoch: 3 }).unwrap();
    let cmd = Command::AlterPartition(alter(&s, &[1, 2, 3]));
    refused(&mut s, 8, cmd, E::IneligibleReplica);
    s.apply(9, &Command::ControlledShutdown { id: 2, epoch: 2 }).unwrap();
    assert_eq!(part(&s).isr, vec![1], "a stopping broker leaves the ISR");
    let cmd = Command::AlterPartition(alter(&s, &[1, 2]));
    refused(&mut s, 10, cmd, E::IneligibleReplica);
    s.apply(11, &Command::RegisterBroker(broker(3))).unwrap();
    let (state, _, _) = outcome_partition(s.apply(12, &Command::AlterPartition(alter(&s, &[1, 3]))));
    assert_eq!(state.isr, vec![1, 3], "registered again: eligible");
}

#[test]
fn given_a_proposal_based_on_an_older_partition_epoch_when_another_change_committed_first_then_it_is_refused() {
    let mut s = cluster(&[1, 2, 3], &[]);
    let stale = alter(&s, &[1, 2]);
    s.apply(6, &Command::FenceBroker { id: 3, epoch: 3 }).unwrap();
    assert_eq!((part(&s).isr, part(&s).partition_epoch), (vec![1, 2], 1));
    refused(&mut s, 7, Command::AlterPartition(stale.clone()), ErrorCode::InvalidUpdateVersion);
    // The leader moved: the old leader's proposal is now from a follower with an old leader epoch.
    s.apply(8, &Command::FenceBroker { id: 1, epoch: 1 }).unwrap();
    refused(&mut s, 9, Command::AlterPartition(stale), ErrorCode::NotLeaderOrFollower);
    let mut old_epoch = alter(&s, &[2]);
    old_epoch.leader_epoch -= 1;
    refused(&mut s, 10, Command::AlterPartition(old_epoch), ErrorCode::FencedLeaderEpoch);
}

#[test]
fn given_a_reassignment_when_the_new_replicas_join_the_isr_then_it_completes_and_the_leader_leaves_removed_replicas() {
    let mut s = cluster(&[1, 2], &[]);
    let before_start = alter(&s, &[1]);
    let (p, _, _) = outcome_partition(s.apply(6, &reassign(Some(&[3, 4]))));
    assert_eq!(p.replicas, vec![3, 4, 1, 2]);
    assert_eq!((p.adding_replicas.clone(), p.removing_replicas.clone()), (vec![3, 4], vec![1, 2]));
    assert_eq!((p.isr.clone(), p.leader, p.leader_epoch, p.partition_epoch), (vec![1, 2], 1, 0, 1));
    assert_eq!(s.image.topic("t").unwrap().replication_factor(), 2, "the target's size");
    refused(&mut s, 7, Command::AlterPartition(before_start), ErrorCode::InvalidUpdateVersion);

    // 3 catches up: still adding 4.
    let (p, _, _) = outcome_partition(s.apply(8, &Command::AlterPartition(alter(&s, &[1, 2, 3]))));
    assert!(p.is_reassigning());
    assert_eq!((p.isr.clone(), p.partition_epoch), (vec![1, 2, 3], 2));
    // 4 catches up: complete, the leader moves off broker 1 to the first in-sync target replica.
    let (p, _, _) = outcome_partition(s.apply(9, &Command::AlterPartition(alter(&s, &[1, 2, 3, 4]))));
    assert_eq!((p.replicas.clone(), p.isr.clone()), (vec![3, 4], vec![3, 4]));
    assert!(!p.is_reassigning());
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (3, 1, 3));
    refused(&mut s, 10, reassign(None), ErrorCode::NoReassignmentInProgress);
}

#[test]
fn given_a_reassignment_in_progress_when_cancelled_then_the_original_replicas_come_back() {
    let mut s = cluster(&[1, 2], &[]);
    s.apply(6, &reassign(Some(&[3, 4]))).unwrap();
    s.apply(7, &Command::AlterPartition(alter(&s, &[1, 2, 3]))).unwrap();
    assert_eq!((part(&s).replicas, part(&s).isr), (vec![3, 4, 1, 2], vec![1, 2, 3]));
    let (p, _, _) = outcome_partition(s.apply(8, &reassign(None)));
    assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader), (vec![1, 2], vec![1, 2], 1));
    assert!(!p.is_reassigning());
    assert_eq!((p.leader_epoch, p.partition_epoch), (0, 3));
}

#[test]
fn given_a_target_equal_to_the_replicas_then_nothing_changes_and_bad_targets_are_refused() {
    let mut s = cluster(&[1, 2], &[("min.insync.replicas", "2")]);
    let (p, _, delta) = outcome_partition(s.apply(6, &reassign(Some(&[1, 2]))));
    assert_eq!(p.partition_epoch, 0);
    assert!(delta.is_empty());
    use ErrorCode as E;
    refused(&mut s, 7, reassign(Some(&[])), E::InvalidReplicaAssignment);
    refused(&mut s, 7, reassign(Some(&[3, 3])), E::InvalidReplicaAssignment);
    refused(&mut s, 7, reassign(Some(&[3, 9])), E::InvalidReplicaAssignment);
    refused(&mut s, 7, reassign(Some(&[3])), E::InvalidReplicaAssignment);
    let mut other = reassign(Some(&[3, 4]));
    if let Command::ReassignPartition { topic_id, .. } = &mut other {
        *topic_id = "old-id".into();
    }
    refused(&mut s, 7, other, E::UnknownTopicOrPartition);
}

#[test]
fn given_a_target_already_in_sync_then_the_move_completes_in_the_same_command() {
    let mut s = cluster(&[1, 2, 3], &[]);
    let (p, _, _) = outcome_partition(s.apply(6, &reassign(Some(&[3, 2]))));
    assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader), (vec![3, 2], vec![2, 3], 3));
    assert!(!p.is_reassigning());
    assert_eq!((p.leader_epoch, p.partition_epoch), (1, 1), "one change, one partition epoch");
}

#[test]
fn given_a_reassignment_when_replicas_are_fenced_then_isr_and_leadership_follow_the_usual_rules() {
    let mut s = cluster(&[1, 2], &[]);
    s.apply(6, &reassign(Some(&[2, 3]))).unwrap();
    s.apply(7, &Command::AlterPartition(alter(&s, &[1, 2, 3]))).unwrap();
    // 3 was the last missing target replica: complete, and 1 (removed) hands over to 2.
    let p = part(&s);
    assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader), (vec![2, 3], vec![2, 3], 2));

    // Next move: adding 4 while 2 leads; fencing the adding replica and the leader.
    s.apply(8, &reassign(Some(&[4, 3]))).unwrap();
    assert_eq!(part(&s).replicas, vec![4, 3, 2]);
    s.apply(9, &Command::AlterPartition(alter(&s, &[2, 3, 4]))).unwrap();
    let p = part(&s);
    assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader, p.leader_epoch), (vec![4, 3], vec![3, 4], 4, 2));

    s.apply(10, &reassign(Some(&[1, 3]))).unwrap();
    s.apply(11, &Command::FenceBroker { id: 1, epoch: 1 }).unwrap();
    let p = part(&s);
    assert_eq!((p.adding_replicas.clone(), p.isr.clone(), p.leader), (vec![1], vec![3, 4], 4), "{p:?}");
    s.apply(12, &Command::FenceBroker { id: 4, epoch: 4 }).unwrap();
    let p = part(&s);
    assert_eq!((p.isr.clone(), p.leader), (vec![3], 3), "the removing leader hands over to the in-sync 3");
    assert!(p.is_reassigning());
    let cmd = Command::AlterPartition(alter(&s, &[3, 1]));
    refused(&mut s, 13, cmd, ErrorCode::IneligibleReplica);
    s.apply(14, &Command::RegisterBroker(broker(1))).unwrap();
    let (p, _, _) = outcome_partition(s.apply(15, &Command::AlterPartition(alter(&s, &[3, 1]))));
    assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader), (vec![1, 3], vec![3, 1], 3));
}

#[test]
fn given_an_unclean_topic_when_a_target_replica_comes_back_alone_then_registration_completes_the_move() {
    let mut s = cluster(&[1], &[("unclean.leader.election.enable", "true")]);
    s.apply(6, &reassign(Some(&[2]))).unwrap();
    s.apply(7, &Command::FenceBroker { id: 2, epoch: 2 }).unwrap();
    s.apply(8, &Command::FenceBroker { id: 1, epoch: 1 }).unwrap();
    let p = part(&s);
    assert_eq!((p.leader, p.isr.clone()), (-1, vec![1]));
    s.apply(9, &Command::RegisterBroker(broker(2))).unwrap();
    let p = part(&s);
    assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader), (vec![2], vec![2], 2));
    assert!(!p.is_reassigning());
}

#[test]
fn partition_state_without_reassignment_fields_decodes() {
    let old = r#"{"partition":0,"replicas":[1],"isr":[1],"leader":1,"leader_epoch":0,"partition_epoch":0}"#;
    let p: PartitionState = serde_json::from_str(old).unwrap();
    assert_eq!(p, PartitionState::new(0, vec![1]));
}
