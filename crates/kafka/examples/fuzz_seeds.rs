//! Writes the seed corpus of the fuzz targets (`fuzz/`): valid inputs that the fuzzers mutate,
//! so that they start deep inside each decoder instead of at its first check.
//!
//! ```text
//! cargo run -p vltava-kafka --example fuzz_seeds -- fuzz/seeds
//! ```
//!
//! Seeds are written as `seed-*` files into `DIR/<target>/` (default `fuzz/seeds`): real Kafka request frames for every
//! served API at its lowest and highest version, record batches in every codec (idempotent,
//! transactional, control), protobuf requests, checkpoint files, and whole partition directories
//! written by the storage crate. The storage targets' framed format (`kind u8, number u32 LE,
//! length u16 LE, bytes`) is documented in `fuzz/src/lib.rs`.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use prost::Message;
use vltava_kafka::versions::SUPPORTED;
use vltava_proto::v1 as pb;
use vltava_record::{BatchBuilder, Compression, Header, Marker, MarkerKind, RecordBatch};
use vltava_storage::{Log, LogConfig};

const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("creating the corpus directory");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("writing a seed");
}

fn batch(codec: Compression, producer: Option<(i64, i16, i32)>, transactional: bool, records: u8) -> Bytes {
    let mut b = BatchBuilder::new(codec);
    if let Some((id, epoch, seq)) = producer {
        b = b.with_producer(id, epoch, seq);
    }
    b.set_transactional(transactional);
    for i in 0..records {
        let header = Header { key: "traceparent".into(), value: Some(Bytes::from_static(b"00-01-02-01")) };
        let key = [b'k', i];
        b.append(1_700_000_000_000 + i64::from(i), (i % 3 != 0).then_some(&key[..]), Some(b"value"), &[header]);
    }
    b.build()
}

fn record_batches(dir: &Path) {
    for codec in CODECS {
        let plain = batch(codec, None, false, 5);
        let mut input = vec![0u8];
        input.extend_from_slice(&plain);
        write(dir, "record_batch", &format!("{codec}"), &input);
        let section = &plain[vltava_record::header::HEADER_LEN..];
        let mut codecs = vec![(codec.id() as u8) | (5 << 3)];
        codecs.extend_from_slice(section);
        write(dir, "codecs", &format!("{codec}"), &codecs);
    }
    let mut input = vec![0u8];
    input.extend_from_slice(&batch(Compression::Lz4, Some((7, 0, 0)), false, 3));
    input.extend_from_slice(&batch(Compression::None, Some((7, 0, 3)), true, 2));
    input.extend_from_slice(&vltava_record::marker_batch(
        7,
        0,
        Marker { kind: MarkerKind::Commit, coordinator_epoch: 1 },
        1_700_000_000_000,
    ));
    write(dir, "record_batch", "producer-transaction-marker", &input);
}

/// A partition directory written by the storage crate: idempotent and transactional batches,
/// markers, several segments.
fn partition_dir(clean: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = LogConfig { segment_bytes: 400, index_interval_bytes: 64, ..LogConfig::default() };
    let mut log = Log::open(dir.path(), config).expect("opening a new log");
    let now = 1_700_000_000_000;
    let mut seq = 0;
    for round in 0..4 {
        log.append(batch(Compression::None, Some((7, 0, seq)), false, 3), round, now).expect("append");
        seq += 3;
        log.append(batch(Compression::Zstd, Some((9, 0, round * 2)), true, 2), round, now).expect("append");
        let kind = if round % 2 == 0 { MarkerKind::Commit } else { MarkerKind::Abort };
        log.append_marker(9, 0, Marker { kind, coordinator_epoch: 0 }, round, now).expect("marker");
        log.append(batch(Compression::Gzip, None, false, 2), round, now).expect("append");
    }
    if clean {
        log.close().expect("close");
    } else {
        log.flush().expect("flush");
        drop(log);
    }
    dir
}

/// The kind byte of `fuzz_targets/log_recovery.rs` for a file name, and its base offset.
fn recovery_kind(name: &str) -> Option<(u8, u32)> {
    let base = |s: &str| s.split('.').next().and_then(|b| b.parse::<u32>().ok()).unwrap_or(0);
    let kind = match name {
        "leader-epoch-checkpoint" => 8,
        "log-start-offset" => 9,
        "recovery-point" => 10,
        "cleaner-offset-checkpoint" => 11,
        "partition.metadata" => 12,
        ".clean-shutdown" => 13,
        n if n.ends_with(".log") => 0,
        n if n.ends_with(".index") => 1,
        n if n.ends_with(".timeindex") => 2,
        n if n.ends_with(".txnindex") => 3,
        n if n.ends_with(".snapshot") => 4,
        _ => return None,
    };
    Some((kind, base(name)))
}

