//! Specifications of appending to and reading from the partition log.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use vltava_record::{RecordBatch, batches};
use vltava_storage::{Log, LogConfig, StorageError};

#[test]
fn given_small_segments_when_appending_many_batches_should_roll_and_read_back_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..20 {
        let info = log.append(batch(&format!("b{i}"), 3, 1_000 + i, 50), 5, 10_000).unwrap();
        assert_eq!(info.first_offset, i * 3);
        assert_eq!(info.last_offset, i * 3 + 2);
        assert_eq!(info.record_count, 3);
        assert_eq!(info.batch_count, 1);
    }
    assert_eq!(log.log_end_offset(), 60);
    assert!(log.segment_count() >= 4, "segments: {}", log.segment_count());
    for base in log.segment_base_offsets() {
        assert_eq!(base % 3, 0, "segments start at batch boundaries");
    }
    let records = read_all(&log, 0);
    assert_eq!(records.len(), 60);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        let expected = format!("b{}-{}", i / 3, i % 3);
        assert_eq!(value(r).trim_end_matches('.'), expected);
    }
    let r = log.read(0, 1 << 20, None).unwrap();
    for b in batches(r.records) {
        assert_eq!(b.unwrap().partition_leader_epoch(), 5, "leader epoch stamped");
    }
}

#[test]
fn given_one_append_with_several_batches_should_assign_contiguous_offsets_and_write_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(batch("a", 2, 1, 10), 0, 0).unwrap();
    let payload = concat(&[batch("x", 4, 7, 10), batch("y", 1, 9, 10), batch("z", 2, 8, 10)]);
    let info = log.append(payload.clone(), 3, 0).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (2, 8));
    assert_eq!(info.batch_count, 3);
    assert_eq!(info.record_count, 7);
    assert_eq!(info.bytes, payload.len());
    assert_eq!(info.max_timestamp, 9);
    let r = log.read(2, 1 << 20, None).unwrap();
    let bases: Vec<i64> = batches(r.records).map(|b| b.unwrap().base_offset()).collect();
    assert_eq!(bases, vec![2, 6, 7]);
    assert_eq!(log.size_bytes(), (batch("a", 2, 1, 10).len() + payload.len()) as u64);
}

#[test]
fn given_offset_inside_a_batch_when_reading_should_return_the_whole_containing_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..10 {
        log.append(batch(&i.to_string(), 5, i, 20), 0, 0).unwrap();
    }
    for offset in [0, 3, 12, 27, 49] {
        let r = log.read(offset, 1, None).unwrap();
        let batch = RecordBatch::parse(r.records.clone()).expect("exactly one batch");
        assert_eq!(batch.base_offset(), offset / 5 * 5);
        assert_eq!(r.first_offset, offset / 5 * 5);
        assert!(batch.last_offset() >= offset);
    }
}

#[test]
fn given_max_bytes_smaller_than_a_batch_when_reading_should_still_return_one_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let big = batch("big", 10, 0, 500);
    log.append(big.clone(), 0, 0).unwrap();
    log.append(batch("next", 1, 0, 10), 0, 0).unwrap();
    let r = log.read(0, 10, None).unwrap();
    assert_eq!(r.records.len(), big.len());
    let r = log.read(0, big.len() + 5, None).unwrap();
    assert_eq!(r.records.len(), big.len(), "second batch does not fit");
    let r = log.read(0, 1 << 20, None).unwrap();
    assert_eq!(decode(&r.records).len(), 11);
    assert_eq!((r.log_start_offset, r.log_end_offset), (0, 11));
}

#[test]
fn given_max_offset_when_reading_should_return_only_batches_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    for i in 0..8 {
        log.append(batch(&i.to_string(), 2, 0, 30), 0, 0).unwrap();
    }
    let r = log.read(0, 1 << 20, Some(7)).unwrap();
    let offsets: Vec<i64> = decode(&r.records).iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4, 5], "batch 6-7 straddles the bound");
    assert!(log.read(6, 1 << 20, Some(7)).unwrap().records.is_empty());
    let r = log.read(8, 1 << 20, Some(8)).unwrap();
    assert!(r.records.is_empty());
    assert_eq!(r.first_offset, 8);
    let r = log.read(2, 1 << 20, Some(100)).unwrap();
    assert_eq!(decode(&r.records).last().unwrap().offset, 15, "bound clamped to LEO");
}

#[test]
fn given_offset_outside_the_log_when_reading_should_fail_with_the_valid_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(batch("a", 4, 0, 10), 0, 0).unwrap();
    let r = log.read(4, 100, None).unwrap();
    assert!(r.records.is_empty(), "reading at LEO is empty, not an error");
    assert_eq!(r.first_offset, 4);
    match log.read(5, 100, None) {
        Err(StorageError::OffsetOutOfRange { offset, log_start_offset, log_end_offset }) => {
            assert_eq!((offset, log_start_offset, log_end_offset), (5, 0, 4));
        }
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
    assert!(matches!(log.read(-1, 100, None), Err(StorageError::OffsetOutOfRange { offset: -1, .. })));
}

