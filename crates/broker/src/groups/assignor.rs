//! Server-side partition assignors (Kafka 4's KIP-848 model): the coordinator computes each
//! member's target partitions; members then converge on it incrementally.
//!
//! An [`Assignor`] is a pure function of the group's members (their subscriptions and what they
//! own now) and the partition counts of the subscribed topics. Both assignors here are sticky: a
//! member keeps every partition it owns that it may still own, so a rebalance moves only the
//! partitions that must move. The trait is small on purpose, so the classic protocol's
//! client-side assignors (JoinGroup/SyncGroup) can sit beside these in the same coordinator.

use std::collections::{BTreeMap, BTreeSet};

/// A member id.
pub type MemberId = String;

/// Partitions by topic.
pub use crate::coordinator::codec::TopicPartitions;

/// One member as an assignor sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberSpec {
    /// The topics it subscribes to (a regex subscription already resolved to names).
    pub subscribed: BTreeSet<String>,
    /// Its rack, when it has one.
    pub rack: Option<String>,
    /// The partitions it owns now (its current target assignment).
    pub owned: TopicPartitions,
}

/// What an assignor computes from.
#[derive(Debug, Clone, Default)]
pub struct GroupSpec {
    /// Members by id.
    pub members: BTreeMap<MemberId, MemberSpec>,
    /// Partition count of every subscribed topic that exists (others are ignored).
    pub topics: BTreeMap<String, i32>,
}

/// Each member's target partitions (every member of the spec appears, possibly with none).
pub type TargetAssignment = BTreeMap<MemberId, TopicPartitions>;

/// A server-side assignor.
pub trait Assignor: Send + Sync {
    /// Its name, as members ask for it (`group.remote.assignor`).
    fn name(&self) -> &'static str;

    /// Computes every member's target partitions. Each partition of a subscribed topic goes to
    /// exactly one member that subscribes to its topic.
    fn assign(&self, spec: &GroupSpec) -> TargetAssignment;
}

/// The assignor named `name`, if there is one (`uniform`, the default, or `range`).
pub fn by_name(name: &str) -> Option<&'static dyn Assignor> {
    match name {
        "" | "uniform" => Some(&Uniform),
        "range" => Some(&Range),
        _ => None,
    }
}

/// Spreads all partitions evenly over the members that may take them, keeping what each owns.
///
/// With every member subscribed to the same topics, member sizes differ by at most one. With
/// different subscriptions, a partition moves only to a member with at least two fewer
/// partitions that subscribes to its topic, until no such move exists.
#[derive(Debug, Clone, Copy, Default)]
pub struct Uniform;

impl Assignor for Uniform {
    fn name(&self) -> &'static str {
        "uniform"
    }

    fn assign(&self, spec: &GroupSpec) -> TargetAssignment {
        let mut owner: BTreeMap<(String, i32), MemberId> = BTreeMap::new();
        let mut counts: BTreeMap<MemberId, usize> = spec.members.keys().map(|m| (m.clone(), 0)).collect();
        // Keep what members own and may still own (first claimant wins a disputed partition).
        for (id, m) in &spec.members {
            for (topic, parts) in &m.owned {
                let Some(&n) = spec.topics.get(topic) else { continue };
                if !m.subscribed.contains(topic) {
                    continue;
                }
                for &p in parts.iter().filter(|p| (0..n).contains(*p)) {
                    if let std::collections::btree_map::Entry::Vacant(slot) = owner.entry((topic.clone(), p)) {
                        slot.insert(id.clone());
                        *counts.get_mut(id).expect("every member counted") += 1;
                    }
                }
            }
        }
        // Assign the rest, topics with the fewest candidates first, each to the smallest member.
        let mut topics: Vec<(&String, Vec<&MemberId>)> = spec
            .topics
            .keys()
            .map(|t| (t, spec.members.iter().filter(|(_, m)| m.subscribed.contains(t)).map(|(id, _)| id).collect()))
            .filter(|(_, candidates): &(_, Vec<_>)| !candidates.is_empty())
            .collect();
        topics.sort_by_key(|(t, candidates)| (candidates.len(), (*t).clone()));
        for (topic, candidates) in &topics {
            for p in 0..spec.topics[*topic] {
                if owner.contains_key(&((*topic).clone(), p)) {
                    continue;
                }
                let to = (*candidates.iter().min_by_key(|id| (counts[**id], **id)).expect("non-empty")).clone();
                *counts.get_mut(&to).expect("counted") += 1;
                owner.insert(((*topic).clone(), p), to);
            }
        }
        balance(spec, &mut owner, &mut counts);
        collect(spec, owner)
    }
}

