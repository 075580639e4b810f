//! Multi-process tests of the controller quorum: `vltava local-cluster` runs every controller,
//! broker and the gateway as its own OS process with its own RocksDB; processes are killed with
//! SIGKILL and restarted with the exact command from cluster.json.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use vltava_client::{Admin, NewTopic};
use vltava_proto::v1::controller_service_client::ControllerServiceClient;
use vltava_proto::v1::{DescribeClusterRequest, DescribeClusterResponse};
use vltava_testkit::cluster::LocalCluster;
use vltava_testkit::eventually;

const BIN: &str = env!("CARGO_BIN_EXE_vltava");

fn start(dir: &std::path::Path, args: &[&str]) -> LocalCluster {
    match LocalCluster::start(std::path::Path::new(BIN), dir, args) {
        Ok(c) => c,
        Err(e) => panic!("local-cluster did not start: {e}"),
    }
}

async fn controller(address: &str) -> Option<ControllerServiceClient<Channel>> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .ok()?
        .connect_timeout(Duration::from_millis(300))
        .connect()
        .await
        .ok()?;
    Some(ControllerServiceClient::new(channel))
}

async fn describe_at(address: &str) -> Option<DescribeClusterResponse> {
    let mut c = controller(address).await?;
    let mut req = tonic::Request::new(DescribeClusterRequest {});
    req.set_timeout(Duration::from_secs(2));
    c.describe_cluster(req).await.ok().map(|r| r.into_inner())
}

/// The leader's id as agreed by the live controllers in `ids` (a majority of them must name it).
async fn leader_among(cluster: &LocalCluster, ids: &[u64]) -> u64 {
    eventually(Duration::from_secs(30), "a controller leader", || async {
        let mut named = Vec::new();
        for id in ids {
            if let Some(d) = describe_at(&cluster.process("controller", *id).address).await {
                named.push(d.leader_id);
            }
        }
        let leader = *named.first()?;
        (leader != 0 && ids.contains(&leader) && named.iter().all(|l| *l == leader)).then_some(leader)
    })
    .await
}

async fn admin(cluster: &LocalCluster) -> Admin {
    Admin::connect(cluster.client_address()).await.expect("gateway reachable")
}

async fn create(admin: &Admin, name: &str, partitions: i32, rf: i32) -> Result<(), vltava_client::ClientError> {
    admin
        .create_topic(NewTopic { name: name.into(), partitions, replication_factor: rf, configs: Default::default() })
        .await
        .map(|_| ())
}

