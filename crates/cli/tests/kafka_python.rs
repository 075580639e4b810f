//! Kafka's own Python clients against a real `vltava dev` process: confluent-kafka (librdkafka)
//! with an idempotent `acks=all` producer, group consumers committing synchronously (two
//! processes sharing partitions), transactions read with `read_committed`, and AdminClient;
//! kafka-python's admin, producer and group consumer. Keys land where the SDK's murmur2 puts
//! them. The clients come from PyPI (`deploy/install-test-deps.sh` makes the venv).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use vltava_client::{Admin, NewTopic, Producer, ProducerConfig, ProducerRecord};
use vltava_testkit::ServerProcess;

fn vltava() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vltava"))
}

/// The venv's interpreter (`VLTAVA_KAFKA_VENV`, default ~/.cache/vltava-kafka-venv).
fn python() -> PathBuf {
    let venv = std::env::var("VLTAVA_KAFKA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/vltava-kafka-venv"));
    let python = venv.join("bin/python");
    assert!(python.exists(), "no {}: run deploy/install-test-deps.sh (make test does)", python.display());
    python
}

/// A `clients.py` process whose stdout lines (JSON) arrive on a channel.
struct Client {
    child: Child,
    lines: mpsc::Receiver<Value>,
    what: String,
}

impl Client {
    fn start(args: &[&str]) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kafka_clients/clients.py");
        let mut child = Command::new(python())
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        Self { child, lines, what: args.join(" ") }
    }

    /// The next line whose `key` is `value`, within `limit`.
    fn wait_for(&self, key: &str, value: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if v[key] == value => return v,
                Ok(_) => {}
                Err(_) => panic!("{}: no {key}={value} within {limit:?}", self.what),
            }
        }
    }

    /// The result line, once the process exits successfully (within 120 s).
    fn result(mut self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut last = Value::Null;
        loop {
            while let Ok(v) = self.lines.try_recv() {
                if v.get("result").is_some() {
                    last = v;
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                while let Ok(v) = self.lines.try_recv() {
                    if v.get("result").is_some() {
                        last = v;
                    }
                }
                assert!(status.success(), "{} failed: {status}", self.what);
                assert!(!last.is_null(), "{} printed no result", self.what);
                return last;
            }
            assert!(Instant::now() < deadline, "{} did not finish within 120 s", self.what);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str]) -> Value {
    Client::start(args).result()
}

/// A dev server whose classic groups rebalance quickly.
fn dev(dir: &std::path::Path) -> ServerProcess {
    ServerProcess::start_dev_with_env(
        &vltava(),
        dir,
        &[
            ("VLTAVA_BROKER__GROUPS__INITIAL_REBALANCE_DELAY", "100ms"),
            ("VLTAVA_BROKER__GROUPS__MIN_SESSION_TIMEOUT", "1s"),
        ],
    )
    .unwrap()
}

fn records(v: &Value) -> Vec<Value> {
    v["records"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_kafka_idempotent_producer_lands_keys_where_the_sdk_does_and_a_group_consumer_commits_synchronously()
{
    let data = tempfile::tempdir().unwrap();
    let server = dev(data.path());
    let kafka = server.kafka().unwrap();
    let admin = Admin::connect(&server.server()).await.unwrap();
    admin.create_topic(NewTopic::new("orders", 3)).await.unwrap();

    let produced = run(&["produce", "--bootstrap", &kafka, "--topic", "orders", "--count", "300", "--keys", "23"]);
    assert_eq!(produced["failed"], serde_json::json!([]), "{produced}");
    let delivered = produced["delivered"].as_array().unwrap();
    assert_eq!(delivered.len(), 300);
    let mut offsets = BTreeSet::new();
    for d in delivered {
        let (key, partition, offset) = (d[0].as_str().unwrap(), d[2].as_i64().unwrap(), d[3].as_i64().unwrap());
        let sdk = vltava_record::murmur2::partition_for_key(key.as_bytes(), 3) as i64;
        assert_eq!(partition, sdk, "librdkafka's murmur2 and the SDK's agree on {key}");
        assert!(offsets.insert((partition, offset)), "one offset per record");
    }
    // The SDK's producer puts the same key in the same partition.
    let sdk_producer = Producer::connect(ProducerConfig::new(server.server())).await.unwrap();
    let d = sdk_producer.send(ProducerRecord::new("orders", "from-sdk").key("key-5")).await.unwrap().await.unwrap();
    let kafka_partition = delivered.iter().find(|d| d[0] == "key-5").unwrap()[2].as_i64().unwrap();
    assert_eq!(i64::from(d.partition), kafka_partition);

    let consumed = run(&[
        "consume",
        "--bootstrap",
        &kafka,
        "--topic",
        "orders",
        "--group",
        "billing",
        "--expect",
        "301",
        "--timeout",
        "60",
    ]);
    let got = records(&consumed);
    let values: BTreeSet<String> = got.iter().map(|r| r[4].as_str().unwrap().to_string()).collect();
    assert_eq!(got.len(), 301, "every record once");
    assert_eq!(values.len(), 301);
    assert_eq!(consumed["assigned"], serde_json::json!([0, 1, 2]));
    let committed: BTreeMap<i64, i64> = consumed["committed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0].as_i64().unwrap(), c[1].as_i64().unwrap()))
        .collect();
    let ends: BTreeMap<i64, i64> = got.iter().fold(BTreeMap::new(), |mut m, r| {
        let e = m.entry(r[1].as_i64().unwrap()).or_insert(0);
        *e = (*e).max(r[2].as_i64().unwrap() + 1);
        m
    });
    assert_eq!(committed, ends, "the synchronous commits are the group's offsets");

    // The group resumes where it committed: nothing is read again.
    let again = run(&["consume", "--bootstrap", &kafka, "--topic", "orders", "--group", "billing", "--timeout", "8"]);
    assert_eq!(records(&again).len(), 0, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_confluent_kafka_consumer_processes_in_one_group_share_the_partitions() {
    let data = tempfile::tempdir().unwrap();
    let server = dev(data.path());
    let kafka = server.kafka().unwrap();
    let admin = Admin::connect(&server.server()).await.unwrap();
    admin.create_topic(NewTopic::new("shared", 4)).await.unwrap();

    let args = |name: &'static str| {
        [
            "consume",
            "--bootstrap",
            &kafka,
            "--topic",
            "shared",
            "--group",
            "sharers",
            "--name",
            name,
            "--idle",
            "4",
            "--timeout",
            "90",
        ]
        .map(String::from)
    };
    let a_args = args("a");
    let a = Client::start(&a_args.iter().map(String::as_str).collect::<Vec<_>>());
    a.wait_for("event", "assigned", Duration::from_secs(30));
    let b_args = args("b");
    let b = Client::start(&b_args.iter().map(String::as_str).collect::<Vec<_>>());
    // Wait until the group settles with both members owning partitions.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut owned_a, mut owned_b) = (Vec::new(), Vec::new());
    while owned_a.is_empty() || owned_b.is_empty() || owned_a.len() + owned_b.len() != 4 {
        assert!(Instant::now() < deadline, "the group did not settle: a {owned_a:?}, b {owned_b:?}");
        if let Ok(v) = a.lines.recv_timeout(Duration::from_millis(100)) {
            owned_a = serde_json::from_value(v["partitions"].clone()).unwrap_or(owned_a);
        }
        if let Ok(v) = b.lines.recv_timeout(Duration::from_millis(100)) {
            owned_b = serde_json::from_value(v["partitions"].clone()).unwrap_or(owned_b);
        }
    }
    let owned: BTreeSet<i64> = owned_a.iter().chain(&owned_b).copied().collect();
    assert_eq!(owned, BTreeSet::from([0, 1, 2, 3]), "a {owned_a:?} and b {owned_b:?} split the partitions");

    let producer = Producer::connect(ProducerConfig::new(server.server())).await.unwrap();
    let mut deliveries = Vec::new();
    for i in 0..400 {
        deliveries
            .push(producer.send(ProducerRecord::new("shared", format!("v{i}")).key(format!("k{i}"))).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }

    let (ra, rb) = (a.result(), b.result());
    let (got_a, got_b) = (records(&ra), records(&rb));
    assert!(!got_a.is_empty() && !got_b.is_empty(), "both members consumed: {} and {}", got_a.len(), got_b.len());
    let parts = |rs: &[Value]| rs.iter().map(|r| r[1].as_i64().unwrap()).collect::<BTreeSet<_>>();
    assert!(parts(&got_a).is_disjoint(&parts(&got_b)), "no partition was read by both");
    let values: BTreeSet<&str> = got_a.iter().chain(&got_b).map(|r| r[4].as_str().unwrap()).collect();
    assert_eq!((values.len(), got_a.len() + got_b.len()), (400, 400), "every record once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confluent_kafka_transactional_producer_is_read_committed_and_admin_client_manages_topics_and_configs() {
    let data = tempfile::tempdir().unwrap();
    let server = dev(data.path());
    let kafka = server.kafka().unwrap();
    let admin = Admin::connect(&server.server()).await.unwrap();
    admin.create_topic(NewTopic::new("tx-a", 1)).await.unwrap();
    admin.create_topic(NewTopic::new("tx-b", 2)).await.unwrap();

    let txns =
        run(&["transactions", "--bootstrap", &kafka, "--topic", "tx-a,tx-b", "--transactional-id", "payments-1"]);
    assert_eq!(txns["outcomes"].as_array().unwrap().len(), 3);
    let committed = run(&[
        "consume",
        "--bootstrap",
        &kafka,
        "--topic",
        "tx-a,tx-b",
        "--isolation",
        "read_committed",
        "--idle",
        "3",
        "--timeout",
        "60",
    ]);
    let values: Vec<String> = records(&committed).iter().map(|r| r[4].as_str().unwrap().to_string()).collect();
    assert_eq!(values.len(), 26, "two committed transactions of 10 and 3 records on two topics: {values:?}");
    assert!(values.iter().all(|v| v.contains("-commit-")), "no aborted record is read: {values:?}");
    let everything = run(&[
        "consume",
        "--bootstrap",
        &kafka,
        "--topic",
        "tx-a,tx-b",
        "--isolation",
        "read_uncommitted",
        "--idle",
        "3",
        "--timeout",
        "60",
    ]);
    assert_eq!(records(&everything).len(), 36, "read_uncommitted also sees the aborted records");

    let managed = run(&["admin", "--bootstrap", &kafka, "--topic", "managed"]);
    assert_eq!(managed["partitions"], 3, "{managed}");
    assert_eq!(managed["brokers"], serde_json::json!([1]));
    assert_eq!(managed["retention.ms"], "3600000");
    assert_eq!(managed["retention.ms.default"], false);
    assert_eq!(managed["segment.bytes.default"], true);
    assert_eq!(managed["after_alter"], serde_json::json!({"retention.ms": "7200000", "cleanup.policy": "compact"}));
    assert_eq!(managed["duplicate"], "TOPIC_ALREADY_EXISTS");
    assert_eq!(managed["deleted"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_creates_a_topic_produces_with_acks_all_and_consumes_in_a_group() {
    let data = tempfile::tempdir().unwrap();
    let server = dev(data.path());
    let kafka = server.kafka().unwrap();
    let created = run(&["kp-admin", "--bootstrap", &kafka, "--topic", "kp-orders", "--partitions", "3"]);
    assert!(created["topics"].as_array().unwrap().iter().any(|t| t == "kp-orders"), "{created}");
    let produced = run(&["kp-produce", "--bootstrap", &kafka, "--topic", "kp-orders", "--count", "120", "--keys", "7"]);
    for d in produced["delivered"].as_array().unwrap() {
        let sdk = vltava_record::murmur2::partition_for_key(d[0].as_str().unwrap().as_bytes(), 3) as i64;
        assert_eq!(d[2].as_i64().unwrap(), sdk, "kafka-python's murmur2 agrees: {d}");
    }
    let consumed = run(&[
        "kp-consume",
        "--bootstrap",
        &kafka,
        "--topic",
        "kp-orders",
        "--group",
        "kp-group",
        "--expect",
        "120",
        "--idle",
        "10",
    ]);
    let values: BTreeSet<&str> =
        consumed["records"].as_array().unwrap().iter().map(|r| r[4].as_str().unwrap()).collect();
    assert_eq!(values.len(), 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_partition_leader_under_an_idempotent_confluent_kafka_producer_loses_and_duplicates_nothing() {
    let data = tempfile::tempdir().unwrap();
    let mut cluster =
        vltava_testkit::cluster::LocalCluster::start(&vltava(), data.path(), &["--brokers", "3"]).unwrap();
    let admin = Admin::connect(cluster.client_address()).await.unwrap();
    admin
        .create_topic(NewTopic::new("durable", 1).replication_factor(3).config("min.insync.replicas", "2"))
        .await
        .unwrap();
    let kafka = cluster.kafka_bootstrap().to_string();
    assert_eq!(kafka.split(',').count(), 3, "one Kafka listener per broker: {kafka}");

    let producer = Client::start(&[
        "produce",
        "--bootstrap",
        &kafka,
        "--topic",
        "durable",
        "--count",
        "3000",
        "--keys",
        "50",
        "--pace-ms",
        "2",
    ]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let leader = admin.describe_topic("durable").await.unwrap().partitions[0].leader;
    cluster.kill9("broker", leader as u64);
    let produced = producer.result();
    assert_eq!(produced["failed"], serde_json::json!([]), "librdkafka retried through the failover: {produced}");
    let acknowledged: BTreeSet<String> =
        produced["delivered"].as_array().unwrap().iter().map(|d| d[1].as_str().unwrap().to_string()).collect();
    assert_eq!(acknowledged.len(), 3000);
    let new_leader = admin.describe_topic("durable").await.unwrap().partitions[0].leader;
    assert_ne!(new_leader, leader, "another replica leads");

    // Everything acknowledged is there, once (idempotence absorbed the retries).
    let read = run(&[
        "consume",
        "--bootstrap",
        &kafka,
        "--topic",
        "durable",
        "--isolation",
        "read_uncommitted",
        "--expect",
        "3000",
        "--idle",
        "10",
        "--timeout",
        "90",
    ]);
    let values: Vec<String> = records(&read).iter().map(|r| r[4].as_str().unwrap().to_string()).collect();
    let unique: BTreeSet<String> = values.iter().cloned().collect();
    assert_eq!(values.len(), unique.len(), "no record is stored twice");
    let lost: Vec<&String> = acknowledged.difference(&unique).collect();
    assert!(lost.is_empty(), "acknowledged records lost: {lost:?}");
}
