//! Producer behaviour against an in-process fake broker (real gRPC, real socket).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::FakeCluster;
use tokio::sync::Semaphore;
use tokio::time::timeout;
use vltava_client::{Acks, ClientError, ErrorCode, Producer, ProducerConfig, ProducerRecord, WireError};

const LIMIT: Duration = Duration::from_secs(10);

fn config(fake: &FakeCluster) -> ProducerConfig {
    ProducerConfig {
        linger: Duration::from_millis(1),
        retry_backoff: Duration::from_millis(20),
        ..ProducerConfig::new(fake.bootstrap())
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retriable_error_refreshes_metadata_and_retries() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 1);
    fake.state.produce_failures.lock().push_back(WireError::new(ErrorCode::NotLeaderOrFollower, "moved"));
    let producer = Producer::connect(config(&fake)).await.unwrap();
    let mut futures = Vec::new();
    for i in 0..3 {
        futures.push(producer.send(ProducerRecord::new("t", format!("v{i}"))).await.unwrap());
    }
    for (i, f) in futures.into_iter().enumerate() {
        let md = timeout(LIMIT, f).await.unwrap().unwrap();
        assert_eq!((&*md.topic, md.partition, md.offset), ("t", 0, i as i64));
    }
    assert!(fake.state.produce_failures.lock().is_empty());
    assert!(fake.state.metadata_calls.load(Ordering::SeqCst) >= 2, "metadata refreshed after NOT_LEADER");
    let values: Vec<_> = fake.state.records("t", 0).into_iter().map(|r| r.value.unwrap()).collect();
    assert_eq!(values, vec![Bytes::from("v0"), Bytes::from("v1"), Bytes::from("v2")], "stored once, in order");
    producer.close().await;
}

