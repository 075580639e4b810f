//! Metrics end to end: `vltava local-cluster` (one controller, three brokers, a gateway, each its
//! own OS process with a Prometheus endpoint listed in cluster.json), some traffic through the
//! SDK, then every process's `GET /metrics` scraped over a real socket; then a follower and the
//! leader are killed with SIGKILL and the replication metrics must show it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use vltava_client::{
    Acks, Admin, Consumer, ConsumerConfig, NewTopic, OffsetReset, OffsetSpec, Producer, ProducerConfig, ProducerRecord,
    TopicPartition,
};
use vltava_proto::v1::ConsumeRequest;
use vltava_proto::v1::gateway_service_client::GatewayServiceClient;
use vltava_testkit::cluster::{LocalCluster, scrape_metrics};
use vltava_testkit::eventually;

const BIN: &str = env!("CARGO_BIN_EXE_vltava");
const TOPIC: &str = "metered";
const GROUP: &str = "metered-readers";
const RECORDS: i64 = 20;
const COMMITTED: i64 = 15;
/// Partitions of `__consumer_offsets`, created (RF 3) by the group's first commit: Kafka's 50.
const OFFSETS_PARTITIONS: f64 = 50.0;

/// One sample line: `name{labels} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed scrape.
#[derive(Debug)]
struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line {line:?}"));
                let value = match value {
                    "+Inf" => f64::INFINITY,
                    v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
                };
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => {
                        (name.to_string(), parse_labels(rest.strip_suffix('}').expect("closing brace")))
                    }
                    None => (series.to_string(), BTreeMap::new()),
                };
                Sample { name, labels, value }
            })
            .collect();
        Scrape { text: text.to_string(), samples }
    }

    /// Sum of the samples named `name` carrying every label of `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    /// The one value of `name` with `labels`, if present.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.matching(name, labels).next().map(|s| s.value)
    }

    fn matching<'a>(&'a self, name: &'a str, labels: &'a [(&str, &str)]) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    fn type_of(&self, family: &str) -> Option<&str> {
        let prefix = format!("# TYPE {family} ");
        self.text.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
    }
}

/// Parses `k="v",k2="v2"` with the exposition format's escapes.
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        assert_eq!(chars.next(), Some('"'), "label {key} has no quoted value in {text:?}");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(key, value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
}

/// `GET /metrics` over a plain TCP connection; `None` when the process does not answer.
async fn scrape(address: &str) -> Option<Scrape> {
    let (head, body) = scrape_metrics(address).await?;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "metrics of {address} answered {head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "content type of {address}: {head}");
    Some(Scrape::parse(&body))
}

async fn scrape_process(cluster: &LocalCluster, role: &str, id: u64) -> Option<Scrape> {
    scrape(&cluster.process(role, id).metrics_address).await
}

/// Every live broker's scrape, by id.
async fn scrape_brokers(cluster: &LocalCluster) -> BTreeMap<u64, Scrape> {
    let mut out = BTreeMap::new();
    for id in 1..=3 {
        if cluster.is_alive("broker", id)
            && let Some(s) = scrape_process(cluster, "broker", id).await
        {
            out.insert(id, s);
        }
    }
    out
}

