//! Transactions under process failure (issue 14), on a `vltava local-cluster` of separate OS
//! processes. The coordinator is held after it decided to commit and before it writes the markers
//! (the `txn.before_markers` failpoint), and then the coordinator itself, or the leader of one of
//! the transaction's partitions, is killed with SIGKILL. Either way the transaction must end wholly
//! visible to read_committed consumers.

use std::time::Duration;

use vltava_client::{
    Admin, Consumer, ConsumerConfig, IsolationLevel, NewTopic, OffsetReset, Producer, ProducerConfig, ProducerRecord,
};
use vltava_proto::v1::FindTransactionCoordinatorRequest;
use vltava_proto::v1::transaction_service_client::TransactionServiceClient;
use vltava_testkit::cluster::LocalCluster;
use vltava_testkit::eventually;

const BIN: &str = env!("CARGO_BIN_EXE_vltava");
const TXN_ID: &str = "kill-the-coordinator";
const RECORDS: usize = 20;

/// Which broker coordinates `id` (asked of the gateway, which asks a broker).
async fn coordinator_of(cluster: &LocalCluster, id: &str) -> i32 {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{}", cluster.client_address())).unwrap();
    let mut client = TransactionServiceClient::new(endpoint.connect().await.unwrap());
    let request = FindTransactionCoordinatorRequest { transactional_id: id.into() };
    client.find_transaction_coordinator(request).await.unwrap().into_inner().node_id
}

/// Values a read_committed consumer sees in `topic` (every partition, from the start).
async fn committed_values(cluster: &LocalCluster, topic: &str) -> Vec<String> {
    let mut consumer = Consumer::connect(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        isolation_level: IsolationLevel::ReadCommitted,
        ..ConsumerConfig::new(cluster.client_address())
    })
    .await
    .unwrap();
    consumer.assign_topic(topic).await.unwrap();
    let mut values = Vec::new();
    let mut quiet = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while quiet < 3 && tokio::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(300)).await {
            Ok(records) => {
                quiet = if records.is_empty() { quiet + 1 } else { 0 };
                values.extend(records.into_iter().map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap()));
            }
            // A leader that just moved: poll again.
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    values.sort();
    values
}

/// A 3-broker cluster (failpoint armed), a `ledger` topic of `partitions` partitions with 3
/// replicas, and a transactional producer with an open transaction of [`RECORDS`] records spread
/// over every partition, flushed. Returns the cluster, its admin client, the producer and the
/// coordinator's broker id.
async fn open_transaction(dir: &std::path::Path, partitions: i32) -> (LocalCluster, Admin, Producer, i32) {
    let env = [
        ("VLTAVA_FAILPOINTS", "txn.before_markers=3s"),
        ("VLTAVA_BROKER__TRANSACTIONS__STATE_TOPIC_NUM_PARTITIONS", "3"),
        ("VLTAVA_BROKER__GROUPS__OFFSETS_TOPIC_NUM_PARTITIONS", "3"),
    ];
    let args = ["--controllers", "1", "--brokers", "3", "--replication-factor", "3"];
    let cluster = LocalCluster::start_with_env(std::path::Path::new(BIN), dir, &args, &env)
        .unwrap_or_else(|e| panic!("local-cluster did not start: {e}"));
    let admin = Admin::connect(cluster.client_address()).await.unwrap();
    let topic = NewTopic::new("ledger", partitions).replication_factor(3).config("min.insync.replicas", "2");
    admin.create_topic(topic).await.unwrap();
    let producer = Producer::connect(ProducerConfig {
        transactional_id: Some(TXN_ID.into()),
        request_timeout: Duration::from_secs(5),
        ..ProducerConfig::new(cluster.client_address())
    })
    .await
    .unwrap();
    producer.init_transactions().await.unwrap();
    producer.begin_transaction().unwrap();
    for i in 0..RECORDS {
        let record = ProducerRecord::new("ledger", format!("entry-{i:02}")).partition(i as i32 % partitions);
        let _delivery = producer.send(record).await.unwrap();
    }
    producer.flush().await.unwrap();
    let coordinator = coordinator_of(&cluster, TXN_ID).await;
    (cluster, admin, producer, coordinator)
}

/// Commits in the background and waits until the coordinator has decided (PrepareCommit is
/// durable; the failpoint holds it before the markers).
async fn decide_commit(
    admin: &Admin,
    producer: &Producer,
) -> tokio::task::JoinHandle<Result<(), vltava_client::ClientError>> {
    let committing = tokio::spawn({
        let producer = producer.clone();
        async move { producer.commit_transaction().await }
    });
    eventually(Duration::from_secs(20), "the commit decided", || async {
        let state = admin.describe_transaction(TXN_ID).await.ok()?;
        (state.state == "PrepareCommit").then_some(())
    })
    .await;
    committing
}

/// Waits until the transaction is CompleteCommit, then checks read_committed sees all of it once.
async fn assert_committed_whole(cluster: &LocalCluster, admin: &Admin) {
    eventually(Duration::from_secs(60), "the transaction completed", || async {
        let state = admin.describe_transaction(TXN_ID).await.ok()?;
        (state.state == "CompleteCommit").then_some(())
    })
    .await;
    let values = committed_values(cluster, "ledger").await;
    let expected: Vec<String> = (0..RECORDS).map(|i| format!("entry-{i:02}")).collect();
    assert_eq!(values, expected, "the whole transaction, exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_coordinator_after_the_commit_decision_completes_the_transaction_on_its_successor() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, admin, producer, coordinator) = open_transaction(dir.path(), 2).await;
    let committing = decide_commit(&admin, &producer).await;
    assert!(committed_values(&cluster, "ledger").await.is_empty(), "no marker is written yet");
    cluster.kill9("broker", coordinator as u64);
    // The successor loads PrepareCommit and writes every marker.
    assert_committed_whole(&cluster, &admin).await;
    // The producer's commit call retried on the new coordinator (or failed retriably): either
    // way the transaction is committed.
    let _ = tokio::time::timeout(Duration::from_secs(30), committing).await;
    producer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_partition_leader_before_its_marker_still_commits_the_whole_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, admin, producer, coordinator) = open_transaction(dir.path(), 6).await;
    let described = admin.describe_topic("ledger").await.unwrap();
    let victim = described
        .partitions
        .iter()
        .map(|p| p.leader)
        .find(|l| *l != coordinator)
        .expect("6 partitions on 3 brokers: one is led by a broker that does not coordinate");
    let committing = decide_commit(&admin, &producer).await;
    cluster.kill9("broker", victim as u64);
    // The marker of the victim's partitions goes to their new leaders.
    assert_committed_whole(&cluster, &admin).await;
    let _ = tokio::time::timeout(Duration::from_secs(30), committing).await;
    producer.close().await;
}
