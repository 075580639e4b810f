//! Bad input on the Kafka port of a real `vltava dev` process: random and truncated frames, size
//! prefixes out of bounds, unknown API keys, unsupported versions and array lengths that claim
//! billions of elements. Each closes its own connection with a log line; the broker keeps
//! answering other connections (pipelined, in order) and what it stored does not change.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::metadata_response::MetadataResponse;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, MetadataRequest};
use kafka_protocol::protocol::Decodable;
use rand::{Rng, SeedableRng};
use vltava_client::{
    Acks, Admin, Consumer, ConsumerConfig, NewTopic, OffsetReset, Producer, ProducerConfig, ProducerRecord,
};
use vltava_testkit::ServerProcess;

mod kafka_wire;
use kafka_wire::{connect, framed, request, response};

fn vltava() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vltava"))
}

/// Whether the server closed the connection (EOF or reset) within 10 s, sending nothing.
fn closed_without_answer(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe),
    }
}

/// A fresh connection still gets ApiVersions answered.
fn still_serving(addr: &str) {
    let mut s = connect(addr);
    s.write_all(&request(ApiKey::ApiVersions, 3, 7, &ApiVersionsRequest::default())).unwrap();
    let (correlation_id, mut body) = response(&mut s, 0);
    assert_eq!(correlation_id, 7);
    let versions = ApiVersionsResponse::decode(&mut body, 3).unwrap();
    assert_eq!(versions.error_code, 0);
}

