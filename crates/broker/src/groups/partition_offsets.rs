//! The log start or end offsets of partitions anywhere in the cluster, for the group
//! coordinator's `DescribeGroups` (lag), `AlterConsumerGroupOffsets` (range checks) and lag
//! gauge (partitions it does not host).
//!
//! A partition this broker leads is answered locally; the others are asked of their leaders
//! with `ListOffsets`, one call per leader. Partitions whose leader is unknown or unreachable
//! are absent from the answer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use vltava_common::ErrorCode;
use vltava_metadata::ClusterImage;
use vltava_proto::v1::record_service_client::RecordServiceClient;
use vltava_proto::v1::{ListOffsetsPartition, ListOffsetsRequest};

use crate::replica_manager::ReplicaManager;

/// `ListOffsets` timestamp of the log end (the high watermark).
pub const LATEST: i64 = -1;
/// `ListOffsets` timestamp of the log start.
pub const EARLIEST: i64 = -2;

/// How long a leader has to answer.
const LEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The log end ([`LATEST`]) or log start ([`EARLIEST`]) offset of each of `keys`, asked by
/// broker `me`, whose partitions `replicas` holds.
pub async fn offsets_at(
    me: i32,
    replicas: &ReplicaManager,
    image: &ClusterImage,
    keys: &BTreeSet<(String, i32)>,
    timestamp: i64,
) -> HashMap<(String, i32), i64> {
    let mut found = HashMap::new();
    let mut remote: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for (topic, partition) in keys {
        let Some(state) = image.partition(topic, *partition) else { continue };
        if state.leader == me
            && let Ok(part) = replicas.partition(topic, *partition)
        {
            let offset = if timestamp == EARLIEST { part.log_start_offset() } else { part.high_watermark() };
            found.insert((topic.clone(), *partition), offset);
        } else if state.leader >= 0 {
            remote.entry(state.leader).or_default().push((topic.clone(), *partition));
        }
    }
    for (leader, parts) in remote {
        let Some(address) = image.brokers.get(&leader).map(|b| b.address.clone()) else { continue };
        match ask_leader(&address, &parts, timestamp).await {
            Ok(answers) => found.extend(answers),
            Err(e) => tracing::debug!(leader, error = %e, "partition offsets unavailable from the leader"),
        }
    }
    found
}

async fn ask_leader(
    address: &str,
    parts: &[(String, i32)],
    timestamp: i64,
) -> Result<Vec<((String, i32), i64)>, tonic::Status> {
    let endpoint = vltava_common::grpc::data_endpoint(address)
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?
        .connect_timeout(LEADER_TIMEOUT)
        .timeout(LEADER_TIMEOUT);
    let mut client = RecordServiceClient::new(vltava_common::grpc::traced(endpoint.connect_lazy()));
    let request = ListOffsetsRequest {
        partitions: parts
            .iter()
            .map(|(topic, partition)| ListOffsetsPartition { topic: topic.clone(), partition: *partition, timestamp })
            .collect(),
        isolation_level: vltava_proto::v1::IsolationLevel::ReadUncommitted as i32,
    };
    let response = client.list_offsets(request).await?.into_inner();
    Ok(response
        .partitions
        .into_iter()
        .filter(|p| p.error_code == ErrorCode::None as i32 && p.offset >= 0)
        .map(|p| ((p.topic, p.partition), p.offset))
        .collect())
}