/// Moves partitions from members with at least two more than an eligible member, largest first,
/// until no such move remains (bounded: every move lowers the sum of squared member sizes).
fn balance(spec: &GroupSpec, owner: &mut BTreeMap<(String, i32), MemberId>, counts: &mut BTreeMap<MemberId, usize>) {
    loop {
        let mut moved = false;
        let mut by_size: Vec<MemberId> = counts.keys().cloned().collect();
        by_size.sort_by_key(|id| (std::cmp::Reverse(counts[id]), id.clone()));
        'members: for from in &by_size {
            // Its partitions, newest (highest) first, so the lowest ones stay put.
            let mine: Vec<(String, i32)> = owner.iter().filter(|(_, o)| *o == from).map(|(k, _)| k.clone()).collect();
            for key in mine.iter().rev() {
                let to = spec
                    .members
                    .iter()
                    .filter(|(id, m)| *id != from && m.subscribed.contains(&key.0))
                    .map(|(id, _)| id)
                    .min_by_key(|id| (counts[*id], (*id).clone()));
                if let Some(to) = to
                    && counts[to] + 1 < counts[from]
                {
                    let to = to.clone();
                    *counts.get_mut(from).expect("counted") -= 1;
                    *counts.get_mut(&to).expect("counted") += 1;
                    owner.insert(key.clone(), to);
                    moved = true;
                    break 'members;
                }
            }
        }
        if !moved {
            return;
        }
    }
}

fn collect(spec: &GroupSpec, owner: BTreeMap<(String, i32), MemberId>) -> TargetAssignment {
    let mut out: TargetAssignment = spec.members.keys().map(|m| (m.clone(), TopicPartitions::new())).collect();
    for ((topic, p), member) in owner {
        out.get_mut(&member).expect("owners are members").entry(topic).or_default().insert(p);
    }
    out
}

/// Kafka's range assignor, per topic: the partitions in order are cut into contiguous ranges, one
/// per subscribed member in member-id order, the first `partitions % members` ranges one longer.
/// Co-partitioned topics therefore land on the same members.
#[derive(Debug, Clone, Copy, Default)]
pub struct Range;

