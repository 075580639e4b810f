//! The gateway's fetch fan-out against a real multi-broker cluster (`vltava local-cluster`, each
//! broker its own process): a long poll over partitions led by different brokers returns as soon
//! as one leader has records, instead of waiting out the idle leaders' long polls.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use vltava_client::{Admin, NewTopic};
use vltava_proto::v1::gateway_service_client::GatewayServiceClient;
use vltava_proto::v1::{PublishRequest, ReadPartition, ReadRequest, Record};
use vltava_testkit::cluster::LocalCluster;
use vltava_testkit::eventually;

const BIN: &str = env!("CARGO_BIN_EXE_vltava");
/// The long poll asked for: far longer than the test may take.
const LONG_POLL_MS: i32 = 25_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_across_leaders_returns_when_one_leader_has_records() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--controllers", "1", "--brokers", "3"];
    let cluster = LocalCluster::start(std::path::Path::new(BIN), dir.path(), &args)
        .unwrap_or_else(|e| panic!("local-cluster did not start: {e}"));
    let admin = Admin::connect(cluster.client_address()).await.unwrap();
    admin.create_topic(NewTopic::new("fanout", 3).replication_factor(1)).await.unwrap();
    let leaders = eventually(Duration::from_secs(30), "a leader for every partition", || async {
        let t = admin.describe_topic("fanout").await.ok()?;
        t.partitions.iter().all(|p| p.leader >= 0).then(|| t.partitions.iter().map(|p| p.leader).collect::<Vec<_>>())
    })
    .await;
    assert!(leaders.iter().collect::<BTreeSet<_>>().len() >= 2, "the partitions have several leaders: {leaders:?}");

    let channel =
        Channel::from_shared(format!("http://{}", cluster.client_address())).unwrap().connect().await.unwrap();
    let mut reader = GatewayServiceClient::new(channel.clone());
    let mut writer = GatewayServiceClient::new(channel);
    // Every partition from offset 0, its end: nothing to read yet, so every leader long-polls.
    let read = ReadRequest {
        partitions: (0..3).map(|p| ReadPartition { topic: "fanout".into(), partition: p, offset: 0 }).collect(),
        max_wait_ms: LONG_POLL_MS,
        ..ReadRequest::default()
    };
    let started = Instant::now();
    let pending = tokio::spawn(async move { reader.read(read).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let record = Record { value: Some("wake".into()), partition: Some(1), ..Record::default() };
    let publish = PublishRequest { topic: "fanout".into(), records: vec![record], ..PublishRequest::default() };
    let result = writer.publish(publish).await.unwrap().into_inner().results.remove(0);
    assert_eq!(result.error_code, 0, "{result:?}");

    let response = tokio::time::timeout(Duration::from_secs(20), pending)
        .await
        .expect("the read returns before the idle leaders' long polls end")
        .unwrap()
        .unwrap()
        .into_inner();
    let waited = started.elapsed();
    let got: Vec<(i32, String)> = response
        .partitions
        .iter()
        .flat_map(|p| {
            p.records
                .iter()
                .map(|r| (p.partition, String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into()))
        })
        .collect();
    assert_eq!(got, vec![(1, "wake".to_string())], "{response:?}");
    assert!(response.partitions.iter().all(|p| p.error_code == 0), "{response:?}");
    // The other leaders were asked again without waiting: far less than their long poll.
    assert!(waited < Duration::from_millis(LONG_POLL_MS as u64 / 2), "waited {waited:?}");
    drop(cluster);
}
