//! Partition changes asked for by brokers and operators, as the state machine applies them: ISR
//! changes proposed by partition leaders (Kafka's AlterPartition, KIP-497 and KIP-841) and replica
//! reassignment (KIP-455).
//!
//! # AlterPartition
//! A leader proposes a new ISR together with the broker epoch, leader epoch and partition epoch
//! its view is based on. [`check_alter`] accepts it only if all three are the current ones, so a
//! proposal raced by another change (a fencing, a reassignment, an election) is refused with
//! `INVALID_UPDATE_VERSION` or `FENCED_LEADER_EPOCH` instead of undoing that change. A replica
//! joining the ISR must be registered and alive (KIP-841: a fenced or stopping broker cannot
//! come back in through a stale leader view).
//!
//! # Reassignment
//! [`start`] sets `replicas` to the target followed by the old replicas not in it, with
//! `adding_replicas = target − old` and `removing_replicas = old − target` (old: the replicas
//! before any reassignment in progress, `replicas − adding_replicas`). Brokers host every
//! replica in `replicas`, so the new ones start fetching from the leader, which adds them to the
//! ISR through AlterPartition once they have caught up. Whenever the ISR may have grown,
//! [`maybe_complete`] checks whether every target replica is in sync; then `replicas` becomes the
//! target, the ISR keeps only target replicas, and a leader outside the target hands over to the
//! first in-sync, live target replica. [`cancel`] reverts to `replicas − adding_replicas` (in the
//! merged order, as Kafka does: a reorder by the reassignment is not undone).
//!
//! Nothing here touches the partition epoch: the state machine bumps it once per committed command
//! that changed the partition. A leader change bumps the leader epoch here.

use crate::election;
use crate::error::MetadataError;
use crate::model::{AlterPartition, BrokerId, ClusterImage, PartitionState, TopicMetadata};

/// The first broker listed twice in `ids`.
fn duplicate(ids: &[BrokerId]) -> Option<BrokerId> {
    ids.iter().enumerate().find(|(i, b)| ids[..*i].contains(b)).map(|(_, b)| *b)
}

fn ids(ids: &[BrokerId]) -> String {
    let ids: Vec<String> = ids.iter().map(BrokerId::to_string).collect();
    format!("[{}]", ids.join(","))
}

/// Checks a leader's ISR proposal `r` against partition `p` of topic `topic` as it is now.
///
/// In order: the sender leads the partition (`NOT_LEADER_OR_FOLLOWER`) with its registered broker
/// epoch (`STALE_BROKER_EPOCH`); the leader epoch (`FENCED_LEADER_EPOCH`) and partition epoch
/// (`INVALID_UPDATE_VERSION`) are the current ones; the new ISR is non-empty, holds the leader,
/// lists each broker once, only replicas, and every broker it adds is registered, unfenced and
/// not shutting down (`INELIGIBLE_REPLICA`).
pub fn check_alter(
    image: &ClusterImage,
    topic: &str,
    p: &PartitionState,
    r: &AlterPartition,
) -> Result<(), MetadataError> {
    let (t, partition) = (|| topic.to_string(), p.partition);
    if p.leader != r.broker_id {
        return Err(MetadataError::NotLeader { topic: t(), partition, broker: r.broker_id, leader: p.leader });
    }
    let registered = image.brokers.get(&r.broker_id).ok_or(MetadataError::BrokerNotRegistered { id: r.broker_id })?;
    if registered.epoch != r.broker_epoch {
        return Err(MetadataError::StaleBrokerEpoch {
            id: r.broker_id,
            expected: registered.epoch,
            got: r.broker_epoch,
        });
    }
    if r.leader_epoch != p.leader_epoch {
        return Err(MetadataError::FencedLeaderEpoch {
            topic: t(),
            partition,
            current: p.leader_epoch,
            got: r.leader_epoch,
        });
    }
    if r.partition_epoch != p.partition_epoch {
        return Err(MetadataError::InvalidUpdateVersion {
            topic: t(),
            partition,
            current: p.partition_epoch,
            got: r.partition_epoch,
        });
    }
    let ineligible = |reason: String| MetadataError::IneligibleReplica { topic: t(), partition, reason };
    if r.new_isr.is_empty() {
        return Err(ineligible("the ISR cannot be empty".into()));
    }
    if !r.new_isr.contains(&p.leader) {
        return Err(ineligible(format!("the ISR {} must contain the leader {}", ids(&r.new_isr), p.leader)));
    }
    if let Some(b) = duplicate(&r.new_isr) {
        return Err(ineligible(format!("broker {b} is listed twice in {}", ids(&r.new_isr))));
    }
    if let Some(b) = r.new_isr.iter().find(|b| !p.replicas.contains(b)) {
        return Err(ineligible(format!("broker {b} is not a replica (replicas: {})", ids(&p.replicas))));
    }
    for b in r.new_isr.iter().filter(|b| !p.isr.contains(b)) {
        match image.brokers.get(b) {
            None => return Err(ineligible(format!("broker {b} is not registered"))),
            Some(reg) if reg.fenced => return Err(ineligible(format!("broker {b} is fenced or shutting down"))),
            Some(_) => {}
        }
    }
    Ok(())
}

