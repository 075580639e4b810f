//! One file per Kafka API: the Kafka message in, the broker handler's answer out.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod api_versions;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;
pub mod txn_offset_commit;

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;
use vltava_common::WireError;

/// Kafka error codes the broker's own errors never carry (the others are `ErrorCode` values:
/// Vltava numbers its errors as Kafka does).
pub mod codes {
    /// The request's version is not served.
    pub const UNSUPPORTED_VERSION: i16 = 35;
    /// An incremental fetch named a session this broker does not hold.
    pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
    /// A topic id names no topic.
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
}

/// The Kafka error code of a broker error.
pub fn code(e: &WireError) -> i16 {
    e.code as i16
}

/// A Kafka string.
pub fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// A Kafka topic name.
pub fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

/// A topic id as Kafka sends it (Vltava keeps the UUID as text); nil when it does not parse.
pub fn topic_uuid(id: &str) -> Uuid {
    Uuid::parse_str(id).unwrap_or(Uuid::nil())
}

/// The topic Kafka names by `id` in `image` (Vltava keeps topics by name).
pub fn topic_by_id<'a>(
    image: &'a vltava_metadata::ClusterImage,
    id: &Uuid,
) -> Option<&'a std::sync::Arc<vltava_metadata::TopicMetadata>> {
    image.topics.values().find(|t| topic_uuid(&t.id) == *id)
}

/// `host:port` split for Kafka's broker lists; `None` when the port is missing or not a number.
pub fn host_port(address: &str) -> Option<(String, i32)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(host_port("10.0.0.1:9092"), Some(("10.0.0.1".into(), 9092)));
        assert_eq!(host_port("broker-1:19092"), Some(("broker-1".into(), 19092)));
        assert_eq!(host_port("[::1]:9092"), Some(("::1".into(), 9092)));
        assert_eq!(host_port("nohost"), None);
        assert_eq!(host_port("h:port"), None);
    }

    #[test]
    fn topic_ids_parse_or_are_nil() {
        let id = Uuid::new_v4();
        assert_eq!(topic_uuid(&id.to_string()), id);
        assert_eq!(topic_uuid("not-a-uuid"), Uuid::nil());
    }
}
