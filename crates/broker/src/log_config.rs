//! Per-topic configuration (Kafka's names) applied over the broker's log defaults.

use std::collections::BTreeMap;

use vltava_storage::{CompressionType, LogConfig, TimestampType};

/// The log configuration of a topic: broker defaults overridden by the topic's configs.
/// Values were validated by the metadata service; unparsable ones keep the default.
pub fn for_topic(defaults: &LogConfig, configs: &BTreeMap<String, String>) -> LogConfig {
    let mut c = defaults.clone();
    let int = |k: &str| configs.get(k).and_then(|v| v.trim().parse::<i64>().ok());
    if let Some(v) = int("segment.bytes") {
        c.segment_bytes = v.max(1) as u64;
    }
    if let Some(v) = int("segment.ms") {
        c.segment_ms = v.max(1) as u64;
    }
    if let Some(v) = int("segment.index.bytes") {
        c.segment_index_bytes = v.max(8) as u64;
    }
    if let Some(v) = int("index.interval.bytes") {
        c.index_interval_bytes = v.max(0) as u64;
    }
    if let Some(v) = int("retention.ms") {
        c.retention_ms = v;
    }
    if let Some(v) = int("retention.bytes") {
        c.retention_bytes = v;
    }
    if let Some(v) = int("max.message.bytes") {
        c.max_message_bytes = v.clamp(0, u32::MAX as i64) as u32;
    }
    if let Some(v) = int("flush.messages") {
        c.flush_messages = Some(v.max(1) as u64);
    }
    if let Some(v) = int("flush.ms") {
        c.flush_ms = Some(v.max(0) as u64);
    }
    if let Some(v) = configs.get("compression.type").and_then(|v| CompressionType::parse(v.trim())) {
        c.compression_type = v;
    }
    match configs.get("message.timestamp.type").map(|v| v.trim()) {
        Some("LogAppendTime") => c.message_timestamp_type = TimestampType::LogAppendTime,
        Some("CreateTime") => c.message_timestamp_type = TimestampType::CreateTime,
        _ => {}
    }
    if let Some(v) = int("message.timestamp.before.max.ms") {
        c.message_timestamp_before_max_ms = v.max(0);
    }
    if let Some(v) = int("message.timestamp.after.max.ms") {
        c.message_timestamp_after_max_ms = v.max(0);
    }
    if let Some(v) = int("delete.retention.ms") {
        c.delete_retention_ms = v.max(0);
    }
    if let Some(v) = configs.get("min.cleanable.dirty.ratio").and_then(|v| v.trim().parse::<f64>().ok()) {
        c.min_cleanable_dirty_ratio = v.clamp(0.0, 1.0);
    }
    if let Some(v) = int("min.compaction.lag.ms") {
        c.min_compaction_lag_ms = v.max(0);
    }
    if let Some(v) = int("max.compaction.lag.ms") {
        c.max_compaction_lag_ms = v.max(1);
    }
    c.compact = compacts(configs);
    if !deletes(configs) {
        // `cleanup.policy=compact` alone: nothing is ever deleted by age or size (Kafka's rule);
        // the log cleaner keeps the latest record of each key.
        c.retention_ms = -1;
        c.retention_bytes = -1;
    }
    c
}