/// What the active controller can answer from its own image without a log entry: `Some(Ok(p))`
/// when the proposal would change nothing, `Some(Err(e))` when it is based on epochs older than
/// the image's (epochs only grow: it can never succeed), `None` when it must be decided at commit.
pub fn precheck_alter(image: &ClusterImage, r: &AlterPartition) -> Option<Result<PartitionState, MetadataError>> {
    let t = image.topic(&r.topic).filter(|t| t.id == r.topic_id)?;
    let p = t.partitions.get(usize::try_from(r.partition).ok()?)?;
    match check_alter(image, &r.topic, p, r) {
        Ok(()) if p.isr == r.new_isr => Some(Ok(p.clone())),
        Ok(()) => None,
        Err(e) if r.leader_epoch < p.leader_epoch || r.partition_epoch < p.partition_epoch => Some(Err(e)),
        Err(_) => None,
    }
}

/// Checks a reassignment target for partition `p` of `topic`: non-empty, each broker once, every
/// broker registered, and enough replicas for the topic's `min.insync.replicas`
/// (`INVALID_REPLICA_ASSIGNMENT` otherwise).
pub fn check_target(
    image: &ClusterImage,
    topic: &TopicMetadata,
    p: &PartitionState,
    target: &[BrokerId],
) -> Result<(), MetadataError> {
    let invalid = |reason: String| MetadataError::InvalidReplicaAssignment {
        topic: topic.name.clone(),
        partition: p.partition,
        reason,
    };
    if target.is_empty() {
        return Err(invalid("the target replica list is empty".into()));
    }
    if let Some(b) = duplicate(target) {
        return Err(invalid(format!("broker {b} is listed twice in {}", ids(target))));
    }
    if let Some(b) = target.iter().find(|b| !image.brokers.contains_key(b)) {
        return Err(invalid(format!("broker {b} is not registered")));
    }
    let min_isr = topic.configs.get("min.insync.replicas").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1);
    if target.len() < min_isr {
        return Err(invalid(format!(
            "{} replica(s) cannot satisfy the topic's min.insync.replicas={min_isr}",
            target.len()
        )));
    }
    Ok(())
}

/// Starts moving `p` to the (checked) `target` replicas, and completes the move at once when every
/// target replica is already in sync.
///
/// The move starts from the replicas the partition had before any reassignment in progress
/// (`replicas − adding_replicas`), as Kafka's controller does: sending the same target again
/// changes nothing, and a new target replaces the one in progress, dropping the replicas only
/// that one was adding (they leave the ISR and leadership too). A target equal to the replicas
/// with no reassignment in progress changes nothing. Refused with `INVALID_REPLICA_ASSIGNMENT`
/// when no in-sync replica would remain.
pub fn start(
    topic: &TopicMetadata,
    p: &mut PartitionState,
    target: &[BrokerId],
    alive: &dyn Fn(BrokerId) -> bool,
) -> Result<(), MetadataError> {
    let original: Vec<BrokerId> = p.replicas.iter().copied().filter(|b| !p.adding_replicas.contains(b)).collect();
    let mut replicas = target.to_vec();
    replicas.extend(original.iter().copied().filter(|b| !target.contains(b)));
    let isr: Vec<BrokerId> = p.isr.iter().copied().filter(|b| replicas.contains(b)).collect();
    if isr.is_empty() {
        return Err(MetadataError::InvalidReplicaAssignment {
            topic: topic.name.clone(),
            partition: p.partition,
            reason: format!(
                "no in-sync replica would remain: the ISR {} holds only replicas the reassignment in progress was adding",
                ids(&p.isr)
            ),
        });
    }
    p.adding_replicas = target.iter().copied().filter(|b| !original.contains(b)).collect();
    p.removing_replicas = original.iter().copied().filter(|b| !target.contains(b)).collect();
    p.replicas = replicas;
    p.isr = isr;
    lead_from_replicas(p, alive);
    maybe_complete(p, alive);
    Ok(())
}