fn entry(out: &mut Vec<u8>, kind: u8, number: u32, bytes: &[u8]) {
    let bytes = &bytes[..bytes.len().min(usize::from(u16::MAX))];
    out.push(kind);
    out.extend_from_slice(&number.to_le_bytes());
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn storage(dir: &Path) {
    for clean in [true, false] {
        let partition = partition_dir(clean);
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(partition.path()).expect("listing").map(|e| e.expect("entry").path()).collect();
        files.sort();
        let mut input = vec![if clean { 0 } else { 2 }];
        for path in &files {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let bytes = std::fs::read(path).expect("reading a log file");
            if let Some((kind, base)) = recovery_kind(name) {
                entry(&mut input, kind, base, &bytes);
            }
            let selector = match name {
                "leader-epoch-checkpoint" => Some(0u8),
                n if n.ends_with(".snapshot") => Some(2),
                n if n.ends_with(".txnindex") => Some(3 | (recovery_kind(n).map_or(0, |(_, b)| b.min(63) as u8) << 2)),
                _ => None,
            };
            if let Some(selector) = selector {
                let mut seed = vec![selector];
                seed.extend_from_slice(&bytes);
                write(dir, "checkpoints", &format!("{}-{name}", if clean { "clean" } else { "crashed" }), &seed);
            }
        }
        write(dir, "log_recovery", if clean { "clean" } else { "crashed" }, &input);
    }
    let mut hw = vec![1u8];
    hw.extend_from_slice(b"0\n2\norders 0 42\n__consumer_offsets 7 3\n");
    write(dir, "checkpoints", "high-watermarks", &hw);

    // log_append: appends, a follower append at the log end, markers, a roll, truncation, a
    // clean and a crashed reopen.
    let mut ops = vec![0u8];
    entry(&mut ops, 0, 1, &batch(Compression::None, Some((5, 0, 0)), false, 3));
    entry(&mut ops, 0, 1, &batch(Compression::Snappy, Some((6, 0, 0)), true, 2));
    entry(&mut ops, 2, 6 << 1, &[]);
    entry(&mut ops, 4, 0, &[]);
    let mut follower = BytesMut::from(&batch(Compression::Lz4, None, false, 2)[..]);
    vltava_record::set_base_offset(&mut follower, 6);
    vltava_record::set_partition_leader_epoch(&mut follower, 2);
    entry(&mut ops, 1, 0, &follower);
    entry(&mut ops, 7, 0, &[]);
    entry(&mut ops, 0, 2, &batch(Compression::Gzip, Some((5, 0, 3)), false, 2));
    entry(&mut ops, 3, 4, &[]);
    entry(&mut ops, 7, 1, &[]);
    entry(&mut ops, 5, 0, &[]);
    write(dir, "log_append", "operations", &ops);
    let mut compacted = vec![1u8];
    entry(&mut compacted, 0, 1, &batch(Compression::None, None, false, 6));
    entry(&mut compacted, 4, 0, &[]);
    entry(&mut compacted, 0, 1, &batch(Compression::None, None, false, 6));
    entry(&mut compacted, 5, 0, &[]);
    write(dir, "log_append", "compacted", &compacted);
}

fn grpc(dir: &Path) {
    let records = batch(Compression::Lz4, Some((3, 0, 0)), false, 4);
    let produce =
        pb::ProduceRequest { topic: "orders".into(), partition: 1, acks: -1, timeout_ms: 0, records: records.clone() };
    let mut seed = vec![0u8];
    seed.extend_from_slice(&produce.encode_to_vec());
    write(dir, "grpc_requests", "produce", &seed);
    let mut stored = BytesMut::from(&records[..]);
    vltava_record::set_base_offset(&mut stored, 10);
    let fetched = pb::ReplicaFetchResponse {
        partitions: vec![pb::ReplicaFetchPartitionData { records: stored.freeze(), ..Default::default() }],
    };
    let mut seed = vec![1u8];
    seed.extend_from_slice(&fetched.encode_to_vec());
    write(dir, "grpc_requests", "replica-fetch", &seed);
    let commit = pb::CommitOffsetsRequest { group_id: "payments".into(), ..Default::default() };
    let mut seed = vec![2u8];
    seed.extend_from_slice(&commit.encode_to_vec());
    write(dir, "grpc_requests", "commit", &seed);
}

fn frame<T: Encodable>(api: ApiKey, version: i16, body: &T) -> Option<Bytes> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("fuzz-seed")));
    let mut out = BytesMut::new();
    header.encode(&mut out, api.request_header_version(version)).ok()?;
    body.encode(&mut out, version).ok()?;
    Some(out.freeze())
}

