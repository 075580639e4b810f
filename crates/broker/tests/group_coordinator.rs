//! The group coordinator on real `__consumer_offsets` logs: members join and commit through the
//! shard that leads the group's partition, every change is appended before it is answered, and
//! a coordinator started again on the same data rebuilds the groups and offsets from the log.

use std::sync::Arc;
use std::time::Duration;

use vltava_broker::BrokerConfig;
use vltava_broker::config::GroupCoordinatorConfig;
use vltava_broker::groups::assignor::TopicPartitions;
use vltava_broker::groups::coordinator::{GroupCoordinator, OFFSETS_TOPIC, OffsetToCommit};
use vltava_broker::groups::heartbeat::{HeartbeatRequest, LEAVE_EPOCH};
use vltava_broker::groups::records::OffsetValue;
use vltava_broker::replica_manager::ReplicaManager;
use vltava_common::ErrorCode;
use vltava_metadata::{BrokerRegistration, ClusterImage, MemoryMetadata, MetadataService, create_request};

const WAIT: Duration = Duration::from_secs(10);

struct Node {
    replicas: Arc<ReplicaManager>,
    coordinator: Arc<GroupCoordinator>,
}

impl Node {
    /// Closes the shards, then the logs, as a stopping broker does.
    fn stop(self) {
        self.coordinator.close_all();
        self.replicas.close_all_blocking();
    }
}

async fn metadata() -> Arc<MemoryMetadata> {
    let md = MemoryMetadata::new("groups-test", 1);
    md.register_broker(BrokerRegistration::new(1, "127.0.0.1:9001", None)).await.unwrap();
    for (name, partitions) in [(OFFSETS_TOPIC, 3), ("orders", 4)] {
        md.create_topic(create_request(name, partitions)).await.unwrap();
    }
    md
}

/// Opens the broker's logs, applies the metadata and waits until every shard has loaded.
async fn start(dir: &std::path::Path, md: &MemoryMetadata, session_timeout: Duration) -> Node {
    let config = BrokerConfig { broker_id: 1, data_dir: dir.to_path_buf(), ..Default::default() };
    let replicas = Arc::new(ReplicaManager::new(&config).unwrap());
    replicas.apply_image(md.image()).unwrap();
    let groups = GroupCoordinatorConfig {
        session_timeout,
        heartbeat_interval: Duration::from_millis(50),
        ..GroupCoordinatorConfig::default()
    };
    let coordinator = GroupCoordinator::new(1, groups);
    coordinator.sync(&replicas);
    assert!(coordinator.wait_loaded(WAIT).await, "every shard loads");
    Node { replicas, coordinator }
}

fn join(topics: &[&str]) -> HeartbeatRequest {
    HeartbeatRequest {
        subscribed_topics: Some(topics.iter().map(|t| t.to_string()).collect()),
        rebalance_timeout_ms: Some(10_000),
        ..HeartbeatRequest::default()
    }
}

/// A steady heartbeat of `member` reporting `owned`; takes in the new epoch and assignment.
async fn beat(node: &Node, image: &ClusterImage, member: &str, epoch: &mut i32, owned: &mut TopicPartitions) {
    let request = HeartbeatRequest {
        member_id: member.to_string(),
        member_epoch: *epoch,
        owned: Some(owned.clone()),
        ..Default::default()
    };
    let d = node.coordinator.heartbeat(image, "g", request).await.unwrap();
    *epoch = d.member_epoch;
    if let Some(assignment) = d.assignment {
        *owned = assignment;
    }
}

fn offset(topic: &str, partition: i32, offset: i64) -> OffsetToCommit {
    OffsetToCommit {
        topic: topic.into(),
        partition,
        value: OffsetValue { offset, leader_epoch: -1, metadata: format!("at {offset}"), commit_timestamp: 1 },
    }
}

#[tokio::test]
async fn given_a_group_with_commits_when_the_coordinator_restarts_should_rebuild_it_from_the_log() {
    let md = metadata().await;
    let dir = tempfile::tempdir().unwrap();
    let image = md.image();
    let node = start(dir.path(), &md, Duration::from_secs(30)).await;

    let joined = node.coordinator.heartbeat(&image, "billing", join(&["orders"])).await.unwrap();
    assert_eq!(joined.member_epoch, 1);
    let assigned: usize = joined.assignment.as_ref().unwrap().values().map(|p| p.len()).sum();
    assert_eq!(assigned, 4, "the only member gets every partition");
    let results = node
        .coordinator
        .commit(&image, "billing", &joined.member_id, 1, vec![offset("orders", 0, 42), offset("orders", 3, 7)])
        .await
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    // The group's partition of __consumer_offsets holds the records; nothing else does.
    let partition = node.coordinator.partition_for(&image, "billing").unwrap();
    let log_end = node.replicas.partition(OFFSETS_TOPIC, partition).unwrap().log_end_offset();
    assert!(log_end >= 7, "member, epoch, target, target epoch, current and two offsets: {log_end}");
    node.stop();

    let node = start(dir.path(), &md, Duration::from_secs(30)).await;
    let fetched = node.coordinator.fetch_offsets(&image, "billing", None).await.unwrap();
    let got: Vec<(String, i32, i64)> = fetched.into_iter().map(|(t, p, v)| (t, p, v.unwrap().offset)).collect();
    assert_eq!(got, vec![("orders".into(), 0, 42), ("orders".into(), 3, 7)]);
    // The member is still there, at its epoch: its next heartbeat changes nothing.
    let steady = HeartbeatRequest {
        member_id: joined.member_id.clone(),
        member_epoch: 1,
        owned: joined.assignment.clone(),
        ..HeartbeatRequest::default()
    };
    let again = node.coordinator.heartbeat(&image, "billing", steady).await.unwrap();
    assert_eq!(again.member_epoch, 1);
    assert_eq!(again.assignment, None);
    node.stop();
}

