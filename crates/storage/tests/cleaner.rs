//! The log cleaner's choices: the dirty ratio and the compaction lags, the first dirty offset
//! across restarts, merged segments (and an interrupted merge), transaction markers and
//! producers' last batches.

mod common;

use bytes::Bytes;
use common::*;
use vltava_record::{BatchBuilder, Compression, Marker, MarkerKind, RecordBatch, batches};
use vltava_storage::{Log, LogConfig};

/// Every stored batch, from the log start.
fn stored_batches(log: &Log) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut at = log.log_start_offset();
    while at < log.log_end_offset() {
        let read = log.read(at, 1 << 20, None).unwrap();
        let got: Vec<RecordBatch> = batches(read.records).map(Result::unwrap).collect();
        let Some(last) = got.last() else { break };
        at = last.next_offset();
        out.extend(got);
    }
    out
}

/// `(key, value)` of every record, from the log start.
fn key_values(log: &Log) -> Vec<(String, Option<String>)> {
    let text = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8(b.to_vec()).unwrap());
    stored_batches(log)
        .iter()
        .filter(|b| !b.is_control())
        .flat_map(|b| b.records().unwrap())
        .map(|r| (text(&r.key).unwrap(), text(&r.value)))
        .collect()
}

#[test]
fn the_dirty_ratio_decides_when_a_log_needs_cleaning_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config()).unwrap();
    for i in 0..200i64 {
        log.append(put((i % 40) as u8, Some(&format!("v{i}")), 1_000 + i), 0, 1_000 + i).unwrap();
    }
    let stats = log.dirty_stats(2_000).unwrap();
    assert_eq!((stats.clean_bytes, stats.first_dirty_offset), (0, 0), "{stats:?}");
    assert!(stats.dirty_bytes > 0 && stats.ratio() == 1.0, "{stats:?}");
    assert!(log.needs_cleaning(2_000));

    log.clean(2_000, 1_000).unwrap();
    let stats = log.dirty_stats(2_000).unwrap();
    assert_eq!((stats.dirty_bytes, stats.ratio()), (0, 0.0), "{stats:?}");
    assert_eq!(stats.first_dirty_offset, stats.first_uncleanable_offset);
    assert_eq!(stats.last_clean_ms, Some(2_000));
    assert!(!log.needs_cleaning(2_000));

    // A little more data: dirty, but below the ratio, until max.compaction.lag.ms is passed.
    let end = log.log_end_offset();
    for i in 0..4i64 {
        log.append(put((i % 4) as u8, Some(&format!("w{i}")), 3_000 + i), 0, 3_000 + i).unwrap();
    }
    log.roll(3_100).unwrap();
    let stats = log.dirty_stats(3_100).unwrap();
    assert!(stats.dirty_bytes > 0 && stats.ratio() < 0.5, "{stats:?}");
    assert!(!log.needs_cleaning(3_100));
    log.set_config(LogConfig { max_compaction_lag_ms: 60_000, ..compact_config() });
    assert!(!log.needs_cleaning(3_100));
    assert!(log.needs_cleaning(3_000 + 60_001), "overdue by max.compaction.lag.ms");
    log.set_config(LogConfig { min_cleanable_dirty_ratio: 0.01, ..compact_config() });
    assert!(log.needs_cleaning(3_100));

    // The first dirty offset is checkpointed.
    log.set_config(compact_config());
    drop(log);
    let log = Log::open(dir.path(), compact_config()).unwrap();
    let stats = log.dirty_stats(3_100).unwrap();
    assert!(stats.first_dirty_offset <= end && stats.clean_bytes > 0, "{stats:?}");
    assert_eq!(stats.last_clean_ms, None, "not remembered across restarts");
}

#[test]
fn segments_younger_than_min_compaction_lag_are_not_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let lagged = LogConfig { min_compaction_lag_ms: 10_000, ..compact_config() };
    let mut log = Log::open(dir.path(), lagged.clone()).unwrap();
    for i in 0..60i64 {
        log.append(put(1, Some(&format!("v{i}")), 1_000 + i), 0, 1_000 + i).unwrap();
    }
    assert_eq!(log.clean(5_000, 1_000).unwrap().records_removed, 0);
    assert_eq!(key_values(&log).len(), 60);
    assert!(log.dirty_stats(5_000).unwrap().dirty_bytes == 0, "nothing cleanable yet");
    let outcome = log.clean(20_000, 1_000).unwrap();
    assert!(outcome.records_removed > 40, "{outcome:?}");
    assert_eq!(key_values(&log).last().unwrap().1.as_deref(), Some("v59"));
}

