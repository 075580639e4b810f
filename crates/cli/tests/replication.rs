//! Multi-process tests of partition replication: `vltava local-cluster` runs the controller,
//! every broker and the gateway as separate OS processes; brokers are killed with SIGKILL,
//! frozen with SIGSTOP and restarted with the exact command from cluster.json.
//!
//! The question each test answers is Kafka's promise: a record acknowledged with `acks=all`
//! survives the loss of any one replica, and no consumer ever sees a record that is later lost.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use vltava_client::{
    Acks, Admin, ClientError, Consumer, ConsumerConfig, NewTopic, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, TopicDescription, TopicPartition,
};
use vltava_testkit::cluster::LocalCluster;
use vltava_testkit::eventually;

const BIN: &str = env!("CARGO_BIN_EXE_vltava");

fn start(dir: &std::path::Path, brokers: u32) -> LocalCluster {
    let brokers = brokers.to_string();
    let args = ["--controllers", "1", "--brokers", brokers.as_str(), "--replication-factor", "3"];
    match LocalCluster::start(std::path::Path::new(BIN), dir, &args) {
        Ok(c) => c,
        Err(e) => panic!("local-cluster did not start: {e}"),
    }
}

/// Creates a 1-partition RF-3 topic with `min.insync.replicas=2` and waits until all three
/// replicas are in sync.
async fn create_replicated(admin: &Admin, name: &str) -> TopicDescription {
    admin.create_topic(NewTopic::new(name, 1).replication_factor(3).config("min.insync.replicas", "2")).await.unwrap();
    eventually(Duration::from_secs(20), "a leader with three in-sync replicas", || async {
        let t = admin.describe_topic(name).await.ok()?;
        let p = &t.partitions[0];
        (p.leader >= 0 && p.isr.len() == 3).then_some(t)
    })
    .await
}

async fn partition(admin: &Admin, topic: &str) -> Option<vltava_client::PartitionDescription> {
    admin.describe_topic(topic).await.ok().map(|t| t.partitions[0].clone())
}

fn producer_config(cluster: &LocalCluster, acks: Acks) -> ProducerConfig {
    ProducerConfig {
        acks,
        linger: Duration::from_millis(2),
        delivery_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(10),
        retry_backoff: Duration::from_millis(50),
        ..ProducerConfig::new(cluster.client_address())
    }
}

/// Every committed record of partition 0, in offset order, as `(offset, value)`.
async fn read_everything(cluster: &LocalCluster, topic: &str) -> Vec<(i64, String)> {
    let mut consumer = Consumer::connect(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::new(cluster.client_address())
    })
    .await
    .unwrap();
    let tp = TopicPartition::new(topic, 0);
    consumer.assign(vec![tp.clone()]);
    let admin = Admin::connect(cluster.client_address()).await.unwrap();
    let end = eventually(Duration::from_secs(30), "the end offset", || async {
        admin.list_offsets(&tp, vltava_client::OffsetSpec::Latest).await.ok()
    })
    .await;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.last().is_none_or(|(o, _): &(i64, String)| o + 1 < end) && Instant::now() < deadline {
        for r in consumer.poll(Duration::from_millis(500)).await.unwrap_or_default() {
            out.push((r.offset, value(&r)));
        }
        if end == 0 {
            break;
        }
    }
    out
}

/// A consumer reading partition 0 along with the test, recording every `(offset, value)` it sees.
struct Watcher {
    seen: Arc<Mutex<Vec<(i64, String)>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    fn start(server: &str, topic: &str) -> Watcher {
        let seen: Arc<Mutex<Vec<(i64, String)>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, st, server, topic) = (seen.clone(), stop.clone(), server.to_string(), topic.to_string());
        let task = tokio::spawn(async move {
            let mut consumer = Consumer::connect(ConsumerConfig {
                auto_offset_reset: OffsetReset::Earliest,
                ..ConsumerConfig::new(server)
            })
            .await
            .unwrap();
            consumer.assign(vec![TopicPartition::new(topic, 0)]);
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(records) = consumer.poll(Duration::from_millis(100)).await {
                    s.lock().extend(records.into_iter().map(|r| (r.offset, value(&r))));
                }
            }
        });
        Watcher { seen, stop, task }
    }

    /// Stops reading; returns what was seen.
    async fn stop(self) -> Vec<(i64, String)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap();
        std::mem::take(&mut *self.seen.lock())
    }
}

