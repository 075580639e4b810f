//! Kafka's default partitioner.
//!
//! - An explicit partition wins.
//! - A keyed record goes to `toPositive(murmur2(key)) % partitions` (same placement as Kafka's
//!   Java client, so keyed data lands where Kafka tools expect it).
//! - A record without a key uses the sticky partitioner (KIP-480): all key-less records of a topic
//!   go to one partition until that partition's batch is sealed, then another partition is
//!   picked at random. The sticky part lives in the producer's accumulator because it depends on
//!   batch sealing; `random_other` is its choice rule.
//!
//! The first two rules are [`vltava_record::place`], which the gateway's `Publish` uses too.

use rand::Rng;

/// The partition Kafka's default partitioner gives a keyed record.
///
/// `partitions` must be positive.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    vltava_record::placement::keyed(key, partitions)
}

/// A random partition in `0..partitions`, different from `current` when there is a choice.
pub(crate) fn random_other(current: Option<i32>, partitions: i32) -> i32 {
    let mut rng = rand::rng();
    match current {
        Some(c) if partitions > 1 && (0..partitions).contains(&c) => {
            // Uniform over the other partitions.
            let r = rng.random_range(0..partitions - 1);
            if r >= c { r + 1 } else { r }
        }
        _ => rng.random_range(0..partitions.max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's `Utils.murmur2` values (from Kafka's `UtilsTest`) and the partitions they imply.
    #[test]
    fn keyed_records_follow_kafkas_murmur2() {
        let vectors: [(&str, i32); 3] =
            [("21", -973_932_308), ("foobar", -790_332_482), ("a-little-bit-long-string", -985_981_536)];
        for partitions in [1, 2, 3, 6, 7, 12, 100] {
            for (key, hash) in vectors {
                let expected = (hash & 0x7fff_ffff) % partitions;
                assert_eq!(partition_for_key(key.as_bytes(), partitions), expected, "{key} / {partitions}");
            }
        }
        // Spelled out for 6 partitions.
        assert_eq!(partition_for_key(b"21", 6), (-973_932_308i32 & 0x7fff_ffff) % 6);
    }

    #[test]
    fn random_other_never_repeats_and_covers_all_others() {
        let mut seen = [0u32; 5];
        for _ in 0..2_000 {
            let p = random_other(Some(2), 5);
            assert_ne!(p, 2);
            seen[p as usize] += 1;
        }
        assert_eq!(seen[2], 0);
        assert!(seen.iter().enumerate().all(|(i, n)| i == 2 || *n > 0), "{seen:?}");
        assert_eq!(random_other(Some(0), 1), 0);
        assert!((0..3).contains(&random_other(None, 3)));
    }
}
