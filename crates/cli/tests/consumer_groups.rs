//! Consumer groups across real processes: `vltava local-cluster` runs a controller, three
//! brokers and the gateway as OS processes, and group members are separate `vltava consume
//! --group` processes (or SDK consumers in this test process). Members and brokers are killed
//! with SIGKILL.
//!
//! The promises checked: members of one group share a topic's partitions with no record read
//! twice in a run without faults; a killed member's partitions move to the others within the
//! session timeout and nothing committed-after-processing is lost; a static member that
//! restarts keeps its partitions with no rebalance; a zombie's commit is refused; committed
//! offsets survive the kill -9 of the group's coordinator.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use vltava_client::{
    Admin, Consumer, ConsumerConfig, ErrorCode, GroupDescription, NewTopic, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, RebalanceListener, TopicPartition,
};
use vltava_testkit::cluster::LocalCluster;
use vltava_testkit::eventually;

const BIN: &str = env!("CARGO_BIN_EXE_vltava");
/// Short session timeout and heartbeat interval, so that a killed member is noticed quickly.
const GROUP_ENV: [(&str, &str); 2] =
    [("VLTAVA_BROKER__GROUPS__SESSION_TIMEOUT", "4s"), ("VLTAVA_BROKER__GROUPS__HEARTBEAT_INTERVAL", "300ms")];

fn start(dir: &Path) -> LocalCluster {
    let args = ["--controllers", "1", "--brokers", "3", "--replication-factor", "3"];
    match LocalCluster::start_with_env(Path::new(BIN), dir, &args, &GROUP_ENV) {
        Ok(c) => c,
        Err(e) => panic!("local-cluster did not start: {e}"),
    }
}

/// A `vltava consume --group` process printing `partition<TAB>offset<TAB>value` lines to a file.
struct CliMember {
    child: Child,
    out: PathBuf,
}

impl CliMember {
    fn start(cluster: &LocalCluster, dir: &Path, name: &str, topic: &str, group: &str, idle_ms: u64) -> CliMember {
        let out = dir.join(format!("{name}.out"));
        let file = std::fs::File::create(&out).unwrap();
        let err = std::fs::File::create(dir.join(format!("{name}.err"))).unwrap();
        let idle = idle_ms.to_string();
        let child = Command::new(BIN)
            .args(["consume", topic, "--group", group, "--from-beginning", "--print-offset", "--timeout-ms", &idle])
            .env("VLTAVA_SERVER", cluster.client_address())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap();
        CliMember { child, out }
    }

    /// `(partition, offset, value)` of every line printed so far.
    fn lines(&self) -> Vec<(i32, i64, String)> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut parts = l.splitn(3, '\t');
                Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.to_string()))
            })
            .collect()
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (bounded) for the process to exit on its own; returns whether it succeeded.
    fn wait(&mut self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        false
    }
}

impl Drop for CliMember {
    fn drop(&mut self) {
        self.kill9();
    }
}

