//! The long poll, alone in its test binary: the process-wide count of parked long polls
//! (`vltava_broker::long_poll::waiting`) then belongs to this test only, so the test can wait
//! until its fetch is really parked before it produces.

mod common;

use std::time::Duration;

use common::{TestBroker, values};
use vltava_proto::v1::{FetchPartition, FetchRequest};
use vltava_testkit::eventually;

#[tokio::test]
async fn given_a_waiting_fetch_when_records_arrive_should_return_them_before_the_deadline() {
    let b = TestBroker::start(|_| {}).await;
    b.create_topic("t", 1, &[]).await;
    let mut rec = b.records().await;
    let waiting = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let request = FetchRequest {
            max_wait_ms: 20_000,
            min_bytes: 1,
            max_bytes: 1 << 20,
            partitions: vec![FetchPartition {
                topic: "t".into(),
                partition: 0,
                fetch_offset: 0,
                partition_max_bytes: 0,
            }],
            ..Default::default()
        };
        let resp = rec.fetch(request).await.unwrap().into_inner();
        (resp, started.elapsed())
    });
    eventually(Duration::from_secs(15), "the fetch to wait for data", || async {
        (vltava_broker::long_poll::waiting() > 0).then_some(())
    })
    .await;
    b.produce("t", 0, "late", 1).await;
    let (resp, waited) = tokio::time::timeout(Duration::from_secs(15), waiting).await.unwrap().unwrap();
    assert_eq!(values(&resp.partitions[0].records), vec![(0, "late-0".to_string())]);
    assert!(waited < Duration::from_secs(15), "long poll must wake on the append, waited {waited:?}");
    assert_eq!(vltava_broker::long_poll::waiting(), 0, "the woken fetch is no longer parked");
}
