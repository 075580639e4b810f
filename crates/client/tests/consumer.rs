//! Consumer and admin behaviour against an in-process fake broker (real gRPC, real socket).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::FakeCluster;
use tokio::time::timeout;
use vltava_client::{
    Admin, ClientError, Consumer, ConsumerConfig, ConsumerRecord, ErrorCode, NewTopic, OffsetReset, OffsetSpec,
    Producer, ProducerConfig, ProducerRecord, TopicPartition,
};

const LIMIT: Duration = Duration::from_secs(10);

async fn produce(fake: &FakeCluster, topic: &str, n: usize, partition: Option<i32>) {
    let cfg = ProducerConfig { linger: Duration::from_millis(1), ..ProducerConfig::new(fake.bootstrap()) };
    let producer = Producer::connect(cfg).await.unwrap();
    for i in 0..n {
        let mut r = ProducerRecord::new(topic, format!("v{i}")).key(format!("k{i}")).timestamp(1_000 + i as i64);
        if let Some(p) = partition {
            r = r.partition(p);
        }
        let _delivery = producer.send(r).await.unwrap(); // close() below waits for it
    }
    timeout(LIMIT, producer.close()).await.unwrap();
}

fn config(fake: &FakeCluster) -> ConsumerConfig {
    ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        fetch_max_wait: Duration::from_millis(50),
        ..ConsumerConfig::new(fake.bootstrap())
    }
}

