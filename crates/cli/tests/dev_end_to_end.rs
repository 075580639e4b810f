//! End to end against a real `vltava dev` process: the SDK produces 100,000 keyed records, reads
//! them back, and after a kill -9 and a restart on the same data directory everything acknowledged
//! and every committed group offset is still there.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vltava_client::{
    Acks, Admin, Consumer, ConsumerConfig, ConsumerRecord, NewTopic, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};
use vltava_testkit::{ServerProcess, eventually};

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 6;
const RECORDS: usize = 100_000;
const KEYS: usize = 997;

fn vltava() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vltava"))
}

/// Reads every partition of `TOPIC` from the beginning until `expected` records arrived.
async fn read_all(server: &str, expected: usize) -> Vec<ConsumerRecord> {
    let mut consumer = Consumer::connect(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::new(server)
    })
    .await
    .unwrap();
    consumer.assign_topic(TOPIC).await.unwrap();
    let mut out = Vec::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(120);
    while out.len() < expected {
        assert!(Instant::now() < deadline, "only {} of {expected} records arrived in time", out.len());
        out.extend(consumer.poll(Duration::from_millis(500)).await.unwrap());
    }
    assert_eq!(out.len(), expected, "no record may be delivered twice");
    out
}

/// Every value appears once, and per key the sequence numbers only grow (order within a key).
fn check_complete_and_ordered(records: &[ConsumerRecord]) {
    let mut seen = vec![false; RECORDS];
    let mut last_per_key: HashMap<Vec<u8>, usize> = HashMap::new();
    for r in records {
        let value = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap();
        let (key, seq) = value.split_once(':').unwrap();
        let seq: usize = seq.parse().unwrap();
        assert_eq!(r.key.as_deref().unwrap(), key.as_bytes());
        assert!(!seen[seq], "record {seq} delivered twice");
        seen[seq] = true;
        let expected_partition = vltava_record::murmur2::partition_for_key(key.as_bytes(), PARTITIONS as u32) as i32;
        assert_eq!(r.partition, expected_partition, "key {key} must land where Kafka's partitioner puts it");
        if let Some(prev) = last_per_key.insert(key.as_bytes().to_vec(), seq) {
            assert!(prev < seq, "key {key}: record {seq} came after {prev}");
        }
    }
    let missing = seen.iter().filter(|s| !**s).count();
    assert_eq!(missing, 0, "{missing} records are missing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_100k_keyed_records_when_the_server_is_killed_and_restarted_should_keep_every_record_and_committed_offset()
 {
    let data = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start_dev(&vltava(), data.path(), &[]).unwrap();
    let addr = server.server();

    let admin = Admin::connect(&addr).await.unwrap();
    // Small segments so that the data spans many segment files and index lookups.
    admin.create_topic(NewTopic::new(TOPIC, PARTITIONS).config("segment.bytes", "262144")).await.unwrap();

    let producer = Producer::connect(ProducerConfig { acks: Acks::All, ..ProducerConfig::new(&addr) }).await.unwrap();
    let mut deliveries = Vec::with_capacity(RECORDS);
    for seq in 0..RECORDS {
        let key = format!("key-{}", seq % KEYS);
        let record = ProducerRecord::new(TOPIC, format!("{key}:{seq}")).key(key);
        deliveries.push(producer.send(record).await.unwrap());
    }
    producer.flush().await.unwrap();
    let mut end_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    for d in deliveries {
        let meta = d.await.expect("every record is acknowledged");
        let end = end_offsets.entry(meta.partition).or_insert(0);
        *end = (*end).max(meta.offset + 1);
    }
    assert_eq!(end_offsets.values().sum::<i64>(), RECORDS as i64);

    let records = read_all(&addr, RECORDS).await;
    check_complete_and_ordered(&records);

    // A group commits a position in the middle of each partition.
    let committed: HashMap<TopicPartition, i64> =
        end_offsets.iter().map(|(p, end)| (TopicPartition::new(TOPIC, *p), end / 2 + *p as i64)).collect();
    let mut group =
        Consumer::connect(ConsumerConfig { group_id: Some("auditors".into()), ..ConsumerConfig::new(&addr) })
            .await
            .unwrap();
    group.commit_offsets(committed.clone()).await.unwrap();

    // kill -9: no clean shutdown, no flush (flush.messages is unset: the OS holds the tail).
    server.kill9();
    server.restart().unwrap();
    let addr = server.server();

    let records = read_all(&addr, RECORDS).await;
    check_complete_and_ordered(&records);
    let group = Consumer::connect(ConsumerConfig { group_id: Some("auditors".into()), ..ConsumerConfig::new(&addr) })
        .await
        .unwrap();
    let tps: Vec<_> = committed.keys().cloned().collect();
    assert_eq!(group.committed(&tps).await.unwrap(), committed, "committed offsets survive the crash");

    // The log goes on where it stopped.
    let producer = Producer::connect(ProducerConfig::new(&addr)).await.unwrap();
    let meta = producer.send(ProducerRecord::new(TOPIC, "after").partition(0)).await.unwrap().await.unwrap();
    assert_eq!(meta.offset, end_offsets[&0]);
    server.stop(Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_acks_1_when_the_server_is_killed_mid_stream_should_keep_every_acknowledged_record() {
    let data = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start_dev(&vltava(), data.path(), &[]).unwrap();
    let addr = server.server();
    Admin::connect(&addr).await.unwrap().create_topic(NewTopic::new("stream", 3)).await.unwrap();
    let producer = Producer::connect(ProducerConfig {
        acks: Acks::Leader,
        delivery_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(2),
        ..ProducerConfig::new(&addr)
    })
    .await
    .unwrap();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sending = {
        let acked = acked.clone();
        tokio::spawn(async move {
            for seq in 0..1_000_000u64 {
                let acked = acked.clone();
                let value = format!("v{seq}");
                let sent = producer
                    .send_with_callback(ProducerRecord::new("stream", value.clone()), move |r| {
                        if let Ok(meta) = r {
                            acked.lock().unwrap().push((meta.partition, meta.offset, value));
                        }
                    })
                    .await;
                if sent.is_err() {
                    break;
                }
            }
            let _ = producer.flush().await;
        })
    };
    // Let some records be acknowledged, then pull the plug.
    eventually(Duration::from_secs(60), "20,000 records acknowledged", || async {
        (acked.lock().unwrap().len() >= 20_000).then_some(())
    })
    .await;
    server.kill9();
    tokio::time::timeout(Duration::from_secs(60), sending).await.expect("producer gives up").unwrap();
    let acked = std::mem::take(&mut *acked.lock().unwrap());

    server.restart().unwrap();
    let mut consumer = Consumer::connect(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::new(server.server())
    })
    .await
    .unwrap();
    consumer.assign_topic("stream").await.unwrap();
    let mut stored: HashMap<(i32, i64), String> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let batch = consumer.poll(Duration::from_millis(300)).await.unwrap();
        if batch.is_empty() && (0..3).all(|p| consumer.lag(&TopicPartition::new("stream", p)) == Some(0)) {
            break;
        }
        assert!(Instant::now() < deadline, "reading back took too long");
        for r in batch {
            stored.insert((r.partition, r.offset), String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
    }
    for (partition, offset, value) in &acked {
        assert_eq!(
            stored.get(&(*partition, *offset)),
            Some(value),
            "acknowledged record {partition}/{offset} was lost"
        );
    }
    assert!(acked.len() >= 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vltava_dev_embeds_a_gateway_for_thin_clients_and_stops_cleanly_on_sigterm() {
    use vltava_proto::v1::gateway_service_client::GatewayServiceClient;
    use vltava_proto::v1::{PublishRequest, ReadPartition, ReadRequest, Record};

    let data = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start_dev(&vltava(), data.path(), &[]).unwrap();
    let gateway = server.gateway().expect("dev announces its gateway");
    assert_ne!(gateway, server.server(), "the gateway has its own port");
    let admin = Admin::connect(&server.server()).await.unwrap();
    admin.create_topic(NewTopic::new("thin", 2)).await.unwrap();

    // A thin client publishes keyed records through the embedded gateway and reads them back.
    let channel = tonic::transport::Channel::from_shared(format!("http://{gateway}")).unwrap().connect().await.unwrap();
    let mut api = GatewayServiceClient::new(channel);
    let records = (0..4)
        .map(|i| Record {
            key: Some(format!("k{i}").into()),
            value: Some(format!("v{i}").into()),
            ..Default::default()
        })
        .collect();
    let request = PublishRequest { topic: "thin".into(), records, acks: Some(-1), ..Default::default() };
    let published = tokio::time::timeout(Duration::from_secs(20), api.publish(request)).await.unwrap().unwrap();
    let results = published.into_inner().results;
    assert!(results.iter().all(|r| r.error_code == 0 && r.offset >= 0), "{results:?}");
    for (i, r) in results.iter().enumerate() {
        let expected = vltava_record::murmur2::partition_for_key(format!("k{i}").as_bytes(), 2) as i32;
        assert_eq!(r.partition, expected, "record {i} is placed by murmur2 of its key");
    }
    let read = ReadRequest {
        partitions: (0..2).map(|p| ReadPartition { topic: "thin".into(), partition: p, offset: -2 }).collect(),
        ..Default::default()
    };
    let read = tokio::time::timeout(Duration::from_secs(20), api.read(read)).await.unwrap().unwrap().into_inner();
    let mut values: Vec<String> = read
        .partitions
        .iter()
        .flat_map(|p| p.records.iter().map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into()))
        .collect();
    values.sort();
    assert_eq!(values, ["v0", "v1", "v2", "v3"]);

    // SIGTERM stops the broker and the gateway together (stop() would SIGKILL after 20 s). The
    // log's last lines may still be on their way from the pipe: wait for them, bounded.
    let started = Instant::now();
    server.stop(Duration::from_secs(20));
    let stopped = |o: &str| o.contains("gateway stopped") && o.contains("broker stopped");
    for _ in 0..50 {
        if stopped(&server.output()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(stopped(&server.output()), "both parts stop cleanly within {:?}:\n{}", started.elapsed(), server.output());
}
