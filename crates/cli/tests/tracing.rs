//! Distributed tracing across real processes: `vltava local-cluster` (a controller, three brokers
//! and a gateway, each its own OS process) exports spans over OTLP/gRPC to a receiver this test
//! runs, and so does the test process itself (the SDK producer and consumer).
//!
//! One produce call through the gateway must show as one trace: the SDK's `send` span, the
//! gateway's `Produce` span, the leader broker's `Produce` span and its wait for the followers
//! (acks=all, RF 3), each the child of the one before. The record carries the producer's
//! `traceparent` header, and the consumer's `process` span links to the producer's span.
//!
//! A thin client's `GatewayService/Publish` (a raw gRPC call with a `traceparent` in its metadata,
//! as any language's OpenTelemetry gRPC instrumentation sends it) continues the caller's trace, and
//! the gateway stamps its Publish span's context on the record it writes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use parking_lot::Mutex;
use tracing::Instrument;
use vltava_client::{
    Acks, Admin, Consumer, ConsumerConfig, NewTopic, OffsetReset, Producer, ProducerConfig, ProducerRecord,
    TopicPartition,
};
use vltava_common::telemetry::{LogFormat, TelemetryConfig, init_telemetry};
use vltava_proto::v1::gateway_service_client::GatewayServiceClient;
use vltava_proto::v1::{PublishRequest, Record};
use vltava_testkit::cluster::LocalCluster;
use vltava_testkit::eventually;

const BIN: &str = env!("CARGO_BIN_EXE_vltava");

/// One span as the receiver got it (ids in lowercase hex, as in `traceparent`).
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    /// `(trace id, span id)` of each link.
    links: Vec<(String, String)>,
    attributes: HashMap<String, String>,
}

/// A real OTLP/gRPC trace endpoint keeping every span it receives.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Received>>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attributes(kvs: &[KeyValue]) -> HashMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::BoolValue(b)) => b.to_string(),
                Some(Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans.resource.map(|r| attributes(&r.attributes)).unwrap_or_default();
            let service = resource.get("service.name").cloned().unwrap_or_default();
            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                received.push(Received {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    links: span.links.iter().map(|l| (hex(&l.trace_id), hex(&l.span_id))).collect(),
                    attributes: attributes(&span.attributes),
                });
            }
        }
        self.spans.lock().extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

impl Receiver {
    /// Starts serving on a free port; returns the endpoint URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // A plain tonic server: the receiver must not trace the exports it receives.
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(self.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
        tokio::spawn(server);
        format!("http://{address}")
    }

    fn find(&self, f: impl Fn(&Received) -> bool) -> Option<Received> {
        self.spans.lock().iter().find(|s| f(s)).cloned()
    }

    fn summary(&self, trace_id: &str) -> String {
        let spans = self.spans.lock();
        let mut lines: Vec<String> = spans
            .iter()
            .filter(|s| s.trace_id == trace_id || s.links.iter().any(|(t, _)| t == trace_id))
            .map(|s| {
                format!("{} {} span={} parent={} links={:?}", s.service, s.name, s.span_id, s.parent_span_id, s.links)
            })
            .collect();
        lines.push(format!("({} spans received in all)", spans.len()));
        lines.join("\n")
    }
}