#[test]
fn max_compaction_lag_rolls_the_active_segment_of_a_compacted_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { max_compaction_lag_ms: 1_000, segment_bytes: 1 << 20, ..compact_config() };
    let mut log = Log::open(dir.path(), config).unwrap();
    log.append(put(1, Some("a"), 1_000), 0, 1_000).unwrap();
    log.append(put(1, Some("b"), 1_500), 0, 1_500).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(put(1, Some("c"), 2_500), 0, 2_500).unwrap();
    assert_eq!(log.segment_count(), 2, "rolled at max.compaction.lag.ms, not segment.ms");
    log.clean(2_500, 1_000).unwrap();
    let values: Vec<_> = key_values(&log).into_iter().map(|(_, v)| v.unwrap()).collect();
    assert_eq!(values, ["b", "c"], "the rolled segment was cleaned; the active one never is");
}

#[test]
fn small_cleaned_segments_are_merged_and_an_interrupted_merge_settles_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config()).unwrap();
    for i in 0..300i64 {
        log.append(put((i % 4) as u8, Some(&format!("v{i}")), 1_000 + i), 0, 1_000 + i).unwrap();
    }
    let before = log.segment_count();
    let expected_tail: Vec<_> = key_values(&log).split_off(key_values(&log).len() - 4);
    // Groups are sized by the segments' sizes before cleaning (as Kafka does): the first pass
    // shrinks the segments, the next one merges them.
    log.clean(5_000, 1_000).unwrap();
    assert_eq!(log.segment_count(), before);
    log.clean(5_000, 1_000).unwrap();
    assert!(log.segment_count() <= 3, "{before} segments became {}", log.segment_count());
    assert_eq!(key_values(&log).split_off(key_values(&log).len() - 4), expected_tail);
    assert!(key_values(&log).len() <= 4 + 8, "{:?}", key_values(&log));
    // The indexes the cleaner wrote find every batch, before and after a clean restart (which
    // trusts index files).
    let check_lookups = |log: &Log| {
        for b in stored_batches(log) {
            for offset in [b.base_offset(), b.last_offset()] {
                let read = log.read(offset, 1, None).unwrap();
                assert_eq!(read.first_offset, b.base_offset(), "offset {offset}");
            }
        }
    };
    check_lookups(&log);
    let path = log.dir().to_path_buf();
    log.close().unwrap();
    let indexes = |path: &std::path::Path| -> Vec<Vec<u8>> {
        let mut files = files_with_ext(path, "index");
        files.extend(files_with_ext(path, "timeindex"));
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    };
    let written = indexes(&path);
    let log = Log::open(&path, compact_config()).unwrap();
    check_lookups(&log);
    assert_eq!(indexes(&path), written, "opening found nothing to rebuild");
    drop(log);

    // A crash after a merged segment was committed (`.swap`) but before the segments it merged
    // were deleted: opening finishes the merge.
    let mut log = Log::open(tempfile::tempdir().unwrap().keep(), compact_config()).unwrap();
    for i in 0..40i64 {
        log.append(put(i as u8, Some(&format!("v{i}")), 1_000 + i), 0, 1_000 + i).unwrap();
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 4, "{bases:?}");
    let everything = key_values(&log);
    let path = log.dir().to_path_buf();
    log.close().unwrap();
    let mut merged = Vec::new();
    for base in &bases[..3] {
        merged.extend(std::fs::read(path.join(format!("{base:020}.log"))).unwrap());
    }
    std::fs::write(path.join(format!("{:020}.log.swap", bases[0])), merged).unwrap();
    let log = Log::open(&path, compact_config()).unwrap();
    assert_eq!(log.segment_base_offsets()[1], bases[3], "the merged segments are gone");
    assert_eq!(key_values(&log), everything);
    std::fs::remove_dir_all(path).unwrap();
}

/// A transaction of producer 9 writing `key` = `value`, ended by a marker at `ts`.
fn transaction(log: &mut Log, epoch_seq: i32, key: &[u8], value: &[u8], kind: MarkerKind, ts: i64) {
    let mut b = BatchBuilder::new(Compression::None).with_producer(9, 0, epoch_seq);
    b.set_transactional(true);
    b.append(ts, Some(key), Some(value), &[]);
    log.append(b.build(), 0, ts).unwrap();
    log.append_marker(9, 0, Marker { kind, coordinator_epoch: 0 }, 0, ts).unwrap();
}

fn markers(log: &Log) -> usize {
    stored_batches(log).iter().filter(|b| b.is_control()).count()
}

