//! Topic configs that change what the leader stores, through the broker's gRPC API (real
//! sockets, real logs): `compression.type`, `message.timestamp.type=LogAppendTime` and the
//! CreateTime window.

mod common;

use bytes::Bytes;
use common::{TestBroker, code};
use vltava_common::time::now_ms;
use vltava_proto::v1::*;
use vltava_record::{BatchBuilder, Compression, RecordBatch, batches};

fn batch(ts: i64, values: &[&str]) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    for v in values {
        b.append(ts, Some(b"k"), Some(v.as_bytes()), &[]);
    }
    b.build()
}

async fn produce(b: &TestBroker, topic: &str, records: Bytes) -> Result<ProduceResponse, tonic::Status> {
    let req = ProduceRequest { topic: topic.into(), partition: 0, acks: -1, timeout_ms: 0, records };
    b.records().await.produce(req).await.map(tonic::Response::into_inner)
}

async fn stored(b: &TestBroker, topic: &str) -> Vec<RecordBatch> {
    let req = FetchRequest {
        max_bytes: 1 << 20,
        partitions: vec![FetchPartition { topic: topic.into(), partition: 0, fetch_offset: 0, partition_max_bytes: 0 }],
        ..Default::default()
    };
    let resp = b.records().await.fetch(req).await.unwrap().into_inner();
    batches(resp.partitions[0].records.clone()).map(|b| b.unwrap()).collect()
}

#[tokio::test]
async fn the_topic_codec_timestamp_type_and_timestamp_window_act_on_produced_batches() {
    let b = TestBroker::start(|_| {}).await;
    b.create_topic("zstd", 1, &[("compression.type", "zstd")]).await;
    b.create_topic("appended", 1, &[("message.timestamp.type", "LogAppendTime")]).await;
    b.create_topic("window", 1, &[("message.timestamp.after.max.ms", "60000")]).await;

    let now = now_ms();
    produce(&b, "zstd", batch(now, &["one", "two"])).await.unwrap();
    let got = stored(&b, "zstd").await;
    assert_eq!(got[0].compression().unwrap(), Compression::Zstd, "stored with the topic's codec");
    // On disk too: the batch attributes in the segment file name zstd.
    let segment = find_file(b.dir.path(), "zstd-0", "00000000000000000000.log");
    let on_disk: Vec<RecordBatch> = batches(Bytes::from(std::fs::read(segment).unwrap())).map(Result::unwrap).collect();
    assert_eq!(on_disk.len(), 1);
    assert_eq!(on_disk[0].compression().unwrap(), Compression::Zstd);
    let values: Vec<_> = got[0].records().unwrap().into_iter().map(|r| r.value.unwrap()).collect();
    assert_eq!(values, [Bytes::from("one"), Bytes::from("two")]);

    let before = now_ms();
    let r = produce(&b, "appended", batch(1_000, &["x"])).await.unwrap();
    assert!(r.log_append_time_ms >= before && r.log_append_time_ms <= now_ms(), "{r:?}");
    let got = stored(&b, "appended").await;
    assert!(got[0].records().unwrap().iter().all(|rec| rec.timestamp == r.log_append_time_ms));
    let plain = produce(&b, "zstd", batch(now, &["three"])).await.unwrap();
    assert_eq!(plain.log_append_time_ms, -1, "CreateTime topics answer -1");

    let e = produce(&b, "window", batch(now_ms() + 3_600_000, &["from the future"])).await.unwrap_err();
    assert_eq!(code(&e), "INVALID_TIMESTAMP", "{e:?}");
    produce(&b, "window", batch(now_ms(), &["now"])).await.unwrap();
    assert_eq!(stored(&b, "window").await.len(), 1, "the refused batch was not stored");
    b.stop().await;
}

#[tokio::test]
async fn a_compacted_topic_keeps_the_latest_value_of_each_key_once_cleaned() {
    let b = TestBroker::start(|c| c.cleaner_interval = std::time::Duration::from_millis(100)).await;
    b.create_topic("table", 1, &[("cleanup.policy", "compact"), ("segment.bytes", "1024")]).await;
    let now = now_ms();
    for i in 0..200 {
        let mut builder = BatchBuilder::new(Compression::None);
        builder.append(now, Some(format!("key-{}", i % 10).as_bytes()), Some(format!("v{i}").as_bytes()), &[]);
        produce(&b, "table", builder.build()).await.unwrap();
    }
    // A keyless record is refused on a compacted topic.
    let mut keyless = BatchBuilder::new(Compression::None);
    keyless.append(now, None, Some(b"no key"), &[]);
    let e = produce(&b, "table", keyless.build()).await.unwrap_err();
    assert_eq!(code(&e), "INVALID_RECORD", "{e:?}");
    let latest_of = |records: &[(i64, String, String)]| {
        let mut m = std::collections::BTreeMap::new();
        for (_, k, v) in records {
            m.insert(k.clone(), v.clone());
        }
        m
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let records = read_keyed(&b, "table").await;
        let expected: std::collections::BTreeMap<String, String> =
            (190..200).map(|i| (format!("key-{}", i % 10), format!("v{i}"))).collect();
        assert_eq!(latest_of(&records), expected, "every key's latest value, always");
        if records.len() < 60 {
            // Offsets kept: the last record of each key is still at the offset it was produced at.
            assert!(records.iter().any(|(o, k, v)| *o == 199 && k == "key-9" && v == "v199"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never compacted: {} records", records.len());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // DescribeTopic reports the dirty ratio of a compacted partition, -1 for other topics.
    let describe = |name: &str| {
        let name = name.to_string();
        let b = &b;
        async move {
            let req = DescribeTopicRequest { name };
            b.admin().await.describe_topic(req).await.unwrap().into_inner().topic.unwrap().partitions[0].dirty_ratio
        }
    };
    // Nothing is written any more: the cleaner brings it below min.cleanable.dirty.ratio.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let ratio = describe("table").await;
        assert!((0.0..=1.0).contains(&ratio), "a compacted partition's ratio: {ratio}");
        if ratio < 0.5 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still dirty: {ratio}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    b.create_topic("plain", 1, &[]).await;
    assert_eq!(describe("plain").await, -1.0);
    b.stop().await;
}

/// Every record of partition 0 as (offset, key, value), fetching from offset 0 to the end.
async fn read_keyed(b: &TestBroker, topic: &str) -> Vec<(i64, String, String)> {
    let mut out = Vec::new();
    let mut next = 0;
    for _ in 0..1_000 {
        let req = FetchRequest {
            max_bytes: 1 << 20,
            partitions: vec![FetchPartition {
                topic: topic.into(),
                partition: 0,
                fetch_offset: next,
                partition_max_bytes: 0,
            }],
            ..Default::default()
        };
        let resp = b.records().await.fetch(req).await.unwrap().into_inner();
        let got = vltava_record::decode_fetched(resp.partitions[0].records.clone(), next, true).unwrap();
        let text = |b: &Option<Bytes>| String::from_utf8(b.clone().unwrap_or_default().to_vec()).unwrap();
        out.extend(got.records.iter().map(|r| (r.offset, text(&r.key), text(&r.value))));
        if got.next_offset == next {
            break;
        }
        next = got.next_offset;
    }
    out
}

/// The file `name` in the partition directory `partition_dir` somewhere under `root`.
fn find_file(root: &std::path::Path, partition_dir: &str, name: &str) -> std::path::PathBuf {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == partition_dir) && path.join(name).exists() {
                    return path.join(name);
                }
                stack.push(path);
            }
        }
    }
    panic!("no {partition_dir}/{name} under {}", root.display())
}