/// Waits (bounded) until the receiver has a span matching `f`.
async fn find(receiver: &Receiver, trace_id: &str, what: &str, f: impl Fn(&Received) -> bool) -> Received {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(span) = receiver.find(&f) {
            return span;
        }
        assert!(std::time::Instant::now() < deadline, "no {what}; spans of the trace:\n{}", receiver.summary(trace_id));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A 1-partition RF-3 topic with `min.insync.replicas=2`, all three replicas in sync.
async fn create_replicated(admin: &Admin, name: &str) {
    admin.create_topic(NewTopic::new(name, 1).replication_factor(3).config("min.insync.replicas", "2")).await.unwrap();
    eventually(Duration::from_secs(30), "a leader with three in-sync replicas", || async {
        let t = admin.describe_topic(name).await.ok()?;
        let p = &t.partitions[0];
        (p.leader >= 0 && p.isr.len() == 3).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_one_produce_is_one_trace_across_processes_and_the_consumer_links_to_it() {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    // This process (the SDK) exports too, as "vltava-test".
    let config = TelemetryConfig { otlp_endpoint: Some(endpoint.clone()), ..TelemetryConfig::default() };
    let telemetry = init_telemetry("vltava-test", LogFormat::Text, &config).unwrap();
    assert!(telemetry.is_exporting());

    let dir = tempfile::tempdir().unwrap();
    let env = [("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let args = ["--controllers", "1", "--brokers", "3", "--replication-factor", "3"];
    let cluster = match LocalCluster::start_with_env(std::path::Path::new(BIN), dir.path(), &args, &env) {
        Ok(c) => c,
        Err(e) => panic!("local-cluster did not start: {e}"),
    };
    let admin = Admin::connect(cluster.client_address()).await.unwrap();
    create_replicated(&admin, "traced").await;

    // One record, sent through the gateway with acks=all inside the application's span.
    let producer = Producer::connect(ProducerConfig {
        acks: Acks::All,
        linger: Duration::from_millis(1),
        via_gateway: true,
        ..ProducerConfig::new(cluster.client_address())
    })
    .await
    .unwrap();
    let root = tracing::info_span!("checkout");
    let traceparent = async {
        let traceparent = vltava_common::telemetry::current_traceparent().expect("the application span is sampled");
        let delivery = producer.send(ProducerRecord::new("traced", "order-1").key("k")).await.unwrap();
        delivery.await.unwrap();
        traceparent
    }
    .instrument(root)
    .await;
    producer.close().await;
    // 00-<trace id>-<span id>-01
    let (trace_id, root_span_id) = (traceparent[3..35].to_string(), traceparent[36..52].to_string());

    // A second record, published by a "thin client" through the GatewayService.
    let thin_traceparent = async {
        let traceparent = vltava_common::telemetry::current_traceparent().expect("the client span is sampled");
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", cluster.client_address()))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut gateway = GatewayServiceClient::new(vltava_common::telemetry::grpc::traced(channel));
        let record = Record { value: Some("order-2".into()), ..Record::default() };
        let request = PublishRequest { topic: "traced".into(), records: vec![record], ..PublishRequest::default() };
        let result = gateway.publish(request).await.unwrap().into_inner().results.remove(0);
        assert_eq!((result.error_code, result.offset), (0, 1), "{result:?}");
        traceparent
    }
    .instrument(tracing::info_span!("thin-client"))
    .await;
    let thin_trace_id = thin_traceparent[3..35].to_string();

    // The consumer processes it in a span of its own, linked to the producer's.
    let mut consumer = Consumer::connect(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::new(cluster.client_address())
    })
    .await
    .unwrap();
    consumer.assign(vec![TopicPartition::new("traced", 0)]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut records = Vec::new();
    while records.len() < 2 {
        records.extend(consumer.poll(Duration::from_millis(500)).await.unwrap());
        assert!(std::time::Instant::now() < deadline, "the records did not reach the consumer: {records:?}");
    }
    let (record, thin_record) = (records.remove(0), records.remove(0));
    assert_eq!(record.traceparent(), Some(traceparent.as_str()), "the record carries the producer's context");
    let producer_context = record.trace_context().expect("a valid trace context");
    assert_eq!(format!("{}", producer_context.trace_id()), trace_id);
    let process = record.process_span();
    process.in_scope(|| tracing::info!(offset = record.offset, "processing"));
    drop(process);
    telemetry.flush();

    // Every hop of the produce, in one trace, each a child of the one before.
    let t = trace_id.as_str();
    let app = find(&receiver, t, "the application span", |s| s.trace_id == t && s.span_id == root_span_id).await;
    assert_eq!(app.service, "vltava-test");
    let send = find(&receiver, t, "the producer's send span", |s| {
        s.service == "vltava-test" && s.trace_id == t && s.name == "send traced"
    })
    .await;
    assert_eq!(send.parent_span_id, root_span_id, "send is a child of the application span");
    let gateway = find(&receiver, t, "the gateway's Produce span in the trace", |s| {
        s.service == "vltava-gateway" && s.trace_id == t && s.name == "vltava.v1.RecordService/Produce"
    })
    .await;
    assert_eq!(gateway.parent_span_id, send.span_id, "{}", receiver.summary(t));
    assert_eq!(gateway.attributes.get("rpc.system").map(String::as_str), Some("grpc"));
    assert_eq!(gateway.attributes.get("rpc.grpc.status_code").map(String::as_str), Some("0"));
    let broker = find(&receiver, t, "the leader broker's Produce span in the trace", |s| {
        s.service == "vltava-broker" && s.trace_id == t && s.name == "vltava.v1.RecordService/Produce"
    })
    .await;
    assert_eq!(broker.parent_span_id, gateway.span_id, "{}", receiver.summary(t));
    let wait = find(&receiver, t, "the leader's wait for its followers in the trace", |s| {
        s.service == "vltava-broker" && s.trace_id == t && s.name == "replication.wait"
    })
    .await;
    assert_eq!(wait.parent_span_id, broker.span_id, "{}", receiver.summary(t));
    assert_eq!(wait.attributes.get("messaging.destination.name").map(String::as_str), Some("traced"));

    // The consumer's processing is its own trace, linked to the producer's span.
    let processed =
        find(&receiver, t, "the consumer's process span", |s| s.service == "vltava-test" && s.name == "process traced")
            .await;
    assert_ne!(processed.trace_id, t, "processing is a trace of its own");
    assert!(
        processed.links.contains(&(trace_id.clone(), root_span_id.clone())),
        "the process span links to the producer's span: {:?}",
        processed.links
    );
    assert_eq!(processed.attributes.get("messaging.operation.type").map(String::as_str), Some("process"));

    // The thin client's Publish: the gateway's span continues the client's trace, and the record
    // carries the Publish span's context.
    let t = thin_trace_id.as_str();
    let publish = find(&receiver, t, "the gateway's Publish span in the thin client's trace", |s| {
        s.service == "vltava-gateway" && s.trace_id == t && s.name == "vltava.v1.GatewayService/Publish"
    })
    .await;
    assert_eq!(publish.parent_span_id, &thin_traceparent[36..52], "{}", receiver.summary(t));
    let stored = format!("00-{t}-{}-01", publish.span_id);
    assert_eq!(thin_record.traceparent(), Some(stored.as_str()), "the gateway stamps its Publish span's context");
    let broker = find(&receiver, t, "the leader's Produce span under the Publish", |s| {
        s.service == "vltava-broker" && s.trace_id == t && s.name == "vltava.v1.RecordService/Produce"
    })
    .await;
    assert_eq!(broker.parent_span_id, publish.span_id, "{}", receiver.summary(t));

    // The CLI joins traces when OTEL_* is set: `vltava produce` sends each record in a span of
    // its own, and `vltava consume` prints each record in a `process` span linked to it.
    let cli = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(BIN)
            .args(args)
            .env("VLTAVA_SERVER", cluster.client_address())
            .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "vltava {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    cli(&["produce", "traced"], "from-the-cli\n");
    let printed = cli(&["consume", "traced", "--partition", "0", "--offset", "2", "--max-messages", "1"], "");
    assert_eq!(printed, "from-the-cli\n");
    let produced =
        find(&receiver, "", "the CLI's produce span", |s| s.service == "vltava-cli" && s.name == "produce traced")
            .await;
    let t = produced.trace_id.as_str();
    let processed = find(&receiver, t, "the CLI's process span linked to its produce span", |s| {
        s.service == "vltava-cli" && s.name == "process traced" && s.links.iter().any(|(trace, _)| trace == t)
    })
    .await;
    assert_ne!(processed.trace_id, t, "processing is a trace of its own");

    // A Kafka client's produce (kcat) whose record carries a `traceparent` header: the leader's
    // `kafka.Produce` span continues that trace, and the append is its child.
    let (kafka_trace, kafka_parent) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let mut kcat = std::process::Command::new("kcat")
        .args(["-b", cluster.kafka_bootstrap(), "-P", "-t", "traced", "-X", "acks=all"])
        .arg("-H")
        .arg(format!("traceparent=00-{kafka_trace}-{kafka_parent}-01"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("kcat is installed (deploy/install-test-deps.sh)");
    {
        use std::io::Write;
        kcat.stdin.take().unwrap().write_all(b"from-kafka\n").unwrap();
    }
    assert!(kcat.wait().unwrap().success());
    let kafka = find(&receiver, kafka_trace, "the leader's kafka.Produce span in the Kafka client's trace", |s| {
        s.service == "vltava-broker" && s.trace_id == kafka_trace && s.name == "kafka.Produce"
    })
    .await;
    assert_eq!(kafka.parent_span_id, kafka_parent, "{}", receiver.summary(kafka_trace));
    assert_eq!(kafka.attributes.get("rpc.system").map(String::as_str), Some("kafka"));
    find(&receiver, kafka_trace, "the append under the kafka.Produce span", |s| {
        s.trace_id == kafka_trace && s.name == "log.append" && s.parent_span_id == kafka.span_id
    })
    .await;
    drop(cluster);
    drop(telemetry);
}