async fn produce(cluster: &LocalCluster, topic: &str, from: usize, to: usize) {
    let producer = Producer::connect(ProducerConfig::new(cluster.client_address())).await.unwrap();
    let mut deliveries = Vec::new();
    for i in from..to {
        let record = ProducerRecord::new(topic, format!("v-{i}")).key(format!("k-{i}"));
        deliveries.push(producer.send(record).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close().await;
}

async fn describe(admin: &Admin, group: &str) -> Option<GroupDescription> {
    admin.describe_group(group).await.ok()
}

/// Waits until the group is stable with `members` members owning every partition of a
/// `partitions`-partition topic, with no partition owned twice.
async fn wait_stable(admin: &Admin, group: &str, members: usize, partitions: usize) -> GroupDescription {
    eventually(Duration::from_secs(40), &format!("{group} stable with {members} members"), || async {
        let d = describe(admin, group).await?;
        let owned: Vec<String> = d
            .members
            .iter()
            .flat_map(|m| m.assignment.iter().flat_map(|a| &a.topics))
            .flat_map(|t| t.partitions.iter().map(move |p| format!("{}-{p}", t.topic)))
            .collect();
        let distinct: BTreeSet<&String> = owned.iter().collect();
        assert_eq!(distinct.len(), owned.len(), "a partition owned by two members: {d:?}");
        (d.state == "Stable" && d.members.len() == members && owned.len() == partitions).then_some(d)
    })
    .await
}

fn total_lag(d: &GroupDescription) -> i64 {
    d.partitions.iter().map(|p| if p.lag < 0 { i64::MAX / 4 } else { p.lag }).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_members_share_a_topic_and_survive_a_killed_member() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path());
    let admin = Admin::connect(cluster.client_address()).await.unwrap();
    admin.create_topic(NewTopic::new("shared", 6).replication_factor(3)).await.unwrap();

    // Three members, no faults: every record exactly once, each member a non-empty share.
    let mut members: Vec<CliMember> =
        (0..3).map(|i| CliMember::start(&cluster, dir.path(), &format!("a{i}"), "shared", "g1", 6_000)).collect();
    wait_stable(&admin, "g1", 3, 6).await;
    produce(&cluster, "shared", 0, 600).await;
    for m in &mut members {
        assert!(m.wait(Duration::from_secs(60)), "a member failed: {:?}", std::fs::read_to_string(&m.out));
    }
    let mut seen: Vec<String> = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let lines = m.lines();
        assert!(!lines.is_empty(), "member {i} read nothing");
        seen.extend(lines.into_iter().map(|(_, _, v)| v));
    }
    let distinct: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), 600, "every record exactly once (duplicates: {})", seen.len() - distinct.len());
    assert_eq!(distinct.len(), 600);
    let d = describe(&admin, "g1").await.expect("the group exists");
    assert_eq!(d.members.len(), 0, "members left on exit");
    assert_eq!(total_lag(&d), 0, "every partition committed to its end: {d:?}");

    // kill -9 of one member: its partitions move to the others within the session timeout,
    // and the members together read every record (the killed one's uncommitted tail twice).
    let mut members: Vec<CliMember> =
        (0..3).map(|i| CliMember::start(&cluster, dir.path(), &format!("b{i}"), "shared", "g2", 15_000)).collect();
    let before = wait_stable(&admin, "g2", 3, 6).await;
    produce(&cluster, "shared", 600, 900).await;
    eventually(Duration::from_secs(30), "the first batch read", || async {
        let n: usize = members.iter().map(|m| m.lines().len()).sum();
        (n >= 900).then_some(())
    })
    .await;
    members[0].kill9();
    let after = wait_stable(&admin, "g2", 2, 6).await;
    assert!(after.group_epoch > before.group_epoch, "the removal bumped the group epoch");
    produce(&cluster, "shared", 900, 1200).await;
    for m in &mut members[1..] {
        assert!(m.wait(Duration::from_secs(60)), "a surviving member failed");
    }
    let union: BTreeSet<String> = members.iter().flat_map(|m| m.lines()).map(|(_, _, v)| v).collect();
    let expected: BTreeSet<String> = (0..1200).map(|i| format!("v-{i}")).collect();
    let missing: Vec<&String> = expected.difference(&union).take(5).collect();
    assert!(missing.is_empty(), "records no member read: {missing:?}");
    let d = describe(&admin, "g2").await.expect("the group exists");
    assert_eq!(total_lag(&d), 0, "the survivors committed everything: {d:?}");
}

type Events = std::sync::Arc<parking_lot::Mutex<Vec<(&'static str, usize)>>>;

/// A rebalance listener recording how many partitions each call named.
struct Recorder(Events);

impl RebalanceListener for Recorder {
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        self.0.lock().push(("assigned", partitions.len()));
    }
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        self.0.lock().push(("revoked", partitions.len()));
    }
}

fn member_config(cluster: &LocalCluster, group: &str) -> ConsumerConfig {
    ConsumerConfig {
        group_id: Some(group.to_string()),
        auto_offset_reset: OffsetReset::Earliest,
        auto_commit_interval: Duration::from_millis(200),
        ..ConsumerConfig::new(cluster.client_address())
    }
}

