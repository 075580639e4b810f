//! Log compaction on real processes (issue 15): `vltava dev` killed with SIGKILL at random moments
//! while its cleaner runs, a million updates of a thousand keys, and a failover of a compacted
//! partition on a three-broker `vltava local-cluster`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vltava_client::{
    Acks, Admin, Consumer, ConsumerConfig, ConsumerRecord, NewTopic, OffsetReset, Producer, ProducerConfig,
    ProducerRecord,
};
use vltava_testkit::ServerProcess;
use vltava_testkit::cluster::{LocalCluster, metric_sum, scrape_metrics};

const TOPIC: &str = "table";

fn vltava() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vltava"))
}

/// What was acknowledged at each offset of partition 0: key and value (`None`: a tombstone).
type Written = BTreeMap<i64, (String, Option<String>)>;

/// Produces `count` updates of `keys` keys (every `delete_every`-th one a tombstone, 0 for none)
/// with acks=all and returns what was acknowledged where.
async fn produce(addr: &str, round: usize, count: usize, keys: usize, delete_every: usize) -> Written {
    let producer = Producer::connect(ProducerConfig { acks: Acks::All, ..ProducerConfig::new(addr) }).await.unwrap();
    let written = Arc::new(Mutex::new(Written::new()));
    for i in 0..count {
        let key = format!("key-{}", (i * 7 + round) % keys);
        let value = (delete_every == 0 || i % delete_every != 0).then(|| format!("{key}:{round}:{i}"));
        let record = match &value {
            Some(v) => ProducerRecord::new(TOPIC, v.clone()),
            None => ProducerRecord::tombstone(TOPIC),
        }
        .key(key.clone())
        .partition(0);
        let written = written.clone();
        producer
            .send_with_callback(record, move |r| {
                let meta = r.expect("every update is acknowledged");
                written.lock().unwrap().insert(meta.offset, (key, value));
            })
            .await
            .unwrap();
    }
    producer.flush().await.unwrap();
    let written = written.lock().unwrap().clone();
    assert_eq!(written.len(), count);
    written
}

