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
    if !deletes(configs) {
        // `cleanup.policy=compact` alone: nothing is ever deleted by age or size (Kafka's rule).
        // The log cleaner that keeps the latest record per key is not built yet, so such a topic
        // keeps everything.
        c.retention_ms = -1;
        c.retention_bytes = -1;
    }
    c
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