#[test]
fn given_a_batch_with_bad_crc_when_appending_should_reject_all_and_leave_the_log_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(batch("ok", 2, 0, 10), 0, 0).unwrap();
    let size = log.size_bytes();
    let mut bad = BytesMut::from(&batch("bad", 2, 0, 10)[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let payload = concat(&[batch("good", 1, 0, 10), bad.freeze()]);
    assert!(matches!(log.append(payload, 0, 0), Err(StorageError::CorruptBatch { .. })));
    let truncated = batch("cut", 2, 0, 10).slice(..40);
    assert!(matches!(log.append(truncated, 0, 0), Err(StorageError::CorruptBatch { .. })));
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(log.size_bytes(), size);
    assert_eq!(std::fs::metadata(&files_with_ext(dir.path(), "log")[0]).unwrap().len(), size);
    assert_eq!(log.append(batch("after", 1, 0, 10), 0, 0).unwrap().first_offset, 2);
}

#[test]
fn given_a_batch_over_max_message_bytes_when_appending_should_fail_with_record_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { max_message_bytes: 500, ..LogConfig::default() };
    let mut log = Log::open(dir.path(), config).unwrap();
    let big = batch("big", 10, 0, 100);
    match log.append(concat(&[batch("s", 1, 0, 1), big.clone()]), 0, 0) {
        Err(StorageError::RecordTooLarge { size, max }) => assert_eq!((size, max), (big.len(), 500)),
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn given_an_empty_payload_when_appending_should_do_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let info = log.append(Bytes::new(), 0, 0).unwrap();
    assert_eq!((info.first_offset, info.last_offset, info.batch_count), (0, -1, 0));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn given_an_old_active_segment_when_appending_should_roll_by_segment_ms() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_ms: 1_000, ..LogConfig::default() };
    let mut log = Log::open(dir.path(), config).unwrap();
    log.append(batch("a", 1, 10_000, 10), 0, 10_000).unwrap();
    log.append(batch("b", 1, 10_500, 10), 0, 10_900).unwrap();
    assert_eq!(log.segment_count(), 1, "not old enough yet");
    log.append(batch("c", 1, 11_500, 10), 0, 11_001).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
    log.append(batch("d", 1, 11_600, 10), 0, 11_700).unwrap();
    assert_eq!(log.segment_count(), 2, "new segment measured from its own first batch");
}

#[test]
fn given_explicit_roll_should_start_a_segment_at_leo_and_ignore_empty_active() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.roll(0).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(batch("a", 3, 0, 10), 0, 0).unwrap();
    log.roll(0).unwrap();
    log.roll(0).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 3]);
    assert_eq!(log.recovery_point(), 3, "roll flushes the old segment");
    assert_eq!(log.append(batch("b", 1, 0, 10), 0, 0).unwrap().first_offset, 3);
    assert_eq!(read_all(&log, 0).len(), 4);
}

#[test]
fn given_a_full_offset_index_when_appending_should_roll() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_index_bytes: 24, index_interval_bytes: 0, ..LogConfig::default() };
    let mut log = Log::open(dir.path(), config).unwrap();
    for _ in 0..10 {
        log.append(batch("x", 1, 5, 10), 0, 0).unwrap();
    }
    // Entries at batches 2 and 3 (12 bytes per time-index entry allows two), then a roll.
    assert!(log.segment_count() >= 3, "{}", log.segment_count());
    assert_eq!(read_all(&log, 0).len(), 10);
}

#[test]
fn given_leader_batches_when_appending_as_follower_should_keep_offsets_and_epochs() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let mut leader = Log::open(leader_dir.path(), small_config()).unwrap();
    let mut follower = Log::open(follower_dir.path(), small_config()).unwrap();
    for i in 0..6 {
        leader.append(batch(&i.to_string(), 2, i, 40), 7 + i as i32, 0).unwrap();
    }
    let fetched = leader.read(0, 1 << 20, None).unwrap().records;
    let info = follower.append_as_follower(fetched.clone()).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 11));
    let mirrored = follower.read(0, 1 << 20, None).unwrap().records;
    let epochs: Vec<i32> = batches(mirrored).map(|b| b.unwrap().partition_leader_epoch()).collect();
    assert_eq!(epochs, vec![7, 8, 9, 10, 11, 12]);
    assert_eq!(read_all(&follower, 0), read_all(&leader, 0));

    let again = leader.read(4, 1 << 20, None).unwrap().records;
    match follower.append_as_follower(again) {
        Err(StorageError::NonContiguous { expected, got }) => assert_eq!((expected, got), (12, 4)),
        other => panic!("expected NonContiguous, got {other:?}"),
    }
    assert_eq!(follower.log_end_offset(), 12);
}

