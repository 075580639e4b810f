//! The broker's gRPC API against a real in-process server (real sockets, real RocksDB, real logs):
//! every bad input gets a clear Kafka-style error and leaves stored data untouched.

mod common;

use std::time::Duration;

use common::{TestBroker, batch, code, values};
use tonic::Code;
use vltava_proto::v1::*;

fn fetch_req(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest {
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 1 << 20,
        partitions: vec![FetchPartition {
            topic: topic.into(),
            partition,
            fetch_offset: offset,
            partition_max_bytes: 0,
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn given_produced_batches_when_fetched_should_return_them_with_offsets_in_order() {
    let b = TestBroker::start(|_| {}).await;
    b.create_topic("t", 2, &[]).await;
    assert_eq!(b.produce("t", 1, "a", 3).await, 0);
    assert_eq!(b.produce("t", 1, "b", 2).await, 3);
    let resp = b.records().await.fetch(fetch_req("t", 1, 0, 0)).await.unwrap().into_inner();
    let p = &resp.partitions[0];
    assert_eq!(p.error_code, ErrorCode::None as i32);
    assert_eq!(p.high_watermark, 5);
    let got: Vec<_> = values(&p.records);
    assert_eq!(
        got,
        vec![(0, "a-0".into()), (1, "a-1".into()), (2, "a-2".into()), (3, "b-0".into()), (4, "b-1".into())]
    );
}

#[tokio::test]
async fn given_a_batch_with_a_bad_crc_when_produced_should_fail_corrupt_message_and_store_nothing() {
    let b = TestBroker::start(|_| {}).await;
    b.create_topic("t", 1, &[]).await;
    b.produce("t", 0, "ok", 2).await;
    let mut bytes = batch("bad", 3, 1).to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let err = b
        .records()
        .await
        .produce(ProduceRequest { topic: "t".into(), partition: 0, acks: 1, timeout_ms: 0, records: bytes.into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(code(&err), "CORRUPT_MESSAGE", "{err:?}");
    let resp = b.records().await.fetch(fetch_req("t", 0, 0, 0)).await.unwrap().into_inner();
    assert_eq!(values(&resp.partitions[0].records).len(), 2, "the corrupt batch must not be stored");
    assert_eq!(b.produce("t", 0, "after", 1).await, 2);
}

#[tokio::test]
async fn given_a_batch_larger_than_max_message_bytes_should_fail_record_too_large() {
    let b = TestBroker::start(|_| {}).await;
    b.create_topic("small", 1, &[("max.message.bytes", "1000")]).await;
    let err = b
        .records()
        .await
        .produce(ProduceRequest {
            topic: "small".into(),
            partition: 0,
            acks: 1,
            timeout_ms: 0,
            records: batch("x", 100, 1),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&err), "RECORD_TOO_LARGE", "{err:?}");
    let d = b.admin().await.describe_topic(DescribeTopicRequest { name: "small".into() }).await.unwrap().into_inner();
    assert_eq!(d.topic.unwrap().partitions[0].log_end_offset, 0);
}

#[tokio::test]
async fn given_bad_requests_should_name_the_problem() {
    let b = TestBroker::start(|_| {}).await;
    b.create_topic("t", 1, &[]).await;
    let mut rec = b.records().await;
    let produce = |topic: &str, partition: i32, acks: i32| ProduceRequest {
        topic: topic.into(),
        partition,
        acks,
        timeout_ms: 0,
        records: batch("v", 1, 1),
    };
    let e = rec.produce(produce("missing", 0, 1)).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (Code::NotFound, "UNKNOWN_TOPIC_OR_PARTITION"));
    let e = rec.produce(produce("t", 7, 1)).await.unwrap_err();
    assert_eq!(code(&e), "UNKNOWN_TOPIC_OR_PARTITION");
    let e = rec.produce(produce("t", 0, 2)).await.unwrap_err();
    assert_eq!(code(&e), "INVALID_REQUIRED_ACKS");
    assert!(e.message().contains("acks must be"), "{}", e.message());
    let e = rec
        .produce(ProduceRequest {
            topic: "t".into(),
            partition: 0,
            acks: 1,
            timeout_ms: 0,
            records: vec![1u8, 2, 3].into(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), "CORRUPT_MESSAGE", "{e:?}");

    let mut admin = b.admin().await;
    let create = |name: &str, partitions: i32, rf: i32| CreateTopicRequest {
        name: name.into(),
        partitions,
        replication_factor: rf,
        configs: Default::default(),
        validate_only: false,
    };
    let e = admin.create_topic(create("t", 1, 1)).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (Code::AlreadyExists, "TOPIC_ALREADY_EXISTS"));
    let e = admin.create_topic(create("bad name!", 1, 1)).await.unwrap_err();
    assert_eq!(code(&e), "INVALID_TOPIC");
    let e = admin.create_topic(create("u", 0, 1)).await.unwrap_err();
    assert_eq!(code(&e), "INVALID_PARTITIONS");
    let e = admin.create_topic(create("u", 1, 3)).await.unwrap_err();
    assert_eq!(code(&e), "INVALID_REPLICATION_FACTOR");
    let mut bad_config = create("u", 1, 1);
    bad_config.configs.insert("retention.ms".into(), "soon".into());
    let e = admin.create_topic(bad_config).await.unwrap_err();
    assert_eq!(code(&e), "INVALID_CONFIG");
    let e = admin.delete_topic(DeleteTopicRequest { name: "nope".into() }).await.unwrap_err();
    assert_eq!(code(&e), "UNKNOWN_TOPIC_OR_PARTITION");
}

#[tokio::test]
async fn given_a_fetch_outside_the_log_should_answer_offset_out_of_range_with_the_valid_range() {
    let b = TestBroker::start(|_| {}).await;
    b.create_topic("t", 1, &[]).await;
    b.produce("t", 0, "a", 5).await;
    let resp = b.records().await.fetch(fetch_req("t", 0, 99, 0)).await.unwrap().into_inner();
    let p = &resp.partitions[0];
    assert_eq!(p.error_code, ErrorCode::OffsetOutOfRange as i32);
    assert_eq!((p.log_start_offset, p.high_watermark), (0, 5));
    assert!(p.error_message.contains("0..5"), "{}", p.error_message);
    assert!(p.records.is_empty());
}

#[tokio::test]
async fn given_a_subscription_should_stream_existing_and_new_records() {
    let b = TestBroker::start(|_| {}).await;
    b.create_topic("t", 1, &[]).await;
    b.produce("t", 0, "old", 2).await;
    let mut stream = b
        .records()
        .await
        .subscribe(SubscribeRequest { topic: "t".into(), partition: 0, offset: -2, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(values(&first.records).len(), 2);
    b.produce("t", 0, "new", 1).await;
    let second = tokio::time::timeout(Duration::from_secs(10), stream.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(values(&second.records), vec![(2, "new-0".to_string())]);
}

#[tokio::test]
async fn given_records_with_timestamps_list_offsets_should_find_earliest_latest_and_by_time() {
    let b = TestBroker::start(|_| {}).await;
    b.create_topic("t", 1, &[]).await;
    let req =
        ProduceRequest { topic: "t".into(), partition: 0, acks: 1, timeout_ms: 0, records: batch("a", 10, 1_000) };
    b.records().await.produce(req).await.unwrap(); // timestamps 1000..1009
    let ask = |timestamp: i64| ListOffsetsPartition { topic: "t".into(), partition: 0, timestamp };
    let resp = b
        .records()
        .await
        .list_offsets(ListOffsetsRequest {
            partitions: vec![ask(-2), ask(-1), ask(1004), ask(99_999)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let offsets: Vec<_> = resp.partitions.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, vec![0, 10, 4, -1]);
    assert_eq!(resp.partitions[2].timestamp, 1004);
}

#[tokio::test]
async fn given_committed_offsets_should_return_them_and_reject_unknown_partitions() {
    let b = TestBroker::start(|c| c.groups.offsets_topic_num_partitions = 2).await;
    b.create_topic("t", 2, &[]).await;
    let mut g = b.groups().await;
    g.find_coordinator(FindCoordinatorRequest { group_id: "g1".into() }).await.unwrap();
    let commit =
        |partition: i32, offset: i64| OffsetCommit { topic: "t".into(), partition, offset, metadata: "m".into() };
    let resp = g
        .commit_offsets(CommitOffsetsRequest {
            group_id: "g1".into(),
            offsets: vec![commit(0, 5), commit(9, 1)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.results[0].error_code, ErrorCode::None as i32);
    assert_eq!(resp.results[1].error_code, ErrorCode::UnknownTopicOrPartition as i32);
    let fetched = g
        .fetch_offsets(FetchOffsetsRequest {
            group_id: "g1".into(),
            partitions: vec![
                TopicPartition { topic: "t".into(), partition: 0 },
                TopicPartition { topic: "t".into(), partition: 1 },
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let got: Vec<_> = fetched.offsets.iter().map(|o| o.offset).collect();
    assert_eq!(got, vec![5, -1]);
    assert_eq!(g.list_groups(ListGroupsRequest {}).await.unwrap().into_inner().group_ids, vec!["g1"]);
    let e = g.fetch_offsets(FetchOffsetsRequest { group_id: String::new(), partitions: vec![] }).await.unwrap_err();
    assert_eq!(code(&e), "INVALID_GROUP_ID");
}

#[tokio::test]
async fn given_a_deleted_topic_should_forget_its_data_and_offsets_and_allow_recreation() {
    let b = TestBroker::start(|c| c.groups.offsets_topic_num_partitions = 1).await;
    b.create_topic("t", 1, &[]).await;
    b.produce("t", 0, "old", 3).await;
    let mut g = b.groups().await;
    g.find_coordinator(FindCoordinatorRequest { group_id: "g".into() }).await.unwrap();
    g.commit_offsets(CommitOffsetsRequest {
        group_id: "g".into(),
        offsets: vec![OffsetCommit { topic: "t".into(), partition: 0, offset: 3, metadata: String::new() }],
        ..Default::default()
    })
    .await
    .unwrap();
    b.admin().await.delete_topic(DeleteTopicRequest { name: "t".into() }).await.unwrap();
    assert!(!b.dir.path().join("broker/logs/t-0").exists(), "the log directory is removed");
    b.create_topic("t", 1, &[]).await;
    assert_eq!(b.produce("t", 0, "new", 1).await, 0, "a re-created topic starts empty");
    let fetched = g.fetch_offsets(FetchOffsetsRequest { group_id: "g".into(), partitions: vec![] }).await.unwrap();
    assert!(fetched.into_inner().offsets.is_empty());
}

#[tokio::test]
async fn given_auto_create_enabled_a_produce_to_a_new_topic_should_create_it() {
    let b = TestBroker::start(|c| {
        c.auto_create_topics_enable = true;
        c.num_partitions = 3;
    })
    .await;
    assert_eq!(b.produce("fresh", 0, "v", 1).await, 0);
    let d = b.admin().await.describe_topic(DescribeTopicRequest { name: "fresh".into() }).await.unwrap().into_inner();
    assert_eq!(d.topic.unwrap().partitions.len(), 3);
}

#[tokio::test]
async fn given_a_clean_restart_should_keep_topics_records_and_offsets() {
    let b = TestBroker::start(|_| {}).await;
    b.create_topic("t", 2, &[("segment.bytes", "200")]).await;
    for i in 0..5 {
        b.produce("t", 1, &format!("r{i}"), 2).await;
    }
    let stopped = b.stop().await;
    let b = TestBroker::restart(stopped, |_| {}).await;
    let resp = b.records().await.fetch(fetch_req("t", 1, 0, 0)).await.unwrap().into_inner();
    let p = &resp.partitions[0];
    assert_eq!(p.high_watermark, 10);
    // Tiny segments: a fetch returns at least the first batch; read on until the end.
    let mut offset = 0;
    let mut seen = Vec::new();
    while offset < 10 {
        let resp = b.records().await.fetch(fetch_req("t", 1, offset, 0)).await.unwrap().into_inner();
        let got = values(&resp.partitions[0].records);
        assert!(!got.is_empty(), "no progress at {offset}");
        offset = got.last().unwrap().0 + 1;
        seen.extend(got);
    }
    assert_eq!(seen.len(), 10);
    assert_eq!(seen[9], (9, "r4-1".to_string()));
}

#[tokio::test]
async fn partitions_grow_configs_change_and_bad_changes_are_refused_without_effect() {
    let b = TestBroker::start(|_| {}).await;
    b.create_topic("t", 2, &[("retention.ms", "60000")]).await;
    b.produce("t", 1, "kept", 3).await;
    let mut admin = b.admin().await;
    let grown = admin
        .create_partitions(CreatePartitionsRequest { topic: "t".into(), total_count: 5, validate_only: false })
        .await
        .unwrap()
        .into_inner()
        .topic
        .unwrap();
    assert_eq!(grown.partitions.len(), 5);
    // The new partitions are writable at once; the old ones kept their records.
    assert_eq!(b.produce("t", 4, "new", 2).await, 0);
    assert_eq!(b.produce("t", 1, "more", 1).await, 3);

    let e = admin
        .create_partitions(CreatePartitionsRequest { topic: "t".into(), total_count: 3, validate_only: false })
        .await
        .unwrap_err();
    assert_eq!(code(&e), "INVALID_PARTITIONS");
    let e = admin
        .create_partitions(CreatePartitionsRequest { topic: "nope".into(), total_count: 3, validate_only: false })
        .await
        .unwrap_err();
    assert_eq!(code(&e), "UNKNOWN_TOPIC_OR_PARTITION");

    let altered = admin
        .alter_configs(AlterConfigsRequest {
            topic: "t".into(),
            set: [("cleanup.policy".to_string(), "delete".to_string())].into(),
            delete: vec!["retention.ms".into()],
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner()
        .topic
        .unwrap();
    assert_eq!(altered.configs.get("cleanup.policy").map(String::as_str), Some("delete"));
    assert!(!altered.configs.contains_key("retention.ms"));
    for (key, value) in [("retention.ms", "soon"), ("no.such.key", "1"), ("min.insync.replicas", "2")] {
        let e = admin
            .alter_configs(AlterConfigsRequest {
                topic: "t".into(),
                set: [(key.to_string(), value.to_string())].into(),
                delete: vec![],
                validate_only: false,
            })
            .await
            .unwrap_err();
        assert_eq!(code(&e), "INVALID_CONFIG", "{key}={value}");
    }
    let described = admin.describe_topic(DescribeTopicRequest { name: "t".into() }).await.unwrap().into_inner();
    let configs = described.topic.unwrap().configs;
    assert_eq!(configs.len(), 1, "refused changes left the configuration alone: {configs:?}");

    let cluster = admin.describe_cluster(DescribeClusterRequest {}).await.unwrap().into_inner();
    assert_eq!((cluster.leader_id, cluster.controllers.len()), (1, 1));
    assert_eq!(cluster.brokers.len(), 1);
    assert!(!cluster.brokers[0].fenced);
}

#[tokio::test]
async fn given_an_open_subscription_a_stopping_broker_should_end_it_with_unavailable_after_the_grace() {
    let b = TestBroker::start(|c| c.shutdown_grace = Duration::from_millis(100)).await;
    b.create_topic("t", 1, &[]).await;
    b.produce("t", 0, "old", 2).await;
    let request = SubscribeRequest { topic: "t".into(), partition: 0, offset: -2, ..Default::default() };
    let mut stream = b.records().await.subscribe(request).await.unwrap().into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(values(&first.records).len(), 2);
    // The idle subscription would hold a graceful stop for ever; `stop` fails the test after 30 s.
    let _dir = b.stop().await;
    let end = tokio::time::timeout(Duration::from_secs(10), stream.message()).await.unwrap();
    let status = end.expect_err("the stream ends with a status");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}
