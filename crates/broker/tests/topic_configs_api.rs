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
