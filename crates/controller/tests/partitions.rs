//! AlterPartition and partition reassignment against a real single-voter controller (real Raft
//! node, real RocksDB), called in process and over gRPC through `RemoteMetadata`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use vltava_common::{ErrorCode, WireError};
use vltava_controller::grpc::ControllerGrpc;
use vltava_controller::node::NodeSettings;
use vltava_controller::{Controller, ControllerSettings};
use vltava_metadata::{
    AlterPartition, BrokerRegistration, CreateTopic, MetadataError, MetadataService, PartitionState, RemoteMetadata,
    create_request,
};

fn settings(dir: &Path) -> ControllerSettings {
    ControllerSettings {
        node: NodeSettings {
            id: 1,
            tick: Duration::from_millis(20),
            election_ticks: 10,
            heartbeat_ticks: 2,
            snapshot_entries: 1000,
            request_timeout: Duration::from_secs(5),
        },
        cluster_id: "c1".into(),
        voters: BTreeMap::from([(1, "127.0.0.1:1".to_string())]),
        join: false,
        data_dir: dir.to_path_buf(),
        default_replication_factor: 1,
        session_timeout: Duration::from_secs(60),
        in_process_brokers: false,
    }
}

/// Registers brokers `1..=n` and returns their epochs by id.
async fn register(c: &Controller, n: i32) -> BTreeMap<i32, i64> {
    let mut epochs = BTreeMap::new();
    for id in 1..=n {
        let mut b = BrokerRegistration::new(id, format!("127.0.0.1:{}", 9000 + id), None);
        b.incarnation = format!("incarnation-{id}");
        epochs.insert(id, c.register_broker(b).await.unwrap().epoch);
    }
    epochs
}

/// The leader's proposal of `new_isr` for partition 0 of `t`, based on `p`.
fn proposal(p: &PartitionState, topic_id: &str, epochs: &BTreeMap<i32, i64>, new_isr: Vec<i32>) -> AlterPartition {
    AlterPartition {
        topic: "t".into(),
        topic_id: topic_id.into(),
        partition: 0,
        broker_id: p.leader,
        broker_epoch: epochs[&p.leader],
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        new_isr,
    }
}

fn code(e: MetadataError) -> ErrorCode {
    WireError::from(e).code
}

/// Serves the controller's gRPC services on a free port until the returned sender is dropped.
async fn serve(c: &Arc<Controller>) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let grpc = ControllerGrpc::new(c.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        vltava_common::grpc::server_builder().add_service(grpc.controller_service()).serve_with_incoming_shutdown(
            vltava_common::grpc::incoming(listener),
            async {
                let _ = stopped.await;
            },
        ),
    );
    (address, stop)
}

