//! Transactions through the Rust SDK against a real broker over real sockets (issue 14): a
//! transaction over three topics is all or nothing for read_committed consumers, a zombie
//! producer is fenced, and consume-transform-produce with `send_offsets_to_transaction` writes
//! each input's result exactly once although a worker dies mid-transaction.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use vltava_client::{
    ClientError, Consumer, ConsumerConfig, IsolationLevel, OffsetReset, Producer, ProducerConfig, ProducerRecord,
    TopicPartition,
};
use vltava_testkit::inprocess::TestBroker;

const TOPICS: [&str; 3] = ["orders", "payments", "audit"];

fn transactional(addr: &str, id: &str) -> ProducerConfig {
    ProducerConfig { transactional_id: Some(id.into()), linger: Duration::from_millis(1), ..ProducerConfig::new(addr) }
}

/// Every value a consumer at `isolation` reads from `topics` (all partitions, from the start),
/// sorted, once it has read up to the end of each partition.
async fn read_all(addr: &str, topics: &[&str], isolation: IsolationLevel) -> Vec<String> {
    let mut consumer = Consumer::connect(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        isolation_level: isolation,
        ..ConsumerConfig::new(addr)
    })
    .await
    .unwrap();
    let mut assigned = Vec::new();
    for t in topics {
        consumer.assign_topic(t).await.unwrap();
        assigned.extend(consumer.assignment());
    }
    let mut values = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut quiet = 0;
    while quiet < 3 && tokio::time::Instant::now() < deadline {
        let records = consumer.poll(Duration::from_millis(200)).await.unwrap();
        quiet = if records.is_empty() { quiet + 1 } else { 0 };
        values.extend(records.into_iter().map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap()));
    }
    values.sort();
    values
}

#[tokio::test]
async fn a_transaction_over_three_topics_is_all_or_nothing_for_read_committed_consumers() {
    let broker = TestBroker::start(|_| {}).await;
    for t in TOPICS {
        broker.create_topic(t, 2, &[]).await;
    }
    let producer = Producer::connect(transactional(&broker.addr, "three-topics")).await.unwrap();
    producer.init_transactions().await.unwrap();
    let send_everywhere = |tag: &'static str| {
        let producer = producer.clone();
        async move {
            for t in TOPICS {
                for p in 0..2 {
                    let record = ProducerRecord::new(t, format!("{tag}-{t}-{p}")).partition(p);
                    let _delivery = producer.send(record).await.unwrap();
                }
            }
        }
    };
    producer.begin_transaction().unwrap();
    send_everywhere("committed").await;
    producer.commit_transaction().await.unwrap();
    producer.begin_transaction().unwrap();
    send_everywhere("aborted").await;
    producer.flush().await.unwrap();
    producer.abort_transaction().await.unwrap();
    // A third transaction stays open: read_committed consumers stop before it.
    producer.begin_transaction().unwrap();
    send_everywhere("open").await;
    producer.flush().await.unwrap();

    let committed = read_all(&broker.addr, &TOPICS, IsolationLevel::ReadCommitted).await;
    assert_eq!(committed.len(), 6, "{committed:?}");
    assert!(committed.iter().all(|v| v.starts_with("committed-")), "{committed:?}");
    let everything = read_all(&broker.addr, &TOPICS, IsolationLevel::ReadUncommitted).await;
    assert_eq!(everything.len(), 18, "read_uncommitted sees all three transactions, no markers: {everything:?}");

    producer.commit_transaction().await.unwrap();
    let committed = read_all(&broker.addr, &TOPICS, IsolationLevel::ReadCommitted).await;
    assert_eq!(committed.len(), 12, "{committed:?}");
    producer.close().await;
    broker.stop().await;
}