#[test]
fn given_timestamps_when_looking_up_by_time_should_find_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    log.append(batch_with_timestamps(&[100, 120, 110]), 0, 0).unwrap(); // 0..=2
    log.append(batch_with_timestamps(&[90, 200, 250]), 0, 0).unwrap(); // 3..=5
    for i in 0..10 {
        log.append(batch_with_timestamps(&[300 + i * 10]), 0, 0).unwrap(); // 6..=15
    }
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 100)));
    assert_eq!(log.offset_for_timestamp(105).unwrap(), Some((1, 120)));
    assert_eq!(log.offset_for_timestamp(121).unwrap(), Some((4, 200)));
    assert_eq!(log.offset_for_timestamp(201).unwrap(), Some((5, 250)));
    assert_eq!(log.offset_for_timestamp(355).unwrap(), Some((12, 360)));
    assert_eq!(log.offset_for_timestamp(390).unwrap(), Some((15, 390)));
    assert_eq!(log.offset_for_timestamp(391).unwrap(), None);
    log.close().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.offset_for_timestamp(355).unwrap(), Some((12, 360)));
    assert_eq!(log.offset_for_timestamp(121).unwrap(), Some((4, 200)));
}

#[test]
fn the_max_timestamp_lookup_finds_the_first_record_with_the_largest_timestamp_below_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.offset_of_max_timestamp(i64::MAX).unwrap(), None, "an empty log has none");
    log.append(batch_with_timestamps(&[100, 500, 110]), 0, 0).unwrap(); // 0..=2
    for i in 0..30 {
        log.append(batch_with_timestamps(&[300 + i]), 0, 0).unwrap(); // 3..=32, over several segments
    }
    log.append(batch_with_timestamps(&[90, 500, 700]), 0, 0).unwrap(); // 33..=35
    log.append(batch_with_timestamps(&[700]), 0, 0).unwrap(); // 36
    assert!(log.segment_count() > 2, "the records span segments");
    assert_eq!(log.offset_of_max_timestamp(i64::MAX).unwrap(), Some((35, 700)), "the first of the ties");
    assert_eq!(log.offset_of_max_timestamp(33).unwrap(), Some((1, 500)), "only below the limit");
    assert_eq!(log.offset_of_max_timestamp(2).unwrap(), Some((1, 500)), "a batch below the limit counts whole");
    assert_eq!(log.offset_of_max_timestamp(0).unwrap(), None);
    log.close().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.offset_of_max_timestamp(i64::MAX).unwrap(), Some((35, 700)), "after a reopen");
}

#[test]
fn given_a_closed_log_when_reopened_should_serve_indexed_reads_and_continue_appending() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..30 {
        log.append(batch(&i.to_string(), 2, 1_000 + i, 30), 0, 0).unwrap();
    }
    let before: Vec<_> = (0..60).map(|o| log.read(o, 1, None).unwrap()).collect();
    log.close().unwrap();
    assert!(dir.path().join(".clean-shutdown").exists());
    for index in files_with_ext(dir.path(), "index") {
        assert_eq!(std::fs::metadata(index).unwrap().len() % 8, 0);
    }
    let non_empty =
        files_with_ext(dir.path(), "timeindex").iter().filter(|p| std::fs::metadata(p).unwrap().len() >= 12).count();
    assert!(non_empty >= 2, "sealed segments have time index entries");
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    assert!(!dir.path().join(".clean-shutdown").exists(), "marker removed on open");
    for (o, expected) in before.iter().enumerate() {
        assert_eq!(&log.read(o as i64, 1, None).unwrap(), expected, "offset {o}");
    }
    assert_eq!(log.append(batch("n", 1, 0, 10), 0, 0).unwrap().first_offset, 60);
    assert_eq!(read_all(&log, 0).len(), 61);
}

#[test]
fn log_can_be_shared_behind_a_rwlock_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(parking_lot::RwLock::new(Log::open(dir.path(), LogConfig::default()).unwrap()));
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for i in 0..50 {
                log.write().append(batch(&i.to_string(), 2, i, 20), 0, 0).unwrap();
            }
        })
    };
    let mut seen = 0;
    while seen < 100 {
        let log = log.read();
        if seen < log.log_end_offset() {
            let r = log.read(seen, 1 << 20, None).unwrap();
            seen = decode(&r.records).last().unwrap().offset + 1;
        }
    }
    writer.join().unwrap();
    assert_eq!(seen, 100);
}
