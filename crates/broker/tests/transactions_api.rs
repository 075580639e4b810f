//! Transactions through the broker's gRPC API (real sockets, real logs, one broker that is both
//! the transaction coordinator and every partition's leader): commit and abort as seen by
//! read_committed and read_uncommitted fetches, the last stable offset, zombie fencing, calls out
//! of order, timeouts, and offsets committed inside a transaction.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{TestBroker, batch, code};
use vltava_proto::v1::*;
use vltava_record::{AbortedTransaction, BatchBuilder, Compression, decode_fetched_committed};

const COMMITTED: i32 = IsolationLevel::ReadCommitted as i32;
const UNCOMMITTED: i32 = IsolationLevel::ReadUncommitted as i32;

async fn start() -> TestBroker {
    let b = TestBroker::start(|c| {
        c.transactions.state_topic_num_partitions = 3;
        c.transactions.max_timeout = Duration::from_secs(120);
        c.transactions.cleanup_interval = Duration::from_millis(100);
        c.groups.offsets_topic_num_partitions = 3;
    })
    .await;
    b.create_topic("a", 2, &[]).await;
    b.create_topic("b", 1, &[]).await;
    b
}

fn txn_batch(pid: i64, epoch: i16, seq: i32, values: &[&str]) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None).with_producer(pid, epoch, seq);
    b.set_transactional(true);
    for v in values {
        b.append(vltava_common::time::now_ms(), None, Some(v.as_bytes()), &[]);
    }
    b.build()
}

async fn produce(
    b: &TestBroker,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> Result<ProduceResponse, tonic::Status> {
    let req = ProduceRequest { topic: topic.into(), partition, acks: -1, timeout_ms: 0, records };
    b.records().await.produce(req).await.map(tonic::Response::into_inner)
}

/// (values a consumer at `isolation` sees from offset 0, last stable offset, high watermark),
/// fetching until the end (a fetch never spans segments).
async fn read(b: &TestBroker, topic: &str, partition: i32, isolation: i32) -> (Vec<String>, i64, i64) {
    let mut values = Vec::new();
    let mut next = 0;
    for _ in 0..100 {
        let req = FetchRequest {
            max_wait_ms: 0,
            max_bytes: 1 << 20,
            partitions: vec![FetchPartition {
                topic: topic.into(),
                partition,
                fetch_offset: next,
                partition_max_bytes: 0,
            }],
            isolation_level: isolation,
            ..Default::default()
        };
        let resp = b.records().await.fetch(req).await.unwrap().into_inner();
        let p = &resp.partitions[0];
        assert_eq!(p.error_code, 0, "{}", p.error_message);
        let aborted: Vec<AbortedTransaction> = p
            .aborted_transactions
            .iter()
            .map(|a| AbortedTransaction { producer_id: a.producer_id, first_offset: a.first_offset })
            .collect();
        let got = decode_fetched_committed(p.records.clone(), next, true, &aborted).unwrap();
        values.extend(got.records.iter().map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap()));
        if got.next_offset == next {
            return (values, p.last_stable_offset, p.high_watermark);
        }
        next = got.next_offset;
    }
    panic!("{topic}-{partition} never ended");
}

fn now_batch(prefix: &str, n: usize) -> Bytes {
    batch(prefix, n, vltava_common::time::now_ms())
}

