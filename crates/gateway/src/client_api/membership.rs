//! Managed group subscriptions: the live Consume streams of one (group, topic) on this gateway
//! share the topic's partitions.
//!
//! **Membership is local to one gateway process.** Streams of the same group connected to
//! different gateways do not know about each other: each gateway shares the partitions among its
//! own streams only, so a group spread over several gateways reads every partition once per
//! gateway. Coordinating them needs a broker-side group coordinator, which is not built yet; until
//! then, route a group's streams through one gateway (or use plain subscriptions with explicit
//! partitions).
//!
//! - Assignment: Kafka's range assignor over the member ids, sorted. Ids are handed out in join
//!   order, so the oldest stream gets the first partitions.
//! - Every join, leave and growth of the topic is a rebalance: the group's generation goes up by
//!   one and every member is told its new share ([`Member::changed_or_released`],
//!   [`Member::current`]).
//! - Hand-over: a partition is read by at most one stream at a time. A member [`Member::claim`]s
//!   a newly assigned partition before reading it, which succeeds once the previous owner has
//!   [`Member::release`]d it, after committing its position: the new owner then starts from the
//!   offset the previous one committed. A member that goes away (its [`Member`] dropped) releases
//!   everything it held.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::watch;

/// A group's state is kept per (group id, topic).
type GroupKey = (String, String);

/// The managed subscriptions of one gateway: every group with at least one live stream.
#[derive(Debug, Default)]
pub struct Membership {
    groups: Mutex<HashMap<GroupKey, Group>>,
    next_member: AtomicU64,
    rebalances: AtomicU64,
}

#[derive(Debug)]
struct Group {
    /// Partitions of the topic (only ever grows, as a topic's partitions do).
    partitions: i32,
    generation: i64,
    /// Member id → the channel its assignment is published on. Sorted by id.
    members: BTreeMap<String, watch::Sender<MemberAssignment>>,
    /// Partition → the member reading it now (it may no longer be assigned to it).
    owners: HashMap<i32, String>,
    /// Bumped whenever partitions are released, to wake members waiting to claim them.
    released: watch::Sender<u64>,
}

/// A member's share of its group's topic in one generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberAssignment {
    /// The group's generation this share belongs to (0 before the first).
    pub generation: i64,
    /// The partitions assigned to the member, sorted.
    pub partitions: Vec<i32>,
}

impl Membership {
    /// No groups yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many rebalances (joins, leaves and topic growths of a group with live members) this
    /// gateway has performed.
    pub fn rebalances(&self) -> u64 {
        self.rebalances.load(Ordering::Relaxed)
    }

    /// Number of groups with at least one live stream.
    pub fn groups(&self) -> usize {
        self.groups.lock().len()
    }

    /// Adds a stream to the group of (`group_id`, `topic`), whose topic has `partitions`
    /// partitions, and rebalances the group. The stream leaves when the returned [`Member`] is
    /// dropped.
    pub fn join(self: &Arc<Self>, group_id: &str, topic: &str, partitions: i32) -> Member {
        let id = format!("member-{:010}", self.next_member.fetch_add(1, Ordering::Relaxed));
        let key = (group_id.to_string(), topic.to_string());
        let (tx, assignment) = watch::channel(MemberAssignment::default());
        let released = {
            let mut groups = self.groups.lock();
            let group = groups.entry(key.clone()).or_insert_with(|| Group {
                partitions,
                generation: 0,
                members: BTreeMap::new(),
                owners: HashMap::new(),
                released: watch::Sender::new(0),
            });
            group.partitions = group.partitions.max(partitions);
            group.members.insert(id.clone(), tx);
            self.rebalance(group);
            group.released.subscribe()
        };
        tracing::debug!(group = group_id, topic, member = %id, "stream joined its group");
        Member { membership: Arc::clone(self), key, id, assignment, released }
    }