/// Polls until `n` records arrived (bounded by time).
async fn poll_n(consumer: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
    let start = Instant::now();
    let mut out = Vec::new();
    while out.len() < n {
        assert!(start.elapsed() < LIMIT, "got {} of {n} records", out.len());
        out.extend(consumer.poll(Duration::from_millis(100)).await.unwrap());
    }
    out
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_back_everything_produced_in_order() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 3);
    produce(&fake, "t", 2_000, None).await;
    let mut consumer = Consumer::connect(ConsumerConfig { max_poll_records: 300, ..config(&fake) }).await.unwrap();
    consumer.assign_topic("t").await.unwrap();
    assert_eq!(consumer.assignment(), vec![tp(0), tp(1), tp(2)]);
    let records = poll_n(&mut consumer, 2_000).await;
    assert_eq!(records.len(), 2_000);
    let mut next = HashMap::new();
    for r in &records {
        let expected = next.entry(r.partition).or_insert(0i64);
        assert_eq!(r.offset, *expected, "partition {} in order without gaps", r.partition);
        *expected += 1;
        let i: i64 = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap()[1..].parse().unwrap();
        assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
        assert_eq!(r.timestamp, 1_000 + i);
    }
    for p in 0..3 {
        assert_eq!(consumer.position(&tp(p)).await.unwrap(), next[&p]);
        assert_eq!(consumer.lag(&tp(p)), Some(0));
    }
    // Nothing more: an empty poll after the timeout.
    let start = Instant::now();
    assert!(consumer.poll(Duration::from_millis(200)).await.unwrap().is_empty());
    assert!(start.elapsed() >= Duration::from_millis(190));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_fetch_is_in_flight_while_the_caller_processes_records() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 1);
    produce(&fake, "t", 10, None).await;
    let mut consumer = Consumer::connect(config(&fake)).await.unwrap();
    consumer.assign(vec![tp(0)]);
    let records = poll_n(&mut consumer, 10).await;
    assert_eq!(records.len(), 10);
    // No poll() now: the prefetch sent before returning still reaches the broker, from offset 10
    // (it may already have arrived, so look for it rather than for a change in a counter).
    let start = Instant::now();
    while !fake.state.fetch_offsets.lock().contains(&10) {
        assert!(start.elapsed() < LIMIT, "no prefetch from offset 10");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    produce(&fake, "t", 1, None).await;
    let next = poll_n(&mut consumer, 1).await;
    assert_eq!(next[0].offset, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_poll_records_bounds_each_poll() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 1);
    produce(&fake, "t", 50, None).await;
    let mut consumer = Consumer::connect(ConsumerConfig { max_poll_records: 7, ..config(&fake) }).await.unwrap();
    consumer.assign(vec![tp(0)]);
    let start = Instant::now();
    let mut total = 0;
    while total < 50 {
        assert!(start.elapsed() < LIMIT);
        let batch = consumer.poll(Duration::from_millis(100)).await.unwrap();
        assert!(batch.len() <= 7);
        total += batch.len();
    }
    assert_eq!(total, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_skips_records_below_the_position_inside_a_batch() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 1);
    produce(&fake, "t", 10, Some(0)).await;
    assert!(fake.state.topics.lock()["t"][0].batches.len() < 10, "records were batched");
    let mut consumer = Consumer::connect(config(&fake)).await.unwrap();
    consumer.assign(vec![tp(0)]);
    consumer.seek(&tp(0), 5).unwrap();
    let offsets: Vec<i64> = poll_n(&mut consumer, 5).await.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![5, 6, 7, 8, 9]);

    consumer.seek_to_timestamp(&tp(0), 1_003).unwrap();
    assert_eq!(poll_n(&mut consumer, 1).await[0].offset, 3);
    consumer.seek_to_beginning(&[tp(0)]).unwrap();
    assert_eq!(consumer.position(&tp(0)).await.unwrap(), 0);
    consumer.seek_to_end(&[tp(0)]).unwrap();
    assert_eq!(consumer.position(&tp(0)).await.unwrap(), 10);
    consumer.seek_to_timestamp(&tp(0), 99_999).unwrap();
    assert_eq!(consumer.position(&tp(0)).await.unwrap(), 10, "no record that late: the end");
    assert!(matches!(consumer.seek(&tp(9), 0), Err(ClientError::NotAssigned { partition: 9, .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_positions_follow_auto_offset_reset() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 1);
    produce(&fake, "t", 5, None).await;
    let mut consumer = Consumer::connect(config(&fake)).await.unwrap();
    consumer.assign(vec![tp(0)]);
    consumer.seek(&tp(0), 1_000).unwrap();
    assert_eq!(poll_n(&mut consumer, 5).await[0].offset, 0, "earliest after OFFSET_OUT_OF_RANGE");

    let mut strict =
        Consumer::connect(ConsumerConfig { auto_offset_reset: OffsetReset::None, ..config(&fake) }).await.unwrap();
    strict.assign(vec![tp(0)]);
    let e = strict.poll(Duration::from_millis(100)).await.unwrap_err();
    assert!(matches!(e, ClientError::NoOffset { ref topic, partition: 0 } if topic == "t"), "{e}");
    strict.seek(&tp(0), 1_000).unwrap();
    let start = Instant::now();
    let e = loop {
        assert!(start.elapsed() < LIMIT);
        match strict.poll(Duration::from_millis(100)).await {
            Ok(r) => assert!(r.is_empty()),
            Err(e) => break e,
        }
    };
    assert_eq!(e.code(), Some(ErrorCode::OffsetOutOfRange), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_only_sees_new_records() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 1);
    produce(&fake, "t", 3, None).await;
    let mut consumer =
        Consumer::connect(ConsumerConfig { auto_offset_reset: OffsetReset::Latest, ..config(&fake) }).await.unwrap();
    consumer.assign(vec![tp(0)]);
    assert!(consumer.poll(Duration::from_millis(100)).await.unwrap().is_empty());
    produce(&fake, "t", 1, None).await;
    let records = poll_n(&mut consumer, 1).await;
    assert_eq!((records.len(), records[0].offset), (1, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_offsets_start_positions_and_are_committed() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 2);
    produce(&fake, "t", 10, Some(0)).await;
    produce(&fake, "t", 10, Some(1)).await;
    let admin = Admin::connect(&fake.bootstrap()).await.unwrap();
    admin.commit_group_offsets("g", &HashMap::from([(tp(0), 4)])).await.unwrap();

    let cfg = ConsumerConfig { group_id: Some("g".into()), enable_auto_commit: true, ..config(&fake) };
    let mut consumer = Consumer::connect(cfg.clone()).await.unwrap();
    consumer.assign(vec![tp(0), tp(1)]);
    assert_eq!(consumer.committed(&[tp(0), tp(1)]).await.unwrap(), HashMap::from([(tp(0), 4)]));
    let records = poll_n(&mut consumer, 16).await;
    assert_eq!(
        records.iter().filter(|r| r.partition == 0).map(|r| r.offset).min(),
        Some(4),
        "from the committed offset"
    );
    assert_eq!(records.iter().filter(|r| r.partition == 1).map(|r| r.offset).min(), Some(0), "earliest without one");
    consumer.commit_offsets(HashMap::from([(tp(1), 7)])).await.unwrap();
    assert_eq!(consumer.committed(&[tp(1)]).await.unwrap()[&tp(1)], 7);
    consumer.close().await.unwrap(); // auto-commit commits the positions

    assert_eq!(admin.group_offsets("g").await.unwrap(), vec![(tp(0), 10), (tp(1), 10)]);
    assert_eq!(admin.list_groups().await.unwrap(), vec!["g".to_string()]);
    let mut again = Consumer::connect(cfg).await.unwrap();
    again.assign(vec![tp(0)]);
    assert_eq!(again.position(&tp(0)).await.unwrap(), 10);

    let mut no_group = Consumer::connect(config(&fake)).await.unwrap();
    no_group.assign(vec![tp(0)]);
    assert!(matches!(no_group.commit().await, Err(ClientError::Config(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_manages_topics_and_looks_up_offsets() {
    let fake = FakeCluster::start().await;
    let admin = Admin::connect(&fake.bootstrap()).await.unwrap();
    let created = admin.create_topic(NewTopic::new("t", 2).config("retention.ms", "1000")).await.unwrap();
    assert_eq!((created.name.as_str(), created.partitions.len()), ("t", 2));
    let e = admin.create_topic(NewTopic::new("t", 2)).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TopicAlreadyExists));
    assert_eq!(admin.list_topics().await.unwrap()[0].name, "t");
    assert_eq!(admin.describe_topic("t").await.unwrap().partitions[1].leader, 1);
    assert_eq!(admin.metadata().await.unwrap().brokers.len(), 1);
    produce(&fake, "t", 4, Some(1)).await;
    assert_eq!(admin.list_offsets(&tp(1), OffsetSpec::Earliest).await.unwrap(), 0);
    assert_eq!(admin.list_offsets(&tp(1), OffsetSpec::Latest).await.unwrap(), 4);
    assert_eq!(admin.list_offsets(&tp(1), OffsetSpec::Timestamp(1_002)).await.unwrap(), 2);
    let e = admin.list_offsets(&TopicPartition::new("nope", 0), OffsetSpec::Latest).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownTopicOrPartition));
    admin.delete_topic("t").await.unwrap();
    assert_eq!(admin.delete_topic("t").await.unwrap_err().code(), Some(ErrorCode::UnknownTopicOrPartition));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_nothing_names_the_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let e = Consumer::connect(ConsumerConfig::new(address.clone())).await.unwrap_err();
    assert!(matches!(&e, ClientError::Connect { address: a, .. } if *a == address), "{e}");
    assert!(e.is_retriable());
}