async fn init(b: &TestBroker, id: &str, timeout_ms: i32) -> (i64, i16) {
    let found = b
        .transactions()
        .await
        .find_transaction_coordinator(FindTransactionCoordinatorRequest { transactional_id: id.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.address, b.addr, "the only broker coordinates everything");
    let req = InitProducerIdRequest { transactional_id: id.into(), transaction_timeout_ms: timeout_ms };
    let r = b.transactions().await.init_producer_id(req).await.unwrap().into_inner();
    (r.producer_id, r.producer_epoch as i16)
}

fn topics(list: &[(&str, &[i32])]) -> Vec<TxnTopic> {
    list.iter().map(|(t, ps)| TxnTopic { topic: t.to_string(), partitions: ps.to_vec() }).collect()
}

async fn add(
    b: &TestBroker,
    id: &str,
    (pid, epoch): (i64, i16),
    list: &[(&str, &[i32])],
) -> AddPartitionsToTxnResponse {
    let req = AddPartitionsToTxnRequest {
        transactional_id: id.into(),
        producer_id: pid,
        producer_epoch: i32::from(epoch),
        topics: topics(list),
    };
    b.transactions().await.add_partitions_to_txn(req).await.unwrap().into_inner()
}

async fn end(b: &TestBroker, id: &str, (pid, epoch): (i64, i16), commit: bool) -> Result<(), tonic::Status> {
    let req = EndTxnRequest { transactional_id: id.into(), producer_id: pid, producer_epoch: i32::from(epoch), commit };
    b.transactions().await.end_txn(req).await.map(|_| ())
}

async fn describe(b: &TestBroker, id: &str) -> TransactionState {
    let req = DescribeTransactionsRequest { transactional_ids: vec![id.into()] };
    b.transactions().await.describe_transactions(req).await.unwrap().into_inner().transactions.remove(0)
}

#[tokio::test]
async fn a_committed_transaction_appears_at_once_to_read_committed_and_an_aborted_one_never() {
    let b = start().await;
    let me = init(&b, "tx-1", 60_000).await;
    assert_eq!(init(&b, "tx-1", 60_000).await, (me.0, 1), "each InitProducerId bumps the epoch");
    let me = (me.0, 1);
    let added = add(&b, "tx-1", me, &[("a", &[0, 1]), ("b", &[0])]).await;
    assert!(added.results.iter().all(|r| r.error_code == 0), "{added:?}");
    produce(&b, "b", 0, now_batch("plain", 1)).await.unwrap();
    produce(&b, "a", 0, txn_batch(me.0, me.1, 0, &["a0-x", "a0-y"])).await.unwrap();
    produce(&b, "a", 1, txn_batch(me.0, me.1, 0, &["a1-x"])).await.unwrap();
    produce(&b, "b", 0, txn_batch(me.0, me.1, 0, &["b0-x"])).await.unwrap();

    // Open: read_committed stops at the transaction's first offset; read_uncommitted sees it.
    let (seen, lso, hw) = read(&b, "b", 0, COMMITTED).await;
    assert_eq!((seen, lso, hw), (vec!["plain-0".to_string()], 1, 2));
    assert_eq!(read(&b, "a", 0, UNCOMMITTED).await.0, ["a0-x", "a0-y"]);
    assert!(read(&b, "a", 0, COMMITTED).await.0.is_empty());
    assert_eq!(describe(&b, "tx-1").await.state, "Ongoing");

    end(&b, "tx-1", me, true).await.unwrap();
    assert_eq!(read(&b, "a", 0, COMMITTED).await.0, ["a0-x", "a0-y"]);
    assert_eq!(read(&b, "a", 1, COMMITTED).await.0, ["a1-x"]);
    let (seen, lso, hw) = read(&b, "b", 0, COMMITTED).await;
    assert_eq!(seen, ["plain-0", "b0-x"]);
    assert_eq!((lso, hw), (3, 3), "the marker is the last offset, and nothing is unstable");
    assert_eq!(describe(&b, "tx-1").await.state, "CompleteCommit");

    // The next transaction aborts: read_uncommitted sees its records, read_committed never does.
    add(&b, "tx-1", me, &[("a", &[0])]).await;
    produce(&b, "a", 0, txn_batch(me.0, me.1, 2, &["gone"])).await.unwrap();
    end(&b, "tx-1", me, false).await.unwrap();
    assert_eq!(read(&b, "a", 0, COMMITTED).await.0, ["a0-x", "a0-y"]);
    assert_eq!(read(&b, "a", 0, UNCOMMITTED).await.0, ["a0-x", "a0-y", "gone"]);
    b.stop().await;
}

#[tokio::test]
async fn a_new_producer_fences_the_old_one_and_aborts_its_open_transaction() {
    let b = start().await;
    let old = init(&b, "tx-z", 60_000).await;
    add(&b, "tx-z", old, &[("a", &[0])]).await;
    produce(&b, "a", 0, txn_batch(old.0, old.1, 0, &["zombie-1"])).await.unwrap();

    let new = init(&b, "tx-z", 60_000).await;
    assert_eq!(new.0, old.0);
    assert!(new.1 > old.1);
    // The open transaction was aborted (the partition's last stable offset moved past it).
    let (seen, lso, hw) = read(&b, "a", 0, COMMITTED).await;
    assert!(seen.is_empty());
    assert_eq!(lso, hw);
    // The zombie can neither write, add partitions nor commit.
    let e = produce(&b, "a", 0, txn_batch(old.0, old.1, 1, &["zombie-2"])).await.unwrap_err();
    assert_eq!(code(&e), "INVALID_PRODUCER_EPOCH", "{e:?}");
    let e = end(&b, "tx-z", old, true).await.unwrap_err();
    assert_eq!(code(&e), "PRODUCER_FENCED", "{e:?}");
    let req = AddPartitionsToTxnRequest {
        transactional_id: "tx-z".into(),
        producer_id: old.0,
        producer_epoch: i32::from(old.1),
        topics: topics(&[("b", &[0])]),
    };
    let e = b.transactions().await.add_partitions_to_txn(req).await.unwrap_err();
    assert_eq!(code(&e), "PRODUCER_FENCED", "{e:?}");
    // The new producer works.
    add(&b, "tx-z", new, &[("a", &[0])]).await;
    produce(&b, "a", 0, txn_batch(new.0, new.1, 0, &["fresh"])).await.unwrap();
    end(&b, "tx-z", new, true).await.unwrap();
    assert_eq!(read(&b, "a", 0, COMMITTED).await.0, ["fresh"]);
    b.stop().await;
}

#[tokio::test]
async fn calls_out_of_order_and_unknown_partitions_get_kafkas_errors_and_change_nothing() {
    let b = start().await;
    let me = init(&b, "tx-e", 60_000).await;
    let e = end(&b, "tx-e", me, true).await.unwrap_err();
    assert_eq!(code(&e), "INVALID_TXN_STATE", "no transaction is open: {e:?}");
    let e = end(&b, "tx-e", (me.0 + 1, me.1), true).await.unwrap_err();
    assert_eq!(code(&e), "INVALID_PRODUCER_ID_MAPPING", "{e:?}");

    let r = add(&b, "tx-e", me, &[("a", &[0]), ("nope", &[0]), ("b", &[7])]).await;
    let codes: Vec<(String, i32, i32)> =
        r.results.iter().map(|r| (r.topic.clone(), r.partition, r.error_code)).collect();
    assert_eq!(
        codes,
        vec![
            ("a".into(), 0, ErrorCode::OperationNotAttempted as i32),
            ("nope".into(), 0, ErrorCode::UnknownTopicOrPartition as i32),
            ("b".into(), 7, ErrorCode::UnknownTopicOrPartition as i32),
        ]
    );
    assert_eq!(describe(&b, "tx-e").await.state, "Empty", "nothing was added");

    let req = InitProducerIdRequest { transactional_id: "tx-e".into(), transaction_timeout_ms: 999_999_999 };
    let e = b.transactions().await.init_producer_id(req).await.unwrap_err();
    assert_eq!(code(&e), "INVALID_TRANSACTION_TIMEOUT", "{e:?}");
    let unknown = describe(&b, "never-used").await;
    assert_eq!(unknown.error_code, ErrorCode::TransactionalIdNotFound as i32);

    // A client may not write markers itself.
    let forged = vltava_record::marker_batch(
        me.0,
        me.1,
        vltava_record::Marker { kind: vltava_record::MarkerKind::Commit, coordinator_epoch: 99 },
        1,
    );
    let e = produce(&b, "a", 0, forged).await.unwrap_err();
    assert_eq!(code(&e), "INVALID_RECORD", "{e:?}");
    b.stop().await;
}

#[tokio::test]
async fn the_last_stable_offset_stalls_behind_an_open_transaction_until_it_times_out() {
    let b = start().await;
    let me = init(&b, "tx-t", 1_000).await;
    add(&b, "tx-t", me, &[("b", &[0])]).await;
    produce(&b, "b", 0, txn_batch(me.0, me.1, 0, &["abandoned"])).await.unwrap();
    produce(&b, "b", 0, now_batch("after", 2)).await.unwrap();
    let (seen, lso, hw) = read(&b, "b", 0, COMMITTED).await;
    assert_eq!((seen.len(), lso, hw), (0, 0, 3), "stalled behind the open transaction");

    // The coordinator aborts it after its 1 s timeout (checked every 100 ms).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (seen, lso, hw) = read(&b, "b", 0, COMMITTED).await;
        if lso == hw {
            assert_eq!(seen, ["after-0", "after-1"], "the abandoned record is aborted");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the transaction never timed out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state = describe(&b, "tx-t").await;
    assert_eq!(state.state, "CompleteAbort");
    assert!(state.producer_epoch > i32::from(me.1), "a timeout fences the producer");
    let e = end(&b, "tx-t", me, true).await.unwrap_err();
    assert_eq!(code(&e), "PRODUCER_FENCED", "{e:?}");
    b.stop().await;
}

async fn committed(b: &TestBroker) -> Vec<(String, i32, i64)> {
    let req = FetchOffsetsRequest { group_id: "g".into(), partitions: vec![] };
    let r = b.groups().await.fetch_offsets(req).await.unwrap().into_inner();
    r.offsets.iter().filter(|o| o.offset >= 0).map(|o| (o.topic.clone(), o.partition, o.offset)).collect()
}

#[tokio::test]
async fn offsets_committed_in_a_transaction_become_visible_only_when_it_commits() {
    let b = start().await;
    let me = init(&b, "tx-o", 60_000).await;
    for (round, commit) in [(1, false), (2, true)] {
        let req = AddOffsetsToTxnRequest {
            transactional_id: "tx-o".into(),
            producer_id: me.0,
            producer_epoch: i32::from(me.1),
            group_id: "g".into(),
        };
        b.transactions().await.add_offsets_to_txn(req).await.unwrap();
        let req = TxnOffsetCommitRequest {
            transactional_id: "tx-o".into(),
            group_id: "g".into(),
            producer_id: me.0,
            producer_epoch: i32::from(me.1),
            offsets: vec![TxnOffset { topic: "a".into(), partition: 1, offset: 10 * round, metadata: String::new() }],
            member_id: String::new(),
            member_epoch: -1,
        };
        let r = b.transactions().await.txn_offset_commit(req).await.unwrap().into_inner();
        assert!(r.results.iter().all(|r| r.error_code == 0), "{r:?}");
        let before: Vec<_> = committed(&b).await;
        assert!(before.iter().all(|(_, _, o)| *o != 10 * round), "pending until the end: {before:?}");
        end(&b, "tx-o", me, commit).await.unwrap();
    }
    assert_eq!(committed(&b).await, vec![("a".to_string(), 1, 20)], "the aborted round's offset never shows");
    b.stop().await;
}
