//! Which partition of an internal topic holds a key (a group id, a transactional id), Kafka's
//! way: `abs(java_hash(key)) % partitions`, so a key's coordinator is that partition's leader.

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units, wrapping.
pub fn java_hash(key: &str) -> i32 {
    key.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// The partition of an internal topic with `partitions` partitions that holds `key`. Kafka's
/// `Utils.abs` (`n & 0x7fffffff`), so `i32::MIN` maps to 0 rather than overflowing.
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    assert!(partitions > 0, "an internal topic has at least one partition");
    (java_hash(key) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_javas_string_hash_code() {
        // Java's "...".hashCode(), computed independently over UTF-16 code units (Python's
        // utf-16-be); "polygenelubricants" is the well-known string whose hash is Integer.MIN_VALUE.
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("group-1"), 293_427_299);
        assert_eq!(java_hash("my-consumer-group"), 1_513_705_513);
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
        assert_eq!(java_hash("é€𝄞"), 16_751_501, "UTF-16 code units, surrogate pairs included");
    }

    #[test]
    fn partition_is_kafkas_abs_hash_modulo() {
        assert_eq!(partition_for("group-1", 50), 293_427_299 % 50);
        assert_eq!(partition_for("my-consumer-group", 50), 1_513_705_513 % 50);
        assert_eq!(partition_for("x", 50), 120 % 50);
        assert_eq!(partition_for("polygenelubricants", 50), 0, "i32::MIN maps to 0, as Utils.abs does");
        assert!((0..3).contains(&partition_for("anything", 3)));
    }
}
