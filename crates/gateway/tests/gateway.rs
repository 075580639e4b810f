//! The gateway in front of a real in-process broker (real sockets, RocksDB metadata, logs): every
//! call made to the gateway must behave as if made to the broker itself.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Cluster, bounded, code, values};
use tokio::sync::oneshot;
use tonic::Code;
use tonic::transport::Channel;
use vltava_gateway::GatewayConfig;
use vltava_proto::v1::admin_service_client::AdminServiceClient;
use vltava_proto::v1::record_service_client::RecordServiceClient;
use vltava_proto::v1::*;

/// A batch of `n` records with values `"{prefix}-{i}"`, stamped now.
fn batch(prefix: &str, n: usize) -> Bytes {
    common::batch(prefix, n, vltava_common::time::now_ms())
}

fn fetch_part(topic: &str, partition: i32, fetch_offset: i64) -> FetchPartition {
    FetchPartition { topic: topic.into(), partition, fetch_offset, partition_max_bytes: 0 }
}

fn fetch_req(partitions: Vec<FetchPartition>) -> FetchRequest {
    FetchRequest { max_wait_ms: 0, min_bytes: 0, max_bytes: 1 << 20, partitions, ..Default::default() }
}

fn s(v: &[(i64, &str)]) -> Vec<(i64, String)> {
    v.iter().map(|(o, s)| (*o, s.to_string())).collect()
}