    /// Removes a member, releases what it held and rebalances the others (or forgets the group).
    fn leave(&self, key: &GroupKey, id: &str) {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(key) else { return };
        group.members.remove(id);
        group.owners.retain(|_, owner| owner != id);
        if group.members.is_empty() {
            groups.remove(key);
        } else {
            group.released.send_modify(|n| *n += 1);
            self.rebalance(group);
        }
        tracing::debug!(group = %key.0, topic = %key.1, member = id, "stream left its group");
    }

    /// Starts the group's next generation: shares the partitions among the members and tells
    /// each its share.
    fn rebalance(&self, group: &mut Group) {
        group.generation += 1;
        self.rebalances.fetch_add(1, Ordering::Relaxed);
        let shares = range_assign(group.partitions, group.members.len());
        for (tx, partitions) in group.members.values().zip(shares) {
            tx.send_replace(MemberAssignment { generation: group.generation, partitions });
        }
    }
}

/// Kafka's range assignor for one topic: members (in sorted order) get consecutive ranges of
/// `partitions / members` partitions, the first `partitions % members` one more.
fn range_assign(partitions: i32, members: usize) -> Vec<Vec<i32>> {
    if members == 0 {
        return Vec::new();
    }
    let members_i32 = i32::try_from(members).unwrap_or(i32::MAX);
    let (per, extra) = (partitions.max(0) / members_i32, partitions.max(0) % members_i32);
    (0..members_i32)
        .map(|i| {
            let start = i * per + i.min(extra);
            let len = per + i32::from(i < extra);
            (start..start + len).collect()
        })
        .collect()
}

/// One stream's membership of its group; dropping it leaves the group.
#[derive(Debug)]
pub struct Member {
    membership: Arc<Membership>,
    key: GroupKey,
    id: String,
    assignment: watch::Receiver<MemberAssignment>,
    released: watch::Receiver<u64>,
}

impl Member {
    /// The member id (sorted ids decide the range assignment).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The latest assignment, marked as seen.
    pub fn current(&mut self) -> MemberAssignment {
        self.assignment.borrow_and_update().clone()
    }

    /// Whether an assignment not yet seen with [`Member::current`] was published.
    pub fn has_changed(&self) -> bool {
        self.assignment.has_changed().unwrap_or(false)
    }

    /// Resolves when an assignment not yet seen is published or, with `releases`, when some
    /// member of the group has released partitions since the last call (a partition this member
    /// waits for may now be claimed).
    pub async fn changed_or_released(&mut self, releases: bool) {
        let (assignment, released) = (&mut self.assignment, &mut self.released);
        tokio::select! {
            Ok(()) = assignment.changed() => {}
            Ok(()) = released.changed(), if releases => {}
            // Both channels closed: the group is gone, which cannot happen while a member lives.
            else => std::future::pending::<()>().await,
        }
    }

    /// Takes `partition` for reading: succeeds when it is assigned to this member in the current
    /// generation and no other member still holds it.
    pub fn claim(&self, partition: i32) -> bool {
        let mut groups = self.membership.groups.lock();
        let Some(group) = groups.get_mut(&self.key) else { return false };
        let assigned = group.members.get(&self.id).is_some_and(|tx| tx.borrow().partitions.contains(&partition));
        if !assigned || group.owners.get(&partition).is_some_and(|owner| *owner != self.id) {
            return false;
        }
        group.owners.insert(partition, self.id.clone());
        true
    }

    /// Stops holding `partitions`, so that the members they are now assigned to can claim them.
    pub fn release(&self, partitions: &[i32]) {
        if partitions.is_empty() {
            return;
        }
        let mut groups = self.membership.groups.lock();
        let Some(group) = groups.get_mut(&self.key) else { return };
        for p in partitions {
            if group.owners.get(p) == Some(&self.id) {
                group.owners.remove(p);
            }
        }
        group.released.send_modify(|n| *n += 1);
    }

