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
    fn single_broker_gets_everything() {
        assert_eq!(assign(&[7], 3, 1, 5), vec![vec![7], vec![7], vec![7]]);
    }
}