/// Sends `bytes` on a new connection (then closes the write side when `half_close`), and checks
/// the server closes it without an answer and keeps serving others.
fn rejected(addr: &str, what: &str, bytes: &[u8], half_close: bool) {
    let mut s = connect(addr);
    // The server may close before reading everything: a failed write is a close too.
    let _ = s.write_all(bytes);
    if half_close {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    assert!(closed_without_answer(&mut s), "{what}: the connection must be closed without an answer");
    still_serving(addr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_their_connection_only_and_change_nothing_stored() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_dev(&vltava(), data.path(), &[]).unwrap();
    let kafka = server.kafka().unwrap();
    let admin = Admin::connect(&server.server()).await.unwrap();
    admin.create_topic(NewTopic::new("intact", 1)).await.unwrap();
    let producer =
        Producer::connect(ProducerConfig { acks: Acks::All, ..ProducerConfig::new(server.server()) }).await.unwrap();
    for i in 0..10 {
        producer.send(ProducerRecord::new("intact", format!("v{i}"))).await.unwrap().await.unwrap();
    }

    // Pipelining: three requests before reading, answered in order.
    let mut s = connect(&kafka);
    let mut three = request(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default());
    three.extend(request(ApiKey::Metadata, 12, 2, &MetadataRequest::default().with_topics(None)));
    three.extend(request(ApiKey::ApiVersions, 0, 3, &ApiVersionsRequest::default()));
    s.write_all(&three).unwrap();
    assert_eq!(response(&mut s, 0).0, 1);
    let (id, mut body) = response(&mut s, 1);
    assert_eq!(id, 2);
    let metadata = MetadataResponse::decode(&mut body, 12).unwrap();
    assert!(metadata.topics.iter().any(|t| t.name.as_deref().map(|n| n.as_str()) == Some("intact")));
    assert_eq!(response(&mut s, 0).0, 3);

    // An ApiVersions newer than served: version 0 answer, UNSUPPORTED_VERSION, and the list.
    let mut s = connect(&kafka);
    let mut header = BytesMut::new();
    header.put_i16(ApiKey::ApiVersions as i16);
    header.put_i16(99);
    header.put_i32(11);
    header.put_i16(-1); // null client id
    header.put_u8(0); // no tagged fields
    s.write_all(&framed(&header)).unwrap();
    let (id, mut body) = response(&mut s, 0);
    let versions = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!((id, versions.error_code), (11, 35));
    assert!(versions.api_keys.iter().any(|k| k.api_key == ApiKey::Produce as i16));

    rejected(&kafka, "negative size", &(-1i32).to_be_bytes(), false);
    rejected(&kafka, "oversized frame", &(200 * 1024 * 1024i32).to_be_bytes(), false);
    rejected(&kafka, "frame smaller than a header", &framed(&[0, 3, 0]), false);
    let whole = request(ApiKey::Metadata, 12, 5, &MetadataRequest::default().with_topics(None));
    rejected(&kafka, "truncated frame", &whole[..whole.len() - 3], true);
    let mut unknown = BytesMut::new();
    unknown.put_i16(9999);
    unknown.put_i16(0);
    unknown.put_i32(5);
    unknown.put_i16(-1);
    rejected(&kafka, "unknown API key", &framed(&unknown), false);
    let mut too_new = BytesMut::new();
    too_new.put_i16(ApiKey::Produce as i16);
    too_new.put_i16(99);
    too_new.put_i32(5);
    too_new.put_i16(-1);
    too_new.put_slice(&[0; 16]);
    rejected(&kafka, "unsupported version", &framed(&too_new), false);
    // Metadata v0 whose topic array claims i32::MAX entries in a 20-byte frame (an allocation of
    // hundreds of gigabytes before the fix in third_party/kafka-protocol), and a v12 compact one.
    let mut bomb = BytesMut::new();
    bomb.put_i16(ApiKey::Metadata as i16);
    bomb.put_i16(0);
    bomb.put_i32(5);
    bomb.put_i16(-1);
    bomb.put_i32(i32::MAX);
    bomb.put_slice(b"abcd");
    rejected(&kafka, "array length bomb", &framed(&bomb), false);
    let mut compact = BytesMut::new();
    compact.put_i16(ApiKey::Metadata as i16);
    compact.put_i16(12);
    compact.put_i32(5);
    compact.put_i16(-1);
    compact.put_u8(0); // header tagged fields
    compact.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]); // unsigned varint 2^31 - 1
    rejected(&kafka, "compact array length bomb", &framed(&compact), false);

    // Random bodies behind valid headers of every served API: each is answered or closed, never
    // a crash, and a fresh connection is served after each.
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let apis = [ApiKey::Produce, ApiKey::Fetch, ApiKey::ListOffsets, ApiKey::Metadata, ApiKey::OffsetForLeaderEpoch];
    let started = Instant::now();
    for round in 0..300 {
        let api = apis[round % apis.len()];
        let range = api.valid_versions();
        let version = rng.random_range(range.min.max(3)..=range.max.min(11));
        let mut frame = BytesMut::new();
        frame.put_i16(api as i16);
        frame.put_i16(version);
        frame.put_i32(round as i32);
        frame.put_i16(-1);
        if api.request_header_version(version) >= 2 {
            frame.put_u8(0);
        }
        let len = rng.random_range(0..200);
        frame.extend((0..len).map(|_| rng.random::<u8>()));
        let mut s = connect(&kafka);
        let _ = s.write_all(&framed(&frame));
        let mut sink = Vec::new();
        let _ = s.shutdown(std::net::Shutdown::Write);
        let _ = s.read_to_end(&mut sink);
        if round % 50 == 0 {
            still_serving(&kafka);
        }
    }
    assert!(started.elapsed() < Duration::from_secs(120), "300 connections took {:?}", started.elapsed());
    still_serving(&kafka);

    let log = server.output();
    assert!(log.contains("closing kafka connection"), "bad input is logged:\n{log}");
    assert!(log.contains("exceeds the"), "the array bomb is reported as such:\n{log}");

    // Nothing stored changed.
    let config = ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::new(server.server())
    };
    let mut consumer = Consumer::connect(config).await.unwrap();
    consumer.assign_topic("intact").await.unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while values.len() < 10 && Instant::now() < deadline {
        for r in consumer.poll(Duration::from_millis(200)).await.unwrap() {
            values.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
    }
    let expected: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    assert_eq!(values, expected);
    let topics: Vec<String> = admin.list_topics().await.unwrap().into_iter().map(|t| t.name).collect();
    assert!(topics.iter().all(|t| t == "intact" || t.starts_with("__")), "no topic appeared: {topics:?}");
}
