//! Specifications of the heartbeat state machine, run against a model of KIP-848 clients: a
//! client owns what its last answer assigned it and reports that in its next heartbeat.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::groups::consumer_group::GroupState;

/// The coordinator's group plus the clients' view of it.
struct Sim {
    group: ConsumerGroup,
    topics: BTreeMap<String, i32>,
    next_id: u32,
    /// Each live client's member epoch and the partitions it believes it owns.
    clients: BTreeMap<String, (i32, TopicPartitions)>,
}

fn subscribe(topics: &[&str]) -> HeartbeatRequest {
    HeartbeatRequest {
        subscribed_topics: Some(topics.iter().map(|t| t.to_string()).collect()),
        rebalance_timeout_ms: Some(30_000),
        ..HeartbeatRequest::default()
    }
}

fn parts(list: &[(&str, &[i32])]) -> TopicPartitions {
    list.iter().map(|(t, ps)| (t.to_string(), ps.iter().copied().collect())).collect()
}

fn count(p: &TopicPartitions) -> usize {
    p.values().map(BTreeSet::len).sum()
}

impl Sim {
    fn new(topics: &[(&str, i32)]) -> Self {
        Self {
            group: ConsumerGroup::new("g"),
            topics: topics.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
            next_id: 0,
            clients: BTreeMap::new(),
        }
    }

    /// Sends `req` and, when accepted, makes the records durable and updates the client.
    fn send(&mut self, req: HeartbeatRequest) -> Result<HeartbeatDecision, GroupError> {
        let next = &mut self.next_id;
        let d = heartbeat(&self.group, &req, &self.topics, || {
            *next += 1;
            format!("m{next}")
        })?;
        for (k, v) in &d.records {
            self.group.replay(k, v.as_ref());
        }
        if d.member_epoch < 0 {
            self.clients.remove(&d.member_id);
        } else {
            let client = self.clients.entry(d.member_id.clone()).or_default();
            client.0 = d.member_epoch;
            if let Some(a) = &d.assignment {
                client.1 = a.clone();
            }
        }
        self.check_invariants();
        Ok(d)
    }

    fn join(&mut self, topics: &[&str]) -> HeartbeatDecision {
        self.send(subscribe(topics)).unwrap()
    }

    /// A regular heartbeat of a live client, reporting what it owns.
    fn beat(&mut self, member: &str) -> HeartbeatDecision {
        let (epoch, owned) = self.clients[member].clone();
        let req = HeartbeatRequest {
            member_id: member.into(),
            member_epoch: epoch,
            owned: Some(owned),
            ..HeartbeatRequest::default()
        };
        self.send(req).unwrap()
    }

    /// Heartbeats every client until nothing changes (bounded).
    fn settle(&mut self) {
        for _ in 0..10 {
            let before = self.group.clone();
            for m in self.clients.keys().cloned().collect::<Vec<_>>() {
                self.beat(&m);
            }
            if self.group == before {
                return;
            }
        }
        panic!("the group did not settle: {:#?}", self.group);
    }

    /// No partition is held by two members, on the coordinator (owned or being revoked) or by
    /// the clients.
    fn check_invariants(&self) {
        let mut seen = BTreeSet::new();
        for m in self.group.members.values() {
            for (t, ps) in m.assigned.iter().chain(m.pending_revocation.iter()) {
                for p in ps {
                    assert!(seen.insert((t.clone(), *p)), "{t}-{p} held twice on the coordinator: {:#?}", self.group);
                }
            }
        }
        let mut seen = BTreeSet::new();
        for (id, (_, owned)) in &self.clients {
            for (t, ps) in owned {
                for p in ps {
                    assert!(seen.insert((t.clone(), *p)), "{t}-{p} owned by two clients (one is {id})");
                }
            }
        }
    }

    fn owned(&self, member: &str) -> TopicPartitions {
        self.clients[member].1.clone()
    }
}

#[test]
fn a_first_member_gets_every_partition_at_epoch_one() {
    let mut sim = Sim::new(&[("orders", 6)]);
    let d = sim.join(&["orders"]);
    assert_eq!(d.member_id, "m1");
    assert_eq!(d.member_epoch, 1);
    assert_eq!(d.assignment, Some(parts(&[("orders", &[0, 1, 2, 3, 4, 5])])));
    let kinds: Vec<_> = d.records.iter().map(|(k, _)| std::mem::discriminant(k)).collect();
    assert_eq!(kinds.len(), 5, "member, group epoch, target, target epoch, current: {:?}", d.records);
    assert_eq!(sim.group.state(), GroupState::Stable);
    let again = sim.beat("m1");
    assert!(again.records.is_empty(), "a steady heartbeat writes nothing");
    assert_eq!(again.assignment, None, "and resends nothing");
}

