//! Specifications of the leader-epoch cache (`leader-epoch-checkpoint`) and the high watermark
//! checkpoint (`high-watermark`).

mod common;

use std::fs::{self, OpenOptions};
use std::path::Path;

use bytes::{Bytes, BytesMut};
use common::*;
use vltava_record::{set_base_offset, set_partition_leader_epoch};
use vltava_storage::{Log, LogConfig, StorageError};

const EPOCH_FILE: &str = "leader-epoch-checkpoint";

/// A batch of `count` records as a leader would have stamped it: base offset and epoch.
fn stamped(base: i64, epoch: i32, count: usize) -> Bytes {
    let mut buf = BytesMut::from(&batch(&format!("e{epoch}-o{base}"), count, base, 40)[..]);
    set_base_offset(&mut buf, base);
    set_partition_leader_epoch(&mut buf, epoch);
    buf.freeze()
}

/// Appends one 3-record batch per epoch in `epochs` as leader.
fn append_epochs(log: &mut Log, epochs: &[i32]) {
    for &epoch in epochs {
        log.append(batch("x", 3, 1_000, 60), epoch, 0).unwrap();
    }
}

/// The cache Kafka's rules derive from `(base_offset, epoch)` batches, cut to the log range.
fn derived(batches: &[(i64, i32)], start: i64, end: i64) -> Vec<(i32, i64)> {
    let mut out: Vec<(i32, i64)> = Vec::new();
    for &(base, epoch) in batches.iter().filter(|(base, _)| *base < end) {
        if out.last().is_none_or(|(e, _)| epoch > *e) {
            out.push((epoch, base));
        }
    }
    let below = out.iter().take_while(|(_, s)| *s <= start).count();
    if below > 0 && out[0].1 < start {
        let epoch = out[below - 1].0;
        out.drain(..below);
        out.insert(0, (epoch, start));
    }
    out
}

fn epoch_file(dir: &Path) -> String {
    fs::read_to_string(dir.join(EPOCH_FILE)).unwrap()
}

fn reopen(log: Log, clean: bool, config: LogConfig) -> Log {
    let dir = log.dir().to_path_buf();
    if clean {
        log.close().unwrap()
    } else {
        drop(log)
    }
    Log::open(dir, config).unwrap()
}

#[test]
fn a_log_can_be_shared_behind_a_lock() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
}

#[test]
fn given_leader_appends_across_epochs_should_record_each_new_epoch_at_its_first_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.latest_epoch(), None);
    assert_eq!(log.epoch_entries(), vec![]);
    append_epochs(&mut log, &[0, 0, 2, 2, 5]);
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 6), (5, 12)]);
    assert_eq!(log.latest_epoch(), Some(5));
    assert_eq!(epoch_file(dir.path()), "0\n3\n0 0\n2 6\n5 12\n", "Kafka's text format");
    append_epochs(&mut log, &[3, -1]);
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 6), (5, 12)], "stale or missing epochs are not recorded");
}

#[test]
fn given_an_unchanged_cache_when_appending_should_not_rewrite_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    append_epochs(&mut log, &[1]);
    fs::remove_file(dir.path().join(EPOCH_FILE)).unwrap();
    append_epochs(&mut log, &[1, 1]);
    assert!(!dir.path().join(EPOCH_FILE).exists(), "same epoch: no write");
    append_epochs(&mut log, &[2]);
    assert_eq!(epoch_file(dir.path()), "0\n2\n1 0\n2 9\n");
}

#[test]
fn given_follower_batches_should_record_the_epochs_they_carry() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let payload = concat(&[stamped(0, 1, 3), stamped(3, 1, 3), stamped(6, 3, 3), stamped(9, 4, 2)]);
    log.append_as_follower(payload).unwrap();
    assert_eq!(log.epoch_entries(), vec![(1, 0), (3, 6), (4, 9)]);
    log.append_as_follower(concat(&[stamped(11, 2, 1), stamped(12, 4, 1), stamped(13, 7, 1)])).unwrap();
    assert_eq!(log.epoch_entries(), vec![(1, 0), (3, 6), (4, 9), (7, 13)]);
    assert_eq!(epoch_file(dir.path()), "0\n4\n1 0\n3 6\n4 9\n7 13\n");
}

#[test]
fn given_a_rejected_follower_append_should_leave_the_cache_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append_as_follower(stamped(0, 1, 3)).unwrap();
    // An offset going backwards (a gap forward is what a compacted leader's log has).
    let err = log.append_as_follower(concat(&[stamped(3, 2, 1), stamped(3, 3, 1)])).unwrap_err();
    assert!(matches!(err, StorageError::NonContiguous { expected: 4, got: 3 }));
    assert_eq!(log.epoch_entries(), vec![(1, 0)]);
}