async fn topic_names(admin: &Admin) -> BTreeSet<String> {
    admin.list_topics().await.expect("list topics").into_iter().map(|t| t.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_survives_leader_kill_and_a_full_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start(dir.path(), &["--controllers", "3", "--brokers", "1"]);
    let admin = admin(&cluster).await;
    for i in 0..5 {
        create(&admin, &format!("before-{i}"), 2, 1).await.unwrap();
    }
    let leader = leader_among(&cluster, &[1, 2, 3]).await;
    cluster.kill9("controller", leader);
    let survivors: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    let new_leader = leader_among(&cluster, &survivors).await;
    assert_ne!(new_leader, leader);
    // Writes commit on the remaining two; nothing committed before is lost.
    for i in 0..5 {
        create(&admin, &format!("after-{i}"), 1, 1).await.unwrap();
    }
    let expected: BTreeSet<String> = (0..5).flat_map(|i| [format!("before-{i}"), format!("after-{i}")]).collect();
    assert_eq!(topic_names(&admin).await, expected);

    // The killed controller comes back and catches up.
    cluster.restart("controller", leader).unwrap();
    let leader_version =
        describe_at(&cluster.process("controller", new_leader).address).await.unwrap().metadata_version;
    eventually(Duration::from_secs(30), "the restarted controller to catch up", || async {
        let d = describe_at(&cluster.process("controller", leader).address).await?;
        (d.metadata_version >= leader_version).then_some(())
    })
    .await;

    // Every controller down at once, then all back: the same state from disk.
    for id in [1, 2, 3] {
        cluster.kill9("controller", id);
    }
    for id in [1, 2, 3] {
        cluster.restart("controller", id).unwrap();
    }
    leader_among(&cluster, &[1, 2, 3]).await;
    let names = eventually(Duration::from_secs(30), "topics after a full restart", || async {
        let names = admin.list_topics().await.ok()?.into_iter().map(|t| t.name).collect::<BTreeSet<_>>();
        (names == expected).then_some(names)
    })
    .await;
    assert_eq!(names.len(), 10);
    // And the quorum still accepts writes.
    eventually(Duration::from_secs(30), "a write after the full restart", || async {
        create(&admin, "after-restart", 1, 1).await.ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_cannot_commit_and_the_majority_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start(dir.path(), &["--controllers", "3", "--brokers", "1"]);
    let admin = admin(&cluster).await;
    create(&admin, "first", 1, 1).await.unwrap();
    let leader = leader_among(&cluster, &[1, 2, 3]).await;
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    // One follower down: writes still commit.
    cluster.kill9("controller", others[0]);
    create(&admin, "with-two", 1, 1).await.unwrap();
    // Two down: the survivor cannot commit; the write fails cleanly within the request timeout.
    cluster.kill9("controller", others[1]);
    let started = Instant::now();
    let failed = create(&admin, "with-one", 1, 1).await;
    let err = failed.expect_err("a single controller out of three must not commit");
    let text = err.to_string();
    assert!(
        ["REQUEST_TIMED_OUT", "NOT_CONTROLLER", "timed out", "controller"].iter().any(|s| text.contains(s)),
        "unexpected error: {text}"
    );
    assert!(started.elapsed() < Duration::from_secs(120), "the failure must be bounded");
    // One comes back: a majority again, and writes succeed.
    cluster.restart("controller", others[0]).unwrap();
    eventually(Duration::from_secs(45), "a write once a majority is back", || async {
        create(&admin, "majority-again", 1, 1).await.ok()
    })
    .await;
    let names = topic_names(&admin).await;
    assert!(names.contains("first") && names.contains("with-two") && names.contains("majority-again"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_and_new_controllers_catch_up_from_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start(dir.path(), &["--controllers", "3", "--brokers", "1", "--snapshot-entries", "20"]);
    let admin = admin(&cluster).await;
    let leader = leader_among(&cluster, &[1, 2, 3]).await;
    let lagging = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    cluster.kill9("controller", lagging);
    for i in 0..60 {
        create(&admin, &format!("t{i:02}"), 1, 1).await.unwrap();
    }
    cluster.restart("controller", lagging).unwrap();
    let target = describe_at(&cluster.process("controller", leader).address).await.unwrap().metadata_version;
    eventually(Duration::from_secs(30), "the lagging controller to catch up", || async {
        let d = describe_at(&cluster.process("controller", lagging).address).await?;
        (d.metadata_version >= target).then_some(())
    })
    .await;
    assert!(
        cluster.log_tail("controller", lagging).contains("installing a snapshot"),
        "the lagging controller should have caught up from a snapshot:\n{}",
        cluster.log_tail("controller", lagging)
    );

    // A brand-new controller joins, is added as a voter, and catches up from a snapshot too.
    let new_dir = dir.path().join("controller-4");
    std::fs::create_dir_all(&new_dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let voters: Vec<String> =
        [1u64, 2, 3].iter().map(|id| format!("{id}@{}", cluster.process("controller", *id).address)).collect();
    let config = format!(
        "[controller]\nnode_id = 4\ncluster_id = \"{}\"\nlisten = \"{address}\"\ndata_dir = \"{}\"\nvoters = \"{}\"\njoin = true\nsnapshot_entries = 20\n",
        cluster.cluster_id(),
        new_dir.join("data").display(),
        voters.join(",")
    );
    let config_path = new_dir.join("controller.toml");
    std::fs::write(&config_path, config).unwrap();
    let log = std::fs::File::create(new_dir.join("process.log")).unwrap();
    let mut fourth = std::process::Command::new(BIN)
        .args(["controller", "--config"])
        .arg(&config_path)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let added = std::process::Command::new(BIN)
        .args(["controller", "add", "4", &address, "--controller", &cluster.process("controller", leader).address])
        .output()
        .unwrap();
    assert!(added.status.success(), "controller add failed: {}", String::from_utf8_lossy(&added.stderr));
    let target = describe_at(&cluster.process("controller", leader).address).await.unwrap().metadata_version;
    eventually(Duration::from_secs(30), "the new controller to catch up", || async {
        let d = describe_at(&address).await?;
        (d.metadata_version >= target && d.controllers.iter().filter(|c| c.voter).count() == 4).then_some(())
    })
    .await;
    let log = std::fs::read_to_string(new_dir.join("process.log")).unwrap();
    assert!(log.contains("installing a snapshot"), "the new controller should start from a snapshot:\n{log}");
    // A second change while none is pending is accepted: remove the new voter again.
    let removed = std::process::Command::new(BIN)
        .args(["controller", "remove", "4", "--controller", &cluster.process("controller", leader).address])
        .output()
        .unwrap();
    assert!(removed.status.success(), "controller remove failed: {}", String::from_utf8_lossy(&removed.stderr));
    let _ = fourth.kill();
    let _ = fourth.wait();
    create(&admin, "after-removal", 1, 1).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_leading_broker_moves_its_partitions_to_isr_members() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start(dir.path(), &["--controllers", "3", "--brokers", "3"]);
    let admin = admin(&cluster).await;
    create(&admin, "orders", 6, 3).await.unwrap();
    // More replicas than live brokers is refused.
    let err = create(&admin, "too-many", 1, 4).await.expect_err("rf 4 with 3 brokers");
    assert!(err.to_string().contains("INVALID_REPLICATION_FACTOR"), "{err}");

    let before = admin.describe_topic("orders").await.unwrap();
    let victim = before.partitions[0].leader;
    let led: Vec<i32> = before.partitions.iter().filter(|p| p.leader == victim).map(|p| p.partition).collect();
    assert!(!led.is_empty());
    let killed_at = Instant::now();
    cluster.kill9("broker", victim as u64);
    let after = eventually(Duration::from_secs(20), "new leaders for the dead broker's partitions", || async {
        let t = admin.describe_topic("orders").await.ok()?;
        t.partitions.iter().all(|p| p.leader != victim && p.leader != -1).then_some(t)
    })
    .await;
    let took = killed_at.elapsed();
    eprintln!("leaders moved {took:?} after kill -9 (session timeout 1.5 s)");
    for p in &after.partitions {
        let old = &before.partitions[p.partition as usize];
        assert!(old.isr.contains(&p.leader), "partition {}: new leader {} was not in the ISR", p.partition, p.leader);
        assert!(!p.isr.contains(&victim), "partition {}: the dead broker is still in the ISR", p.partition);
        if led.contains(&p.partition) {
            assert!(p.leader_epoch > old.leader_epoch, "partition {}: leader epoch must grow", p.partition);
        }
    }
    // The gateway routes by the new leaders: a produce to every partition succeeds.
    for partition in 0..6 {
        let mut child = std::process::Command::new(BIN)
            .args(["produce", "orders", "--acks", "1", "--partition", &partition.to_string()])
            .args(["--server", cluster.client_address()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(b"after-failover\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "produce to partition {partition}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // `vltava topic describe` shows the same.
    let out = std::process::Command::new(BIN)
        .args(["topic", "describe", "orders", "--json", "--server", cluster.client_address()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for p in json["partitions"].as_array().unwrap() {
        assert_ne!(p["leader"].as_i64().unwrap(), i64::from(victim), "{p}");
    }
    // `vltava cluster describe` shows the broker fenced.
    let out = std::process::Command::new(BIN)
        .args(["cluster", "describe", "--json", "--server", cluster.client_address()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let state = json["brokers"].as_array().unwrap().iter().find(|b| b["id"] == victim).unwrap()["state"].clone();
    assert_eq!(state, "fenced");
    assert_ne!(json["leader_id"], 0);

    // The broker comes back and registers again with a new epoch.
    cluster.restart("broker", victim as u64).unwrap();
    eventually(Duration::from_secs(30), "the broker to register again", || async {
        let d = admin.describe_cluster().await.ok()?;
        d.brokers.iter().any(|b| b.id == victim && !b.fenced).then_some(())
    })
    .await;
}

#[test]
fn a_controller_refuses_a_data_directory_of_another_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let write = |cluster_id: &str| {
        let path = dir.path().join(format!("{cluster_id}.toml"));
        let config = format!(
            "[controller]\nnode_id = 1\ncluster_id = \"{cluster_id}\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nvoters = \"1@127.0.0.1:1\"\n",
            dir.path().join("data").display()
        );
        std::fs::write(&path, config).unwrap();
        path
    };
    let first = write("cluster-a");
    let mut a = std::process::Command::new(BIN)
        .args(["controller", "--config"])
        .arg(&first)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it says it has stored the cluster id in its data directory, then stop it.
    let (lines, logged) = std::sync::mpsc::channel();
    let stderr = a.stderr.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = logged.recv_timeout(left).expect("the controller initializes its data directory within 30 s");
        if line.contains("controller data directory initialized") {
            break;
        }
    }
    let _ = a.kill();
    let _ = a.wait();
    let second = write("cluster-b");
    let out = std::process::Command::new(BIN).args(["controller", "--config"]).arg(&second).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cluster id mismatch"), "{stderr}");
}