#[test]
fn a_second_member_gets_half_only_after_the_first_releases_it() {
    let mut sim = Sim::new(&[("orders", 6)]);
    sim.join(&["orders"]);
    let b = sim.join(&["orders"]);
    assert_eq!(b.member_epoch, 2);
    assert_eq!(b.assignment, Some(TopicPartitions::new()), "nothing is free yet");
    assert_eq!(sim.group.members["m2"].state, MemberState::UnreleasedPartitions);
    assert!(b.converging, "a member waiting for partitions is told to heartbeat sooner");

    let a = sim.beat("m1");
    assert_eq!(a.member_epoch, 1, "revocation first, at the old epoch");
    assert!(a.converging, "so is a member that must revoke");
    assert_eq!(count(&sim.owned("m1")), 3);
    assert_eq!(sim.group.members["m1"].state, MemberState::UnrevokedPartitions);
    // The revoked partitions are not given out before the owner acknowledges.
    assert_eq!(sim.beat("m2").assignment, None);
    assert!(sim.owned("m2").is_empty());

    let a = sim.beat("m1");
    assert_eq!(a.member_epoch, 2, "acknowledged: the new epoch");
    let b = sim.beat("m2");
    assert!(!b.converging, "a member that owns its target is not");
    assert_eq!(b.assignment.map(|a| count(&a)), Some(3));
    assert_eq!(sim.group.state(), GroupState::Stable);
}

#[test]
fn adding_a_member_never_takes_a_partition_from_a_member_that_keeps_it() {
    let mut sim = Sim::new(&[("orders", 12)]);
    sim.join(&["orders"]);
    sim.join(&["orders"]);
    sim.settle();
    let before: BTreeMap<_, _> = sim.clients.iter().map(|(id, (_, o))| (id.clone(), o.clone())).collect();
    sim.join(&["orders"]);
    // Every intermediate ownership of the old members is a superset of what they end with.
    for _ in 0..10 {
        for m in ["m1", "m2"] {
            sim.beat(m);
            let now = sim.owned(m);
            let kept = intersection(&before[m], &now);
            assert_eq!(kept, now, "{m} only loses partitions, never trades them");
        }
        sim.beat("m3");
    }
    sim.settle();
    for m in ["m1", "m2", "m3"] {
        assert_eq!(count(&sim.owned(m)), 4, "{m}");
    }
    let moved: usize = ["m1", "m2"].iter().map(|m| count(&difference(&before[*m], &sim.owned(m)))).sum();
    assert_eq!(moved, 4, "only the new member's share moved");
}

#[test]
fn a_leaving_member_gives_its_partitions_to_the_others() {
    let mut sim = Sim::new(&[("orders", 6)]);
    sim.join(&["orders"]);
    sim.join(&["orders"]);
    sim.settle();
    let epoch = sim.group.epoch;
    let (e, _) = sim.clients["m2"].clone();
    let left =
        sim.send(HeartbeatRequest { member_id: "m2".into(), member_epoch: LEAVE_EPOCH, ..Default::default() }).unwrap();
    assert_eq!(left.member_epoch, LEAVE_EPOCH);
    assert!(e > 0);
    assert_eq!(sim.group.epoch, epoch + 1);
    assert!(!sim.group.members.contains_key("m2"));
    sim.settle();
    assert_eq!(count(&sim.owned("m1")), 6);
}

#[test]
fn a_removed_member_by_timeout_is_fenced_and_its_commits_refused() {
    let mut sim = Sim::new(&[("orders", 4)]);
    sim.join(&["orders"]);
    sim.join(&["orders"]);
    sim.settle();
    let (epoch, owned) = sim.clients["m2"].clone();
    let (topic, ps) = owned.iter().next().unwrap();
    let p = *ps.iter().next().unwrap();
    assert_eq!(validate_commit(&sim.group, "m2", epoch, topic, p), Ok(()));
    for (k, v) in remove_member(&sim.group, "m2") {
        sim.group.replay(&k, v.as_ref());
    }
    assert!(remove_member(&sim.group, "m2").is_empty());
    assert!(matches!(validate_commit(&sim.group, "m2", epoch, topic, p), Err(GroupError::UnknownMemberId { .. })));
    let zombie = HeartbeatRequest { member_id: "m2".into(), member_epoch: epoch, ..Default::default() };
    assert!(matches!(sim.send(zombie), Err(GroupError::UnknownMemberId { .. })));
    sim.clients.remove("m2");
    sim.settle();
    assert_eq!(count(&sim.owned("m1")), 4);
}

