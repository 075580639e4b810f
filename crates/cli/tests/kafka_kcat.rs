//! Unmodified Kafka clients against a real `vltava dev` process: kcat (librdkafka) lists the
//! metadata, produces keyed records with headers in every compression, and consumes them from
//! the beginning; records cross between kcat and the Vltava SDK unchanged (key, value, headers,
//! timestamp), both ways.
//!
//! kcat comes from Debian's `kcat` package (`deploy/install-deps.sh` installs it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vltava_client::{Acks, ProducerRecord};
use vltava_client::{Admin, Consumer, ConsumerConfig, ConsumerRecord, NewTopic, OffsetReset, Producer, ProducerConfig};
use vltava_testkit::{ServerProcess, run_bounded};

fn vltava() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vltava"))
}

/// Runs kcat with `args`, feeding `input`, and returns its stdout; fails the test when it exits
/// with an error or runs longer than 60 s.
fn kcat(args: &[&str], input: &str) -> String {
    let out = run_bounded(Command::new("kcat").args(args), input.as_bytes(), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e} (kcat comes from deploy/install-test-deps.sh)"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kcat {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// Reads `topic` (every partition) from the beginning with the SDK until `expected` records came.
async fn sdk_read(server: &str, topic: &str, expected: usize) -> Vec<ConsumerRecord> {
    let config = ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::new(server)
    };
    let mut consumer = Consumer::connect(config).await.unwrap();
    consumer.assign_topic(topic).await.unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < expected {
        assert!(Instant::now() < deadline, "only {} of {expected} records of {topic} arrived", out.len());
        out.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    assert_eq!(out.len(), expected);
    out
}

fn header_text(r: &ConsumerRecord) -> String {
    r.headers
        .iter()
        .map(|h| format!("{}={}", h.key, String::from_utf8_lossy(h.value.as_deref().unwrap_or_default())))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_lists_the_brokers_topics_partitions_leaders_and_isr() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_dev(&vltava(), data.path(), &[]).unwrap();
    let kafka = server.kafka().expect("dev runs a Kafka listener");
    let admin = Admin::connect(&server.server()).await.unwrap();
    admin.create_topic(NewTopic::new("kcat-meta", 3)).await.unwrap();

    let json = kcat(&["-b", &kafka, "-L", "-J", "-t", "kcat-meta"], "");
    let meta: serde_json::Value = serde_json::from_str(&json).unwrap();
    let brokers = meta["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 1, "{json}");
    assert_eq!(brokers[0]["id"], 1);
    assert_eq!(brokers[0]["name"].as_str().unwrap(), kafka, "the advertised Kafka address");
    let topic = &meta["topics"][0];
    assert_eq!(topic["topic"], "kcat-meta");
    let partitions = topic["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3, "{json}");
    for (i, p) in partitions.iter().enumerate() {
        assert_eq!(p["partition"], i);
        assert_eq!(p["leader"], 1);
        assert_eq!(p["replicas"][0]["id"], 1);
        assert_eq!(p["isrs"][0]["id"], 1);
    }

    let missing = kcat(&["-b", &kafka, "-L", "-J", "-t", "no-such-topic"], "");
    let meta: serde_json::Value = serde_json::from_str(&missing).unwrap();
    assert_eq!(meta["topics"][0]["error"], "Broker: Unknown topic or partition", "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_produces_keyed_records_with_headers_in_every_compression_and_consumes_them_from_the_beginning() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_dev(&vltava(), data.path(), &[]).unwrap();
    let kafka = server.kafka().unwrap();
    let admin = Admin::connect(&server.server()).await.unwrap();
    const RECORDS: usize = 200;
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("kcat-{codec}");
        admin.create_topic(NewTopic::new(&topic, 3)).await.unwrap();
        let input: String = (0..RECORDS).map(|i| format!("key-{}:value-{i}\n", i % 17)).collect();
        let args = ["-b", &kafka, "-P", "-t", &topic, "-K:", "-H", "origin=kcat", "-H", "codec=x", "-z", codec];
        kcat(&args, &input);

        let out = kcat(&["-b", &kafka, "-C", "-t", &topic, "-o", "beginning", "-e", "-q", "-f", "%k|%s|%h|%p\n"], "");
        let mut seen = BTreeMap::new();
        for line in out.lines() {
            let parts: Vec<&str> = line.split('|').collect();
            assert_eq!(parts.len(), 4, "{line}");
            assert_eq!(parts[2], "origin=kcat,codec=x", "{codec}: headers of {line}");
            let i: usize = parts[1].strip_prefix("value-").unwrap().parse().unwrap();
            assert_eq!(parts[0], format!("key-{}", i % 17), "{codec}: key of {line}");
            assert!(seen.insert(i, parts[3].to_string()).is_none(), "{codec}: value-{i} read twice");
        }
        assert_eq!(seen.len(), RECORDS, "{codec}: every record is read back once");

        // The SDK reads librdkafka's (compressed) batches as the same records in the same partitions.
        let records = sdk_read(&server.server(), &topic, RECORDS).await;
        for r in &records {
            let value = String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap();
            let i: usize = value.strip_prefix("value-").unwrap().parse().unwrap();
            assert_eq!(r.key.as_deref().unwrap(), format!("key-{}", i % 17).as_bytes());
            assert_eq!(header_text(r), "origin=kcat,codec=x");
            assert_eq!(seen[&i], r.partition.to_string(), "{codec}: value-{i} is in the partition kcat saw");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_cross_between_grpc_and_kcat_with_the_same_key_value_headers_and_timestamp() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_dev(&vltava(), data.path(), &[]).unwrap();
    let kafka = server.kafka().unwrap();
    let admin = Admin::connect(&server.server()).await.unwrap();
    admin.create_topic(NewTopic::new("crossing", 1)).await.unwrap();

    // gRPC (the SDK) → kcat.
    let producer =
        Producer::connect(ProducerConfig { acks: Acks::All, ..ProducerConfig::new(server.server()) }).await.unwrap();
    let record = ProducerRecord::new("crossing", "from-grpc")
        .key("k1")
        .header("h1", "v1")
        .header("h2", "v2")
        .timestamp(1_700_000_000_123);
    producer.send(record).await.unwrap().await.unwrap();
    let out =
        kcat(&["-b", &kafka, "-C", "-t", "crossing", "-o", "beginning", "-e", "-q", "-f", "%k|%s|%h|%T|%o\n"], "");
    assert_eq!(out, "k1|from-grpc|h1=v1,h2=v2|1700000000123|0\n");

    // kcat → gRPC.
    kcat(&["-b", &kafka, "-P", "-t", "crossing", "-K:", "-H", "via=kafka"], "k2:from-kcat\n");
    let out = kcat(&["-b", &kafka, "-C", "-t", "crossing", "-o", "1", "-e", "-q", "-f", "%T\n"], "");
    let kcat_timestamp: i64 = out.trim().parse().unwrap();
    let records = sdk_read(&server.server(), "crossing", 2).await;
    let r = &records[1];
    assert_eq!((r.offset, r.key.as_deref(), r.value.as_deref()), (1, Some(&b"k2"[..]), Some(&b"from-kcat"[..])));
    assert_eq!(header_text(r), "via=kafka");
    assert_eq!(r.timestamp, kcat_timestamp);
}

/// `vltava group describe GROUP --json` against `server`.
fn describe_group(server: &str, group: &str) -> serde_json::Value {
    let out = Command::new(vltava()).args(["group", "describe", group, "--json", "--server", server]).output().unwrap();
    assert!(out.status.success(), "group describe: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_consumes_as_a_group_whose_members_and_commits_the_grpc_api_describes() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_dev_with_env(
        &vltava(),
        data.path(),
        &[
            ("VLTAVA_BROKER__GROUPS__INITIAL_REBALANCE_DELAY", "100ms"),
            ("VLTAVA_BROKER__GROUPS__MIN_SESSION_TIMEOUT", "1s"),
        ],
    )
    .unwrap();
    let kafka = server.kafka().unwrap();
    let admin = Admin::connect(&server.server()).await.unwrap();
    admin.create_topic(NewTopic::new("grouped", 2)).await.unwrap();
    let input: String = (0..50).map(|i| format!("k{i}:v{i}\n")).collect();
    kcat(&["-b", &kafka, "-P", "-t", "grouped", "-K:"], &input);

    // A member that stays: the gRPC API describes the classic group, its member and assignment.
    let mut member = Command::new("kcat")
        .args(["-b", &kafka, "-G", "watchers", "grouped", "-q", "-X", "auto.offset.reset=earliest", "-f", "%s\n"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let described = loop {
        let out = Command::new(vltava())
            .args(["group", "describe", "watchers", "--json", "--server", &server.server()])
            .output()
            .unwrap();
        if out.status.success() {
            let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if d["state"] == "Stable" && d["members"][0]["partitions"].as_array().is_some_and(|p| p.len() == 2) {
                break d;
            }
        }
        assert!(Instant::now() < deadline, "the kcat member never showed as stable with both partitions");
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = member.kill();
    let _ = member.wait();
    assert_eq!(described["members"].as_array().unwrap().len(), 1, "{described}");
    assert_eq!(described["members"][0]["partitions"], serde_json::json!(["grouped-0", "grouped-1"]));

    // Balanced consumption to the end, committing; the same group then has nothing left to read.
    let first = kcat(
        &["-b", &kafka, "-G", "readers", "grouped", "-e", "-q", "-X", "auto.offset.reset=earliest", "-f", "%s\n"],
        "",
    );
    let values: BTreeMap<&str, ()> = first.lines().map(|l| (l, ())).collect();
    assert_eq!((first.lines().count(), values.len()), (50, 50), "{first}");
    let described = describe_group(&server.server(), "readers");
    let committed: i64 =
        described["partitions"].as_array().unwrap().iter().map(|p| p["committed_offset"].as_i64().unwrap_or(0)).sum();
    assert_eq!(committed, 50, "kcat committed what it read: {described}");
    let again = kcat(
        &["-b", &kafka, "-G", "readers", "grouped", "-e", "-q", "-X", "auto.offset.reset=earliest", "-f", "%s\n"],
        "",
    );
    assert_eq!(again, "", "the group resumes at its commits");
}