#[tokio::test]
async fn a_second_producer_with_the_same_transactional_id_fences_the_first() {
    let broker = TestBroker::start(|_| {}).await;
    broker.create_topic("t", 1, &[]).await;
    let zombie = Producer::connect(transactional(&broker.addr, "fenced")).await.unwrap();
    zombie.init_transactions().await.unwrap();
    zombie.begin_transaction().unwrap();
    let _delivery = zombie.send(ProducerRecord::new("t", "from-the-zombie")).await.unwrap();
    zombie.flush().await.unwrap();

    let successor = Producer::connect(transactional(&broker.addr, "fenced")).await.unwrap();
    successor.init_transactions().await.unwrap();
    let e = zombie.commit_transaction().await.unwrap_err();
    assert!(matches!(e, ClientError::TransactionFatal(_)), "{e:?}");
    // Fatal stays fatal.
    assert!(matches!(zombie.begin_transaction(), Err(ClientError::TransactionFatal(_))));

    successor.begin_transaction().unwrap();
    let _delivery = successor.send(ProducerRecord::new("t", "from-the-successor")).await.unwrap();
    successor.commit_transaction().await.unwrap();
    let seen = read_all(&broker.addr, &["t"], IsolationLevel::ReadCommitted).await;
    assert_eq!(seen, ["from-the-successor"], "the zombie's open transaction was aborted");
    // Out of order: no transaction is open.
    assert!(matches!(successor.commit_transaction().await, Err(ClientError::IllegalState(_))));
    assert!(matches!(
        successor.send(ProducerRecord::new("t", "outside")).await.map(|_| ()),
        Err(ClientError::IllegalState(_))
    ));
    successor.close().await;
    broker.stop().await;
}

/// One consume-transform-produce worker: reads `input` in group `ctp` (read_committed), writes
/// `value + "!"` to `output` and commits its input offsets in the same transaction, `per_txn`
/// records at a time. Stops after `budget` records, leaving the last transaction open
/// (`die_mid_transaction`) as a killed process would, or committed.
async fn worker(addr: &str, budget: usize, per_txn: usize, die_mid_transaction: bool) -> usize {
    let producer = Producer::connect(transactional(addr, "ctp-worker")).await.unwrap();
    producer.init_transactions().await.unwrap();
    let mut consumer = Consumer::connect(ConsumerConfig {
        group_id: Some("ctp".into()),
        enable_auto_commit: false,
        auto_offset_reset: OffsetReset::Earliest,
        isolation_level: IsolationLevel::ReadCommitted,
        ..ConsumerConfig::new(addr)
    })
    .await
    .unwrap();
    consumer.subscribe(["input"]).unwrap();
    let mut done = 0;
    let mut idle = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while done < budget && idle < 10 && tokio::time::Instant::now() < deadline {
        let records = consumer.poll(Duration::from_millis(300)).await.unwrap();
        if records.is_empty() {
            idle += 1;
            continue;
        }
        idle = 0;
        producer.begin_transaction().unwrap();
        let mut next: HashMap<TopicPartition, i64> = HashMap::new();
        for r in records.iter().take(per_txn.min(budget - done)) {
            let value = format!("{}!", String::from_utf8_lossy(r.value.as_deref().unwrap()));
            let _delivery = producer.send(ProducerRecord::new("output", value)).await.unwrap();
            next.insert(TopicPartition::new(r.topic.to_string(), r.partition), r.offset + 1);
            done += 1;
        }
        let offsets = next.into_iter().map(|(tp, o)| (tp, vltava_client::OffsetAndMetadata::new(o))).collect();
        producer.send_offsets_to_transaction(&offsets, &consumer.group_metadata().unwrap()).await.unwrap();
        if die_mid_transaction && done >= budget {
            // Killed: nothing is committed; dropping stops the heartbeats without leaving the
            // group and ends nothing on the coordinator.
            producer.flush().await.unwrap();
            drop(consumer);
            drop(producer);
            return done;
        }
        producer.commit_transaction().await.unwrap();
        // What was polled beyond this transaction is read again from the committed offsets.
        for (tp, o) in &offsets_of(&records, per_txn) {
            consumer.seek(tp, *o).unwrap();
        }
    }
    producer.close().await;
    consumer.close().await.unwrap();
    done
}

