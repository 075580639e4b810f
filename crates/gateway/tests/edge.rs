//! The gateway's edge against a real broker: overload is shed with `RESOURCE_EXHAUSTED` while the
//! gateway stays up, oversized requests are refused before they are read, and the standard health
//! and reflection services answer.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Cluster, WAIT, bounded};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use vltava_proto::v1::*;
use vltava_record::{BatchBuilder, Compression};
use vltava_testkit::eventually;

/// One RecordBatch v2 with `n` records of `size` bytes.
fn batch(n: usize, size: usize) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    let value = vec![b'v'; size];
    for _ in 0..n {
        b.append(0, None, Some(&value), &[]);
    }
    b.build()
}

async fn produce(cluster: &Cluster, topic: &str, records: Bytes) -> Result<ProduceResponse, tonic::Status> {
    let request = ProduceRequest { topic: topic.into(), partition: 0, acks: 1, timeout_ms: 0, records };
    bounded(cluster.records().await.produce(request)).await.map(|r| r.into_inner())
}

async fn health(cluster: &Cluster, service: &str) -> ServingStatus {
    try_health(cluster, service).await.unwrap()
}

/// The health of `service`; `NOT_FOUND` until the gateway has registered it.
async fn try_health(cluster: &Cluster, service: &str) -> Result<ServingStatus, tonic::Status> {
    let mut client = HealthClient::new(cluster.channel().await);
    let request = HealthCheckRequest { service: service.into() };
    bounded(client.check(request)).await.map(|r| r.into_inner().status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_concurrency_limit_get_resource_exhausted_and_the_gateway_stays_up() {
    let cluster = Cluster::start_with(|c| c.max_concurrent_requests = 2).await;
    cluster.create_topic("busy", 1).await;
    cluster.create_topic("idle", 1).await;
    produce(&cluster, "busy", batch(1, 10)).await.unwrap();

    // Two long polls on a topic nobody writes to hold both permits for several seconds (on the
    // produced topic, the first admitted produce would wake them and free the permits).
    // A poll that arrives while the other poll and a produce hold the two permits is shed itself:
    // it tries again (bounded), so both polls end up holding the permits.
    let long_poll = |client: vltava_proto::v1::record_service_client::RecordServiceClient<_>| {
        let mut client = client;
        async move {
            let partitions =
                vec![FetchPartition { topic: "idle".into(), partition: 0, fetch_offset: 0, partition_max_bytes: 0 }];
            let request =
                FetchRequest { max_wait_ms: 8_000, min_bytes: 1, max_bytes: 1 << 20, partitions, ..Default::default() };
            for _ in 0..500 {
                match client.fetch(request.clone()).await {
                    Err(status) if status.code() == Code::ResourceExhausted => {
                        tokio::time::sleep(Duration::from_millis(10)).await
                    }
                    other => return other,
                }
            }
            panic!("a long poll was shed 500 times in a row");
        }
    };
    let mut polls = Vec::new();
    for _ in 0..2 {
        polls.push(tokio::spawn(long_poll(cluster.records().await)));
    }

    // Every further call is shed at once, as soon as both polls are in (bounded wait).
    let deadline = Instant::now() + WAIT;
    let mut appended = 1; // the first record, and every produce admitted from here on
    let shed = loop {
        assert!(Instant::now() < deadline, "no call was shed while two long polls held the permits");
        match produce(&cluster, "busy", batch(1, 10)).await {
            Err(status) if status.code() == Code::ResourceExhausted => break status,
            Ok(_) => appended += 1,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    assert!(shed.message().contains("overloaded"), "{shed:?}");
    let burst: Vec<_> = (0..20).map(|_| produce(&cluster, "busy", batch(1, 10))).collect();
    let burst = futures::future::join_all(burst).await;
    let refused = burst.iter().filter(|r| r.as_ref().is_err_and(|s| s.code() == Code::ResourceExhausted)).count();
    assert!(refused >= 1, "a burst during overload is shed: {burst:?}");
    // Health checks are not shed: an orchestrator still sees the gateway alive.
    assert_eq!(health(&cluster, "").await, ServingStatus::Serving);

    // Once the polls end, the gateway serves again and lost nothing it acknowledged.
    for poll in polls {
        let answer = bounded(poll).await.unwrap().expect("an admitted long poll completes normally");
        assert_eq!(answer.into_inner().partitions.len(), 1);
    }
    appended += burst.iter().filter(|r| r.is_ok()).count() as i64;
    let after = produce(&cluster, "busy", batch(1, 10)).await.expect("the gateway serves after the overload");
    assert_eq!(after.base_offset, appended, "every admitted produce, and only those, was appended");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_is_refused_and_nothing_is_stored() {
    let cluster = Cluster::start_with(|c| c.max_request_bytes = 64 * 1024).await;
    cluster.create_topic("big", 1).await;
    let status = produce(&cluster, "big", batch(1, 100 * 1024)).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");
    // Smaller requests still pass, and the refused one left no trace in the log.
    let ok = produce(&cluster, "big", batch(1, 1024)).await.unwrap();
    assert_eq!(ok.base_offset, 0);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving_and_reflection_lists_the_public_services() {
    let cluster = Cluster::start().await;
    eventually(WAIT, "the gateway to report SERVING", || async {
        // The status is registered once the gateway has seen a live broker: NOT_FOUND before.
        (try_health(&cluster, "vltava.v1.GatewayService").await.ok() == Some(ServingStatus::Serving)).then_some(())
    })
    .await;
    assert_eq!(health(&cluster, "").await, ServingStatus::Serving);
    let mut client = HealthClient::new(cluster.channel().await);
    let unknown = bounded(client.check(HealthCheckRequest { service: "no.such.Service".into() })).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let mut reflection = ServerReflectionClient::new(cluster.channel().await);
    let ask = |request: MessageRequest| {
        tokio_stream::iter([ServerReflectionRequest { host: String::new(), message_request: Some(request) }])
    };
    let mut answers = bounded(reflection.server_reflection_info(ask(MessageRequest::ListServices(String::new()))))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        bounded(answers.message()).await.unwrap().unwrap().message_response
    else {
        panic!("not a service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "vltava.v1.RecordService",
        "vltava.v1.AdminService",
        "vltava.v1.GroupService",
        "vltava.v1.TransactionService",
        "vltava.v1.GatewayService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
    // Internal services are not advertised to clients.
    assert!(!names.iter().any(|n| n.contains("Controller") || n.contains("Replication")), "{names:?}");

    let symbol = MessageRequest::FileContainingSymbol("vltava.v1.GatewayService".into());
    let mut answers = bounded(reflection.server_reflection_info(ask(symbol))).await.unwrap().into_inner();
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        bounded(answers.message()).await.unwrap().unwrap().message_response
    else {
        panic!("not a file descriptor answer")
    };
    let file = files.file_descriptor_proto.iter().find_map(|raw| {
        let fd = <prost_types::FileDescriptorProto as prost::Message>::decode(raw.as_slice()).ok()?;
        (fd.name() == "vltava/v1/gateway.proto").then_some(fd)
    });
    let file = file.expect("gateway.proto is served");
    let methods: Vec<&str> = file.service[0].method.iter().map(|m| m.name()).collect();
    assert!(methods.contains(&"Publish") && methods.contains(&"Consume"), "{methods:?}");
    cluster.stop().await;
}

/// The next message of an open stream, skipping data: the status the stream ends with.
async fn end_of<T>(stream: &mut tonic::Streaming<T>) -> tonic::Status {
    for _ in 0..1_000 {
        match bounded(stream.message()).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => return status,
        }
    }
    panic!("the stream went on past 1,000 messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams_with_unavailable_after_the_grace_instead_of_hanging() {
    let mut cluster = Cluster::start_with(|c| c.shutdown_grace = Duration::from_millis(200)).await;
    cluster.create_topic("t", 1).await;
    produce(&cluster, "t", batch(3, 10)).await.unwrap();
    let mut api = gateway_service_client::GatewayServiceClient::new(cluster.channel().await);
    let request =
        ConsumeRequest { topic: "t".into(), auto_offset_reset: OffsetReset::Earliest as i32, ..Default::default() };
    let mut consume = bounded(api.consume(request)).await.unwrap().into_inner();
    assert!(bounded(consume.message()).await.unwrap().is_some(), "the Consume stream delivers");
    let subscribe = SubscribeRequest { topic: "t".into(), partition: 0, offset: -2, ..Default::default() };
    let mut subscribe = bounded(cluster.records().await.subscribe(subscribe)).await.unwrap().into_inner();
    assert!(bounded(subscribe.message()).await.unwrap().is_some(), "the Subscribe stream delivers");

    // Both streams stay open and idle: without the drain, the graceful stop would wait for them
    // for ever (`stop` fails the test after 20 s).
    cluster.gateway.stop().await;
    for (name, status) in [("Consume", end_of(&mut consume).await), ("Subscribe", end_of(&mut subscribe).await)] {
        assert_eq!(status.code(), Code::Unavailable, "{name}: {status:?}");
        assert!(status.message().contains("shutting down"), "{name}: {status:?}");
    }
    cluster.stop().await;
}
