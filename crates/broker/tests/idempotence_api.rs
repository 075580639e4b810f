//! Idempotent produce through the broker's gRPC API (real sockets, real logs): producer ids, a
//! retried batch answered with its original offsets, gaps and stale epochs refused, and the
//! state surviving a restart.

mod common;

use bytes::Bytes;
use common::{TestBroker, code, values};
use vltava_proto::v1::*;
use vltava_record::{BatchBuilder, Compression};

fn idempotent(pid: i64, epoch: i16, seq: i32, values: &[&str]) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None).with_producer(pid, epoch, seq);
    for v in values {
        b.append(vltava_common::time::now_ms(), None, Some(v.as_bytes()), &[]);
    }
    b.build()
}

fn produce(topic: &str, records: Bytes) -> ProduceRequest {
    ProduceRequest { topic: topic.into(), partition: 0, acks: -1, timeout_ms: 0, records }
}

async fn read_all(b: &TestBroker, topic: &str) -> Vec<(i64, String)> {
    let req = FetchRequest {
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 1 << 20,
        partitions: vec![FetchPartition { topic: topic.into(), partition: 0, fetch_offset: 0, partition_max_bytes: 0 }],
        ..Default::default()
    };
    let resp = b.records().await.fetch(req).await.unwrap().into_inner();
    values(&resp.partitions[0].records)
}

async fn new_producer_id(b: &TestBroker) -> i64 {
    let r = b.transactions().await.init_producer_id(InitProducerIdRequest::default()).await.unwrap().into_inner();
    assert_eq!(r.producer_epoch, 0);
    r.producer_id
}

#[tokio::test]
async fn given_init_producer_id_should_hand_out_ids_no_one_else_has() {
    let b = TestBroker::start(|_| {}).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(new_producer_id(&b).await);
    }
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    // A restarted broker takes a new block: its ids do not repeat the first ones.
    let stopped = b.stop().await;
    let b = TestBroker::restart(stopped, |_| {}).await;
    let after = new_producer_id(&b).await;
    assert!(!ids.contains(&after), "{after} was handed out before the restart: {ids:?}");

    // A transactional id needs its coordinator, which FindCoordinator sets up first.
    let transactional = InitProducerIdRequest { transactional_id: "tx".into(), transaction_timeout_ms: 60_000 };
    let e = b.transactions().await.init_producer_id(transactional).await.unwrap_err();
    assert_eq!(code(&e), "COORDINATOR_NOT_AVAILABLE", "{e:?}");
}

#[tokio::test]
async fn given_a_retried_batch_should_answer_its_original_offsets_and_store_one_copy() {
    let b = TestBroker::start(|_| {}).await;
    b.create_topic("t", 1, &[]).await;
    let pid = new_producer_id(&b).await;
    b.produce("t", 0, "plain", 2).await;
    let first = b.records().await.produce(produce("t", idempotent(pid, 0, 0, &["a", "b"]))).await.unwrap().into_inner();
    let retry = b.records().await.produce(produce("t", idempotent(pid, 0, 0, &["a", "b"]))).await.unwrap().into_inner();
    assert_eq!((first.base_offset, first.last_offset), (2, 3));
    assert_eq!((retry.base_offset, retry.last_offset, retry.batch_base_offsets), (2, 3, vec![2]));
    let next = b.records().await.produce(produce("t", idempotent(pid, 0, 2, &["c"]))).await.unwrap().into_inner();
    assert_eq!(next.base_offset, 4);
    let got: Vec<String> = read_all(&b, "t").await.into_iter().map(|(_, v)| v).collect();
    assert_eq!(got, ["plain-0", "plain-1", "a", "b", "c"]);
}

#[tokio::test]
async fn given_a_sequence_gap_or_a_stale_epoch_should_refuse_and_store_nothing() {
    let b = TestBroker::start(|_| {}).await;
    b.create_topic("t", 1, &[]).await;
    let pid = new_producer_id(&b).await;
    b.records().await.produce(produce("t", idempotent(pid, 1, 0, &["a"]))).await.unwrap();
    let gap = b.records().await.produce(produce("t", idempotent(pid, 1, 5, &["gap"]))).await.unwrap_err();
    assert_eq!(code(&gap), "OUT_OF_ORDER_SEQUENCE_NUMBER", "{gap:?}");
    assert!(gap.message().contains("expected 1, got 5"), "{}", gap.message());
    let stale = b.records().await.produce(produce("t", idempotent(pid, 0, 1, &["old"]))).await.unwrap_err();
    assert_eq!(code(&stale), "INVALID_PRODUCER_EPOCH", "{stale:?}");
    assert_eq!(read_all(&b, "t").await, vec![(0, "a".to_string())]);
}

#[tokio::test]
async fn given_a_restarted_broker_should_still_recognise_a_retry() {
    let b = TestBroker::start(|_| {}).await;
    b.create_topic("t", 1, &[]).await;
    let pid = new_producer_id(&b).await;
    for seq in 0..3 {
        let value = format!("v{seq}");
        b.records().await.produce(produce("t", idempotent(pid, 0, seq, &[&value]))).await.unwrap();
    }
    let b = TestBroker::restart(b.stop().await, |_| {}).await;
    let retry = b.records().await.produce(produce("t", idempotent(pid, 0, 2, &["v2"]))).await.unwrap().into_inner();
    assert_eq!(retry.base_offset, 2);
    assert_eq!(read_all(&b, "t").await.len(), 3);
}