    /// Records that the topic now has `partitions` partitions; a growth rebalances the group.
    pub fn topic_grew(&self, partitions: i32) {
        let mut groups = self.membership.groups.lock();
        let Some(group) = groups.get_mut(&self.key) else { return };
        if partitions > group.partitions {
            group.partitions = partitions;
            self.membership.rebalance(group);
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.membership.leave(&self.key, &self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignment_gives_the_first_members_the_extra_partitions() {
        assert_eq!(range_assign(7, 3), vec![vec![0, 1, 2], vec![3, 4], vec![5, 6]]);
        assert_eq!(range_assign(4, 2), vec![vec![0, 1], vec![2, 3]]);
        assert_eq!(range_assign(1, 3), vec![vec![0], vec![], vec![]]);
        assert_eq!(range_assign(3, 1), vec![vec![0, 1, 2]]);
        assert!(range_assign(3, 0).is_empty());
    }

    #[test]
    fn joins_and_leaves_rebalance_with_a_new_generation() {
        let membership = Arc::new(Membership::new());
        let mut a = membership.join("g", "t", 4);
        assert!(a.has_changed());
        assert_eq!(a.current(), MemberAssignment { generation: 1, partitions: vec![0, 1, 2, 3] });
        assert!(!a.has_changed());

        let mut b = membership.join("g", "t", 4);
        assert_eq!(a.current(), MemberAssignment { generation: 2, partitions: vec![0, 1] });
        assert_eq!(b.current(), MemberAssignment { generation: 2, partitions: vec![2, 3] });
        // Another group, or the same group on another topic, is separate.
        let mut other = membership.join("g", "u", 2);
        assert_eq!(other.current().generation, 1);
        assert_eq!(membership.groups(), 2);

        drop(a);
        assert_eq!(b.current(), MemberAssignment { generation: 3, partitions: vec![0, 1, 2, 3] });
        assert_eq!(membership.rebalances(), 4);
        drop(b);
        drop(other);
        assert_eq!(membership.groups(), 0);
    }

    #[test]
    fn a_partition_is_claimed_only_once_its_previous_owner_released_it() {
        let membership = Arc::new(Membership::new());
        let a = membership.join("g", "t", 2);
        assert!(a.claim(0) && a.claim(1));
        let mut b = membership.join("g", "t", 2);
        assert_eq!(b.current().partitions, vec![1]);
        assert!(!b.claim(0), "not assigned to b");
        assert!(!b.claim(1), "a still holds it");
        a.release(&[1]);
        assert!(b.claim(1));
        assert!(!a.claim(1), "no longer assigned to a");
        assert!(a.claim(0), "claiming again what one holds is fine");

        // Leaving releases everything.
        let mut c = membership.join("g", "t", 2);
        drop(a);
        assert_eq!(c.current().partitions, vec![1]);
        assert_eq!(b.current().partitions, vec![0]);
        assert!(b.claim(0));
        assert!(!c.claim(1), "b still holds 1");
    }

    #[test]
    fn a_growing_topic_rebalances() {
        let membership = Arc::new(Membership::new());
        let mut a = membership.join("g", "t", 1);
        assert_eq!(a.current().partitions, vec![0]);
        a.topic_grew(1);
        assert!(!a.has_changed());
        a.topic_grew(3);
        assert_eq!(a.current(), MemberAssignment { generation: 2, partitions: vec![0, 1, 2] });
    }

    #[tokio::test]
    async fn releases_wake_waiting_members() {
        let membership = Arc::new(Membership::new());
        let a = membership.join("g", "t", 2);
        assert!(a.claim(1));
        let mut b = membership.join("g", "t", 2);
        assert_eq!(b.current().partitions, vec![1]);
        let waiter = tokio::spawn(async move {
            b.changed_or_released(true).await;
            b.claim(1)
        });
        a.release(&[1]);
        let claimed = tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert!(claimed);
    }
}