#[test]
fn a_marker_goes_once_its_transaction_left_nothing_and_it_is_past_delete_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config()).unwrap();
    transaction(&mut log, 0, b"key-1", b"committed, then replaced", MarkerKind::Commit, 1_000);
    transaction(&mut log, 1, b"key-2", b"aborted", MarkerKind::Abort, 1_001);
    transaction(&mut log, 2, b"key-3", b"committed and kept", MarkerKind::Commit, 1_002);
    for i in 0..30i64 {
        log.append(put(1, Some(&format!("v{i}")), 1_100 + i), 0, 1_100 + i).unwrap();
    }
    assert_eq!(markers(&log), 3);
    // Within delete.retention.ms every marker stays, even where its data is gone.
    log.clean(1_500, 1_000).unwrap();
    assert_eq!(markers(&log), 3);
    assert!(!key_values(&log).iter().any(|(k, _)| k == "key-2"), "aborted data removed");
    // Past it, the markers of the replaced and the aborted transactions go; the third stays.
    let outcome = log.clean(10_000, 1_000).unwrap();
    assert_eq!((outcome.markers_removed, markers(&log)), (2, 1), "{outcome:?}");
    let values = key_values(&log);
    assert!(values.contains(&("key-3".into(), Some("committed and kept".into()))), "{values:?}");
    assert_eq!(log.first_unstable_offset(), None);
    // Reopened (the producer state rebuilt), no transaction looks open.
    drop(log);
    for snapshot in files_with_ext(dir.path(), "snapshot") {
        std::fs::remove_file(snapshot).unwrap();
    }
    let log = Log::open(dir.path(), compact_config()).unwrap();
    assert_eq!(log.first_unstable_offset(), None);
}

#[test]
fn a_producers_last_batch_keeps_its_header_so_its_sequence_survives_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config()).unwrap();
    for seq in 0..3 {
        let mut b = BatchBuilder::new(Compression::Zstd).with_producer(5, 0, seq);
        b.append(1_000, Some(b"key-1"), Some(format!("idempotent {seq}").as_bytes()), &[]);
        log.append(b.build(), 0, 1_000).unwrap();
    }
    for i in 0..30i64 {
        log.append(put(1, Some(&format!("v{i}")), 1_100 + i), 0, 1_100 + i).unwrap();
    }
    log.clean(10_000, 1_000).unwrap();
    let of_producer: Vec<RecordBatch> = stored_batches(&log).into_iter().filter(|b| b.producer_id() == 5).collect();
    assert_eq!(of_producer.len(), 1, "only the last batch stays");
    assert_eq!(
        (of_producer[0].record_count(), of_producer[0].base_sequence(), of_producer[0].base_offset()),
        (0, 2, 2)
    );
    assert!(!key_values(&log).iter().any(|(_, v)| v.as_deref().is_some_and(|v| v.starts_with("idempotent"))));
    drop(log);
    for snapshot in files_with_ext(dir.path(), "snapshot") {
        std::fs::remove_file(snapshot).unwrap();
    }
    let log = Log::open(dir.path(), compact_config()).unwrap();
    assert_eq!(log.producer_state(5).and_then(|p| p.last_seq()), Some(2));
}

#[test]
fn cleaned_segments_are_written_with_the_topics_codec() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config()).unwrap();
    for i in 0..40i64 {
        log.append(put((i % 20) as u8, Some(&format!("v{i}")), 1_000 + i), 0, 1_000 + i).unwrap();
    }
    // compression.type changes to zstd after the data was written uncompressed.
    log.set_config(LogConfig { compression_type: vltava_storage::CompressionType::Zstd, ..compact_config() });
    let before = key_values(&log);
    log.clean(5_000, 1_000).unwrap();
    let active = *log.segment_base_offsets().last().unwrap();
    let cleaned: Vec<RecordBatch> = stored_batches(&log).into_iter().filter(|b| b.base_offset() < active).collect();
    assert!(!cleaned.is_empty());
    assert!(cleaned.iter().all(|b| b.compression().unwrap() == Compression::Zstd));
    let after = key_values(&log);
    assert_eq!(after, before[before.len() - after.len()..], "the latest 20 values, unchanged");
}

#[test]
fn a_first_segment_emptied_by_the_cleaner_does_not_move_the_log_start_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config()).unwrap();
    // The first segment holds key-1 only; later segments replace it.
    for i in 0..5i64 {
        log.append(put(1, Some(&format!("old{i}")), 1_000 + i), 0, 1_000 + i).unwrap();
    }
    log.roll(1_010).unwrap();
    for i in 0..30i64 {
        log.append(put((i % 3) as u8, Some(&format!("v{i}")), 1_100 + i), 0, 1_100 + i).unwrap();
    }
    log.clean(5_000, 1_000).unwrap();
    let expected = key_values(&log);
    assert!(!expected.iter().any(|(_, v)| v.as_deref().is_some_and(|v| v.starts_with("old"))));
    drop(log);
    let log = Log::open(dir.path(), compact_config()).unwrap();
    assert_eq!(log.log_start_offset(), 0, "no record was deleted below the first kept one");
    assert_eq!(key_values(&log), expected);
    assert!(!log.read(0, 1 << 20, None).unwrap().records.is_empty(), "a read at the log start finds the data");
}
