//! The Kafka APIs this listener serves and their version ranges.
//!
//! Ranges follow what current clients negotiate (librdkafka 2.x, kafka-python, the Java client
//! 3.x and 4.x): versions older than Kafka 2.1's are left out, as Kafka 4 left them out.
//! ApiVersions announces exactly this table, and the README's compatibility table is checked
//! against it by a test.

use kafka_protocol::messages::ApiKey;

/// One served API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// The API.
    pub api: ApiKey,
    /// Its name as Kafka spells it.
    pub name: &'static str,
    /// Lowest version served.
    pub min: i16,
    /// Highest version served.
    pub max: i16,
}

const fn served(api: ApiKey, name: &'static str, min: i16, max: i16) -> Served {
    Served { api, name, min, max }
}

/// Every API served, by API key.
pub const SUPPORTED: &[Served] = &[
    served(ApiKey::Produce, "Produce", 3, 11),
    served(ApiKey::Fetch, "Fetch", 4, 16),
    served(ApiKey::ListOffsets, "ListOffsets", 1, 8),
    served(ApiKey::Metadata, "Metadata", 0, 13),
    served(ApiKey::OffsetCommit, "OffsetCommit", 2, 9),
    served(ApiKey::OffsetFetch, "OffsetFetch", 1, 9),
    served(ApiKey::FindCoordinator, "FindCoordinator", 0, 4),
    served(ApiKey::JoinGroup, "JoinGroup", 0, 9),
    served(ApiKey::Heartbeat, "Heartbeat", 0, 4),
    served(ApiKey::LeaveGroup, "LeaveGroup", 0, 5),
    served(ApiKey::SyncGroup, "SyncGroup", 0, 5),
    served(ApiKey::DescribeGroups, "DescribeGroups", 0, 5),
    served(ApiKey::ListGroups, "ListGroups", 0, 5),
    served(ApiKey::ApiVersions, "ApiVersions", 0, 4),
    served(ApiKey::CreateTopics, "CreateTopics", 2, 7),
    served(ApiKey::DeleteTopics, "DeleteTopics", 1, 6),
    served(ApiKey::InitProducerId, "InitProducerId", 0, 5),
    served(ApiKey::OffsetForLeaderEpoch, "OffsetForLeaderEpoch", 2, 4),
    served(ApiKey::AddPartitionsToTxn, "AddPartitionsToTxn", 0, 3),
    served(ApiKey::AddOffsetsToTxn, "AddOffsetsToTxn", 0, 3),
    served(ApiKey::EndTxn, "EndTxn", 0, 3),
    served(ApiKey::TxnOffsetCommit, "TxnOffsetCommit", 0, 3),
    served(ApiKey::DescribeConfigs, "DescribeConfigs", 1, 4),
    served(ApiKey::AlterConfigs, "AlterConfigs", 0, 2),
    served(ApiKey::CreatePartitions, "CreatePartitions", 0, 3),
    served(ApiKey::DeleteGroups, "DeleteGroups", 0, 2),
    served(ApiKey::IncrementalAlterConfigs, "IncrementalAlterConfigs", 0, 1),
    served(ApiKey::OffsetDelete, "OffsetDelete", 0, 0),
    served(ApiKey::DescribeCluster, "DescribeCluster", 0, 2),
    served(ApiKey::ConsumerGroupHeartbeat, "ConsumerGroupHeartbeat", 0, 1),
];

/// The entry of `api`, when it is served.
pub fn served_api(api: ApiKey) -> Option<&'static Served> {
    SUPPORTED.iter().find(|s| s.api == api)
}

/// The README's compatibility table rows for [`SUPPORTED`].
pub fn markdown_table() -> String {
    let mut out = String::from("| API | key | versions |\n| --- | --- | --- |\n");
    for s in SUPPORTED {
        out.push_str(&format!("| {} | {} | {}-{} |\n", s.name, s.api as i16, s.min, s.max));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_compatibility_table_is_the_served_table() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
        let begin = "<!-- kafka-apis:begin -->\n";
        let start = readme.find(begin).expect("README has the kafka-apis table") + begin.len();
        let end = readme[start..].find("<!-- kafka-apis:end -->").unwrap() + start;
        assert_eq!(
            &readme[start..end],
            markdown_table(),
            "README.md's Kafka table must read (between the markers):\n{}",
            markdown_table()
        );
    }

    #[test]
    fn every_range_is_one_the_codec_can_decode_and_keys_are_listed_once_in_order() {
        for s in SUPPORTED {
            let codec = s.api.valid_versions();
            assert!(s.min <= s.max, "{}", s.name);
            assert!(codec.min <= s.min && s.max <= codec.max, "{} {}..={} vs codec {codec:?}", s.name, s.min, s.max);
            assert_eq!(format!("{:?}", s.api), s.name);
        }
        let keys: Vec<i16> = SUPPORTED.iter().map(|s| s.api as i16).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(keys, sorted);
    }
}