/// `(producer id, base sequence, record count)` of every stored batch of `t-0`.
fn numbering(fake: &FakeCluster) -> Vec<(i64, i32, i32)> {
    let topics = fake.state.topics.lock();
    topics["t"][0]
        .batches
        .iter()
        .map(|b| {
            let b = vltava_record::RecordBatch::parse(b.clone()).unwrap();
            (b.producer_id(), b.base_sequence(), b.record_count())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producer_numbers_batches_and_starts_a_new_sequence_after_a_lost_batch() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 1);
    let producer = Producer::connect(config(&fake)).await.unwrap();
    assert!(producer.config().idempotent(), "idempotence is on by default with acks=all");
    for i in 0..3 {
        let f = producer.send(ProducerRecord::new("t", format!("a{i}")).partition(0)).await.unwrap();
        timeout(LIMIT, f).await.unwrap().unwrap();
    }
    assert_eq!(numbering(&fake), vec![(100, 0, 1), (100, 1, 1), (100, 2, 1)]);
    // A batch that fails for good leaves a hole in sequence 3..: the next batch starts sequence 0
    // of a new producer id, so the broker does not refuse it as out of order.
    fake.state.produce_failures.lock().push_back(WireError::new(ErrorCode::CorruptMessage, "bad"));
    let lost = producer.send(ProducerRecord::new("t", "lost").partition(0)).await.unwrap();
    assert!(timeout(LIMIT, lost).await.unwrap().is_err());
    let f = producer.send(ProducerRecord::new("t", "b0").partition(0)).await.unwrap();
    timeout(LIMIT, f).await.unwrap().unwrap();
    assert_eq!(numbering(&fake).last(), Some(&(101, 0, 1)));
    assert_eq!(fake.state.init_producer_id_calls.load(Ordering::SeqCst), 2);
    producer.close().await;

    // With acks=1 the producer is not idempotent: no producer id, no sequence numbers.
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 1);
    let producer = Producer::connect(ProducerConfig { acks: Acks::Leader, ..config(&fake) }).await.unwrap();
    timeout(LIMIT, producer.send(ProducerRecord::new("t", "x").partition(0)).await.unwrap()).await.unwrap().unwrap();
    assert_eq!(numbering(&fake), vec![(-1, -1, 1)]);
    assert_eq!(fake.state.init_producer_id_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_retriable_error_fails_the_batch_at_once() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 1);
    fake.state.produce_failures.lock().push_back(WireError::new(ErrorCode::CorruptMessage, "bad"));
    let producer = Producer::connect(config(&fake)).await.unwrap();
    let f = producer.send(ProducerRecord::new("t", "x")).await.unwrap();
    let e = timeout(LIMIT, f).await.unwrap().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::CorruptMessage));
    assert_eq!(e.to_string(), "CORRUPT_MESSAGE: bad");
    assert!(!e.is_retriable());
    // The producer keeps working.
    let md = timeout(LIMIT, producer.send(ProducerRecord::new("t", "y")).await.unwrap()).await.unwrap().unwrap();
    assert_eq!(md.offset, 0);
    assert_eq!(fake.state.produce_calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_at_the_delivery_timeout() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 1);
    for _ in 0..1_000 {
        fake.state.produce_failures.lock().push_back(WireError::new(ErrorCode::NotEnoughReplicas, "isr"));
    }
    let cfg = ProducerConfig {
        linger: Duration::ZERO,
        request_timeout: Duration::from_millis(300),
        delivery_timeout: Duration::from_millis(600),
        ..config(&fake)
    };
    let producer = Producer::connect(cfg).await.unwrap();
    let start = Instant::now();
    let f = producer.send(ProducerRecord::new("t", "x")).await.unwrap();
    let e = timeout(LIMIT, f).await.unwrap().unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(550), "{:?}", start.elapsed());
    assert!(matches!(&e, ClientError::Timeout { what, .. } if what.contains("NOT_ENOUGH_REPLICAS")), "{e}");
    let attempts = 1_000 - fake.state.produce_failures.lock().len();
    assert!((2..=40).contains(&attempts), "{attempts} attempts with a 20 ms backoff in 600 ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_topic_fails_after_one_metadata_refresh() {
    let fake = FakeCluster::start().await;
    let producer = Producer::connect(config(&fake)).await.unwrap();
    let start = Instant::now();
    let e = producer.send(ProducerRecord::new("nope", "x")).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownTopicOrPartition), "{e}");
    // Far below the 120 s delivery timeout a retrying producer would wait out.
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(fake.state.metadata_calls.load(Ordering::SeqCst), 1);
    // An explicit partition outside the topic fails the same way.
    fake.state.create_topic("t", 2);
    let e = producer.send(ProducerRecord::new("t", "x").partition(5)).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownTopicOrPartition), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linger_seals_a_partial_batch() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 1);
    let cfg = ProducerConfig { linger: Duration::from_millis(300), ..config(&fake) };
    let producer = Producer::connect(cfg).await.unwrap();
    producer.partition_count("t").await.unwrap(); // metadata out of the measurement
    let start = Instant::now();
    let a = producer.send(ProducerRecord::new("t", "a")).await.unwrap();
    let b = producer.send(ProducerRecord::new("t", "b")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(fake.state.produce_calls().is_empty(), "sent before linger.ms");
    timeout(LIMIT, a).await.unwrap().unwrap();
    assert_eq!(timeout(LIMIT, b).await.unwrap().unwrap().offset, 1);
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(290) && elapsed < Duration::from_secs(5), "{elapsed:?}");
    let calls = fake.state.produce_calls();
    assert_eq!((calls.len(), calls[0].batches, calls[0].records), (1, 1, 2), "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_size_seals_without_waiting_for_linger() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 1);
    let cfg = ProducerConfig {
        linger: Duration::from_secs(20),
        batch_size: 1_000,
        delivery_timeout: Duration::from_secs(60),
        ..config(&fake)
    };
    let producer = Producer::connect(cfg).await.unwrap();
    let start = Instant::now();
    let mut futures = Vec::new();
    for _ in 0..20 {
        futures.push(producer.send(ProducerRecord::new("t", vec![1u8; 100])).await.unwrap());
    }
    // The first batches are full and go out at once; the last one lingers.
    timeout(Duration::from_secs(5), futures.remove(0)).await.unwrap().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    let sent: i64 = fake.state.produce_calls().iter().map(|c| c.records).sum();
    assert!((8..20).contains(&sent), "{sent} records sent before linger");
    // flush sends the lingering rest.
    timeout(LIMIT, producer.flush()).await.unwrap().unwrap();
    let sent: i64 = fake.state.produce_calls().iter().map(|c| c.records).sum();
    assert_eq!(sent, 20);
    for f in futures {
        assert!(f.await.is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_memory_blocks_send_until_batches_complete() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 1);
    let gate = Arc::new(Semaphore::new(0));
    *fake.state.produce_gate.lock() = Some(gate.clone());
    let cfg = ProducerConfig { linger: Duration::ZERO, batch_size: 1_024, buffer_memory: 1_024, ..config(&fake) };
    let producer = Producer::connect(cfg).await.unwrap();
    let record = || ProducerRecord::new("t", vec![0u8; 300]); // 336 bytes reserved
    let mut futures = Vec::new();
    for _ in 0..3 {
        futures.push(timeout(LIMIT, producer.send(record())).await.unwrap().unwrap());
    }
    // Full: the next send waits.
    let p = producer.clone();
    let blocked = tokio::spawn(async move { p.send(record()).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!blocked.is_finished(), "send must wait for buffer.memory");
    // Let the broker answer: memory comes back and the send proceeds.
    gate.add_permits(1_000);
    let fourth = timeout(LIMIT, blocked).await.unwrap().unwrap().unwrap();
    for f in futures {
        timeout(LIMIT, f).await.unwrap().unwrap();
    }
    assert_eq!(timeout(LIMIT, fourth).await.unwrap().unwrap().offset, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_blocked_on_buffer_memory_times_out() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 1);
    *fake.state.produce_gate.lock() = Some(Arc::new(Semaphore::new(0)));
    let cfg = ProducerConfig {
        linger: Duration::ZERO,
        batch_size: 1_024,
        buffer_memory: 1_024,
        request_timeout: Duration::from_millis(400),
        delivery_timeout: Duration::from_millis(500),
        ..config(&fake)
    };
    let producer = Producer::connect(cfg).await.unwrap();
    let _held = producer.send(ProducerRecord::new("t", vec![0u8; 900])).await.unwrap();
    let start = Instant::now();
    let e = timeout(LIMIT, producer.send(ProducerRecord::new("t", vec![0u8; 900]))).await.unwrap().unwrap_err();
    assert!(matches!(&e, ClientError::Timeout { what, .. } if what.contains("buffer.memory")), "{e}");
    assert!(start.elapsed() >= Duration::from_millis(450));
    // A record that can never fit fails at once.
    let e = producer.send(ProducerRecord::new("t", vec![0u8; 2_000])).await.unwrap_err();
    assert!(matches!(e, ClientError::RecordTooLarge { setting: "buffer.memory", .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_resolves_with_offset_minus_one_but_still_sends() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 1);
    let producer = Producer::connect(ProducerConfig { acks: Acks::None, ..config(&fake) }).await.unwrap();
    let md = timeout(LIMIT, producer.send(ProducerRecord::new("t", "x")).await.unwrap()).await.unwrap().unwrap();
    assert_eq!(md.offset, -1);
    until("the record to arrive", || fake.state.produce_calls().len() == 1).await;
    assert_eq!(fake.state.produce_calls()[0].acks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_use_murmur2_and_keyless_ones_stick_to_a_partition() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 6);
    let cfg = ProducerConfig { linger: Duration::from_millis(50), ..config(&fake) };
    let producer = Producer::connect(cfg).await.unwrap();
    for (key, hash) in [("21", -973_932_308i32), ("foobar", -790_332_482), ("a-little-bit-long-string", -985_981_536)] {
        let md = timeout(LIMIT, producer.send(ProducerRecord::new("t", "v").key(key)).await.unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(md.partition, (hash & 0x7fff_ffff) % 6, "{key}");
    }
    let mut futures = Vec::new();
    for i in 0..10 {
        futures.push(producer.send(ProducerRecord::new("t", format!("{i}"))).await.unwrap());
    }
    let mut partitions = Vec::new();
    for f in futures {
        partitions.push(timeout(LIMIT, f).await.unwrap().unwrap().partition);
    }
    assert!(partitions.iter().all(|p| *p == partitions[0]), "one unsealed batch, one partition: {partitions:?}");
    let md = timeout(LIMIT, producer.send(ProducerRecord::new("t", "x").partition(4)).await.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(md.partition, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_run_in_order_and_flush_waits_for_them() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 3);
    let cfg = ProducerConfig { batch_size: 2_000, linger: Duration::from_millis(5), ..config(&fake) };
    let producer = Producer::connect(cfg).await.unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(parking_lot::Mutex::new(vec![-1i64; 3]));
    for i in 0..3_000 {
        let (done, last) = (done.clone(), last.clone());
        let record = ProducerRecord::new("t", format!("value-{i}")).header("n", format!("{i}")).timestamp(1_000 + i);
        producer
            .send_with_callback(record, move |r| {
                let md = r.unwrap();
                let mut last = last.lock();
                assert_eq!(md.offset, last[md.partition as usize] + 1, "in order per partition");
                last[md.partition as usize] = md.offset;
                done.fetch_add(1, Ordering::SeqCst);
            })
            .await
            .unwrap();
    }
    timeout(LIMIT, producer.flush()).await.unwrap().unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 3_000);
    let stored: usize = (0..3).map(|p| fake.state.records("t", p).len()).sum();
    assert_eq!(stored, 3_000);
    let first = &fake.state.records("t", 0)[0];
    assert_eq!(first.headers[0].key, "n");
    assert!(first.timestamp >= 1_000);
    timeout(LIMIT, producer.clone().close()).await.unwrap();
    assert!(matches!(producer.send(ProducerRecord::new("t", "late")).await, Err(ClientError::Closed)));
}

/// Rough producer throughput through the fake broker: `cargo test -p vltava-client --test producer
/// -- --ignored --nocapture throughput`. Not a benchmark (the fake and a debug build dominate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput smoke test, run by hand"]
async fn throughput_smoke() {
    let fake = FakeCluster::start().await;
    fake.state.create_topic("t", 1);
    let producer = Producer::connect(config(&fake)).await.unwrap();
    let n = 200_000;
    let value = Bytes::from(vec![b'x'; 100]);
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    for _ in 0..n {
        let done = done.clone();
        producer
            .send_with_callback(
                ProducerRecord { value: Some(value.clone()), ..ProducerRecord::new("t", "") },
                move |r| {
                    assert!(r.is_ok());
                    done.fetch_add(1, Ordering::Relaxed);
                },
            )
            .await
            .unwrap();
    }
    producer.flush().await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(done.load(Ordering::Relaxed), n);
    println!("produced {n} records in {elapsed:?}: {:.0} records/s", n as f64 / elapsed.as_secs_f64());

    let cfg = vltava_client::ConsumerConfig {
        auto_offset_reset: vltava_client::OffsetReset::Earliest,
        ..vltava_client::ConsumerConfig::new(fake.bootstrap())
    };
    let mut consumer = vltava_client::Consumer::connect(cfg).await.unwrap();
    consumer.assign_topic("t").await.unwrap();
    let start = Instant::now();
    let mut got = 0;
    while got < n {
        assert!(start.elapsed() < Duration::from_secs(60));
        got += consumer.poll(Duration::from_millis(100)).await.unwrap().len();
    }
    let elapsed = start.elapsed();
    println!("consumed {n} records in {elapsed:?}: {:.0} records/s", n as f64 / elapsed.as_secs_f64());
}