fn total(scrapes: &BTreeMap<u64, Scrape>, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrapes.values().map(|s| s.sum(name, labels)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_serves_the_named_metrics_and_replication_trouble_shows() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--controllers", "1", "--brokers", "3", "--replication-factor", "3"];
    let mut cluster = LocalCluster::start(std::path::Path::new(BIN), dir.path(), &args)
        .unwrap_or_else(|e| panic!("local-cluster did not start: {e}"));
    for p in cluster.processes() {
        assert!(!p.metrics_address.is_empty(), "{} {} has no metrics address in cluster.json", p.role, p.id);
    }

    // Traffic: an RF-3 topic, RECORDS acknowledged one by one, read back, a group commit.
    let admin = Admin::connect(cluster.client_address()).await.unwrap();
    admin.create_topic(NewTopic::new(TOPIC, 1).replication_factor(3).config("min.insync.replicas", "2")).await.unwrap();
    let leader = eventually(Duration::from_secs(30), "a leader with three in-sync replicas", || async {
        let p = admin.describe_topic(TOPIC).await.ok()?.partitions[0].clone();
        (p.leader >= 0 && p.isr.len() == 3).then_some(p.leader as u64)
    })
    .await;
    let producer = Producer::connect(ProducerConfig {
        acks: Acks::All,
        linger: Duration::from_millis(0),
        ..ProducerConfig::new(cluster.client_address())
    })
    .await
    .unwrap();
    for i in 0..RECORDS {
        let record = ProducerRecord::new(TOPIC, format!("value-{i}")).partition(0);
        producer.send(record).await.unwrap().await.unwrap();
    }
    producer.close().await;
    let tp = TopicPartition::new(TOPIC, 0);
    let mut consumer = Consumer::connect(ConsumerConfig {
        group_id: Some(GROUP.into()),
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::new(cluster.client_address())
    })
    .await
    .unwrap();
    consumer.assign(vec![tp.clone()]);
    let mut read = 0;
    for _ in 0..60 {
        read += consumer.poll(Duration::from_millis(500)).await.unwrap_or_default().len() as i64;
        if read >= RECORDS {
            break;
        }
    }
    assert_eq!(read, RECORDS, "the consumer read back every record");
    consumer.commit_offsets(HashMap::from([(tp.clone(), COMMITTED)])).await.unwrap();
    let high_watermark = admin.list_offsets(&tp, OffsetSpec::Latest).await.unwrap();
    assert_eq!(high_watermark, RECORDS);
    // A Kafka client too: kcat lists the metadata and reads the topic over the Kafka listeners.
    let kcat = std::process::Command::new("kcat")
        .args(["-b", cluster.kafka_bootstrap(), "-C", "-t", TOPIC, "-o", "beginning", "-e", "-q"])
        .output()
        .expect("kcat is installed (deploy/install-test-deps.sh)");
    assert!(kcat.status.success(), "{}", String::from_utf8_lossy(&kcat.stderr));
    assert_eq!(String::from_utf8_lossy(&kcat.stdout).lines().count() as i64, RECORDS);

    // Brokers: requests, bytes, partitions, sizes and the group's lag (followers catch up and
    // gauges are read at scrape time, hence the bounded wait).
    let brokers = eventually(Duration::from_secs(30), "broker metrics after the traffic", || async {
        let s = scrape_brokers(&cluster).await;
        let sizes_known = (1..=3).all(|id| {
            s.get(&id)
                .and_then(|b| b.value("vltava_broker_partition_size_bytes", &[("topic", TOPIC), ("partition", "0")]))
                .is_some_and(|v| v > 0.0)
        });
        let lag =
            total(&s, "vltava_broker_consumer_group_lag", &[("group", GROUP), ("topic", TOPIC), ("partition", "0")]);
        (s.len() == 3 && sizes_known && lag > 0.0).then_some(s)
    })
    .await;
    let kafka_metadata = total(&brokers, "vltava_broker_kafka_requests_total", &[("api", "Metadata")]);
    let kafka_fetches = total(&brokers, "vltava_broker_kafka_request_duration_seconds_count", &[("api", "Fetch")]);
    assert!(kafka_metadata >= 1.0 && kafka_fetches >= 1.0, "Kafka requests are counted by API");
    let ok_produces = total(&brokers, "vltava_broker_requests_total", &[("method", "Produce"), ("code", "NONE")]);
    assert!(ok_produces >= RECORDS as f64, "{ok_produces} successful produce requests counted, sent {RECORDS}");
    let timed = total(&brokers, "vltava_broker_request_duration_seconds_count", &[("method", "Produce")]);
    assert!(timed >= RECORDS as f64, "{timed} produce latencies recorded");
    let b = &brokers[&leader];
    assert_eq!(b.type_of("vltava_broker_request_duration_seconds"), Some("histogram"));
    let inf = b.sum("vltava_broker_request_duration_seconds_bucket", &[("method", "Produce"), ("le", "+Inf")]);
    assert_eq!(
        inf,
        b.sum("vltava_broker_request_duration_seconds_count", &[("method", "Produce")]),
        "+Inf bucket is the count"
    );
    assert!(inf >= RECORDS as f64, "the leader timed every produce");
    let reads = total(&brokers, "vltava_broker_requests_total", &[("method", "Fetch")])
        + total(&brokers, "vltava_broker_requests_total", &[("method", "Subscribe")]);
    assert!(reads > 0.0, "fetches or subscriptions counted");
    assert!(b.sum("vltava_broker_in_bytes_total", &[]) > 0.0, "the leader counted bytes in");
    assert_eq!(b.type_of("vltava_broker_in_bytes_total"), Some("counter"));
    assert!(total(&brokers, "vltava_broker_out_bytes_total", &[]) > 0.0, "bytes out counted");
    for (id, s) in &brokers {
        assert_eq!(
            s.value("vltava_broker_partitions", &[]),
            Some(1.0 + OFFSETS_PARTITIONS),
            "broker {id} hosts the topic's partition and every __consumer_offsets partition"
        );
        assert_eq!(s.value("vltava_broker_under_replicated_partitions", &[]), Some(0.0), "broker {id}: all in sync");
        assert!(s.text.contains("service_name=\"vltava-broker\""), "broker {id} names its service in target_info");
    }
    assert_eq!(
        total(&brokers, "vltava_broker_leader_partitions", &[]),
        1.0 + OFFSETS_PARTITIONS,
        "exactly one leader per partition"
    );
    let lags: Vec<f64> = brokers
        .values()
        .filter_map(|s| {
            s.value("vltava_broker_consumer_group_lag", &[("group", GROUP), ("topic", TOPIC), ("partition", "0")])
        })
        .collect();
    assert!(
        lags.contains(&((high_watermark - COMMITTED) as f64)),
        "lag of {GROUP} is the high watermark {high_watermark} minus {COMMITTED}: {lags:?}"
    );

    // A member joins a group: its coordinator counts the member and the rebalance, and times
    // the rebalance until the group is stable.
    let mut member = Consumer::connect(ConsumerConfig {
        group_id: Some("metered-members".into()),
        ..ConsumerConfig::new(cluster.client_address())
    })
    .await
    .unwrap();
    member.subscribe([TOPIC]).unwrap();
    for _ in 0..100 {
        member.poll(Duration::from_millis(100)).await.unwrap();
        if !member.assignment().is_empty() {
            break;
        }
    }
    assert_eq!(member.assignment(), vec![tp.clone()], "the only member owns the partition");
    eventually(Duration::from_secs(30), "group membership metrics", || async {
        let s = scrape_brokers(&cluster).await;
        let group = [("group", "metered-members")];
        let members = total(&s, "vltava_broker_consumer_group_members", &group);
        let rebalances = total(&s, "vltava_broker_consumer_group_rebalances_total", &group);
        let timed = total(&s, "vltava_broker_consumer_group_rebalance_duration_seconds_count", &group);
        (members == 1.0 && rebalances >= 1.0 && timed >= 1.0).then_some(())
    })
    .await;
    member.close().await.unwrap();

    // The coordinator exports the lag of partitions it does not host too (single-replica
    // partitions spread over the brokers): each of the six partitions shows up once.
    admin.create_topic(NewTopic::new("spread", 6).replication_factor(1)).await.unwrap();
    let spread: HashMap<TopicPartition, i64> = (0..6).map(|p| (TopicPartition::new("spread", p), 0)).collect();
    eventually(Duration::from_secs(20), "offsets committed for every spread partition", || async {
        admin.commit_group_offsets("spread-readers", &spread).await.ok()
    })
    .await;
    eventually(Duration::from_secs(30), "the lag of every spread partition", || async {
        let s = scrape_brokers(&cluster).await;
        let exported = (0..6)
            .filter(|p| {
                let p = p.to_string();
                let labels = [("group", "spread-readers"), ("topic", "spread"), ("partition", p.as_str())];
                s.values().filter(|b| b.value("vltava_broker_consumer_group_lag", &labels).is_some()).count() == 1
            })
            .count();
        (exported == 6).then_some(())
    })
    .await;
    // Gone again, so that the partition counts below are the topic's and __consumer_offsets'.
    admin.delete_topic("spread").await.unwrap();
    eventually(Duration::from_secs(20), "the spread topic gone from every broker", || async {
        let s = scrape_brokers(&cluster).await;
        let hosted: f64 = s.values().filter_map(|b| b.value("vltava_broker_partitions", &[])).sum();
        (s.len() == 3 && hosted == 3.0 * (1.0 + OFFSETS_PARTITIONS)).then_some(())
    })
    .await;

    // The controller: Raft state and registered brokers.
    let controller =
        eventually(Duration::from_secs(10), "controller metrics", || scrape_process(&cluster, "controller", 1)).await;
    assert!(controller.value("vltava_controller_raft_term", &[]).is_some_and(|t| t >= 1.0), "term >= 1");
    assert!(controller.value("vltava_controller_raft_commit_index", &[]).is_some_and(|c| c > 0.0), "commit index > 0");
    assert!(
        controller.value("vltava_controller_raft_applied_index", &[]).is_some_and(|c| c > 0.0),
        "applied index > 0"
    );
    assert_eq!(controller.value("vltava_controller_raft_is_leader", &[]), Some(1.0), "the only voter leads");
    assert_eq!(controller.value("vltava_controller_live_brokers", &[]), Some(3.0));
    let elections = controller.value("vltava_controller_leader_elections_total", &[]).unwrap_or(0.0);
    assert_eq!(elections, 0.0, "no leader has moved yet");

    // The gateway: every admin call went through it.
    let gateway =
        eventually(Duration::from_secs(10), "gateway metrics", || scrape_process(&cluster, "gateway", 0)).await;
    let calls = gateway.sum("vltava_gateway_requests_total", &[]);
    assert!(calls > 0.0, "gateway requests counted:\n{}", gateway.text);
    assert!(gateway.sum("vltava_gateway_request_duration_seconds_count", &[("method", "CreateTopic")]) >= 1.0);
    assert_eq!(gateway.value("vltava_gateway_rebalances_total", &[]), Some(0.0), "no managed group yet");

    // Two thin clients join one managed group through the gateway: each join is a rebalance.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", cluster.client_address()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut api = GatewayServiceClient::new(channel);
    let mut streams = Vec::new();
    for _ in 0..2 {
        let request = ConsumeRequest { topic: TOPIC.into(), group_id: "managed".into(), ..ConsumeRequest::default() };
        let call = tokio::time::timeout(Duration::from_secs(20), api.consume(request));
        let mut stream = call.await.expect("Consume answers in time").unwrap().into_inner();
        let first = tokio::time::timeout(Duration::from_secs(20), stream.message()).await.expect("a first message");
        assert!(first.unwrap().is_some(), "the managed stream starts with its assignment");
        streams.push(stream);
    }
    eventually(Duration::from_secs(10), "two rebalances counted on the gateway", || async {
        let g = scrape_process(&cluster, "gateway", 0).await?;
        (g.value("vltava_gateway_rebalances_total", &[])? >= 2.0).then_some(())
    })
    .await;
    drop(streams);

    // A follower dies: once the controller fences it, the leader's ISR shrinks.
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    cluster.kill9("broker", follower);
    eventually(Duration::from_secs(30), "an under-replicated partition and an ISR shrink on the leader", || async {
        let s = scrape_process(&cluster, "broker", leader).await?;
        // The topic's partition, and the __consumer_offsets partitions this broker leads.
        let under = s.value("vltava_broker_under_replicated_partitions", &[])?;
        let led = s.value("vltava_broker_leader_partitions", &[])?;
        let shrinks = s.value("vltava_broker_isr_shrinks_total", &[])?;
        (under >= 1.0 && under == led && shrinks >= 1.0).then_some(())
    })
    .await;

    // Then the leader dies: the controller elects the last in-sync replica.
    let survivor = (1..=3).find(|id| *id != leader && *id != follower).unwrap();
    cluster.kill9("broker", leader);
    eventually(Duration::from_secs(30), "a leader election counted and the survivor leading alone", || async {
        let c = scrape_process(&cluster, "controller", 1).await?;
        let s = scrape_process(&cluster, "broker", survivor).await?;
        let elections = c.value("vltava_controller_leader_elections_total", &[])?;
        let led = s.value("vltava_broker_leader_partitions", &[])?;
        let under = s.value("vltava_broker_under_replicated_partitions", &[])?;
        // The survivor leads every partition, each with one replica left.
        (elections >= 1.0 && led == 1.0 + OFFSETS_PARTITIONS && under == led).then_some(())
    })
    .await;
    assert_eq!(
        scrape_process(&cluster, "controller", 1).await.and_then(|c| c.value("vltava_controller_live_brokers", &[])),
        Some(1.0)
    );
}
