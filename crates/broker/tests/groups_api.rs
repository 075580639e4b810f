//! The group coordinator's gRPC API on a real in-process broker: FindCoordinator creates
//! `__consumer_offsets` on first use, and ConsumerGroupHeartbeat joins, reconciles and refuses
//! bad members with Kafka's codes.

mod common;

use common::{TestBroker, code};
use tonic::Code;
use vltava_proto::v1::*;

fn join(group: &str, topics: &[&str]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 10_000,
        subscription: Some(Subscription {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            pattern: String::new(),
        }),
        client_id: "groups-api-test".into(),
        ..Default::default()
    }
}

/// Sends a heartbeat, again while the coordinator is still loading (bounded: 10 s).
async fn loaded(
    groups: &mut group_service_client::GroupServiceClient<tonic::transport::Channel>,
    req: ConsumerGroupHeartbeatRequest,
) -> Result<ConsumerGroupHeartbeatResponse, tonic::Status> {
    for _ in 0..1000 {
        match groups.consumer_group_heartbeat(req.clone()).await {
            Err(s) if code(&s) == "COORDINATOR_LOAD_IN_PROGRESS" => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await
            }
            other => return other.map(tonic::Response::into_inner),
        }
    }
    panic!("the coordinator never loaded");
}

fn count(set: &Option<PartitionSet>) -> usize {
    set.as_ref().map_or(0, |s| s.topics.iter().map(|t| t.partitions.len()).sum())
}

#[tokio::test]
async fn given_a_group_when_members_join_should_find_the_coordinator_and_share_the_partitions() {
    let b = TestBroker::start(|c| c.groups.offsets_topic_num_partitions = 3).await;
    b.create_topic("orders", 4, &[]).await;
    let mut groups = b.groups().await;
    let found =
        groups.find_coordinator(FindCoordinatorRequest { group_id: "billing".into() }).await.unwrap().into_inner();
    assert_eq!(found.node_id, 1);
    assert_eq!(found.address, b.addr);
    assert!((0..3).contains(&found.partition));
    let described = b
        .admin()
        .await
        .describe_topic(DescribeTopicRequest { name: "__consumer_offsets".into() })
        .await
        .unwrap()
        .into_inner();
    let topic = described.topic.unwrap();
    assert_eq!(topic.partitions.len(), 3);
    assert_eq!(topic.configs.get("cleanup.policy").map(String::as_str), Some("compact"));

    // The coordinator loads the new partitions in the background: retry while it says so.
    let first = loaded(&mut groups, join("billing", &["orders"])).await.unwrap();
    assert!(!first.member_id.is_empty());
    assert_eq!(first.member_epoch, 1);
    assert_eq!(count(&first.assignment), 4);
    assert!(first.heartbeat_interval_ms > 0);

    let second = groups.consumer_group_heartbeat(join("billing", &["orders"])).await.unwrap().into_inner();
    assert_eq!(second.member_epoch, 2);
    assert_eq!(count(&second.assignment), 0, "nothing is free until the first member revokes");
    let revoke = groups
        .consumer_group_heartbeat(ConsumerGroupHeartbeatRequest {
            group_id: "billing".into(),
            member_id: first.member_id.clone(),
            member_epoch: 1,
            owned: first.assignment.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(count(&revoke.assignment), 2, "the first member keeps half");

    let leave = ConsumerGroupHeartbeatRequest {
        group_id: "billing".into(),
        member_id: second.member_id.clone(),
        member_epoch: -1,
        ..Default::default()
    };
    assert_eq!(groups.consumer_group_heartbeat(leave).await.unwrap().into_inner().member_epoch, -1);
    b.stop().await;
}

#[tokio::test]
async fn given_bad_heartbeats_should_answer_kafkas_codes() {
    let b = TestBroker::start(|c| c.groups.offsets_topic_num_partitions = 1).await;
    b.create_topic("orders", 1, &[]).await;
    let mut groups = b.groups().await;
    groups.find_coordinator(FindCoordinatorRequest { group_id: "g".into() }).await.unwrap();
    let bad_group = groups.find_coordinator(FindCoordinatorRequest { group_id: String::new() }).await.unwrap_err();
    assert_eq!(code(&bad_group), "INVALID_GROUP_ID");

    let unknown = ConsumerGroupHeartbeatRequest {
        group_id: "g".into(),
        member_id: "ghost".into(),
        member_epoch: 3,
        ..Default::default()
    };
    let err = loaded(&mut groups, unknown).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(code(&err), "UNKNOWN_MEMBER_ID");

    let mut bad_pattern = join("g", &[]);
    bad_pattern.subscription = Some(Subscription { topics: vec![], pattern: "orders(".into() });
    let err = groups.consumer_group_heartbeat(bad_pattern).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(code(&err), "INVALID_REGULAR_EXPRESSION");

    let mut bad_assignor = join("g", &["orders"]);
    bad_assignor.server_assignor = "roundrobin".into();
    assert_eq!(code(&groups.consumer_group_heartbeat(bad_assignor).await.unwrap_err()), "UNSUPPORTED_ASSIGNOR");
    b.stop().await;
}

#[tokio::test]
async fn given_groups_when_deleted_should_drop_empty_ones_and_refuse_groups_with_members() {
    let b = TestBroker::start(|c| c.groups.offsets_topic_num_partitions = 2).await;
    b.create_topic("orders", 1, &[]).await;
    let mut groups = b.groups().await;
    groups.find_coordinator(FindCoordinatorRequest { group_id: "done".into() }).await.unwrap();
    let commit = CommitOffsetsRequest {
        group_id: "done".into(),
        offsets: vec![OffsetCommit { topic: "orders".into(), partition: 0, offset: 3, metadata: String::new() }],
        ..Default::default()
    };
    let committed = groups.commit_offsets(commit).await.unwrap().into_inner();
    assert_eq!(committed.results[0].error_code, ErrorCode::None as i32);
    loaded(&mut groups, join("busy", &["orders"])).await.unwrap();

    let request = DeleteGroupsRequest { group_ids: vec!["done".into(), "busy".into(), "never".into(), String::new()] };
    let results = groups.delete_groups(request).await.unwrap().into_inner().results;
    let codes: Vec<i32> = results.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![
            ErrorCode::None as i32,
            ErrorCode::NonEmptyGroup as i32,
            ErrorCode::GroupIdNotFound as i32,
            ErrorCode::InvalidGroupId as i32
        ]
    );
    let fetched = groups.fetch_offsets(FetchOffsetsRequest { group_id: "done".into(), partitions: vec![] }).await;
    assert!(fetched.unwrap().into_inner().offsets.is_empty(), "the deleted group's offsets are gone");
    let listed = groups.list_groups(ListGroupsRequest {}).await.unwrap().into_inner().group_ids;
    assert_eq!(listed, vec!["busy".to_string()]);
    b.stop().await;
}