#[tokio::test]
async fn given_a_topic_created_through_the_gateway_produced_batches_should_fetch_back_in_request_order() {
    let c = Cluster::start().await;
    let created = c.create_topic("orders", 3).await;
    assert_eq!(created.topic.unwrap().partitions.len(), 3);

    assert_eq!(c.produce("orders", 0, batch("p0a", 2)).await.unwrap().base_offset, 0);
    assert_eq!(c.produce("orders", 0, batch("p0b", 1)).await.unwrap().base_offset, 2);
    let p2 = c.produce("orders", 2, batch("p2", 3)).await.unwrap();
    assert_eq!((p2.base_offset, p2.last_offset), (0, 2));

    let req = fetch_req(vec![
        fetch_part("orders", 2, 1),
        fetch_part("nope", 0, 0),
        fetch_part("orders", 0, 0),
        fetch_part("orders", 1, 0),
    ]);
    let resp = bounded(c.records().await.fetch(req)).await.unwrap().into_inner();
    let order: Vec<_> = resp.partitions.iter().map(|p| (p.topic.as_str(), p.partition)).collect();
    assert_eq!(order, vec![("orders", 2), ("nope", 0), ("orders", 0), ("orders", 1)]);

    let p2 = &resp.partitions[0];
    assert_eq!(p2.error_code, ErrorCode::None as i32);
    assert_eq!(p2.high_watermark, 3);
    // The whole stored batch comes back; the consumer skips records before its fetch offset.
    assert_eq!(values(&p2.records), s(&[(0, "p2-0"), (1, "p2-1"), (2, "p2-2")]));
    assert_eq!(resp.partitions[1].error_code, ErrorCode::UnknownTopicOrPartition as i32);
    assert!(resp.partitions[1].records.is_empty());
    assert_eq!(values(&resp.partitions[2].records), s(&[(0, "p0a-0"), (1, "p0a-1"), (2, "p0b-0")]));
    assert_eq!(resp.partitions[3].error_code, ErrorCode::None as i32);
    assert_eq!(resp.partitions[3].high_watermark, 0);
    assert!(values(&resp.partitions[3].records).is_empty());

    let ask = |partition, timestamp| ListOffsetsPartition { topic: "orders".into(), partition, timestamp };
    let offsets = bounded(c.records().await.list_offsets(ListOffsetsRequest {
        partitions: vec![ask(0, -1), ask(2, -1), ask(1, -2)],
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner();
    let got: Vec<_> = offsets.partitions.iter().map(|p| (p.partition, p.error_code, p.offset)).collect();
    assert_eq!(got, vec![(0, 0, 3), (2, 0, 3), (1, 0, 0)]);
    c.stop().await;
}

#[tokio::test]
async fn given_an_unknown_topic_produce_should_return_the_brokers_unknown_topic_status() {
    let c = Cluster::start().await;
    let started = std::time::Instant::now();
    let err = c.produce("missing", 0, batch("x", 1)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(code(&err), "UNKNOWN_TOPIC_OR_PARTITION", "{err:?}");
    let detail = vltava_common::WireError::from_status(&err);
    assert_eq!(detail.code, ErrorCode::UnknownTopicOrPartition);
    assert!(started.elapsed() < Duration::from_secs(5), "a topic unknown to fresh metadata is not retried");
    c.stop().await;
}

#[tokio::test]
async fn given_a_batch_with_a_bad_crc_produce_should_return_corrupt_message_and_store_nothing() {
    let c = Cluster::start().await;
    c.create_topic("t", 1).await;
    c.produce("t", 0, batch("ok", 2)).await.unwrap();
    let mut bytes = batch("bad", 3).to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let err = c.produce("t", 0, bytes.into()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(code(&err), "CORRUPT_MESSAGE", "{err:?}");
    let resp = bounded(c.records().await.fetch(fetch_req(vec![fetch_part("t", 0, 0)]))).await.unwrap().into_inner();
    assert_eq!(values(&resp.partitions[0].records).len(), 2, "the corrupt batch must not be stored");
    c.stop().await;
}

#[tokio::test]
async fn given_a_subscription_through_the_gateway_should_stream_existing_and_new_records() {
    let c = Cluster::start().await;
    c.create_topic("events", 2).await;
    c.produce("events", 1, batch("old", 2)).await.unwrap();
    let req = SubscribeRequest { topic: "events".into(), partition: 1, offset: -2, ..Default::default() };
    let mut stream = bounded(c.records().await.subscribe(req)).await.unwrap().into_inner();
    let first = bounded(stream.message()).await.unwrap().unwrap();
    assert_eq!(values(&first.records), s(&[(0, "old-0"), (1, "old-1")]));
    c.produce("events", 1, batch("new", 1)).await.unwrap();
    let second = bounded(stream.message()).await.unwrap().unwrap();
    assert_eq!(values(&second.records), s(&[(2, "new-0")]));
    drop(stream);
    c.stop().await;
}

#[tokio::test]
async fn given_committed_group_offsets_through_the_gateway_should_fetch_and_list_them() {
    let c = Cluster::start().await;
    c.create_topic("t", 2).await;
    let commit = |partition, offset| OffsetCommit { topic: "t".into(), partition, offset, metadata: "m".into() };
    let resp = bounded(c.groups().await.commit_offsets(CommitOffsetsRequest {
        group_id: "g1".into(),
        offsets: vec![commit(0, 5), commit(1, 7)],
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner();
    assert!(resp.results.iter().all(|r| r.error_code == ErrorCode::None as i32), "{resp:?}");

    let tp = |partition| TopicPartition { topic: "t".into(), partition };
    let fetched = bounded(
        c.groups().await.fetch_offsets(FetchOffsetsRequest { group_id: "g1".into(), partitions: vec![tp(1), tp(0)] }),
    )
    .await
    .unwrap()
    .into_inner();
    let got: Vec<_> = fetched.offsets.iter().map(|o| (o.partition, o.offset)).collect();
    assert_eq!(got, vec![(1, 7), (0, 5)]);
    let groups = bounded(c.groups().await.list_groups(ListGroupsRequest {})).await.unwrap().into_inner();
    assert_eq!(groups.group_ids, vec!["g1".to_string()]);
    c.stop().await;
}

#[tokio::test]
async fn given_admin_errors_from_the_broker_the_gateway_should_pass_them_through() {
    let c = Cluster::start().await;
    c.create_topic("dup", 1).await;
    let req = CreateTopicRequest { name: "dup".into(), partitions: 1, replication_factor: 1, ..Default::default() };
    let err = bounded(c.admin().await.create_topic(req)).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(code(&err), "TOPIC_ALREADY_EXISTS", "{err:?}");
    let topics = bounded(c.admin().await.list_topics(ListTopicsRequest {})).await.unwrap().into_inner();
    assert_eq!(topics.topics.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), vec!["dup"]);
    c.stop().await;
}

#[tokio::test]
async fn given_no_reachable_broker_calls_should_fail_unavailable_and_the_gateway_should_stop_cleanly() {
    // Bind then drop a listener so that the bootstrap address refuses connections.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let config = GatewayConfig {
        bootstrap: vec![dead],
        retries: 2,
        retry_backoff: Duration::from_millis(10),
        request_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(vltava_gateway::run(config, listener, async move {
        let _ = rx.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap();
    let channel = bounded(channel.connect()).await.unwrap();
    let req = ProduceRequest { topic: "t".into(), partition: 0, acks: 1, timeout_ms: 0, records: batch("x", 1) };
    let err = bounded(RecordServiceClient::new(channel.clone()).produce(req)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let err = bounded(AdminServiceClient::new(channel).list_topics(ListTopicsRequest {})).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let _ = tx.send(());
    bounded(task).await.unwrap().unwrap();
}

#[tokio::test]
async fn given_an_invalid_config_run_should_refuse_to_start() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = GatewayConfig { bootstrap: vec![], ..Default::default() };
    let err = vltava_gateway::run(config, listener, async {}).await.unwrap_err();
    assert!(matches!(err, vltava_gateway::GatewayError::Config(_)), "{err}");
}

#[tokio::test]
async fn given_a_topic_created_behind_the_gateways_back_produce_and_fetch_should_find_it_after_a_refresh() {
    let c = Cluster::start().await;
    c.create_topic("first", 1).await;
    c.produce("first", 0, batch("a", 1)).await.unwrap(); // the gateway now holds fresh metadata
    let direct = Channel::from_shared(format!("http://{}", c.broker.addr)).unwrap();
    let direct = bounded(direct.connect()).await.unwrap();
    let req = CreateTopicRequest { name: "late".into(), partitions: 2, replication_factor: 1, ..Default::default() };
    bounded(AdminServiceClient::new(direct).create_topic(req)).await.unwrap();

    assert_eq!(c.produce("late", 1, batch("late", 2)).await.unwrap().base_offset, 0);
    let req = fetch_req(vec![fetch_part("late", 1, 0), fetch_part("first", 0, 0)]);
    let resp = bounded(c.records().await.fetch(req)).await.unwrap().into_inner();
    assert_eq!(values(&resp.partitions[0].records), s(&[(0, "late-0"), (1, "late-1")]));
    assert_eq!(values(&resp.partitions[1].records), s(&[(0, "a-0")]));
    c.stop().await;
}
