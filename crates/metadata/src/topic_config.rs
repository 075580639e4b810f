//! Per-topic configuration keys, by Kafka's names, and their validation.

use std::collections::BTreeMap;

use crate::error::MetadataError;

/// Known per-topic keys and what their values must be.
const KEYS: &[(&str, Kind)] = &[
    ("cleanup.policy", Kind::OneOf(&["delete", "compact", "compact,delete", "delete,compact"])),
    ("retention.ms", Kind::Int { min: -1 }),
    ("retention.bytes", Kind::Int { min: -1 }),
    ("segment.bytes", Kind::Int { min: 14 }),
    ("segment.ms", Kind::Int { min: 1 }),
    ("segment.index.bytes", Kind::Int { min: 8 }),
    ("index.interval.bytes", Kind::Int { min: 0 }),
    ("max.message.bytes", Kind::Int { min: 0 }),
    ("min.insync.replicas", Kind::Int { min: 1 }),
    ("flush.messages", Kind::Int { min: 1 }),
    ("flush.ms", Kind::Int { min: 0 }),
    ("message.timestamp.type", Kind::OneOf(&["CreateTime", "LogAppendTime"])),
    ("message.timestamp.before.max.ms", Kind::Int { min: 0 }),
    ("delete.retention.ms", Kind::Int { min: 0 }),
    ("min.cleanable.dirty.ratio", Kind::Fraction),
    ("min.compaction.lag.ms", Kind::Int { min: 0 }),
    ("max.compaction.lag.ms", Kind::Int { min: 1 }),
    ("message.timestamp.after.max.ms", Kind::Int { min: 0 }),
    ("unclean.leader.election.enable", Kind::OneOf(&["true", "false"])),
    ("compression.type", Kind::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"])),
];

#[derive(Clone, Copy)]
enum Kind {
    Int {
        min: i64,
    },
    /// A number from 0 to 1.
    Fraction,
    OneOf(&'static [&'static str]),
}

/// The per-topic configuration keys Vltava understands.
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|(k, _)| *k)
}

/// Checks every key is known and every value is well formed.
pub fn validate(configs: &BTreeMap<String, String>) -> Result<(), MetadataError> {
    for (key, value) in configs {
        let invalid = |reason: String| MetadataError::InvalidConfig { key: key.clone(), value: value.clone(), reason };
        let Some((_, kind)) = KEYS.iter().find(|(k, _)| k == key) else {
            let known: Vec<_> = known_keys().collect();
            return Err(invalid(format!("unknown key; known keys are {}", known.join(", "))));
        };
        match kind {
            Kind::Int { min } => match value.trim().parse::<i64>() {
                Ok(v) if v >= *min => {}
                Ok(_) => return Err(invalid(format!("must be at least {min}"))),
                Err(_) => return Err(invalid("must be an integer".into())),
            },
            Kind::Fraction => match value.trim().parse::<f64>() {
                Ok(v) if (0.0..=1.0).contains(&v) => {}
                _ => return Err(invalid("must be a number from 0 to 1".into())),
            },
            Kind::OneOf(options) => {
                if !options.contains(&value.as_str()) {
                    return Err(invalid(format!("must be one of {}", options.join(", "))));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(k: &str, v: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(k.to_string(), v.to_string())])
    }

    #[test]
    fn known_keys_with_good_values_pass() {
        assert!(validate(&cfg("retention.ms", "-1")).is_ok());
        assert!(validate(&cfg("cleanup.policy", "compact")).is_ok());
        assert!(validate(&cfg("min.cleanable.dirty.ratio", "0.1")).is_ok());
        let e = validate(&cfg("min.cleanable.dirty.ratio", "1.5")).unwrap_err().to_string();
        assert!(e.contains("from 0 to 1"), "{e}");
        assert!(validate(&cfg("max.compaction.lag.ms", "0")).is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected_with_the_reason() {
        let e = validate(&cfg("retention.mss", "1")).unwrap_err().to_string();
        assert!(e.contains("unknown key"), "{e}");
        let e = validate(&cfg("segment.bytes", "abc")).unwrap_err().to_string();
        assert!(e.contains("must be an integer"), "{e}");
        let e = validate(&cfg("min.insync.replicas", "0")).unwrap_err().to_string();
        assert!(e.contains("at least 1"), "{e}");
    }
}
