//! ListOffsets and OffsetForLeaderEpoch over the Kafka protocol against a real `vltava dev`:
//! earliest, latest, max timestamp (KIP-734), earliest local and by time, for both isolation
//! levels; where a leader epoch ends.

use std::path::PathBuf;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::ListOffsetsResponse;
use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use kafka_protocol::messages::offset_for_leader_epoch_response::OffsetForLeaderEpochResponse;
use kafka_protocol::messages::{ApiKey, BrokerId, ListOffsetsRequest, OffsetForLeaderEpochRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use vltava_client::{Acks, Admin, NewTopic, Producer, ProducerConfig, ProducerRecord};
use vltava_testkit::ServerProcess;

mod kafka_wire;
use kafka_wire::{call, connect};

fn vltava() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vltava"))
}

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// `(error, offset, timestamp)` for each of `timestamps` on partition 0 of `name`.
fn list(kafka: &str, name: &str, isolation: i8, timestamps: &[i64]) -> Vec<(i16, i64, i64)> {
    let partitions = timestamps
        .iter()
        .map(|&t| {
            ListOffsetsPartition::default().with_partition_index(0).with_timestamp(t).with_current_leader_epoch(-1)
        })
        .collect();
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(vec![ListOffsetsTopic::default().with_name(topic(name)).with_partitions(partitions)]);
    let r: ListOffsetsResponse = call(&mut connect(kafka), ApiKey::ListOffsets, 8, &req);
    assert_eq!(r.topics.len(), 1);
    r.topics[0].partitions.iter().map(|p| (p.error_code, p.offset, p.timestamp)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_answers_earliest_latest_max_timestamp_and_by_time_and_epochs_end_where_they_end() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_dev(&vltava(), data.path(), &[]).unwrap();
    let kafka = server.kafka().unwrap();
    let admin = Admin::connect(&server.server()).await.unwrap();
    admin.create_topic(NewTopic::new("times", 1)).await.unwrap();
    let producer =
        Producer::connect(ProducerConfig { acks: Acks::All, ..ProducerConfig::new(server.server()) }).await.unwrap();
    for (i, ts) in [100, 500, 300, 500].into_iter().enumerate() {
        let record = ProducerRecord::new("times", format!("v{i}")).timestamp(ts);
        producer.send(record).await.unwrap().await.unwrap();
    }

    let answers = list(&kafka, "times", 0, &[-2, -1, -3, -4, 250, 501]);
    assert_eq!(
        answers,
        vec![(0, 0, -1), (0, 4, -1), (0, 1, 500), (0, 0, -1), (0, 1, 500), (0, -1, -1)],
        "earliest, latest, max timestamp (the first of the ties), earliest local, by time, none after"
    );
    assert_eq!(list(&kafka, "times", 1, &[-1])[0], (0, 4, -1), "read_committed latest is the last stable offset");
    assert_eq!(list(&kafka, "nope", 0, &[-1])[0].0, 3, "UNKNOWN_TOPIC_OR_PARTITION");

    let req = OffsetForLeaderEpochRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
        OffsetForLeaderTopic::default().with_topic(topic("times")).with_partitions(vec![
            OffsetForLeaderPartition::default().with_partition(0).with_current_leader_epoch(-1).with_leader_epoch(0),
        ]),
    ]);
    let r: OffsetForLeaderEpochResponse = call(&mut connect(&kafka), ApiKey::OffsetForLeaderEpoch, 4, &req);
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_epoch, p.end_offset), (0, 0, 4), "epoch 0 ends at the log end");
}