/// The value of every per-topic key a topic without overrides has (the broker's log defaults,
/// by Kafka's names), as Kafka's DescribeConfigs lists them. `flush.*` unset is Kafka's
/// `Long.MAX_VALUE` ("never").
pub fn defaults_by_name(defaults: &LogConfig, min_insync_replicas: i32) -> BTreeMap<&'static str, String> {
    let never = i64::MAX.to_string();
    let compression = match defaults.compression_type {
        CompressionType::Producer => "producer",
        CompressionType::Uncompressed => "uncompressed",
        CompressionType::Gzip => "gzip",
        CompressionType::Snappy => "snappy",
        CompressionType::Lz4 => "lz4",
        CompressionType::Zstd => "zstd",
    };
    let timestamp_type = match defaults.message_timestamp_type {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    };
    BTreeMap::from([
        ("cleanup.policy", if defaults.compact { "compact" } else { "delete" }.to_string()),
        ("retention.ms", defaults.retention_ms.to_string()),
        ("retention.bytes", defaults.retention_bytes.to_string()),
        ("segment.bytes", defaults.segment_bytes.to_string()),
        ("segment.ms", defaults.segment_ms.to_string()),
        ("segment.index.bytes", defaults.segment_index_bytes.to_string()),
        ("index.interval.bytes", defaults.index_interval_bytes.to_string()),
        ("max.message.bytes", defaults.max_message_bytes.to_string()),
        ("min.insync.replicas", min_insync_replicas.to_string()),
        ("flush.messages", defaults.flush_messages.map_or(never.clone(), |v| v.to_string())),
        ("flush.ms", defaults.flush_ms.map_or(never, |v| v.to_string())),
        ("message.timestamp.type", timestamp_type.to_string()),
        ("message.timestamp.before.max.ms", defaults.message_timestamp_before_max_ms.to_string()),
        ("message.timestamp.after.max.ms", defaults.message_timestamp_after_max_ms.to_string()),
        ("delete.retention.ms", defaults.delete_retention_ms.to_string()),
        ("min.cleanable.dirty.ratio", defaults.min_cleanable_dirty_ratio.to_string()),
        ("min.compaction.lag.ms", defaults.min_compaction_lag_ms.to_string()),
        ("max.compaction.lag.ms", defaults.max_compaction_lag_ms.to_string()),
        ("unclean.leader.election.enable", "false".to_string()),
        ("compression.type", compression.to_string()),
    ])
}

/// Whether the topic's `cleanup.policy` includes `compact`.
fn compacts(configs: &BTreeMap<String, String>) -> bool {
    configs.get("cleanup.policy").is_some_and(|p| p.split(',').any(|x| x.trim() == "compact"))
}

/// Whether the topic's `cleanup.policy` includes `delete` (the default).
fn deletes(configs: &BTreeMap<String, String>) -> bool {
    configs.get("cleanup.policy").is_none_or(|p| p.split(',').any(|x| x.trim() == "delete"))
}