/// Polls until the consumer owns `n` partitions (bounded); returns them and how many records
/// the polls returned meanwhile.
async fn poll_until_assigned(consumer: &mut Consumer, n: usize) -> (Vec<TopicPartition>, usize) {
    let mut read = 0;
    for _ in 0..200 {
        read += consumer.poll(Duration::from_millis(100)).await.unwrap().len();
        if consumer.assignment().len() == n {
            return (consumer.assignment(), read);
        }
    }
    panic!("never owned {n} partitions: {:?}", consumer.assignment());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_members_zombies_and_a_killed_coordinator() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start(dir.path());
    let admin = Admin::connect(cluster.client_address()).await.unwrap();
    admin.create_topic(NewTopic::new("events", 4).replication_factor(3)).await.unwrap();
    produce(&cluster, "events", 0, 100).await;

    // A static member restarting within its session timeout gets its partitions back with no
    // rebalance (the group epoch does not move).
    let static_config = |instance: &str| ConsumerConfig {
        group_instance_id: Some(instance.to_string()),
        ..member_config(&cluster, "static")
    };
    let mut a = Consumer::connect(static_config("a")).await.unwrap();
    let mut b = Consumer::connect(static_config("b")).await.unwrap();
    a.subscribe(["events"]).unwrap();
    b.subscribe(["events"]).unwrap();
    let mut a_parts = Vec::new();
    for _ in 0..200 {
        a.poll(Duration::from_millis(50)).await.unwrap();
        b.poll(Duration::from_millis(50)).await.unwrap();
        if a.assignment().len() == 2 && b.assignment().len() == 2 {
            a_parts = a.assignment();
            break;
        }
    }
    assert_eq!(a_parts.len(), 2, "two static members split four partitions");
    let epoch = wait_stable(&admin, "static", 2, 4).await.group_epoch;
    a.close().await.unwrap();
    let mut a = Consumer::connect(static_config("a")).await.unwrap();
    a.subscribe(["events"]).unwrap();
    assert_eq!(poll_until_assigned(&mut a, 2).await.0, a_parts, "the same partitions come back");
    let d = wait_stable(&admin, "static", 2, 4).await;
    assert_eq!(d.group_epoch, epoch, "no rebalance for a static member's restart");
    a.close().await.unwrap();
    drop(b);

    // Pattern subscribers with rebalance listeners: a second member takes only the partitions
    // that move (the first gives up exactly those), and the listeners hear of every change.
    let (log1, log2): (Events, Events) = Default::default();
    let mut p1 = Consumer::connect(member_config(&cluster, "patterns")).await.unwrap();
    p1.set_rebalance_listener(Recorder(log1.clone()));
    p1.subscribe_pattern("ev.*").unwrap();
    poll_until_assigned(&mut p1, 4).await;
    assert_eq!(*log1.lock(), vec![("assigned", 4)]);
    let mut p2 = Consumer::connect(member_config(&cluster, "patterns")).await.unwrap();
    p2.set_rebalance_listener(Recorder(log2.clone()));
    p2.subscribe_pattern("ev.*").unwrap();
    for _ in 0..300 {
        p1.poll(Duration::from_millis(20)).await.unwrap();
        p2.poll(Duration::from_millis(20)).await.unwrap();
        if p1.assignment().len() == 2 && p2.assignment().len() == 2 {
            break;
        }
    }
    assert_eq!((p1.assignment().len(), p2.assignment().len()), (2, 2), "two pattern members split four partitions");
    assert_eq!(*log1.lock(), vec![("assigned", 4), ("revoked", 2)], "only the two that moved were revoked");
    assert_eq!(*log2.lock(), vec![("assigned", 2)]);
    p1.close().await.unwrap();
    p2.close().await.unwrap();
    let mut bad = Consumer::connect(member_config(&cluster, "bad-patterns")).await.unwrap();
    bad.subscribe_pattern("(unclosed").unwrap();
    let mut refused = None;
    for _ in 0..100 {
        if let Err(e) = bad.poll(Duration::from_millis(50)).await {
            refused = Some(e);
            break;
        }
    }
    let refused = refused.expect("a pattern that does not compile ends the membership");
    assert_eq!(refused.code(), Some(ErrorCode::InvalidRegularExpression), "{refused}");

    // A zombie (it stopped polling for longer than max.poll.interval.ms, so it was removed)
    // cannot commit; what the group committed stays.
    let mut zombie = Consumer::connect(ConsumerConfig {
        max_poll_interval: Duration::from_secs(1),
        enable_auto_commit: false,
        ..member_config(&cluster, "zombies")
    })
    .await
    .unwrap();
    zombie.subscribe(["events"]).unwrap();
    poll_until_assigned(&mut zombie, 4).await;
    let tp0 = TopicPartition::new("events", 0);
    zombie.commit_offsets(HashMap::from([(tp0.clone(), 1)])).await.unwrap();
    eventually(Duration::from_secs(20), "the zombie removed", || async {
        describe(&admin, "zombies").await.filter(|d| d.members.is_empty()).map(|_| ())
    })
    .await;
    let refused = zombie.commit_offsets(HashMap::from([(tp0.clone(), 50)])).await.unwrap_err();
    assert!(
        matches!(refused.code(), Some(ErrorCode::UnknownMemberId | ErrorCode::StaleMemberEpoch)),
        "a zombie's commit is refused: {refused}"
    );
    assert_eq!(admin.group_offsets("zombies").await.unwrap(), vec![(tp0.clone(), 1)]);
    drop(zombie);

    // kill -9 of the group's coordinator: a new coordinator loads the group, every committed
    // offset is there, and the member carries on.
    let mut member = Consumer::connect(member_config(&cluster, "survivors")).await.unwrap();
    member.subscribe(["events"]).unwrap();
    let (_, mut read) = poll_until_assigned(&mut member, 4).await;
    for _ in 0..200 {
        read += member.poll(Duration::from_millis(100)).await.unwrap().len();
        if read >= 100 {
            break;
        }
    }
    assert_eq!(read, 100);
    member.commit().await.unwrap();
    let committed: BTreeMap<TopicPartition, i64> =
        admin.group_offsets("survivors").await.unwrap().into_iter().collect();
    assert_eq!(committed.values().sum::<i64>(), 100, "everything read is committed");
    let coordinator = describe(&admin, "survivors").await.unwrap().coordinator_id;
    cluster.kill9("broker", coordinator as u64);
    let moved = eventually(Duration::from_secs(40), "a new coordinator", || async {
        describe(&admin, "survivors").await.filter(|d| d.coordinator_id != coordinator)
    })
    .await;
    assert_eq!(moved.members.len(), 1, "the member is still in the group");
    let reloaded: BTreeMap<TopicPartition, i64> = admin.group_offsets("survivors").await.unwrap().into_iter().collect();
    assert_eq!(reloaded, committed, "every committed offset survived the coordinator");
    produce(&cluster, "events", 100, 150).await;
    let mut more = 0;
    for _ in 0..300 {
        more += member.poll(Duration::from_millis(100)).await.unwrap().len();
        if more >= 50 {
            break;
        }
    }
    assert_eq!(more, 50, "the member carries on after the coordinator moved");
    member.close().await.unwrap();
    let after: i64 = admin.group_offsets("survivors").await.unwrap().iter().map(|(_, o)| *o).sum();
    assert_eq!(after, 150, "close committed the rest");
}