/// The next offset of each partition after the first `n` records.
fn offsets_of(records: &[vltava_client::ConsumerRecord], n: usize) -> BTreeMap<TopicPartition, i64> {
    let mut out = BTreeMap::new();
    for r in records.iter().take(n) {
        out.insert(TopicPartition::new(r.topic.to_string(), r.partition), r.offset + 1);
    }
    for r in records.iter().skip(n) {
        out.entry(TopicPartition::new(r.topic.to_string(), r.partition)).or_insert(r.offset);
    }
    out
}

#[tokio::test]
async fn consume_transform_produce_writes_each_result_once_although_a_worker_dies_mid_transaction() {
    let broker = TestBroker::start(|c| {
        // A dead member's partitions move on after 2 s rather than Kafka's 45 s.
        c.groups.session_timeout = Duration::from_secs(2);
        c.groups.heartbeat_interval = Duration::from_millis(200);
    })
    .await;
    broker.create_topic("input", 2, &[]).await;
    broker.create_topic("output", 1, &[]).await;
    let producer = Producer::connect(ProducerConfig::new(broker.addr.clone())).await.unwrap();
    for i in 0..60 {
        let _delivery =
            producer.send(ProducerRecord::new("input", format!("in-{i:02}")).partition(i % 2)).await.unwrap();
    }
    producer.flush().await.unwrap();

    // The first worker commits some transactions, then dies with one open.
    let first = worker(&broker.addr, 25, 7, true).await;
    assert_eq!(first, 25);
    // Its successor (same transactional id) fences it, aborts its open transaction and goes
    // on from the committed offsets.
    worker(&broker.addr, usize::MAX, 7, false).await;

    let output = read_all(&broker.addr, &["output"], IsolationLevel::ReadCommitted).await;
    let expected: Vec<String> = (0..60).map(|i| format!("in-{i:02}!")).collect();
    assert_eq!(output, expected, "each input's result exactly once");
    let everything = read_all(&broker.addr, &["output"], IsolationLevel::ReadUncommitted).await;
    assert!(everything.len() > 60, "the dead worker's open transaction was written, then aborted");
    producer.close().await;
    broker.stop().await;
}

#[tokio::test]
async fn a_transactional_producer_and_a_read_committed_consumer_work_through_the_gateway_alone() {
    let cluster = vltava_testkit::inprocess::Cluster::start().await;
    cluster.create_topic("via-gateway", 2).await;
    let gateway = cluster.gateway.addr.clone();
    let producer =
        Producer::connect(ProducerConfig { via_gateway: true, ..transactional(&gateway, "gw-only") }).await.unwrap();
    producer.init_transactions().await.unwrap();
    for (round, commit) in [("kept", true), ("dropped", false)] {
        producer.begin_transaction().unwrap();
        for p in 0..2 {
            let _delivery =
                producer.send(ProducerRecord::new("via-gateway", format!("{round}-{p}")).partition(p)).await.unwrap();
        }
        if commit {
            producer.commit_transaction().await.unwrap();
        } else {
            producer.flush().await.unwrap();
            producer.abort_transaction().await.unwrap();
        }
    }
    let mut consumer = Consumer::connect(ConsumerConfig {
        via_gateway: true,
        auto_offset_reset: OffsetReset::Earliest,
        isolation_level: IsolationLevel::ReadCommitted,
        ..ConsumerConfig::new(gateway.clone())
    })
    .await
    .unwrap();
    consumer.assign_topic("via-gateway").await.unwrap();
    let mut values = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while values.len() < 2 && tokio::time::Instant::now() < deadline {
        for r in consumer.poll(Duration::from_millis(200)).await.unwrap() {
            values.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
    }
    // A little longer: nothing of the aborted transaction may follow.
    for r in consumer.poll(Duration::from_millis(500)).await.unwrap() {
        values.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
    }
    values.sort();
    assert_eq!(values, ["kept-0", "kept-1"]);
    producer.close().await;
    cluster.stop().await;
}