#[test]
fn commits_are_fenced_by_epoch_and_ownership() {
    let mut sim = Sim::new(&[("orders", 2)]);
    sim.join(&["orders"]);
    let g = &sim.group;
    assert!(matches!(
        validate_commit(g, "m1", 0, "orders", 0),
        Err(GroupError::StaleMemberEpoch { sent: 0, current: 1, .. })
    ));
    assert!(matches!(validate_commit(g, "m1", 1, "orders", 7), Err(GroupError::NotAssigned { partition: 7, .. })));
    assert!(
        matches!(validate_commit(g, "", -1, "orders", 0), Err(GroupError::UnknownMemberId { .. })),
        "assign() commits only to an empty group"
    );
    assert_eq!(validate_commit(&ConsumerGroup::new("g"), "", -1, "orders", 0), Ok(()));
}

#[test]
fn a_static_member_restarting_gets_its_partitions_back_without_a_rebalance() {
    let mut sim = Sim::new(&[("orders", 6)]);
    let mut req = subscribe(&["orders"]);
    req.instance_id = Some("host-a".into());
    sim.send(req.clone()).unwrap();
    sim.join(&["orders"]);
    sim.settle();
    let epoch = sim.group.epoch;
    let before = sim.owned("m1");
    let member_epoch = sim.clients["m1"].0;

    // kill -9 and restart: a new member id, epoch 0, the same instance id.
    sim.clients.remove("m1");
    req.member_id = "m1-restarted".into();
    let d = sim.send(req.clone()).unwrap();
    assert_eq!(d.member_id, "m1-restarted");
    assert_eq!(d.assignment, Some(before), "same partitions");
    assert_eq!(d.member_epoch, member_epoch, "same member epoch");
    assert_eq!(sim.group.epoch, epoch, "no group epoch bump");
    assert!(!sim.group.members.contains_key("m1"));

    // The old incarnation, if it were still alive, is fenced.
    let old = HeartbeatRequest {
        member_id: "m1".into(),
        member_epoch,
        instance_id: Some("host-a".into()),
        ..Default::default()
    };
    assert_eq!(sim.send(old), Err(GroupError::FencedInstanceId { instance: "host-a".into() }));
}

#[test]
fn a_static_member_leaving_temporarily_keeps_its_partitions() {
    let mut sim = Sim::new(&[("orders", 4)]);
    let mut req = subscribe(&["orders"]);
    req.instance_id = Some("host-a".into());
    sim.send(req.clone()).unwrap();
    sim.join(&["orders"]);
    sim.settle();
    let before = sim.owned("m1");
    let (epoch, _) = sim.clients["m1"].clone();
    let leave = HeartbeatRequest {
        member_id: "m1".into(),
        member_epoch: STATIC_LEFT_EPOCH,
        instance_id: Some("host-a".into()),
        ..Default::default()
    };
    let group_epoch = sim.group.epoch;
    assert_eq!(sim.send(leave).unwrap().member_epoch, STATIC_LEFT_EPOCH);
    assert_eq!(sim.group.epoch, group_epoch, "no rebalance");
    sim.settle();
    assert_eq!(count(&sim.owned("m2")), 2, "the other member does not take them");
    req.member_id = "m1-back".into();
    let back = sim.send(req).unwrap();
    assert_eq!(back.assignment, Some(before));
    assert_eq!(back.member_epoch, epoch);
}

#[test]
fn a_lost_answer_lets_the_member_retry_with_its_previous_epoch() {
    let mut sim = Sim::new(&[("orders", 2)]);
    sim.join(&["orders"]);
    sim.join(&["orders"]);
    sim.settle();
    let m = sim.group.members["m1"].clone();
    let retry = HeartbeatRequest {
        member_id: "m1".into(),
        member_epoch: m.previous_epoch,
        owned: Some(m.assigned.clone()),
        ..Default::default()
    };
    assert!(sim.send(retry).is_ok());
    let ahead = HeartbeatRequest { member_id: "m1".into(), member_epoch: m.epoch + 5, ..Default::default() };
    assert!(matches!(sim.send(ahead), Err(GroupError::FencedMemberEpoch { .. })));
}