type Shared<T> = std::sync::Arc<parking_lot::Mutex<Vec<T>>>;

/// Reads a managed Consume stream in a task: its latest assignment and every record's value.
struct GatewayMember {
    partitions: Shared<i32>,
    values: Shared<String>,
    task: tokio::task::JoinHandle<()>,
}

impl GatewayMember {
    async fn start(gateway: &str, topic: &str, group: &str) -> GatewayMember {
        use vltava_proto::v1::consume_response::Payload;
        use vltava_proto::v1::gateway_service_client::GatewayServiceClient;
        let mut client = GatewayServiceClient::connect(format!("http://{gateway}")).await.unwrap();
        let request = vltava_proto::v1::ConsumeRequest {
            topic: topic.into(),
            group_id: group.into(),
            auto_offset_reset: vltava_proto::v1::OffsetReset::Earliest as i32,
            auto_commit: true,
            auto_commit_interval_ms: 200,
            ..Default::default()
        };
        let mut stream = client.consume(request).await.unwrap().into_inner();
        let (partitions, values): (Shared<i32>, Shared<String>) = Default::default();
        let (p, v) = (partitions.clone(), values.clone());
        let task = tokio::spawn(async move {
            while let Ok(Some(message)) = stream.message().await {
                match message.payload {
                    Some(Payload::Assignment(a)) => *p.lock() = a.partitions,
                    Some(Payload::Records(set)) => v.lock().extend(
                        set.records
                            .into_iter()
                            .map(|r| String::from_utf8_lossy(&r.value.unwrap_or_default()).into_owned()),
                    ),
                    None => {}
                }
            }
        });
        GatewayMember { partitions, values, task }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_streams_behind_two_gateways_share_one_group() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path());
    let broker = cluster.process("broker", 1).address.clone();
    let second = vltava_testkit::ServerProcess::start_gateway(Path::new(BIN), &broker).unwrap();
    let admin = Admin::connect(cluster.client_address()).await.unwrap();
    admin.create_topic(NewTopic::new("fanout", 4).replication_factor(3)).await.unwrap();

    let a = GatewayMember::start(cluster.client_address(), "fanout", "two-gateways").await;
    let b = GatewayMember::start(&second.server(), "fanout", "two-gateways").await;
    eventually(Duration::from_secs(40), "the two streams split the partitions", || async {
        let (pa, pb) = (a.partitions.lock().clone(), b.partitions.lock().clone());
        let all: BTreeSet<i32> = pa.iter().chain(&pb).copied().collect();
        (!pa.is_empty() && !pb.is_empty() && pa.len() + pb.len() == 4 && all.len() == 4).then_some(())
    })
    .await;
    produce(&cluster, "fanout", 0, 200).await;
    eventually(Duration::from_secs(40), "every record delivered", || async {
        (a.values.lock().len() + b.values.lock().len() >= 200).then_some(())
    })
    .await;
    // A moment for stray duplicates to show up, if a partition were read through both.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (va, vb) = (a.values.lock().clone(), b.values.lock().clone());
    assert!(!va.is_empty() && !vb.is_empty(), "each gateway's stream read a share");
    let all: BTreeSet<&String> = va.iter().chain(&vb).collect();
    assert_eq!(va.len() + vb.len(), 200, "no record delivered through both gateways");
    assert_eq!(all.len(), 200);
    a.task.abort();
    b.task.abort();
    drop(second);
}