/// Completes the reassignment in progress if every target replica is in the ISR. Returns whether
/// it did.
pub fn maybe_complete(p: &mut PartitionState, alive: &dyn Fn(BrokerId) -> bool) -> bool {
    if !p.is_reassigning() {
        return false;
    }
    let target = p.target_replicas();
    if !target.iter().all(|b| p.isr.contains(b)) {
        return false;
    }
    p.isr.retain(|b| target.contains(b));
    p.replicas = target;
    p.adding_replicas.clear();
    p.removing_replicas.clear();
    lead_from_replicas(p, alive);
    true
}

/// Cancels the reassignment in progress: back to `replicas − adding_replicas`, with the ISR
/// restricted to them. When none of those is in sync, only a topic allowing unclean election may
/// cancel (its first live original replica becomes the whole ISR).
pub fn cancel(
    topic: &TopicMetadata,
    p: &mut PartitionState,
    alive: &dyn Fn(BrokerId) -> bool,
) -> Result<(), MetadataError> {
    if !p.is_reassigning() {
        return Err(MetadataError::NoReassignmentInProgress { topic: topic.name.clone(), partition: p.partition });
    }
    let original: Vec<BrokerId> = p.replicas.iter().copied().filter(|b| !p.adding_replicas.contains(b)).collect();
    let mut isr: Vec<BrokerId> = p.isr.iter().copied().filter(|b| original.contains(b)).collect();
    if isr.is_empty() {
        if !election::unclean_allowed(topic) {
            return Err(MetadataError::InvalidReplicaAssignment {
                topic: topic.name.clone(),
                partition: p.partition,
                reason: format!(
                    "cancelling needs an unclean leader election: none of the original replicas {} is in the ISR {}",
                    ids(&original),
                    ids(&p.isr)
                ),
            });
        }
        isr.push(original.iter().copied().find(|b| alive(*b)).unwrap_or(original[0]));
    }
    p.replicas = original;
    p.isr = isr;
    p.adding_replicas.clear();
    p.removing_replicas.clear();
    lead_from_replicas(p, alive);
    Ok(())
}