#[test]
fn bad_heartbeats_are_refused_with_what_was_wrong_and_write_nothing() {
    let mut sim = Sim::new(&[("orders", 2)]);
    sim.join(&["orders"]);
    let before = sim.group.clone();
    let mut bad_assignor = subscribe(&["orders"]);
    bad_assignor.server_assignor = Some("roundrobin".into());
    let mut bad_regex = subscribe(&[]);
    bad_regex.subscribed_regex = Some("orders(".into());
    let cases = [
        (HeartbeatRequest { member_id: "nobody".into(), member_epoch: 1, ..Default::default() }, "is not in group"),
        (bad_assignor, "unsupported assignor"),
        (bad_regex, "invalid subscription pattern"),
        (subscribe(&[]), "must subscribe"),
        (HeartbeatRequest { member_id: "m1".into(), member_epoch: -3, ..Default::default() }, "not valid"),
        (HeartbeatRequest { member_id: "m1".into(), member_epoch: 9, ..Default::default() }, "rejoin"),
    ];
    for (req, expected) in cases {
        let err = sim.send(req).unwrap_err();
        assert!(err.to_string().contains(expected), "{err} should say {expected:?}");
    }
    assert_eq!(sim.group, before);
}

#[test]
fn a_pattern_follows_topics_created_later_and_skips_internal_ones() {
    let mut sim = Sim::new(&[("orders-us", 2), ("audit", 2), ("__consumer_offsets", 50)]);
    let mut req = subscribe(&[]);
    req.subscribed_regex = Some("orders-.*|__.*".into());
    let d = sim.send(req).unwrap();
    assert_eq!(d.assignment, Some(parts(&[("orders-us", &[0, 1])])));
    let epoch = sim.group.epoch;
    sim.topics.insert("orders-eu".into(), 3);
    sim.settle();
    assert_eq!(sim.group.epoch, epoch + 1, "a new matching topic bumps the group epoch");
    assert_eq!(sim.owned("m1"), parts(&[("orders-eu", &[0, 1, 2]), ("orders-us", &[0, 1])]));
    sim.topics.insert("orders-us".into(), 4);
    sim.settle();
    assert_eq!(count(&sim.owned("m1")), 7, "grown partitions are assigned");
    sim.topics.remove("orders-eu");
    sim.settle();
    assert_eq!(sim.owned("m1"), parts(&[("orders-us", &[0, 1, 2, 3])]), "a deleted topic is revoked");
}

#[derive(Debug, Clone)]
enum Op {
    Join(u8),
    Beat(u8),
    Leave(u8),
    Expire(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => any::<u8>().prop_map(Op::Join),
        6 => any::<u8>().prop_map(Op::Beat),
        1 => any::<u8>().prop_map(Op::Leave),
        1 => any::<u8>().prop_map(Op::Expire),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever members join, heartbeat, leave or time out, no partition is ever held twice,
    /// and once everyone keeps heartbeating the group settles with every partition owned once.
    #[test]
    fn any_history_keeps_ownership_exclusive_and_settles(ops in proptest::collection::vec(op(), 1..60)) {
        let mut sim = Sim::new(&[("a", 5), ("b", 3)]);
        let pick = |sim: &Sim, i: u8| sim.clients.keys().nth(i as usize % sim.clients.len().max(1)).cloned();
        for op in ops {
            match op {
                Op::Join(t) => {
                    let topics: &[&str] = match t % 3 { 0 => &["a"], 1 => &["b"], _ => &["a", "b"] };
                    sim.join(topics);
                }
                Op::Beat(i) => if let Some(m) = pick(&sim, i) { sim.beat(&m); },
                Op::Leave(i) => if let Some(m) = pick(&sim, i) {
                    let req = HeartbeatRequest { member_id: m, member_epoch: LEAVE_EPOCH, ..Default::default() };
                    sim.send(req).unwrap();
                },
                Op::Expire(i) => if let Some(m) = pick(&sim, i) {
                    for (k, v) in remove_member(&sim.group, &m) {
                        sim.group.replay(&k, v.as_ref());
                    }
                    sim.clients.remove(&m);
                    sim.check_invariants();
                },
            }
        }
        sim.settle();
        prop_assert!(matches!(sim.group.state(), GroupState::Stable | GroupState::Empty));
        // Every partition of a topic someone subscribes to is owned by exactly one client.
        let subscribed: BTreeSet<&str> = sim.group.members.values().flat_map(|m| m.meta.subscribed_topics.iter().map(String::as_str)).collect();
        let owned: usize = sim.clients.values().map(|(_, o)| count(o)).sum();
        let expected: i32 = subscribed.iter().map(|t| sim.topics[*t]).sum();
        prop_assert_eq!(owned, expected as usize);
    }
}
