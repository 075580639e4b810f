//! Specifications of retention, truncation, flushing and deletion.

mod common;

use common::*;
use vltava_storage::{Log, LogConfig, StorageError};

fn filled(dir: &std::path::Path, config: LogConfig, batches: i64) -> Log {
    let mut log = Log::open(dir, config).unwrap();
    for i in 0..batches {
        log.append(batch(&i.to_string(), 3, 1_000 + i * 100, 60), 0, 0).unwrap();
    }
    log
}

#[test]
fn given_retention_bytes_when_applied_should_delete_oldest_segments_and_move_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = filled(dir.path(), small_config(), 30);
    let bases = log.segment_base_offsets();
    let total = log.size_bytes();
    let mut config = small_config();
    config.retention_bytes = 2_000;
    log.set_config(config.clone());
    let outcome = log.apply_retention(0).unwrap();
    assert!(outcome.deleted_segments > 0);
    assert_eq!(log.size_bytes(), total - outcome.deleted_bytes);
    assert!(log.size_bytes() >= 2_000, "never below retention.bytes");
    let first = log.segment_base_offsets()[0];
    assert_eq!(first, bases[outcome.deleted_segments]);
    assert_eq!(outcome.log_start_offset, first);
    assert_eq!(log.log_start_offset(), first);
    assert!(matches!(
        log.read(first - 1, 100, None),
        Err(StorageError::OffsetOutOfRange { log_start_offset, .. }) if log_start_offset == first
    ));
    assert_eq!(read_all(&log, first).len() as i64, 90 - first);
    assert_eq!(log.apply_retention(0).unwrap().deleted_segments, 0, "idempotent");
    drop(log);
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.log_start_offset(), first, "persisted across reopen");
    assert_eq!(log.log_end_offset(), 90);
}

#[test]
fn given_retention_ms_when_applied_should_delete_only_expired_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = filled(dir.path(), small_config(), 30); // timestamps 1000..=3900
    let mut config = small_config();
    config.retention_ms = 1_000;
    log.set_config(config.clone());
    let outcome = log.apply_retention(3_500).unwrap(); // deletes segments whose newest < 2500
    assert!(outcome.deleted_segments > 0);
    let start = log.log_start_offset();
    let oldest_kept = read_all(&log, start)[0].timestamp;
    assert!(oldest_kept <= 2_500, "the first kept segment holds a record >= 2500 at its end");
    let r = log.read(start, 1 << 20, None).unwrap();
    assert!(decode(&r.records).iter().any(|r| r.timestamp >= 2_500));
    log.close().unwrap();
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.log_start_offset(), start);
}

#[test]
fn given_every_segment_expired_when_applied_should_roll_and_leave_an_empty_log_at_leo() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = filled(dir.path(), small_config(), 10);
    let mut config = small_config();
    config.retention_ms = 10;
    log.set_config(config.clone());
    let outcome = log.apply_retention(1_000_000).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), 30);
    assert_eq!(log.log_end_offset(), 30);
    assert_eq!(outcome.log_start_offset, 30);
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(log.apply_retention(2_000_000).unwrap().deleted_segments, 0, "empty active kept");
    assert_eq!(log.append(batch("n", 1, 5, 10), 0, 0).unwrap().first_offset, 30);
    drop(log);
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (30, 31));
}

#[test]
fn given_unlimited_retention_when_applied_should_delete_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = filled(dir.path(), small_config(), 10);
    let outcome = log.apply_retention(i64::MAX).unwrap();
    assert_eq!(outcome.deleted_segments, 0);
    assert_eq!(log.log_start_offset(), 0);
}

#[test]
fn given_a_batch_boundary_when_truncating_should_remove_everything_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = filled(dir.path(), small_config(), 20);
    let bases = log.segment_base_offsets();
    let target = bases[2] + 3;
    log.truncate_to(target).unwrap();
    assert_eq!(log.log_end_offset(), target);
    assert_eq!(log.segment_base_offsets(), bases[..3].to_vec());
    assert_eq!(read_all(&log, 0).len() as i64, target);
    assert_eq!(log.append(batch("new", 2, 0, 10), 0, 0).unwrap().first_offset, target);
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), target + 2);
    let records = read_all(&log, 0);
    assert_eq!(value(&records[target as usize]).trim_end_matches('.'), "new-0");
}