#[test]
fn given_cached_epochs_when_asking_end_offsets_should_answer_every_case() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.end_offset_for_epoch(0), (-1, -1), "empty cache");
    log.append_as_follower(concat(&[stamped(0, 2, 3), stamped(3, 4, 3), stamped(6, 5, 3)])).unwrap();
    assert_eq!(log.end_offset_for_epoch(2), (2, 3), "exact: start of the next epoch");
    assert_eq!(log.end_offset_for_epoch(4), (4, 6));
    assert_eq!(log.end_offset_for_epoch(5), (5, 9), "latest: log end offset");
    assert_eq!(log.end_offset_for_epoch(3), (2, 3), "between: the epoch below");
    assert_eq!(log.end_offset_for_epoch(9), (5, 9), "above latest: latest and log end offset");
    assert_eq!(log.end_offset_for_epoch(1), (-1, -1), "below the first epoch");
    assert_eq!(log.end_offset_for_epoch(-1), (-1, -1), "undefined epoch");
}

#[test]
fn given_a_new_leader_when_assigning_its_epoch_should_record_it_at_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.assign_epoch_start_offset(3, 0).unwrap();
    assert_eq!(log.epoch_entries(), vec![(3, 0)]);
    assert_eq!(log.end_offset_for_epoch(3), (3, 0));
    append_epochs(&mut log, &[3, 3]);
    assert_eq!(log.epoch_entries(), vec![(3, 0)], "the assigned epoch owns the appended batches");
    log.assign_epoch_start_offset(5, 6).unwrap();
    log.assign_epoch_start_offset(4, 6).unwrap();
    log.assign_epoch_start_offset(5, 6).unwrap();
    assert_eq!(log.epoch_entries(), vec![(3, 0), (5, 6)], "no-op when not newer");
    log.assign_epoch_start_offset(6, 6).unwrap();
    assert_eq!(log.epoch_entries(), vec![(3, 0), (6, 6)], "an epoch without batches is replaced");
    assert_eq!(log.end_offset_for_epoch(5), (3, 6));
    assert!(matches!(log.assign_epoch_start_offset(7, 7), Err(StorageError::OffsetOutOfRange { offset: 7, .. })));
    assert_eq!(log.epoch_entries(), vec![(3, 0), (6, 6)]);
    let log = reopen(log, true, LogConfig::default());
    assert_eq!(log.epoch_entries(), vec![(3, 0)], "an epoch starting at the log end is dropped on open (as Kafka)");
}

#[test]
fn given_truncation_should_drop_epochs_starting_at_or_after_the_new_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    append_epochs(&mut log, &[1, 1, 3, 3, 4, 6]);
    assert_eq!(log.epoch_entries(), vec![(1, 0), (3, 6), (4, 12), (6, 15)]);
    log.truncate_to(15).unwrap();
    assert_eq!(log.epoch_entries(), vec![(1, 0), (3, 6), (4, 12)]);
    log.truncate_to(13).unwrap();
    assert_eq!(log.log_end_offset(), 12);
    assert_eq!(log.epoch_entries(), vec![(1, 0), (3, 6)]);
    assert_eq!(log.end_offset_for_epoch(4), (3, 12));
    assert_eq!(epoch_file(dir.path()), "0\n2\n1 0\n3 6\n");
    log.truncate_to(100).unwrap();
    assert_eq!(log.epoch_entries(), vec![(1, 0), (3, 6)], "beyond the end: no-op");
    append_epochs(&mut log, &[7]);
    assert_eq!(log.epoch_entries(), vec![(1, 0), (3, 6), (7, 12)]);
    let log = reopen(log, false, small_config());
    assert_eq!(log.epoch_entries(), vec![(1, 0), (3, 6), (7, 12)]);
}

#[test]
fn given_truncation_below_the_log_start_should_clear_the_cache_and_restart_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    append_epochs(&mut log, &[1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    log.set_config(LogConfig { retention_bytes: 500, ..small_config() });
    log.apply_retention(0).unwrap();
    let start = log.log_start_offset();
    assert!(start > 5);
    log.truncate_to(5).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (5, 5));
    assert_eq!(log.epoch_entries(), vec![]);
    assert_eq!(epoch_file(dir.path()), "0\n0\n");
    log.append_as_follower(concat(&[stamped(5, 9, 2), stamped(7, 11, 2)])).unwrap();
    assert_eq!(log.epoch_entries(), vec![(9, 5), (11, 7)]);
    let log = reopen(log, false, small_config());
    assert_eq!(log.epoch_entries(), vec![(9, 5), (11, 7)]);
    assert_eq!(log.log_start_offset(), 5);
}