#[tokio::test]
async fn given_a_real_quorum_alter_partition_round_trips_and_a_stale_partition_epoch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = Controller::start(settings(dir.path())).unwrap();
    let epochs = register(&c, 2).await;
    let (topic, _) = c.create_topic(CreateTopic { replication_factor: 2, ..create_request("t", 1) }).await.unwrap();
    let p = topic.partitions[0].clone();
    let follower = p.replicas.iter().copied().find(|b| *b != p.leader).unwrap();

    // In process: the leader shrinks the ISR to itself.
    let shrink = proposal(&p, &topic.id, &epochs, vec![p.leader]);
    let (state, version) = c.alter_partition(shrink.clone()).await.unwrap();
    assert_eq!((state.isr.clone(), state.leader, state.leader_epoch), (vec![p.leader], p.leader, p.leader_epoch));
    assert_eq!(state.partition_epoch, p.partition_epoch + 1);
    let image = c.image();
    assert!(image.version >= version);
    assert_eq!(image.partition("t", 0), Some(&state));
    // The same proposal again is based on the old partition epoch.
    assert_eq!(code(c.alter_partition(shrink).await.unwrap_err()), ErrorCode::InvalidUpdateVersion);

    // Over gRPC: the leader grows the ISR back; a proposal repeating it is stale.
    let (address, _stop) = serve(&c).await;
    let remote = RemoteMetadata::connect(&[address], "c1", Duration::from_secs(5)).unwrap();
    let grow = proposal(&state, &topic.id, &epochs, vec![p.leader, follower]);
    let (grown, _) = remote.alter_partition(grow.clone()).await.unwrap();
    assert_eq!((grown.isr.clone(), grown.partition_epoch), (vec![p.leader, follower], state.partition_epoch + 1));
    assert_eq!(c.image().partition("t", 0), Some(&grown));
    assert_eq!(code(remote.alter_partition(grow).await.unwrap_err()), ErrorCode::InvalidUpdateVersion);
    // An unchanged ISR is answered without a log entry.
    let version = c.image().version;
    let same = proposal(&grown, &topic.id, &epochs, grown.isr.clone());
    assert_eq!(remote.alter_partition(same).await.unwrap(), (grown.clone(), version));
    // A follower is not the leader.
    let mut foreign = proposal(&grown, &topic.id, &epochs, vec![follower]);
    (foreign.broker_id, foreign.broker_epoch) = (follower, epochs[&follower]);
    assert_eq!(code(remote.alter_partition(foreign).await.unwrap_err()), ErrorCode::NotLeaderOrFollower);
    c.stop().await;
}

#[tokio::test]
async fn given_a_reassignment_when_the_new_replica_joins_the_isr_then_the_leader_moves_and_the_sender_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let c = Controller::start(settings(dir.path())).unwrap();
    let epochs = register(&c, 3).await;
    let (topic, _) = c.create_topic(CreateTopic { replication_factor: 2, ..create_request("t", 1) }).await.unwrap();
    let p = topic.partitions[0].clone();
    let follower = p.replicas.iter().copied().find(|b| *b != p.leader).unwrap();
    let newcomer = (1..=3).find(|b| !p.replicas.contains(b)).unwrap();

    let (address, _stop) = serve(&c).await;
    let remote = RemoteMetadata::connect(&[address], "c1", Duration::from_secs(5)).unwrap();
    let version = remote.reassign_partition("t", 0, Some(vec![newcomer, follower])).await.unwrap();
    assert!(remote.wait_for_version(version, Duration::from_secs(5)).await);
    let moving = remote.image().partition("t", 0).unwrap().clone();
    assert_eq!(moving.replicas, vec![newcomer, follower, p.leader]);
    assert_eq!((moving.adding_replicas.clone(), moving.removing_replicas.clone()), (vec![newcomer], vec![p.leader]));
    assert_eq!(moving.partition_epoch, p.partition_epoch + 1);

    // The newcomer caught up: the leader adds it, which completes the move and elects it.
    let join = proposal(&moving, &topic.id, &epochs, vec![p.leader, follower, newcomer]);
    let e = remote.alter_partition(join).await.unwrap_err();
    assert_eq!(code(e), ErrorCode::NewLeaderElected);
    let done = c.image().partition("t", 0).unwrap().clone();
    assert_eq!((done.replicas.clone(), done.isr.clone()), (vec![newcomer, follower], vec![follower, newcomer]));
    assert_eq!((done.leader, done.leader_epoch), (newcomer, p.leader_epoch + 1));
    assert!(!done.is_reassigning());

    let none = remote.reassign_partition("t", 0, None).await.unwrap_err();
    assert_eq!(code(none), ErrorCode::NoReassignmentInProgress);
    let bad = c.reassign_partition("t", 0, Some(vec![newcomer, 42])).await.unwrap_err();
    assert_eq!(code(bad), ErrorCode::InvalidReplicaAssignment);
    let missing = c.reassign_partition("t", 7, Some(vec![newcomer])).await.unwrap_err();
    assert_eq!(code(missing), ErrorCode::UnknownTopicOrPartition);
    c.stop().await;
}
