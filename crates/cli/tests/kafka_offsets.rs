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