/// The topic's `min.insync.replicas`, else the broker default.
pub fn min_insync_replicas(default: i32, configs: &BTreeMap<String, String>) -> i32 {
    configs.get("min.insync.replicas").and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_key_has_a_default_that_reads_back_as_the_default() {
        let defaults = LogConfig::default();
        let named = defaults_by_name(&defaults, 2);
        let known: Vec<&str> = vltava_metadata::topic_config::known_keys().collect();
        assert_eq!(named.keys().copied().collect::<Vec<_>>(), {
            let mut k = known.clone();
            k.sort();
            k
        });
        let as_configs: BTreeMap<String, String> =
            named.iter().filter(|(k, _)| !k.starts_with("flush.")).map(|(k, v)| (k.to_string(), v.clone())).collect();
        assert!(vltava_metadata::topic_config::validate(&as_configs).is_ok());
        assert_eq!(for_topic(&defaults, &as_configs), defaults, "the listed defaults are the defaults");
        assert_eq!(min_insync_replicas(1, &as_configs), 2);
    }

    #[test]
    fn topic_configs_override_defaults() {
        let defaults = LogConfig::default();
        let configs = BTreeMap::from([
            ("segment.bytes".to_string(), "1024".to_string()),
            ("retention.ms".to_string(), "-1".to_string()),
            ("flush.messages".to_string(), "1".to_string()),
        ]);
        let c = for_topic(&defaults, &configs);
        assert_eq!(c.segment_bytes, 1024);
        assert_eq!(c.retention_ms, -1);
        assert_eq!(c.flush_messages, Some(1));
        assert_eq!(c.retention_bytes, defaults.retention_bytes);
        assert_eq!(min_insync_replicas(1, &configs), 1);
        assert_eq!(c.compression_type, CompressionType::Producer);
        assert_eq!(c.message_timestamp_type, TimestampType::CreateTime);
        let configs = BTreeMap::from([
            ("compression.type".to_string(), "zstd".to_string()),
            ("message.timestamp.type".to_string(), "LogAppendTime".to_string()),
            ("message.timestamp.before.max.ms".to_string(), "60000".to_string()),
            ("message.timestamp.after.max.ms".to_string(), "1000".to_string()),
        ]);
        let c = for_topic(&defaults, &configs);
        assert_eq!(c.compression_type, CompressionType::Zstd);
        assert_eq!(c.message_timestamp_type, TimestampType::LogAppendTime);
        assert_eq!((c.message_timestamp_before_max_ms, c.message_timestamp_after_max_ms), (60_000, 1_000));
    }

    /// Every per-topic key the metadata service accepts has an effect: a new key accepted
    /// without one fails here. Each entry sets a non-default value and names what it changes.
    #[test]
    fn every_accepted_topic_key_acts() {
        let defaults = LogConfig::default();
        let with =
            |key: &str, value: &str| for_topic(&defaults, &BTreeMap::from([(key.to_string(), value.to_string())]));
        let d = &defaults;
        let effects: Vec<(&str, bool)> = vec![
            (
                "cleanup.policy",
                with("cleanup.policy", "compact").compact && with("cleanup.policy", "compact").retention_ms == -1,
            ),
            ("retention.ms", with("retention.ms", "1000").retention_ms == 1000),
            ("retention.bytes", with("retention.bytes", "4096").retention_bytes == 4096),
            ("segment.bytes", with("segment.bytes", "2048").segment_bytes == 2048),
            ("segment.ms", with("segment.ms", "60000").segment_ms == 60_000),
            ("segment.index.bytes", with("segment.index.bytes", "4096").segment_index_bytes == 4096),
            ("index.interval.bytes", with("index.interval.bytes", "100").index_interval_bytes == 100),
            ("max.message.bytes", with("max.message.bytes", "1000").max_message_bytes == 1000),
            // Read by the partition (acks=all) and the controller, not by the log.
            (
                "min.insync.replicas",
                min_insync_replicas(1, &BTreeMap::from([("min.insync.replicas".into(), "2".into())])) == 2,
            ),
            ("flush.messages", with("flush.messages", "1").flush_messages == Some(1)),
            ("flush.ms", with("flush.ms", "10").flush_ms == Some(10)),
            (
                "message.timestamp.type",
                with("message.timestamp.type", "LogAppendTime").message_timestamp_type == TimestampType::LogAppendTime,
            ),
            (
                "message.timestamp.before.max.ms",
                with("message.timestamp.before.max.ms", "5").message_timestamp_before_max_ms == 5,
            ),
            (
                "message.timestamp.after.max.ms",
                with("message.timestamp.after.max.ms", "5").message_timestamp_after_max_ms == 5,
            ),
            // Read by the controller's leader election (`metadata/src/election.rs`, tested there).
            ("unclean.leader.election.enable", true),
            ("compression.type", with("compression.type", "lz4").compression_type == CompressionType::Lz4),
            ("delete.retention.ms", with("delete.retention.ms", "5").delete_retention_ms == 5),
            ("min.cleanable.dirty.ratio", with("min.cleanable.dirty.ratio", "0.1").min_cleanable_dirty_ratio == 0.1),
            ("min.compaction.lag.ms", with("min.compaction.lag.ms", "5").min_compaction_lag_ms == 5),
            ("max.compaction.lag.ms", with("max.compaction.lag.ms", "5").max_compaction_lag_ms == 5),
        ];
        for (key, acts) in &effects {
            assert!(acts, "{key} is accepted but changes nothing");
        }
        let covered: std::collections::BTreeSet<&str> = effects.iter().map(|(k, _)| *k).collect();
        let accepted: std::collections::BTreeSet<&str> = vltava_metadata::topic_config::known_keys().collect();
        assert_eq!(covered, accepted, "every accepted key needs an entry here");
        assert_ne!(with("retention.ms", "1000"), *d);
    }

    #[test]
    fn a_compact_only_topic_is_never_deleted_by_age_or_size() {
        let defaults = LogConfig::default();
        let with = |policy: &str| {
            let configs = BTreeMap::from([
                ("cleanup.policy".to_string(), policy.to_string()),
                ("retention.ms".to_string(), "1000".to_string()),
                ("retention.bytes".to_string(), "4096".to_string()),
            ]);
            let c = for_topic(&defaults, &configs);
            (c.retention_ms, c.retention_bytes)
        };
        assert_eq!(with("compact"), (-1, -1));
        assert_eq!(with("compact,delete"), (1000, 4096));
        assert_eq!(with("delete"), (1000, 4096));
    }
}