#[tokio::test]
async fn given_bad_commits_should_refuse_each_with_its_code_and_store_nothing_for_it() {
    let md = metadata().await;
    let dir = tempfile::tempdir().unwrap();
    let image = md.image();
    let node = start(dir.path(), &md, Duration::from_secs(30)).await;
    let joined = node.coordinator.heartbeat(&image, "g", join(&["orders"])).await.unwrap();
    let results = node
        .coordinator
        .commit(
            &image,
            "g",
            &joined.member_id,
            1,
            vec![offset("orders", 1, 5), offset("nope", 0, 1), offset("orders", 2, -4)],
        )
        .await
        .unwrap();
    assert!(results[0].is_ok());
    assert_eq!(results[1].as_ref().unwrap_err().code, ErrorCode::UnknownTopicOrPartition);
    assert_eq!(results[2].as_ref().unwrap_err().code, ErrorCode::InvalidRequest);

    let stale = node.coordinator.commit(&image, "g", &joined.member_id, 7, vec![offset("orders", 1, 9)]).await.unwrap();
    assert_eq!(stale[0].as_ref().unwrap_err().code, ErrorCode::StaleMemberEpoch);
    let stranger = node.coordinator.commit(&image, "g", "", -1, vec![offset("orders", 1, 9)]).await.unwrap();
    assert_eq!(stranger[0].as_ref().unwrap_err().code, ErrorCode::UnknownMemberId);

    let fetched = node.coordinator.fetch_offsets(&image, "g", None).await.unwrap();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].2.as_ref().unwrap().offset, 5);

    // Once the member has left, the group is empty and a plain (assign()) commit is accepted;
    // the departed member's own commit is refused.
    let leave =
        HeartbeatRequest { member_id: joined.member_id.clone(), member_epoch: LEAVE_EPOCH, ..Default::default() };
    node.coordinator.heartbeat(&image, "g", leave).await.unwrap();
    let zombie =
        node.coordinator.commit(&image, "g", &joined.member_id, 1, vec![offset("orders", 1, 9)]).await.unwrap();
    assert_eq!(zombie[0].as_ref().unwrap_err().code, ErrorCode::UnknownMemberId);
    let plain = node.coordinator.commit(&image, "g", "", -1, vec![offset("orders", 1, 11)]).await.unwrap();
    assert!(plain[0].is_ok());
    node.stop();
}

#[tokio::test]
async fn given_a_silent_member_should_remove_it_after_its_session_timeout() {
    let md = metadata().await;
    let dir = tempfile::tempdir().unwrap();
    let image = md.image();
    let node = start(dir.path(), &md, Duration::from_millis(200)).await;
    let a = node.coordinator.heartbeat(&image, "g", join(&["orders"])).await.unwrap();
    let b = node.coordinator.heartbeat(&image, "g", join(&["orders"])).await.unwrap();
    assert_eq!(node.coordinator.expire().await, 0, "both sessions are fresh");

    // Only `a` keeps heartbeating; `b` goes silent and is removed once its session lapses.
    let mut epoch = a.member_epoch;
    let mut owned = a.assignment.clone().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut removed = 0;
    while removed == 0 {
        assert!(tokio::time::Instant::now() < deadline, "b was never removed");
        beat(&node, &image, &a.member_id, &mut epoch, &mut owned).await;
        removed = node.coordinator.expire().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let zombie =
        HeartbeatRequest { member_id: b.member_id.clone(), member_epoch: b.member_epoch, ..Default::default() };
    let err = node.coordinator.heartbeat(&image, "g", zombie).await.unwrap_err();
    assert!(err.to_string().contains("is not in group"), "{err}");

    // `a` converges on all four partitions.
    for _ in 0..10 {
        beat(&node, &image, &a.member_id, &mut epoch, &mut owned).await;
    }
    assert_eq!(owned.values().map(|p| p.len()).sum::<usize>(), 4);
    node.stop();
}

#[tokio::test]
async fn given_no_offsets_topic_should_answer_coordinator_not_available() {
    let md = MemoryMetadata::new("groups-test", 1);
    md.register_broker(BrokerRegistration::new(1, "127.0.0.1:9001", None)).await.unwrap();
    let coordinator = GroupCoordinator::new(1, GroupCoordinatorConfig::default());
    let err = coordinator.partition_for(&md.image(), "g").unwrap_err();
    assert_eq!(vltava_common::WireError::from(err).code, ErrorCode::CoordinatorNotAvailable);
}