/// `(error, offset)` of partition 0 of `topic` in `group`'s committed offsets (OffsetFetch v7).
fn fetch_committed(kafka: &str, group: &str, topic: &str, require_stable: bool) -> (i16, i64) {
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponse;
    use kafka_protocol::messages::{GroupId, OffsetFetchRequest};
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default().with_name(self::topic(topic)).with_partition_indexes(vec![0]),
        ]))
        .with_require_stable(require_stable);
    let r: OffsetFetchResponse = call(&mut connect(kafka), ApiKey::OffsetFetch, 7, &req);
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.committed_offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_a_transaction_has_committed_but_not_ended_are_unstable_for_require_stable_fetches() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_dev(&vltava(), data.path(), &[]).unwrap();
    let kafka = server.kafka().unwrap();
    let admin = Admin::connect(&server.server()).await.unwrap();
    admin.create_topic(NewTopic::new("input", 1)).await.unwrap();
    let producer = Producer::connect(ProducerConfig {
        transactional_id: Some("eos-1".into()),
        ..ProducerConfig::new(server.server())
    })
    .await
    .unwrap();
    producer.init_transactions().await.unwrap();
    producer.begin_transaction().unwrap();
    let offsets = std::collections::HashMap::from([(
        vltava_client::TopicPartition::new("input", 0),
        vltava_client::OffsetAndMetadata::new(42),
    )]);
    let group = vltava_client::ConsumerGroupMetadata::new("eos-group");
    producer.send_offsets_to_transaction(&offsets, &group).await.unwrap();

    assert_eq!(fetch_committed(&kafka, "eos-group", "input", true), (88, -1), "UNSTABLE_OFFSET_COMMIT while open");
    assert_eq!(fetch_committed(&kafka, "eos-group", "input", false), (0, -1), "without require_stable: nothing yet");
    producer.commit_transaction().await.unwrap();
    assert_eq!(fetch_committed(&kafka, "eos-group", "input", true), (0, 42), "stable once the transaction commits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_travel_as_kafka_error_codes_on_an_open_connection() {
    use kafka_protocol::messages::describe_groups_response::DescribeGroupsResponse;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::fetch_response::FetchResponse;
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::offset_commit_response::OffsetCommitResponse;
    use kafka_protocol::messages::{DescribeGroupsRequest, FetchRequest, GroupId, OffsetCommitRequest};

    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_dev(&vltava(), data.path(), &[]).unwrap();
    let kafka = server.kafka().unwrap();
    Admin::connect(&server.server()).await.unwrap().create_topic(NewTopic::new("refused", 1)).await.unwrap();
    let mut s = connect(&kafka);

    // An invalid group id: DescribeGroups v5 answers with the code (it has no message field).
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(StrBytes::from_static_str(""))]);
    let r: DescribeGroupsResponse = call(&mut s, ApiKey::DescribeGroups, 5, &req);
    assert_eq!(r.groups[0].error_code, 24, "INVALID_GROUP_ID");

    // Commit metadata above offset.metadata.max.bytes (after FindCoordinator, as clients do: it
    // creates __consumer_offsets).
    use kafka_protocol::messages::FindCoordinatorRequest;
    use kafka_protocol::messages::find_coordinator_response::FindCoordinatorResponse;
    let find = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("big-metadata"));
    let r: FindCoordinatorResponse = call(&mut s, ApiKey::FindCoordinator, 3, &find);
    assert_eq!((r.error_code, r.node_id), (0, BrokerId(1)));
    let partition = OffsetCommitRequestPartition::default()
        .with_partition_index(0)
        .with_committed_offset(0)
        .with_committed_metadata(Some(StrBytes::from_string("m".repeat(5000))));
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("big-metadata")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default().with_name(topic("refused")).with_partitions(vec![partition]),
        ]);
    let r: OffsetCommitResponse = call(&mut s, ApiKey::OffsetCommit, 8, &req);
    assert_eq!(r.topics[0].partitions[0].error_code, 12, "OFFSET_METADATA_TOO_LARGE");

    // A fetch naming a leader epoch the leader does not have yet.
    let partition =
        FetchPartition::default().with_partition(0).with_current_leader_epoch(5).with_partition_max_bytes(1 << 20);
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic(topic("refused")).with_partitions(vec![partition])]);
    let r: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &req);
    assert_eq!(r.responses[0].partitions[0].error_code, 75, "UNKNOWN_LEADER_EPOCH");
}