#[test]
fn given_a_segment_base_when_truncating_should_leave_that_segment_empty_and_active() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = filled(dir.path(), small_config(), 20);
    let bases = log.segment_base_offsets();
    log.truncate_to(bases[1]).unwrap();
    assert_eq!(log.segment_base_offsets(), bases[..2].to_vec());
    assert_eq!(log.log_end_offset(), bases[1]);
    log.close().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), bases[1]);
}

#[test]
fn given_an_offset_inside_a_batch_when_truncating_should_remove_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = filled(dir.path(), LogConfig::default(), 5);
    log.truncate_to(7).unwrap();
    assert_eq!(log.log_end_offset(), 6);
    log.truncate_to(100).unwrap();
    assert_eq!(log.log_end_offset(), 6, "beyond LEO is a no-op");
}

#[test]
fn given_an_offset_below_log_start_when_truncating_should_restart_the_log_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = filled(dir.path(), small_config(), 20);
    let mut config = small_config();
    config.retention_bytes = 500;
    log.set_config(config);
    log.apply_retention(0).unwrap();
    let start = log.log_start_offset();
    assert!(start > 5);
    log.truncate_to(5).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (5, 5));
    assert_eq!(log.segment_base_offsets(), vec![5]);
    assert_eq!(log.append(batch("x", 1, 0, 10), 0, 0).unwrap().first_offset, 5);
}

#[test]
fn given_flush_messages_when_enough_records_are_appended_should_advance_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { flush_messages: Some(5), ..LogConfig::default() };
    let mut log = Log::open(dir.path(), config).unwrap();
    log.append(batch("a", 3, 0, 10), 0, 0).unwrap();
    assert_eq!(log.recovery_point(), 0);
    log.append(batch("b", 3, 0, 10), 0, 0).unwrap();
    assert_eq!(log.recovery_point(), 6);
    let on_disk = std::fs::read_to_string(dir.path().join("recovery-point")).unwrap();
    assert_eq!(on_disk.trim(), "6");
}

#[test]
fn given_flush_ms_when_flush_if_due_is_called_should_flush_only_once_the_interval_passed() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { flush_ms: Some(1_000), ..LogConfig::default() };
    let mut log = Log::open(dir.path(), config).unwrap();
    log.append(batch("a", 2, 0, 10), 0, 0).unwrap();
    log.flush_if_due(10_000).unwrap();
    assert_eq!(log.recovery_point(), 2);
    log.append(batch("b", 2, 0, 10), 0, 0).unwrap();
    log.flush_if_due(10_500).unwrap();
    assert_eq!(log.recovery_point(), 2, "not due yet");
    log.flush_if_due(11_000).unwrap();
    assert_eq!(log.recovery_point(), 4);
}

#[test]
fn given_no_flush_policy_when_flush_if_due_is_called_should_leave_it_to_the_os() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(batch("a", 2, 0, 10), 0, 0).unwrap();
    log.flush_if_due(i64::MAX).unwrap();
    assert_eq!(log.recovery_point(), 0);
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 2);
}

#[test]
fn given_a_log_when_deleted_should_remove_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let log = filled(&path, small_config(), 5);
    assert!(path.exists());
    log.delete().unwrap();
    assert!(!path.exists());
}

#[test]
fn given_a_partial_config_when_deserialised_should_default_missing_fields() {
    let config: LogConfig =
        serde_json::from_str(r#"{"segment_bytes": 2048, "flush_ms": 500, "retention_bytes": -1}"#).unwrap();
    assert_eq!(config.segment_bytes, 2048);
    assert_eq!(config.flush_ms, Some(500));
    assert_eq!(config.flush_messages, None);
    assert_eq!(config.retention_ms, LogConfig::default().retention_ms);
    config.validate().unwrap();
}

#[test]
fn given_a_log_when_restarting_it_beyond_its_end_should_hold_nothing_and_append_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = filled(dir.path(), small_config(), 20);
    log.truncate_fully_and_start_at(500).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 500));
    assert!(log.epoch_entries().is_empty(), "the epoch cache is cleared");
    let mut buf = bytes::BytesMut::from(&batch("after", 1, 1_000, 10)[..]);
    vltava_record::set_base_offset(&mut buf, 500);
    vltava_record::set_partition_leader_epoch(&mut buf, 3);
    log.append_as_follower(buf.freeze()).unwrap();
    assert_eq!(log.epoch_entries(), vec![(3, 500)]);
    assert_eq!(log.log_end_offset(), 501);
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 501), "survives reopen");
}