#[test]
fn given_retention_should_clamp_the_first_kept_epoch_to_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let epochs: Vec<i32> = (0..30).map(|i| i / 4).collect();
    append_epochs(&mut log, &epochs);
    let batches: Vec<(i64, i32)> = epochs.iter().enumerate().map(|(i, e)| (3 * i as i64, *e)).collect();
    let mut config = small_config();
    config.retention_bytes = 2_000;
    log.set_config(config.clone());
    log.apply_retention(0).unwrap();
    let start = log.log_start_offset();
    assert!(start > 0 && start % 12 != 0, "the new start is inside an epoch: {start}");
    let expected = derived(&batches, start, 90);
    assert_eq!(log.epoch_entries(), expected);
    assert_eq!(log.epoch_entries()[0], ((start / 12) as i32, start));
    assert_eq!(log.end_offset_for_epoch(0), (-1, -1), "epochs removed by retention are unknown");
    let log = reopen(log, true, config.clone());
    assert_eq!(log.epoch_entries(), expected, "clamped cache persisted");
    drop(log);
    fs::remove_file(dir.path().join(EPOCH_FILE)).unwrap();
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.epoch_entries(), expected, "rebuilt from batches and clamped identically");
}

#[test]
fn given_a_cache_when_reopened_clean_or_unclean_should_survive() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config()).unwrap();
        append_epochs(&mut log, &[0, 0, 0, 1, 1, 4, 4, 4, 4, 9, 9, 9]);
        let before = log.epoch_entries();
        assert_eq!(before, vec![(0, 0), (1, 9), (4, 15), (9, 27)]);
        let text = epoch_file(dir.path());
        let log = reopen(log, clean, small_config());
        assert_eq!(log.epoch_entries(), before, "clean: {clean}");
        assert_eq!(log.latest_epoch(), Some(9));
        assert_eq!(epoch_file(dir.path()), text);
    }
}

#[test]
fn given_a_missing_or_garbage_checkpoint_when_opened_should_rebuild_it_from_the_batches() {
    let garbage: [&[u8]; 6] =
        [b"", b"\xff\xfe\x00garbage", b"0\n2\n4 0\n3 9\n", b"0\n3\n0 0\n1 9\n", b"1\n1\n0 0\n", b"0\n0\n"];
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    append_epochs(&mut log, &[0, 0, 0, 1, 1, 4, 4, 4, 4, 9, 9, 9]);
    let before = log.epoch_entries();
    let text = epoch_file(dir.path());
    assert!(log.segment_count() > 2);
    drop(log);
    fs::remove_file(dir.path().join(EPOCH_FILE)).unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.epoch_entries(), before, "rebuilt from a missing file");
    assert_eq!(epoch_file(dir.path()), text, "and written back");
    drop(log);
    for bytes in garbage {
        fs::write(dir.path().join(EPOCH_FILE), bytes).unwrap();
        let log = Log::open(dir.path(), small_config()).unwrap();
        assert_eq!(log.epoch_entries(), before, "rebuilt from {:?}", String::from_utf8_lossy(bytes));
        assert_eq!(epoch_file(dir.path()), text);
        drop(log);
    }
}

#[test]
fn given_an_empty_checkpoint_for_an_empty_log_when_opened_should_keep_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(epoch_file(dir.path()), "0\n0\n", "a new log gets an empty checkpoint");
    drop(log);
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.epoch_entries(), vec![]);
}

#[test]
fn given_a_torn_tail_when_recovered_should_drop_epochs_beyond_the_recovered_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    append_epochs(&mut log, &[1, 1]);
    let end_of_epoch_1 = log.size_bytes();
    append_epochs(&mut log, &[2, 3]);
    assert_eq!(log.epoch_entries(), vec![(1, 0), (2, 6), (3, 9)]);
    drop(log);
    let path = files_with_ext(dir.path(), "log").pop().unwrap();
    OpenOptions::new().write(true).open(&path).unwrap().set_len(end_of_epoch_1 + 30).unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.epoch_entries(), vec![(1, 0)]);
    assert_eq!(log.end_offset_for_epoch(1), (1, 6));
    assert_eq!(epoch_file(dir.path()), "0\n1\n1 0\n", "cut cache written back");
}