fn value(r: &vltava_client::ConsumerRecord) -> String {
    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_loses_nothing_when_the_leader_is_killed_mid_stream() {
    const RECORDS: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start(dir.path(), 3);
    let admin = Admin::connect(cluster.client_address()).await.unwrap();
    let before = create_replicated(&admin, "numbers").await;
    let leader = before.partitions[0].leader;

    // A consumer reads along while the producer runs; everything it sees must survive.
    let watcher = Watcher::start(cluster.client_address(), "numbers");

    let producer = Producer::connect(producer_config(&cluster, Acks::All)).await.unwrap();
    let acked: Arc<Mutex<BTreeMap<u64, i64>>> = Arc::default();
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // Paced at about 20,000 records/s (the producer alone would be done in well under a
    // second), so that the kill below lands mid-stream.
    let sending = tokio::spawn({
        let (producer, acked, failed) = (producer.clone(), acked.clone(), failed.clone());
        async move {
            for n in 0..RECORDS {
                let (acked, failed) = (acked.clone(), failed.clone());
                producer
                    .send_with_callback(ProducerRecord::new("numbers", n.to_string()).partition(0), move |r| match r {
                        Ok(meta) => {
                            acked.lock().insert(n, meta.offset);
                        }
                        Err(_) => {
                            failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    })
                    .await
                    .unwrap();
                if n % 200 == 199 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    });
    // Kill the leader once a fifth is acknowledged, mid-stream.
    eventually(Duration::from_secs(60), "a fifth of the records acknowledged", || async {
        (acked.lock().len() as u64 >= RECORDS / 5).then_some(())
    })
    .await;
    cluster.kill9("broker", leader as u64);
    let killed = (acked.lock().len() as u64) < RECORDS;
    sending.await.unwrap();
    producer.flush().await.unwrap();
    assert!(killed, "the leader was killed while producing");
    let acked = acked.lock().clone();
    let failed = failed.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{} acknowledged, {failed} failed", acked.len());
    assert!(acked.len() as u64 > RECORDS / 2, "most records are acknowledged after the failover");

    let after = eventually(Duration::from_secs(20), "a new leader", || async {
        partition(&admin, "numbers").await.filter(|p| p.leader >= 0 && p.leader != leader)
    })
    .await;
    assert!(after.leader_epoch > before.partitions[0].leader_epoch);

    let log = read_everything(&cluster, "numbers").await;
    let seen = watcher.stop().await;
    let by_offset: BTreeMap<i64, &str> = log.iter().map(|(o, v)| (*o, v.as_str())).collect();
    // Every acknowledged record is where its acknowledgement said.
    for (n, offset) in &acked {
        assert_eq!(by_offset.get(offset).copied(), Some(n.to_string().as_str()), "acknowledged record {n} at {offset}");
    }
    // In order and once: retries keep a partition's order, and the producer is idempotent (the
    // default), so a retry of a batch the old leader had replicated to the new one before it
    // died is recognised there instead of being stored again.
    let mut appeared = BTreeSet::new();
    let mut highest = None;
    for (offset, v) in &log {
        let n: u64 = v.parse().unwrap();
        assert!(appeared.insert(n), "record {n} is stored twice (again at {offset})");
        assert!(highest.is_none_or(|h| n > h), "record {n} at {offset} appears after {highest:?}");
        highest = Some(n);
    }
    // Nothing a consumer saw was lost afterwards.
    assert!(!seen.is_empty(), "the consumer saw records while producing");
    for (offset, v) in seen.iter() {
        assert_eq!(by_offset.get(offset).copied(), Some(v.as_str()), "seen record at {offset} went missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_follower_leaves_the_isr_and_rejoins_once_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start(dir.path(), 3);
    let admin = Admin::connect(cluster.client_address()).await.unwrap();
    let t = create_replicated(&admin, "events").await;
    let p = &t.partitions[0];
    let follower = *p.isr.iter().find(|id| **id != p.leader).unwrap();

    cluster.kill9("broker", follower as u64);
    eventually(Duration::from_secs(20), "the dead follower to leave the ISR", || async {
        partition(&admin, "events").await.filter(|p| !p.isr.contains(&follower) && p.isr.len() == 2)
    })
    .await;
    let producer = Producer::connect(producer_config(&cluster, Acks::All)).await.unwrap();
    let mut deliveries = Vec::new();
    for n in 0..5_000 {
        deliveries.push(producer.send(ProducerRecord::new("events", format!("e{n}")).partition(0)).await.unwrap());
    }
    for d in deliveries {
        d.await.expect("acks=all goes on with two in-sync replicas");
    }

    cluster.restart("broker", follower as u64).unwrap();
    let back = eventually(Duration::from_secs(30), "the follower to rejoin the ISR", || async {
        partition(&admin, "events").await.filter(|p| p.isr.contains(&follower))
    })
    .await;
    assert_eq!(back.isr.len(), 3);
    // Rejoining means it holds everything: with the other two gone it serves all 5,000 records.
    let others: Vec<i32> = back.replicas.iter().copied().filter(|id| *id != follower).collect();
    for id in &others {
        cluster.kill9("broker", *id as u64);
    }
    eventually(Duration::from_secs(20), "the restarted follower to lead", || async {
        partition(&admin, "events").await.filter(|p| p.leader == follower)
    })
    .await;
    let log = read_everything(&cluster, "events").await;
    let values: Vec<String> = log.into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, (0..5_000).map(|n| format!("e{n}")).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dead_replicas_fail_acks_all_with_not_enough_replicas_but_not_acks_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start(dir.path(), 3);
    let admin = Admin::connect(cluster.client_address()).await.unwrap();
    let t = create_replicated(&admin, "strict").await;
    let leader = t.partitions[0].leader;
    for id in t.partitions[0].replicas.iter().filter(|id| **id != leader) {
        cluster.kill9("broker", *id as u64);
    }
    eventually(Duration::from_secs(20), "an ISR of the leader alone", || async {
        partition(&admin, "strict").await.filter(|p| p.isr == vec![leader])
    })
    .await;

    let strict =
        Producer::connect(ProducerConfig { retries: 0, ..producer_config(&cluster, Acks::All) }).await.unwrap();
    let err = strict
        .send(ProducerRecord::new("strict", "must-not-commit").partition(0))
        .await
        .unwrap()
        .await
        .expect_err("acks=all with one in-sync replica and min.insync.replicas=2");
    assert!(err.to_string().contains("NOT_ENOUGH_REPLICAS"), "{err}");
    assert!(matches!(err, ClientError::Server(ref e) if e.code_name() == "NOT_ENOUGH_REPLICAS"), "{err:?}");

    let relaxed = Producer::connect(producer_config(&cluster, Acks::Leader)).await.unwrap();
    let meta = relaxed.send(ProducerRecord::new("strict", "leader-only").partition(0)).await.unwrap().await.unwrap();
    assert_eq!(meta.offset, 0, "the refused record was never appended");
    let log = read_everything(&cluster, "strict").await;
    assert_eq!(log, vec![(0, "leader-only".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_truncates_records_it_never_replicated() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start(dir.path(), 3);
    let admin = Admin::connect(cluster.client_address()).await.unwrap();
    let t = create_replicated(&admin, "ledger").await;
    let old_leader = t.partitions[0].leader;
    let followers: Vec<i32> = t.partitions[0].replicas.iter().copied().filter(|id| *id != old_leader).collect();

    let all = Producer::connect(producer_config(&cluster, Acks::All)).await.unwrap();
    for n in 0..100 {
        all.send(ProducerRecord::new("ledger", format!("committed-{n}")).partition(0)).await.unwrap().await.unwrap();
    }
    // A consumer reads along the whole time; it must never see an unreplicated record.
    let watcher = Watcher::start(cluster.client_address(), "ledger");

    // Freeze both followers, write to the leader alone (acks=1), then kill it: those records
    // exist only in the old leader's log.
    for id in &followers {
        cluster.pause("broker", *id as u64);
    }
    let one =
        Producer::connect(ProducerConfig { retries: 0, ..producer_config(&cluster, Acks::Leader) }).await.unwrap();
    let mut unreplicated = Vec::new();
    for n in 0..20 {
        let value = format!("unreplicated-{n}");
        if one.send(ProducerRecord::new("ledger", value.clone()).partition(0)).await.unwrap().await.is_ok() {
            unreplicated.push(value);
        }
    }
    cluster.kill9("broker", old_leader as u64);
    for id in &followers {
        cluster.resume("broker", *id as u64);
    }
    assert!(!unreplicated.is_empty(), "the old leader took acks=1 records");

    let new = eventually(Duration::from_secs(30), "a follower to take over", || async {
        partition(&admin, "ledger").await.filter(|p| followers.contains(&p.leader))
    })
    .await;
    for n in 0..50 {
        all.send(ProducerRecord::new("ledger", format!("new-{n}")).partition(0)).await.unwrap().await.unwrap();
    }

    // The old leader comes back as a follower, truncates its unreplicated tail and catches up.
    cluster.restart("broker", old_leader as u64).unwrap();
    eventually(Duration::from_secs(30), "the old leader to rejoin the ISR", || async {
        partition(&admin, "ledger").await.filter(|p| p.isr.contains(&old_leader))
    })
    .await;
    let log_text = std::fs::read_to_string(&cluster.process("broker", old_leader as u64).log).unwrap();
    assert!(
        log_text.contains("truncated records the leader does not have"),
        "{}",
        cluster.log_tail("broker", old_leader as u64)
    );

    // Make it the only replica left: what it serves is the new leader's history exactly.
    for id in new.replicas.iter().filter(|id| **id != old_leader) {
        cluster.kill9("broker", *id as u64);
    }
    eventually(Duration::from_secs(20), "the old leader to lead again", || async {
        partition(&admin, "ledger").await.filter(|p| p.leader == old_leader)
    })
    .await;
    let values: Vec<String> = read_everything(&cluster, "ledger").await.into_iter().map(|(_, v)| v).collect();
    assert!(values.len() >= 150, "{values:?}");
    let committed: Vec<String> = (0..100).map(|n| format!("committed-{n}")).collect();
    let later: Vec<String> = (0..50).map(|n| format!("new-{n}")).collect();
    assert_eq!(values[..100], committed[..]);
    assert_eq!(values[values.len() - 50..], later[..]);
    // A follower's fetch already waiting on the old leader may have carried the first acks=1
    // record out before it froze; that record is the new leader's too and stays. Everything
    // after it existed only on the old leader and was truncated when it rejoined.
    let survived = &values[100..values.len() - 50];
    assert_eq!(survived, &unreplicated[..survived.len()], "only a prefix of the acks=1 records survives");
    let truncated = &unreplicated[survived.len()..];
    assert!(!truncated.is_empty(), "the old leader had records nobody replicated");
    let seen: BTreeSet<String> = watcher.stop().await.into_iter().map(|(_, v)| v).collect();
    for v in truncated {
        assert!(!seen.contains(v), "a consumer received the truncated record {v}");
    }
    assert!(seen.contains("new-49"), "the consumer followed the new leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reassignment_to_a_new_broker_while_producing_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path(), 4);
    let admin = Admin::connect(cluster.client_address()).await.unwrap();
    let t = create_replicated(&admin, "moving").await;
    let old: Vec<i32> = t.partitions[0].replicas.clone();
    let newcomer = (1..=4).find(|id| !old.contains(id)).unwrap();
    // Drop the preferred leader, so leadership has to move as well.
    let target: Vec<i32> = old[1..].iter().copied().chain([newcomer]).collect();

    let producer = Producer::connect(producer_config(&cluster, Acks::All)).await.unwrap();
    let sending = tokio::spawn(async move {
        let mut deliveries = Vec::new();
        for n in 0..20_000 {
            deliveries.push(producer.send(ProducerRecord::new("moving", format!("m{n}")).partition(0)).await.unwrap());
            if n % 500 == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let mut offsets = Vec::new();
        for d in deliveries {
            offsets.push(d.await.expect("acknowledged during the reassignment").offset);
        }
        offsets
    });
    // Reassign while records flow: once the first ones are acknowledged.
    let tp = TopicPartition::new("moving", 0);
    eventually(Duration::from_secs(30), "the first records acknowledged", || async {
        admin.list_offsets(&tp, vltava_client::OffsetSpec::Latest).await.ok().filter(|end| *end > 0)
    })
    .await;
    admin.reassign_partition("moving", 0, target.clone()).await.unwrap();
    let done = eventually(Duration::from_secs(60), "the reassignment to complete", || async {
        partition(&admin, "moving").await.filter(|p| p.replicas == target && p.isr.len() == 3)
    })
    .await;
    assert!(target.contains(&done.leader), "the leader is one of the new replicas");
    assert!(!done.isr.contains(&old[0]));
    let offsets = tokio::time::timeout(Duration::from_secs(120), sending).await.expect("producer finishes").unwrap();
    let log = read_everything(&cluster, "moving").await;
    let values: Vec<&str> = log.iter().map(|(_, v)| v.as_str()).collect();
    for (n, offset) in offsets.iter().enumerate() {
        assert_eq!(values.get(*offset as usize).copied(), Some(format!("m{n}").as_str()));
    }
    assert!(admin.list_reassignments().await.unwrap().is_empty());
}
