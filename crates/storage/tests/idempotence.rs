//! Specifications of idempotent appends: duplicates, gaps, epochs, and the producer state
//! surviving close, crash, truncation and replication.

mod common;

use std::path::Path;

use bytes::Bytes;
use common::*;
use vltava_record::{BatchBuilder, Compression};
use vltava_storage::{Log, LogConfig, StorageError};

const PID: i64 = 1_000;

/// A batch of `count` records from producer `pid` with sequence numbers from `seq`.
fn idempotent(pid: i64, epoch: i16, seq: i32, count: usize, tag: &str) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None).with_producer(pid, epoch, seq);
    for i in 0..count {
        b.append(1_000, None, Some(format!("{tag}-{i}").as_bytes()), &[]);
    }
    b.build()
}

fn values(log: &Log) -> Vec<String> {
    read_all(log, log.log_start_offset())
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
        .collect()
}

fn open(dir: &Path) -> Log {
    Log::open(dir, small_config()).unwrap()
}

#[test]
fn given_a_retried_batch_when_appending_should_answer_its_original_offsets_and_store_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    log.append(batch("plain", 2, 1_000, 0), 0, 0).unwrap();
    let first = log.append(idempotent(PID, 0, 0, 3, "a"), 0, 0).unwrap();
    assert_eq!((first.first_offset, first.last_offset, first.duplicates), (2, 4, 0));
    let retry = log.append(idempotent(PID, 0, 0, 3, "a"), 0, 0).unwrap();
    assert_eq!((retry.first_offset, retry.last_offset), (2, 4));
    assert_eq!((retry.duplicates, retry.record_count, retry.batch_base_offsets.clone()), (1, 0, vec![2]));
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(values(&log), ["plain-0", "plain-1", "a-0", "a-1", "a-2"]);
}

#[test]
fn given_a_request_whose_first_batch_was_stored_should_write_only_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    log.append(idempotent(PID, 0, 0, 2, "a"), 0, 0).unwrap();
    let both = concat(&[idempotent(PID, 0, 0, 2, "a"), idempotent(PID, 0, 2, 2, "b")]);
    let info = log.append(both, 0, 0).unwrap();
    assert_eq!(info.batch_base_offsets, vec![0, 2]);
    assert_eq!((info.first_offset, info.last_offset, info.duplicates, info.record_count), (0, 3, 1, 2));
    assert_eq!(values(&log), ["a-0", "a-1", "b-0", "b-1"]);
}

#[test]
fn given_a_sequence_gap_or_a_stale_epoch_should_refuse_the_whole_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    log.append(idempotent(PID, 1, 0, 2, "a"), 0, 0).unwrap();
    let gap = concat(&[idempotent(PID, 1, 2, 1, "ok"), idempotent(PID, 1, 9, 1, "gap")]);
    let e = log.append(gap, 0, 0).unwrap_err();
    assert!(matches!(e, StorageError::OutOfOrderSequence { expected: 3, got: 9, .. }), "{e}");
    let e = log.append(idempotent(PID, 0, 2, 1, "old"), 0, 0).unwrap_err();
    assert!(matches!(e, StorageError::InvalidProducerEpoch { current: 1, got: 0, .. }), "{e}");
    assert_eq!(log.log_end_offset(), 2, "nothing of a refused append is written");
    // The sequence continues where the stored batches left it.
    log.append(idempotent(PID, 1, 2, 1, "c"), 0, 0).unwrap();
    assert_eq!(values(&log), ["a-0", "a-1", "c-0"]);
}

#[test]
fn given_a_closed_or_crashed_log_when_reopened_should_still_recognise_retries() {
    for crash in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        // Enough batches for several segment rolls (1 KiB segments), so snapshots exist.
        for seq in 0..20 {
            log.append(idempotent(PID, 0, seq * 4, 4, &format!("s{seq}")), 0, 0).unwrap();
        }
        assert!(log.segment_count() > 2);
        let leo = log.log_end_offset();
        if crash {
            drop(log);
        } else {
            log.close().unwrap();
        }
        let snapshots = files_with_ext(dir.path(), "snapshot");
        assert!(!snapshots.is_empty() && snapshots.len() <= 2, "{snapshots:?}");
        let mut log = open(dir.path());
        let retry = log.append(idempotent(PID, 0, 76, 4, "s19"), 0, 0).unwrap();
        assert_eq!((retry.duplicates, retry.first_offset), (1, leo - 4), "crash: {crash}");
        let gap = log.append(idempotent(PID, 0, 81, 1, "gap"), 0, 0);
        assert!(matches!(gap, Err(StorageError::OutOfOrderSequence { expected: 80, .. })), "crash: {crash}");
        assert_eq!(log.log_end_offset(), leo);
    }
}

#[test]
fn given_damaged_snapshots_when_opening_should_rebuild_from_the_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    for seq in 0..10 {
        log.append(idempotent(PID, 0, seq * 4, 4, "x"), 0, 0).unwrap();
    }
    log.close().unwrap();
    for path in files_with_ext(dir.path(), "snapshot") {
        std::fs::write(&path, b"not a snapshot").unwrap();
    }
    let mut log = open(dir.path());
    assert_eq!(log.producer_state(PID).unwrap().last_seq(), Some(39));
    assert_eq!(log.append(idempotent(PID, 0, 36, 4, "x"), 0, 0).unwrap().duplicates, 1);
}

#[test]
fn given_a_truncation_should_forget_the_removed_batches_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    for seq in 0..12 {
        log.append(idempotent(PID, 0, seq * 4, 4, "x"), 0, 0).unwrap();
    }
    log.truncate_to(20).unwrap();
    assert_eq!(log.log_end_offset(), 20);
    assert_eq!(log.producer_state(PID).unwrap().last_seq(), Some(19));
    // The batch with sequences 20..23 is gone: sending it again appends it, at offset 20.
    let again = log.append(idempotent(PID, 0, 20, 4, "x"), 0, 0).unwrap();
    assert_eq!((again.duplicates, again.first_offset), (0, 20));
}

#[test]
fn given_replicated_batches_a_follower_should_know_the_producers_as_its_leader_did() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let mut leader = open(leader_dir.path());
    let mut follower = open(follower_dir.path());
    for seq in 0..3 {
        leader.append(idempotent(PID, 2, seq * 2, 2, "r"), 5, 0).unwrap();
    }
    let read = leader.read(0, usize::MAX, None).unwrap();
    follower.append_as_follower(read.records).unwrap();
    // The follower becomes leader: the producer's retry is still a duplicate there.
    let retry = follower.append(idempotent(PID, 2, 4, 2, "r"), 6, 0).unwrap();
    assert_eq!((retry.duplicates, retry.first_offset), (1, 4));
    assert_eq!(follower.log_end_offset(), 6);
}

#[test]
fn given_expired_producers_should_forget_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(idempotent(PID, 0, 0, 1, "e"), 0, 0).unwrap();
    assert_eq!(log.remove_expired_producers(1_500, 1_000), 0);
    assert_eq!(log.remove_expired_producers(2_000, 1_000), 1);
    assert!(log.producer_state(PID).is_none());
    // Forgotten: the next batch may carry any sequence.
    log.append(idempotent(PID, 0, 57, 1, "e"), 0, 0).unwrap();
}