fn kafka(dir: &Path) {
    let records = batch(Compression::Zstd, Some((3, 0, 0)), false, 3);
    let produce = ProduceRequest::default().with_acks(-1).with_timeout_ms(1000).with_topic_data(vec![
        kafka_protocol::messages::produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("orders")))
            .with_partition_data(vec![
                kafka_protocol::messages::produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records)),
            ]),
    ]);
    let metadata = MetadataRequest::default().with_topics(Some(vec![
        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("orders")))),
    ]));
    for served in SUPPORTED {
        for version in [served.min, served.max] {
            let body = match served.api {
                ApiKey::Produce => frame(served.api, version, &produce),
                ApiKey::Metadata => frame(served.api, version, &metadata),
                ApiKey::Fetch => frame(served.api, version, &FetchRequest::default()),
                ApiKey::ListOffsets => frame(served.api, version, &ListOffsetsRequest::default()),
                ApiKey::OffsetCommit => frame(served.api, version, &OffsetCommitRequest::default()),
                ApiKey::OffsetFetch => frame(served.api, version, &OffsetFetchRequest::default()),
                ApiKey::FindCoordinator => frame(served.api, version, &FindCoordinatorRequest::default()),
                ApiKey::JoinGroup => frame(served.api, version, &JoinGroupRequest::default()),
                ApiKey::Heartbeat => frame(served.api, version, &HeartbeatRequest::default()),
                ApiKey::LeaveGroup => frame(served.api, version, &LeaveGroupRequest::default()),
                ApiKey::SyncGroup => frame(served.api, version, &SyncGroupRequest::default()),
                ApiKey::DescribeGroups => frame(served.api, version, &DescribeGroupsRequest::default()),
                ApiKey::ListGroups => frame(served.api, version, &ListGroupsRequest::default()),
                ApiKey::ApiVersions => frame(served.api, version, &ApiVersionsRequest::default()),
                ApiKey::CreateTopics => frame(served.api, version, &CreateTopicsRequest::default()),
                ApiKey::DeleteTopics => frame(served.api, version, &DeleteTopicsRequest::default()),
                ApiKey::InitProducerId => frame(served.api, version, &InitProducerIdRequest::default()),
                ApiKey::OffsetForLeaderEpoch => frame(served.api, version, &OffsetForLeaderEpochRequest::default()),
                ApiKey::AddPartitionsToTxn => frame(served.api, version, &AddPartitionsToTxnRequest::default()),
                ApiKey::AddOffsetsToTxn => frame(served.api, version, &AddOffsetsToTxnRequest::default()),
                ApiKey::EndTxn => frame(served.api, version, &EndTxnRequest::default()),
                ApiKey::TxnOffsetCommit => frame(served.api, version, &TxnOffsetCommitRequest::default()),
                ApiKey::DescribeConfigs => frame(served.api, version, &DescribeConfigsRequest::default()),
                ApiKey::AlterConfigs => frame(served.api, version, &AlterConfigsRequest::default()),
                ApiKey::CreatePartitions => frame(served.api, version, &CreatePartitionsRequest::default()),
                ApiKey::DeleteGroups => frame(served.api, version, &DeleteGroupsRequest::default()),
                ApiKey::IncrementalAlterConfigs => {
                    frame(served.api, version, &IncrementalAlterConfigsRequest::default())
                }
                ApiKey::OffsetDelete => frame(served.api, version, &OffsetDeleteRequest::default()),
                ApiKey::DescribeCluster => frame(served.api, version, &DescribeClusterRequest::default()),
                ApiKey::ConsumerGroupHeartbeat => frame(served.api, version, &ConsumerGroupHeartbeatRequest::default()),
                other => panic!("no seed for served API {other:?}"),
            };
            let body = body.unwrap_or_else(|| panic!("encoding {} v{version}", served.name));
            write(dir, "kafka_frames", &format!("{}-v{version}", served.name), &body);
        }
    }
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/seeds".into()));
    record_batches(&dir);
    storage(&dir);
    grpc(&dir);
    kafka(&dir);
    // Sanity: every seed batch decodes.
    let batch = RecordBatch::parse(batch(Compression::Zstd, None, false, 2)).expect("a seed batch frames");
    batch.validate().expect("a seed batch is valid");
    println!("seeds written under {}", dir.display());
}