/// Every record of partition 0 from the start, read until `end` (the log end offset).
async fn read_all(addr: &str, end: i64) -> Vec<ConsumerRecord> {
    let mut consumer = Consumer::connect(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::new(addr)
    })
    .await
    .unwrap();
    consumer.assign(vec![vltava_client::TopicPartition::new(TOPIC, 0)]);
    let mut out: Vec<ConsumerRecord> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.last().is_none_or(|r| r.offset + 1 < end) {
        assert!(Instant::now() < deadline, "read only up to {:?} of {end}", out.last().map(|r| r.offset));
        match consumer.poll(Duration::from_millis(500)).await {
            Ok(records) => out.extend(records),
            // A leader that just moved, or a server still starting: poll again.
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    out
}

/// The compacted view is right: every record read is the one acknowledged at its offset, and
/// each key's last record read is its latest update (a key may be missing only if that update
/// was a tombstone). Returns how many records were read.
fn check_view(records: &[ConsumerRecord], written: &Written) -> usize {
    let text = |b: &Option<bytes::Bytes>| b.as_ref().map(|b| String::from_utf8(b.to_vec()).unwrap());
    let mut last: BTreeMap<String, Option<String>> = BTreeMap::new();
    for r in records {
        let (key, value) = written.get(&r.offset).unwrap_or_else(|| panic!("offset {} was never written", r.offset));
        assert_eq!(text(&r.key).as_ref(), Some(key), "offset {}", r.offset);
        assert_eq!(&text(&r.value), value, "offset {}", r.offset);
        last.insert(key.clone(), value.clone());
    }
    let mut latest: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (key, value) in written.values() {
        latest.insert(key.clone(), value.clone());
    }
    for (key, value) in &latest {
        match last.get(key) {
            Some(seen) => assert_eq!(seen, value, "key {key}: not its latest update"),
            None => assert!(value.is_none(), "key {key} vanished without a tombstone"),
        }
    }
    records.len()
}

fn compacted_topic(segment_bytes: &str) -> NewTopic {
    NewTopic::new(TOPIC, 1)
        .config("cleanup.policy", "compact")
        .config("segment.bytes", segment_bytes)
        .config("min.cleanable.dirty.ratio", "0.01")
}

/// A tiny xorshift generator (seeded from the clock, printed so a failure can be replayed).
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_vltava_dev_while_it_cleans_never_changes_the_compacted_view() {
    let data = tempfile::tempdir().unwrap();
    let env = [("VLTAVA_BROKER__CLEANER_INTERVAL", "50ms")];
    let mut server = ServerProcess::start_dev_with_env(&vltava(), data.path(), &env).unwrap();
    let admin = Admin::connect(&server.server()).await.unwrap();
    admin.create_topic(compacted_topic("32768")).await.unwrap();
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("seed {seed}");
    let mut written = Written::new();
    for round in 0..6 {
        written.extend(produce(&server.server(), round, 6_000, 300, 23).await);
        // Somewhere in (or between) the cleaner's passes over what was just written.
        let pause = next(&mut seed) % 1_500;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        server.kill9();
        server.restart().unwrap();
        let end = written.keys().next_back().unwrap() + 1;
        let n = check_view(&read_all(&server.server(), end).await, &written);
        eprintln!("round {round}: killed after {pause} ms; {n} records of {} written", written.len());
    }
    // Left alone, the cleaner compacts everything but the active segment.
    let end = written.keys().next_back().unwrap() + 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = check_view(&read_all(&server.server(), end).await, &written);
        if n < written.len() / 4 {
            break;
        }
        assert!(Instant::now() < deadline, "never compacted: {n} of {} records", written.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    server.stop(Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_updates_of_a_thousand_keys_compact_to_a_thousand_records() {
    let data = tempfile::tempdir().unwrap();
    let env = [("VLTAVA_BROKER__CLEANER_INTERVAL", "200ms")];
    let mut server = ServerProcess::start_dev_with_env(&vltava(), data.path(), &env).unwrap();
    let admin = Admin::connect(&server.server()).await.unwrap();
    // max.compaction.lag.ms rolls the active segment once its first record is 2 s old.
    admin.create_topic(compacted_topic("1048576").config("max.compaction.lag.ms", "2000")).await.unwrap();
    let mut written = produce(&server.server(), 0, 1_000_000, 1_000, 0).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    written.extend(produce(&server.server(), 1, 1, 1_000, 0).await);
    let end = written.keys().next_back().unwrap() + 1;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = check_view(&read_all(&server.server(), end).await, &written);
        // Each key's latest record, plus the last update (in the active segment, never cleaned).
        if n <= 1_001 {
            assert_eq!(n, 1_001);
            break;
        }
        assert!(Instant::now() < deadline, "never compacted: {n} records");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    server.stop(Duration::from_secs(10));
}

/// Whether every broker of `cluster` has cleaned since it started and has nothing dirty left.
async fn all_brokers_cleaned(cluster: &LocalCluster) -> bool {
    for p in cluster.processes().iter().filter(|p| p.role == "broker") {
        let Some((_, body)) = scrape_metrics(&p.metrics_address).await else { return false };
        let passes = metric_sum(&body, "vltava_broker_cleaner_passes_total");
        let dirty = metric_sum(&body, "vltava_broker_cleaner_max_dirty_ratio");
        if passes < 1.0 || dirty > 0.0 {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_leader_and_followers_cleaned_a_failover_serves_the_same_compacted_view() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("VLTAVA_BROKER__CLEANER_INTERVAL", "100ms")];
    let args = ["--controllers", "1", "--brokers", "3", "--replication-factor", "3"];
    let mut cluster = LocalCluster::start_with_env(Path::new(&vltava()), dir.path(), &args, &env)
        .unwrap_or_else(|e| panic!("local-cluster did not start: {e}"));
    let addr = cluster.client_address().to_string();
    let admin = Admin::connect(&addr).await.unwrap();
    // max.compaction.lag.ms rolls the active segment (a produce request's batches all go to one
    // segment, so it holds thousands of records) once the last update below arrives.
    let topic = compacted_topic("16384")
        .replication_factor(3)
        .config("min.insync.replicas", "2")
        .config("max.compaction.lag.ms", "1000");
    admin.create_topic(topic).await.unwrap();
    let mut written = produce(&addr, 0, 20_000, 200, 31).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    written.extend(produce(&addr, 1, 1, 200, 0).await);
    let end = written.keys().next_back().unwrap() + 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !all_brokers_cleaned(&cluster).await {
        assert!(Instant::now() < deadline, "the replicas never all cleaned");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Each broker reports, per compacted partition, how long ago it was cleaned.
    for p in cluster.processes().iter().filter(|p| p.role == "broker") {
        let (_, body) = scrape_metrics(&p.metrics_address).await.expect("metrics");
        let line = body
            .lines()
            .find(|l| {
                l.starts_with("vltava_broker_cleaner_time_since_last_clean_seconds{") && l.contains("topic=\"table\"")
            })
            .unwrap_or_else(|| panic!("broker {}: no time since last clean for table", p.id));
        let seconds: f64 = line.rsplit_once(' ').unwrap().1.parse().unwrap();
        assert!((0.0..60.0).contains(&seconds), "{line}");
    }
    let before = check_view(&read_all(&addr, end).await, &written);
    assert!(before <= 201, "the leader compacted: {before} of 20001 records");

    let leader = admin.describe_topic(TOPIC).await.unwrap().partitions[0].leader;
    cluster.kill9("broker", leader as u64);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = admin.describe_topic(TOPIC).await.map(|t| t.partitions[0].leader).unwrap_or(-1);
        if now >= 0 && now != leader {
            break;
        }
        assert!(Instant::now() < deadline, "no new leader after {leader} was killed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The new leader cleaned its own log: the same compacted view, about as small.
    let after = check_view(&read_all(&addr, end).await, &written);
    eprintln!("leader {leader} killed; {before} records before, {after} after, of {}", written.len());
    assert!(after <= 201, "the follower compacted its own log: {after} of 20001 records");
}
