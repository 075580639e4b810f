//! Broker membership against a real single-voter controller (real Raft node, real RocksDB):
//! epochs, heartbeats, fencing by session timeout, duplicates, controlled shutdown, restarts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use vltava_controller::node::NodeSettings;
use vltava_controller::{Controller, ControllerSettings};
use vltava_metadata::{BrokerRegistration, ClusterImage, CreateTopic, MetadataError, MetadataService, create_request};

fn settings(dir: &Path, cluster_id: &str, session: Duration) -> ControllerSettings {
    ControllerSettings {
        node: NodeSettings {
            id: 1,
            tick: Duration::from_millis(20),
            election_ticks: 10,
            heartbeat_ticks: 2,
            snapshot_entries: 50,
            request_timeout: Duration::from_secs(5),
        },
        cluster_id: cluster_id.into(),
        voters: BTreeMap::from([(1, "127.0.0.1:1".to_string())]),
        join: false,
        data_dir: dir.to_path_buf(),
        default_replication_factor: 1,
        session_timeout: session,
        in_process_brokers: false,
    }
}

fn broker(id: i32, incarnation: &str) -> BrokerRegistration {
    let mut b = BrokerRegistration::new(id, format!("127.0.0.1:{}", 9000 + id), None);
    b.incarnation = incarnation.into();
    b
}

async fn wait_until(what: &str, c: &Arc<Controller>, f: impl Fn(&ClusterImage) -> bool) {
    let mut rx = c.watch();
    let waited = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|i| f(i))).await;
    assert!(matches!(waited, Ok(Ok(_))), "timed out waiting for {what}");
}

#[tokio::test]
async fn epochs_heartbeats_and_controlled_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let c = Controller::start(settings(dir.path(), "c1", Duration::from_secs(60))).unwrap();
    let first = c.register_broker(broker(1, "a")).await.unwrap();
    assert!(first.epoch > 0);
    assert!(!c.heartbeat(1, first.epoch).await.unwrap());
    let stale = c.heartbeat(1, first.epoch + 100).await;
    assert!(matches!(stale, Err(MetadataError::StaleBrokerEpoch { .. })), "{stale:?}");
    assert!(matches!(c.heartbeat(7, 1).await, Err(MetadataError::BrokerNotRegistered { id: 7 })));

    let (topic, _) = c.create_topic(create_request("t", 2)).await.unwrap();
    assert!(topic.partitions.iter().all(|p| p.leader == 1 && p.leader_epoch == 0));
    c.controlled_shutdown(1, first.epoch).await.unwrap();
    let image = c.image();
    assert!(image.brokers[&1].fenced);
    assert!(image.topic("t").unwrap().partitions.iter().all(|p| p.leader == -1 && p.isr == vec![1]));
    assert!(c.heartbeat(1, first.epoch).await.unwrap(), "a fenced broker is told so");

    let again = c.register_broker(broker(1, "b")).await.unwrap();
    assert!(again.epoch > first.epoch);
    let t = c.image().topic("t").unwrap().clone();
    assert!(t.partitions.iter().all(|p| p.leader == 1 && p.leader_epoch == 2), "{t:?}");
    c.stop().await;
}

