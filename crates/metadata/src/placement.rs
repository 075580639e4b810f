//! Replica placement: spread replicas and preferred leaders evenly over brokers.

use crate::model::BrokerId;

/// Assigns `replication_factor` replicas to each of `partitions` partitions over `brokers`
/// (sorted ids), round-robin with a shifting start so that preferred leaders spread evenly, as
/// Kafka's rack-unaware assignment does. `start` rotates the first broker (e.g. by topic count).
pub fn assign(brokers: &[BrokerId], partitions: usize, replication_factor: usize, start: usize) -> Vec<Vec<BrokerId>> {
    let n = brokers.len();
    (0..partitions)
        .map(|p| {
            let first = (start + p) % n;
            // Kafka's scheme: the follower shift grows by one every round over the brokers, so the
            // replica sets differ between rounds while staying distinct within a partition.
            let round_shift = start + p / n;
            (0..replication_factor)
                .map(|r| {
                    if r == 0 || n == 1 {
                        brokers[first]
                    } else {
                        let shift = 1 + (round_shift + r - 1) % (n - 1);
                        brokers[(first + shift) % n]
                    }
                })
                .collect()
        })
        .collect()
}

/// Orders brokers so that consecutive ones sit in different racks (Kafka's "rack-alternated"
/// list): the first broker of each rack, then the second of each, and so on. Feeding this order to
/// [`assign`] spreads each partition's replicas over racks. Brokers without a rack form one rack.
pub fn rack_alternated(brokers: &[(BrokerId, Option<String>)]) -> Vec<BrokerId> {
    let mut racks: std::collections::BTreeMap<&str, Vec<BrokerId>> = std::collections::BTreeMap::new();
    for (id, rack) in brokers {
        racks.entry(rack.as_deref().unwrap_or("")).or_default().push(*id);
    }
    for ids in racks.values_mut() {
        ids.sort_unstable();
    }
    let longest = racks.values().map(Vec::len).max().unwrap_or(0);
    (0..longest).flat_map(|i| racks.values().filter_map(move |ids| ids.get(i).copied())).collect()
}

/// Rack-aware placement: [`assign`] over the [`rack_alternated`] order, then each follower that
/// would repeat a rack already holding a replica of the partition is replaced by the next broker in
/// that order from a rack not yet used (while unused racks remain). Leaders stay where [`assign`]
/// put them, so they remain spread evenly. Without racks this is exactly [`assign`].
pub fn assign_with_racks(
    brokers: &[(BrokerId, Option<String>)],
    partitions: usize,
    replication_factor: usize,
    start: usize,
) -> Vec<Vec<BrokerId>> {
    let order = rack_alternated(brokers);
    let rack_of: std::collections::HashMap<BrokerId, &str> =
        brokers.iter().map(|(id, r)| (*id, r.as_deref().unwrap_or(""))).collect();
    let rack_count = rack_of.values().collect::<std::collections::BTreeSet<_>>().len();
    let position: std::collections::HashMap<BrokerId, usize> = order.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    assign(&order, partitions, replication_factor, start)
        .into_iter()
        .map(|base| {
            let mut chosen = vec![base[0]];
            let mut racks = std::collections::BTreeSet::from([rack_of[&base[0]]]);
            for follower in &base[1..] {
                let from = position[follower];
                let pick = (0..order.len())
                    .map(|k| order[(from + k) % order.len()])
                    .find(|b| !chosen.contains(b) && (racks.len() == rack_count || !racks.contains(rack_of[b])))
                    .expect("replication factor <= broker count");
                racks.insert(rack_of[&pick]);
                chosen.push(pick);
            }
            chosen
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    #[test]
    fn replicas_are_distinct_and_leaders_spread_evenly() {
        let brokers = [1, 2, 3];
        let a = assign(&brokers, 6, 3, 0);
        for rf2 in assign(&[1, 2, 3, 4], 40, 3, 7) {
            assert_eq!(rf2.iter().collect::<BTreeSet<_>>().len(), 3, "{rf2:?}");
        }
        let mut leaders: HashMap<BrokerId, usize> = HashMap::new();
        for replicas in &a {
            assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), 3, "{replicas:?}");
            *leaders.entry(replicas[0]).or_default() += 1;
        }
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    }

    #[test]
    fn with_racks_every_partition_spans_distinct_racks() {
        let brokers: Vec<(BrokerId, Option<String>)> =
            (1..=6).map(|id| (id, Some(format!("rack-{}", id % 3)))).collect();
        let rack_of = |b: BrokerId| b % 3;
        assert_eq!(rack_alternated(&brokers).len(), 6);
        for start in 0..4 {
            let mut leaders: HashMap<BrokerId, usize> = HashMap::new();
            for replicas in assign_with_racks(&brokers, 12, 3, start) {
                *leaders.entry(replicas[0]).or_default() += 1;
                let racks: BTreeSet<_> = replicas.iter().map(|b| rack_of(*b)).collect();
                assert_eq!(racks.len(), 3, "{replicas:?} (start {start})");
                assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), 3, "{replicas:?}");
            }
            assert!(leaders.values().all(|n| *n == 2), "{leaders:?}");
        }
        let plain: Vec<(BrokerId, Option<String>)> = (1..=4).map(|id| (id, None)).collect();
        assert_eq!(assign_with_racks(&plain, 10, 3, 2), assign(&[1, 2, 3, 4], 10, 3, 2));
    }

    #[test]
    fn single_broker_gets_everything() {
        assert_eq!(assign(&[7], 3, 1, 5), vec![vec![7], vec![7], vec![7]]);
    }
}
