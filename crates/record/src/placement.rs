//! Record placement by Kafka's default partitioner: the one rule the Rust SDK's producer and the
//! gateway's `Publish` share.
//!
//! - An explicit partition wins (if the topic has it).
//! - A keyed record goes to `toPositive(murmur2(key)) % partitions` ([`keyed`]), where Kafka's Java
//!   client puts it. An empty key is a key.
//! - A keyless record is the caller's to place ([`Placement::Keyless`]): the SDK sticks to one
//!   partition per batch (KIP-480), the gateway to one partition per request. Those strategies
//!   depend on state each keeps (open batches, a per-topic turn), so they stay with their owner.

/// Where a record goes, as [`place`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// On this partition: the record's own, or the one its key hashes to.
    Partition(i32),
    /// The record has neither partition nor key: the caller's keyless strategy picks one.
    Keyless,
    /// The record names a partition the topic does not have (negative, or past the last).
    NoSuchPartition(i32),
}

/// Places a record that names `partition` (if any) and carries `key` (if any) on a topic of
/// `partitions` partitions, numbered `0..partitions`.
pub fn place(partition: Option<i32>, key: Option<&[u8]>, partitions: i32) -> Placement {
    match (partition, key) {
        (Some(p), _) if (0..partitions).contains(&p) => Placement::Partition(p),
        (Some(p), _) => Placement::NoSuchPartition(p),
        (None, Some(key)) => Placement::Partition(keyed(key, partitions)),
        (None, None) => Placement::Keyless,
    }
}

/// The partition of a keyed record: `toPositive(murmur2(key)) % partitions`.
///
/// `partitions` must be positive (a non-positive count is taken as 1).
pub fn keyed(key: &[u8], partitions: i32) -> i32 {
    debug_assert!(partitions > 0, "a topic has at least one partition");
    let n = u32::try_from(partitions.max(1)).unwrap_or(1);
    // `n` fits an i32, so does the result.
    crate::murmur2::partition_for_key(key, n) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_partitions_win_when_the_topic_has_them() {
        assert_eq!(place(Some(2), Some(b"21"), 3), Placement::Partition(2));
        assert_eq!(place(Some(0), None, 1), Placement::Partition(0));
        assert_eq!(place(Some(3), Some(b"21"), 3), Placement::NoSuchPartition(3));
        assert_eq!(place(Some(-1), None, 3), Placement::NoSuchPartition(-1));
    }

    #[test]
    fn keys_hash_with_kafkas_murmur2_and_keyless_records_are_the_callers() {
        // Kafka's murmur2("21") = -973932308; toPositive = 1173551340.
        assert_eq!(place(None, Some(b"21"), 3), Placement::Partition(1_173_551_340 % 3));
        assert_eq!(place(None, Some(b""), 7), Placement::Partition(keyed(b"", 7)), "an empty key is a key");
        assert_eq!(place(None, None, 3), Placement::Keyless);
    }

    /// Kafka's `Utils.murmur2` values (from Kafka's `UtilsTest`) and the partitions they imply.
    #[test]
    fn keyed_follows_kafkas_murmur2() {
        let vectors: [(&str, i32); 3] =
            [("21", -973_932_308), ("foobar", -790_332_482), ("a-little-bit-long-string", -985_981_536)];
        for partitions in [1, 2, 3, 6, 7, 12, 100] {
            for (key, hash) in vectors {
                assert_eq!(keyed(key.as_bytes(), partitions), (hash & 0x7fff_ffff) % partitions, "{key}");
            }
        }
    }
}