/// A leader that is no longer a replica (or no leader at all) gives way to the first replica, in
/// preference order, that is in the ISR and alive (none: no leader). Bumps the leader epoch when
/// the leader changes.
fn lead_from_replicas(p: &mut PartitionState, alive: &dyn Fn(BrokerId) -> bool) {
    if p.leader != -1 && p.replicas.contains(&p.leader) && p.isr.contains(&p.leader) {
        return;
    }
    let next = p.replicas.iter().copied().find(|b| p.isr.contains(b) && alive(*b)).unwrap_or(-1);
    if next != p.leader {
        p.leader = next;
        p.leader_epoch += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionState {
        PartitionState { isr: isr.to_vec(), leader, ..PartitionState::new(0, replicas.to_vec()) }
    }

    fn topic(configs: &[(&str, &str)]) -> TopicMetadata {
        TopicMetadata {
            name: "t".into(),
            id: "id-t".into(),
            partitions: vec![],
            configs: configs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn start_merges_target_first_then_old_replicas() {
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        start(&topic(&[]), &mut p, &[3, 4, 5], &|_| true).unwrap();
        assert_eq!(p.replicas, vec![3, 4, 5, 1, 2]);
        assert_eq!((p.adding_replicas.clone(), p.removing_replicas.clone()), (vec![4, 5], vec![1, 2]));
        assert_eq!((p.leader, p.leader_epoch), (1, 0), "the leader stays until the move completes");
        assert_eq!(p.target_replicas(), vec![3, 4, 5]);
        assert_eq!(p.replication_factor(), 3);
        let again = p.clone();
        start(&topic(&[]), &mut p, &[3, 4, 5], &|_| true).unwrap();
        assert_eq!(p, again, "the same target again changes nothing");
    }

    #[test]
    fn a_new_target_replaces_the_move_in_progress_from_the_original_replicas() {
        let mut p = part(&[1, 2], &[1, 2], 1);
        start(&topic(&[]), &mut p, &[3, 4], &|_| true).unwrap();
        p.isr = vec![1, 2, 3];
        start(&topic(&[]), &mut p, &[1, 5], &|_| true).unwrap();
        assert_eq!((p.replicas.clone(), p.isr.clone()), (vec![1, 5, 2], vec![1, 2]), "3 and 4 are dropped");
        assert_eq!((p.adding_replicas.clone(), p.removing_replicas.clone()), (vec![5], vec![2]));
        // A leader only the replaced move had added hands over.
        let mut p = part(&[1, 2], &[1, 2], 1);
        start(&topic(&[]), &mut p, &[3, 2], &|_| true).unwrap();
        (p.isr, p.leader) = (vec![2, 3], 3);
        start(&topic(&[]), &mut p, &[2, 4], &|_| true).unwrap();
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader, p.leader_epoch), (vec![2, 4, 1], vec![2], 2, 1));
        // No in-sync replica would remain.
        let mut p = part(&[1], &[1], 1);
        start(&topic(&[]), &mut p, &[3], &|_| true).unwrap();
        (p.isr, p.leader) = (vec![3], 3);
        let e = start(&topic(&[]), &mut p, &[4], &|_| true).unwrap_err();
        assert!(matches!(e, MetadataError::InvalidReplicaAssignment { .. }), "{e}");
    }

    #[test]
    fn a_target_already_in_sync_completes_at_once_and_moves_the_leader() {
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        start(&topic(&[]), &mut p, &[2, 3], &|_| true).unwrap();
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader, p.leader_epoch), (vec![2, 3], vec![2, 3], 2, 1));
        assert!(!p.is_reassigning());
        let done = p.clone();
        start(&topic(&[]), &mut p, &[2, 3], &|_| true).unwrap();
        assert_eq!(p, done, "the same replicas again: nothing to do");
    }

    #[test]
    fn completion_elects_a_live_target_replica() {
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        start(&topic(&[]), &mut p, &[4, 2], &|_| true).unwrap();
        p.isr = vec![1, 2, 4];
        assert!(maybe_complete(&mut p, &|b| b != 4));
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader), (vec![4, 2], vec![2, 4], 2));
    }

    #[test]
    fn cancel_reverts_to_the_original_replicas() {
        let mut p = part(&[1, 2], &[1, 2], 1);
        start(&topic(&[]), &mut p, &[3, 4], &|_| true).unwrap();
        p.isr = vec![1, 2, 3];
        cancel(&topic(&[]), &mut p, &|_| true).unwrap();
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader), (vec![1, 2], vec![1, 2], 1));
        assert!(matches!(cancel(&topic(&[]), &mut p, &|_| true), Err(MetadataError::NoReassignmentInProgress { .. })));
    }

    #[test]
    fn cancel_without_an_original_replica_in_sync_needs_unclean_election() {
        let mut p = part(&[1, 2], &[1, 2], 1);
        start(&topic(&[]), &mut p, &[2, 3], &|_| true).unwrap();
        // 3 caught up and leads; 1 and 2 fell out of the ISR.
        p.isr = vec![3];
        p.leader = 3;
        let alive = |b: i32| b != 1;
        let mut q = p.clone();
        assert!(matches!(cancel(&topic(&[]), &mut q, &alive), Err(MetadataError::InvalidReplicaAssignment { .. })));
        cancel(&topic(&[("unclean.leader.election.enable", "true")]), &mut p, &alive).unwrap();
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader), (vec![2, 1], vec![2], 2));
    }

    #[test]
    fn targets_must_be_registered_distinct_and_enough_for_min_isr() {
        let mut image = ClusterImage::default();
        for id in [1, 2, 3] {
            image.brokers.insert(id, crate::model::BrokerRegistration::new(id, "h:1", None));
        }
        let p = part(&[1, 2], &[1, 2], 1);
        let t = topic(&[("min.insync.replicas", "2")]);
        assert!(check_target(&image, &t, &p, &[3, 2]).is_ok());
        for bad in [&[][..], &[1, 1], &[1, 9], &[3]] {
            let e = check_target(&image, &t, &p, bad).unwrap_err();
            assert!(matches!(e, MetadataError::InvalidReplicaAssignment { .. }), "{bad:?}: {e}");
        }
    }
}
