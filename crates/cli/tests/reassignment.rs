//! Partition reassignment (KIP-455) end to end, as an operator runs it: a `vltava local-cluster`
//! of separate processes and the `vltava partition reassign|reassignments` commands.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use vltava_testkit::cluster::LocalCluster;

const BIN: &str = env!("CARGO_BIN_EXE_vltava");

/// Runs `vltava ARGS` against the cluster's gateway, feeding `stdin`.
fn run(cluster: &LocalCluster, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("VLTAVA_SERVER", cluster.client_address())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(cluster: &LocalCluster, args: &[&str], stdin: &str) -> String {
    let out = run(cluster, args, stdin);
    assert!(out.status.success(), "vltava {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn fails_with(cluster: &LocalCluster, args: &[&str], code: &str) {
    let out = run(cluster, args, "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "vltava {args:?} should fail");
    assert!(stderr.contains(code), "vltava {args:?}: expected {code} in {stderr:?}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

fn partition0(cluster: &LocalCluster, topic: &str) -> serde_json::Value {
    let describe: serde_json::Value =
        serde_json::from_str(&ok(cluster, &["topic", "describe", topic, "--json"], "")).unwrap();
    describe["partitions"][0].clone()
}

fn ids(v: &serde_json::Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|b| b.as_i64().unwrap()).collect()
}

fn join(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

#[test]
fn given_a_replicated_topic_when_its_partition_is_reassigned_with_wait_then_the_new_replicas_hold_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--controllers", "1", "--brokers", "4", "--replication-factor", "3"];
    let cluster = LocalCluster::start(std::path::Path::new(BIN), dir.path(), &args).expect("local-cluster starts");

    ok(&cluster, &["topic", "create", "moving", "--partitions", "1", "--replication-factor", "3"], "");
    let lines: String = (0..200).map(|i| format!("record-{i}\n")).collect();
    ok(&cluster, &["produce", "moving", "--acks", "all"], &lines);

    // Move off the current leader onto the broker without a replica.
    let before = partition0(&cluster, "moving");
    let (leader, replicas) = (before["leader"].as_i64().unwrap(), ids(&before["replicas"]));
    let newcomer = (1..=4).find(|b| !replicas.contains(b)).unwrap();
    let mut target = vec![newcomer];
    target.extend(replicas.iter().copied().filter(|b| *b != leader));
    let target_arg = join(&target);
    let started = Instant::now();
    let out = ok(
        &cluster,
        &["partition", "reassign", "--topic", "moving", "--partition", "0", "--replicas", &target_arg, "--wait"],
        "",
    );
    assert!(out.contains(&format!("complete: replicas {target_arg}")), "{out}");
    assert!(started.elapsed() < Duration::from_secs(60));

    let after = partition0(&cluster, "moving");
    assert_eq!(ids(&after["replicas"]), target, "{after}");
    assert!(target.contains(&after["leader"].as_i64().unwrap()), "the leader moved off broker {leader}: {after}");
    assert!(ids(&after["isr"]).iter().all(|b| target.contains(b)), "{after}");
    assert_eq!(after["adding_replicas"], serde_json::json!([]));
    assert_eq!(ok(&cluster, &["partition", "reassignments", "--json"], "").trim(), "[]");

    // Every acknowledged record is still there, now served by the new replica set.
    let consumed =
        ok(&cluster, &["consume", "moving", "--from-beginning", "--max-messages", "200", "--timeout-ms", "20000"], "");
    assert_eq!(consumed, lines);

    fails_with(
        &cluster,
        &["partition", "reassign", "--cancel", "--topic", "moving", "--partition", "0"],
        "NO_REASSIGNMENT_IN_PROGRESS",
    );
    fails_with(
        &cluster,
        &["partition", "reassign", "--topic", "moving", "--partition", "0", "--replicas", "1,9"],
        "INVALID_REPLICA_ASSIGNMENT",
    );
    fails_with(
        &cluster,
        &["partition", "reassign", "--topic", "nowhere", "--partition", "0", "--replicas", "1"],
        "UNKNOWN_TOPIC_OR_PARTITION",
    );
}

#[test]
fn given_a_new_replica_that_cannot_catch_up_when_waiting_times_out_then_the_move_is_listed_and_can_be_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--controllers", "1", "--brokers", "3", "--replication-factor", "2"];
    let mut cluster = LocalCluster::start(std::path::Path::new(BIN), dir.path(), &args).expect("local-cluster starts");
    ok(&cluster, &["topic", "create", "stuck", "--partitions", "1", "--replication-factor", "2"], "");
    let before = partition0(&cluster, "stuck");
    let replicas = ids(&before["replicas"]);
    let down = (1..=3).find(|b| !replicas.contains(b)).unwrap();
    cluster.kill9("broker", down as u64);

    // The dead broker is still registered: the move starts, but it never joins the ISR.
    let mut target = replicas.clone();
    target[1] = down;
    let target_arg = join(&target);
    let out = run(
        &cluster,
        &[
            "partition",
            "reassign",
            "--topic",
            "stuck",
            "--partition",
            "0",
            "--replicas",
            &target_arg,
            "--wait",
            "--timeout",
            "2s",
        ],
        "",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("still adding {down}")), "{stderr}");

    let listed: serde_json::Value =
        serde_json::from_str(&ok(&cluster, &["partition", "reassignments", "--json"], "")).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["topic"], "stuck");
    assert_eq!(ids(&listed[0]["adding_replicas"]), vec![down]);
    assert_eq!(ids(&listed[0]["removing_replicas"]), vec![replicas[1]]);
    let table = ok(&cluster, &["partition", "reassignments"], "");
    assert!(table.lines().nth(1).is_some_and(|l| l.starts_with("stuck")), "{table}");

    let out = ok(&cluster, &["partition", "reassign", "--cancel", "--topic", "stuck", "--partition", "0"], "");
    assert!(out.starts_with("Cancelled the reassignment of stuck-0"), "{out}");
    let after = partition0(&cluster, "stuck");
    let mut back = ids(&after["replicas"]);
    back.sort_unstable();
    let mut original = replicas.clone();
    original.sort_unstable();
    assert_eq!(back, original, "{after}");
    assert_eq!(after["adding_replicas"], serde_json::json!([]));
    assert_eq!(ok(&cluster, &["partition", "reassignments", "--json"], "").trim(), "[]");
}
