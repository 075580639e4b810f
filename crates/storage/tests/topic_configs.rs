//! Topic configs the leader applies to produced batches: `compression.type` (recompression),
//! `message.timestamp.type=LogAppendTime` and the CreateTime window
//! (`message.timestamp.before.max.ms` / `after.max.ms`).

mod common;

use bytes::Bytes;
use common::*;
use vltava_record::{BatchBuilder, Compression, RecordBatch, batches};
use vltava_storage::{CompressionType, Log, LogConfig, StorageError, TimestampType};

fn produced(pid: i64, seq: i32, values: &[&str], ts: i64) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None).with_producer(pid, 0, seq);
    for v in values {
        b.append(ts, Some(b"k"), Some(v.as_bytes()), &[]);
    }
    b.build()
}

fn stored(log: &Log) -> Vec<RecordBatch> {
    let read = log.read(0, usize::MAX, None).unwrap();
    batches(read.records).map(|b| b.unwrap()).collect()
}

#[test]
fn a_topic_codec_recompresses_produced_batches_once_keeping_records_and_dedup() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { compression_type: CompressionType::Zstd, ..small_config() };
    let mut log = Log::open(dir.path(), config).unwrap();
    let original = produced(5, 0, &["a", "b", "c"], 1_000);
    log.append(original.clone(), 0, 2_000).unwrap();
    let batch = &stored(&log)[0];
    batch.validate().unwrap();
    assert_eq!(batch.compression().unwrap(), Compression::Zstd, "stored with the topic's codec");
    let expected = RecordBatch::parse(original.clone()).unwrap().records().unwrap();
    assert_eq!(batch.records().unwrap(), expected);
    assert_eq!((batch.producer_id(), batch.base_sequence()), (5, 0));
    // The producer's retry (uncompressed, as it sent it) is still recognised.
    let retry = log.append(original, 0, 3_000).unwrap();
    assert_eq!((retry.duplicates, retry.first_offset), (1, 0));
    // A follower stores the leader's bytes as they are.
    let follower_dir = tempfile::tempdir().unwrap();
    let mut follower = Log::open(follower_dir.path(), LogConfig::default()).unwrap();
    follower.append_as_follower(log.read(0, usize::MAX, None).unwrap().records).unwrap();
    assert_eq!(stored(&follower)[0].compression().unwrap(), Compression::Zstd);
}

#[test]
fn log_append_time_stamps_the_leaders_clock_on_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { message_timestamp_type: TimestampType::LogAppendTime, ..small_config() };
    let mut log = Log::open(dir.path(), config).unwrap();
    let info = log.append(produced(-1, -1, &["x", "y"], 1_000), 0, 77_777).unwrap();
    assert_eq!(info.log_append_time, 77_777);
    let batch = &stored(&log)[0];
    batch.validate().unwrap();
    assert!(batch.is_log_append_time());
    assert!(batch.records().unwrap().iter().all(|r| r.timestamp == 77_777));
    let create_time = Log::open(tempfile::tempdir().unwrap().path(), small_config())
        .unwrap()
        .append(produced(-1, -1, &["x"], 1_000), 0, 77_777)
        .unwrap();
    assert_eq!(create_time.log_append_time, -1);
}

#[test]
fn create_times_outside_the_window_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        LogConfig { message_timestamp_before_max_ms: 60_000, message_timestamp_after_max_ms: 1_000, ..small_config() };
    let mut log = Log::open(dir.path(), config).unwrap();
    let now = 1_000_000;
    for (ts, ok) in
        [(now, true), (now - 60_000, true), (now - 60_001, false), (now + 1_000, true), (now + 1_001, false)]
    {
        let result = log.append(produced(-1, -1, &["v"], ts), 0, now);
        match (ok, result) {
            (true, Ok(_)) => {}
            (false, Err(StorageError::InvalidTimestamp { timestamp, .. })) => assert_eq!(timestamp, ts),
            (ok, other) => panic!("timestamp {ts}: expected ok={ok}, got {other:?}"),
        }
    }
    assert_eq!(log.log_end_offset(), 3, "the refused batches wrote nothing");
}

#[test]
fn a_compacted_topic_refuses_records_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig { compact: true, ..small_config() }).unwrap();
    log.append(produced(-1, -1, &["keyed"], 1_000), 0, 1_000).unwrap();
    let mut b = BatchBuilder::new(Compression::None);
    b.append(1_000, Some(b"k"), Some(b"v"), &[]);
    b.append(1_000, None, Some(b"no key"), &[]);
    let e = log.append(b.build(), 0, 1_000).unwrap_err();
    assert!(matches!(e, StorageError::InvalidRecord { .. }), "{e}");
    assert_eq!(log.log_end_offset(), 1, "nothing of the refused batch is stored");
}