impl Assignor for Range {
    fn name(&self) -> &'static str {
        "range"
    }

    fn assign(&self, spec: &GroupSpec) -> TargetAssignment {
        let mut out: TargetAssignment = spec.members.keys().map(|m| (m.clone(), TopicPartitions::new())).collect();
        for (topic, &n) in &spec.topics {
            let members: Vec<&MemberId> =
                spec.members.iter().filter(|(_, m)| m.subscribed.contains(topic)).map(|(id, _)| id).collect();
            if members.is_empty() || n <= 0 {
                continue;
            }
            let (per, extra) = (n as usize / members.len(), n as usize % members.len());
            let mut next = 0i32;
            for (i, id) in members.iter().enumerate() {
                let len = per + usize::from(i < extra);
                let parts: BTreeSet<i32> = (next..next + len as i32).collect();
                next += len as i32;
                if !parts.is_empty() {
                    out.get_mut(*id).expect("member").insert(topic.clone(), parts);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(topics: &[&str], owned: &[(&str, &[i32])]) -> MemberSpec {
        MemberSpec {
            subscribed: topics.iter().map(|t| t.to_string()).collect(),
            rack: None,
            owned: owned.iter().map(|(t, p)| (t.to_string(), p.iter().copied().collect())).collect(),
        }
    }

    fn spec(members: Vec<(&str, MemberSpec)>, topics: &[(&str, i32)]) -> GroupSpec {
        GroupSpec {
            members: members.into_iter().map(|(id, m)| (id.to_string(), m)).collect(),
            topics: topics.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
        }
    }

    fn sizes(a: &TargetAssignment) -> Vec<usize> {
        a.values().map(|tp| tp.values().map(BTreeSet::len).sum()).collect()
    }

    /// Every partition of every subscribed topic is assigned exactly once, to a subscriber.
    fn assert_complete(spec: &GroupSpec, a: &TargetAssignment) {
        let mut seen = BTreeSet::new();
        for (id, tps) in a {
            for (topic, parts) in tps {
                assert!(spec.members[id].subscribed.contains(topic), "{id} got {topic} without subscribing");
                for p in parts {
                    assert!(seen.insert((topic.clone(), *p)), "{topic}-{p} assigned twice");
                }
            }
        }
        for (topic, n) in &spec.topics {
            if spec.members.values().any(|m| m.subscribed.contains(topic)) {
                for p in 0..*n {
                    assert!(seen.contains(&(topic.clone(), p)), "{topic}-{p} unassigned");
                }
            }
        }
    }

    #[test]
    fn uniform_spreads_evenly_and_completely() {
        let s = spec(
            vec![("a", member(&["t"], &[])), ("b", member(&["t"], &[])), ("c", member(&["t"], &[]))],
            &[("t", 10)],
        );
        let a = Uniform.assign(&s);
        assert_complete(&s, &a);
        let mut n = sizes(&a);
        n.sort();
        assert_eq!(n, vec![3, 3, 4]);
    }

    #[test]
    fn uniform_moves_only_what_a_new_member_needs() {
        let before = spec(vec![("a", member(&["t"], &[])), ("b", member(&["t"], &[]))], &[("t", 6)]);
        let first = Uniform.assign(&before);
        let owned = |id: &str| first[id].clone();
        let after = GroupSpec {
            members: [
                ("a".to_string(), MemberSpec { owned: owned("a"), ..member(&["t"], &[]) }),
                ("b".to_string(), MemberSpec { owned: owned("b"), ..member(&["t"], &[]) }),
                ("c".to_string(), member(&["t"], &[])),
            ]
            .into(),
            topics: before.topics.clone(),
        };
        let second = Uniform.assign(&after);
        assert_complete(&after, &second);
        assert_eq!(sizes(&second), vec![2, 2, 2]);
        for id in ["a", "b"] {
            let kept = second[id]["t"].iter().filter(|p| first[id]["t"].contains(p)).count();
            assert_eq!(kept, 2, "{id} keeps two of its three partitions");
        }
    }

    #[test]
    fn uniform_drops_partitions_of_unsubscribed_or_vanished_topics_and_disputes() {
        let s = spec(
            vec![("a", member(&["t"], &[("t", &[0, 1, 7]), ("u", &[0])])), ("b", member(&["t", "u"], &[("t", &[1])]))],
            &[("t", 4), ("u", 2)],
        );
        let a = Uniform.assign(&s);
        assert_complete(&s, &a);
        assert!(a["a"]["t"].contains(&0) && a["a"]["t"].contains(&1), "a keeps 0 and 1 (first claimant of 1)");
        assert!(!a["a"].contains_key("u"), "a does not subscribe to u");
        assert_eq!(a["b"]["u"], BTreeSet::from([0, 1]));
    }

    #[test]
    fn uniform_balances_heterogeneous_subscriptions_where_it_can() {
        // Only b takes u; a and b share t.
        let s = spec(vec![("a", member(&["t"], &[])), ("b", member(&["t", "u"], &[]))], &[("t", 4), ("u", 4)]);
        let a = Uniform.assign(&s);
        assert_complete(&s, &a);
        assert_eq!(a["a"]["t"].len(), 4, "a takes all of t since b must take all of u");
        assert_eq!(a["b"]["u"].len(), 4);
    }

    #[test]
    fn range_cuts_contiguous_ranges_in_member_order_per_topic() {
        let s = spec(vec![("a", member(&["t", "u"], &[])), ("b", member(&["t", "u"], &[]))], &[("t", 5), ("u", 5)]);
        let a = Range.assign(&s);
        assert_complete(&s, &a);
        assert_eq!(a["a"]["t"], BTreeSet::from([0, 1, 2]));
        assert_eq!(a["b"]["t"], BTreeSet::from([3, 4]));
        assert_eq!(a["a"]["u"], a["a"]["t"], "co-partitioned topics go together");
    }

    #[test]
    fn assignors_are_found_by_name() {
        assert_eq!(by_name("").unwrap().name(), "uniform");
        assert_eq!(by_name("range").unwrap().name(), "range");
        assert!(by_name("sticky-ish").is_none());
    }

    proptest::proptest! {
        #[test]
        fn uniform_is_complete_balanced_and_stable(
            subs in proptest::collection::vec(proptest::collection::btree_set(0usize..3, 1..3), 1..8),
            counts in proptest::collection::vec(0i32..12, 3),
            homogeneous in proptest::bool::ANY,
        ) {
            let topics = ["t0", "t1", "t2"];
            let members = subs
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let subscribed = if homogeneous { topics.iter().map(|t| t.to_string()).collect() }
                        else { s.iter().map(|t| topics[*t].to_string()).collect() };
                    (format!("m{i}"), MemberSpec { subscribed, ..MemberSpec::default() })
                })
                .collect();
            let spec = GroupSpec { members, topics: topics.iter().zip(&counts).map(|(t, n)| (t.to_string(), *n)).collect() };
            let first = Uniform.assign(&spec);
            assert_complete(&spec, &first);
            if homogeneous {
                let n = sizes(&first);
                proptest::prop_assert!(n.iter().max().unwrap() - n.iter().min().unwrap() <= 1, "{n:?}");
            }
            // Feeding the result back as what members own changes nothing: no needless moves.
            let mut again = spec.clone();
            for (id, m) in again.members.iter_mut() {
                m.owned = first[id].clone();
            }
            proptest::prop_assert_eq!(Uniform.assign(&again), first);
        }
    }
}