#[tokio::test]
async fn an_expired_session_fences_and_a_live_duplicate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = Controller::start(settings(dir.path(), "c1", Duration::from_millis(300))).unwrap();
    let a = c.register_broker(broker(1, "a")).await.unwrap();
    let dup = c.register_broker(broker(1, "other-process")).await;
    assert!(matches!(dup, Err(MetadataError::DuplicateBrokerRegistration { .. })), "{dup:?}");
    // Keep broker 1 alive with heartbeats while broker 2 goes silent.
    let b = c.register_broker(broker(2, "b")).await.unwrap();
    c.create_topic(CreateTopic { replication_factor: 2, ..create_request("t", 4) }).await.unwrap();
    let keeper = {
        let c = c.clone();
        tokio::spawn(async move {
            loop {
                let _ = c.heartbeat(1, a.epoch).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    wait_until("broker 2 to be fenced", &c, |i| i.brokers.get(&2).is_some_and(|b| b.fenced)).await;
    let t = c.image().topic("t").unwrap().clone();
    for p in &t.partitions {
        assert_eq!(p.leader, 1, "{p:?}");
        assert_eq!(p.isr, vec![1], "{p:?}");
    }
    assert!(!c.image().brokers[&1].fenced);
    // The expired broker's epoch is stale once it registers again.
    let b2 = c.register_broker(broker(2, "b2")).await.unwrap();
    assert!(b2.epoch > b.epoch);
    keeper.abort();
    c.stop().await;
}

#[tokio::test]
async fn state_survives_a_restart_and_another_cluster_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = Controller::start(settings(dir.path(), "c1", Duration::from_secs(60))).unwrap();
        c.register_broker(broker(1, "a")).await.unwrap();
        // More entries than `snapshot_entries`, so the log is compacted before the restart.
        for i in 0..80 {
            c.create_topic(create_request(&format!("t{i}"), 1)).await.unwrap();
        }
        c.delete_topic("t0").await.unwrap();
        c.stop().await;
    }
    let c = Controller::start(settings(dir.path(), "c1", Duration::from_secs(60))).unwrap();
    let image = c.image();
    assert_eq!(image.topics.len(), 79);
    assert!(image.topic("t0").is_none() && image.topic("t79").is_some());
    assert_eq!(image.cluster_id, "c1");
    // And it still commits.
    c.create_topic(create_request("after", 1)).await.unwrap();
    c.stop().await;
    drop(c);

    let other = Controller::start(settings(dir.path(), "c2", Duration::from_secs(60)));
    match other {
        Err(e @ MetadataError::InconsistentClusterId { .. }) => assert!(e.to_string().contains("cluster id mismatch")),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a data directory of another cluster must be refused"),
    }
}

#[tokio::test]
async fn given_a_restarted_dev_controller_should_register_its_brokers_new_incarnation_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev");
    let c = Controller::start_single(path.clone(), 1, Some("c1".into())).unwrap();
    assert!(c.wait_for_leader(Duration::from_secs(10)).await);
    c.register_broker(broker(1, "first")).await.unwrap();
    c.stop().await;
    drop(c);
    let c = Controller::start_single(path, 1, Some("c1".into())).unwrap();
    assert!(c.wait_for_leader(Duration::from_secs(10)).await);
    // Let the session checker run a few 100 ms ticks: it gives the old incarnation, still
    // registered and unfenced, a fresh session (a year long in `vltava dev`).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = c.register_broker(broker(1, "second")).await;
    assert!(second.is_ok(), "the old incarnation died with the dev process: {second:?}");
    c.stop().await;
}

#[tokio::test]
async fn producer_id_blocks_never_repeat_across_restarts_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    {
        let c = Controller::start(settings(dir.path(), "c1", Duration::from_secs(60))).unwrap();
        let one = c.register_broker(broker(1, "a")).await.unwrap();
        let two = c.register_broker(broker(2, "b")).await.unwrap();
        seen.push(c.allocate_producer_ids(1, one.epoch).await.unwrap());
        seen.push(c.allocate_producer_ids(2, two.epoch).await.unwrap());
        let stale = c.allocate_producer_ids(1, one.epoch + 100).await;
        assert!(matches!(stale, Err(MetadataError::StaleBrokerEpoch { .. })), "{stale:?}");
        let unknown = c.allocate_producer_ids(9, 1).await;
        assert!(matches!(unknown, Err(MetadataError::BrokerNotRegistered { id: 9 })), "{unknown:?}");
        // More entries than `snapshot_entries`: the next id must survive in the snapshot too.
        for i in 0..60 {
            c.create_topic(create_request(&format!("t{i}"), 1)).await.unwrap();
        }
        seen.push(c.allocate_producer_ids(1, one.epoch).await.unwrap());
        c.stop().await;
    }
    let c = Controller::start(settings(dir.path(), "c1", Duration::from_secs(60))).unwrap();
    let three = c.register_broker(broker(3, "c")).await.unwrap();
    seen.push(c.allocate_producer_ids(3, three.epoch).await.unwrap());
    c.stop().await;
    for pair in seen.windows(2) {
        assert!(pair[1].start >= pair[0].start + pair[0].len, "blocks overlap: {seen:?}");
    }
    assert!(seen.iter().all(|b| b.len == 1000 && b.start >= 0), "{seen:?}");
}
