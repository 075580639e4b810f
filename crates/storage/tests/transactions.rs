//! Specifications of transactions in the log: open transactions bound the first unstable
//! offset, markers end them, aborted ones land in the `.txnindex`, and all of it survives
//! close, crash, truncation and replication.

mod common;

use std::path::Path;

use bytes::Bytes;
use common::*;
use vltava_record::{
    AbortedTransaction, BatchBuilder, Compression, Marker, MarkerKind, decode_fetched_committed, marker_batch,
};
use vltava_storage::{AbortedTxn, Log, StorageError};

const P1: i64 = 7;
const P2: i64 = 8;

/// A transactional batch of `count` records from `pid` with sequence numbers from `seq`.
fn txn(pid: i64, seq: i32, count: usize, tag: &str) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None).with_producer(pid, 0, seq);
    b.set_transactional(true);
    for i in 0..count {
        b.append(1_000, None, Some(format!("{tag}-{i}").as_bytes()), &[]);
    }
    b.build()
}

fn end(log: &mut Log, pid: i64, kind: MarkerKind) -> i64 {
    log.append_marker(pid, 0, Marker { kind, coordinator_epoch: 0 }, 0, 1_000).unwrap()
}

fn open(dir: &Path) -> Log {
    Log::open(dir, small_config()).unwrap()
}

/// What a read_committed consumer of the whole log sees.
fn committed_values(log: &Log) -> Vec<String> {
    let upper = log.first_unstable_offset().unwrap_or(log.log_end_offset());
    let read = log.read(0, usize::MAX, Some(upper)).unwrap();
    let aborted: Vec<AbortedTransaction> = log
        .aborted_transactions(0, upper)
        .into_iter()
        .map(|a| AbortedTransaction { producer_id: a.producer_id, first_offset: a.first_offset })
        .collect();
    decode_fetched_committed(read.records, 0, true, &aborted).unwrap().records.iter().map(value).collect()
}

#[test]
fn given_an_open_transaction_the_first_unstable_offset_stays_at_its_start_until_its_marker() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    log.append(batch("plain", 2, 1_000, 0), 0, 0).unwrap();
    assert_eq!(log.first_unstable_offset(), None);
    log.append(txn(P1, 0, 2, "t1"), 0, 0).unwrap(); // offsets 2-3
    log.append(txn(P2, 0, 1, "t2"), 0, 0).unwrap(); // offset 4
    log.append(txn(P1, 2, 1, "t1b"), 0, 0).unwrap(); // offset 5
    assert_eq!(log.first_unstable_offset(), Some(2));
    assert_eq!(committed_values(&log), ["plain-0", "plain-1"]);
    assert_eq!(end(&mut log, P1, MarkerKind::Commit), 6);
    assert_eq!(log.first_unstable_offset(), Some(4), "P2's transaction is still open");
    assert_eq!(end(&mut log, P2, MarkerKind::Abort), 7);
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(committed_values(&log), ["plain-0", "plain-1", "t1-0", "t1-1", "t1b-0"]);
    let aborted = log.aborted_transactions(0, 8);
    assert_eq!(aborted, vec![AbortedTxn { producer_id: P2, first_offset: 4, last_offset: 7, last_stable_offset: 8 }]);
}

#[test]
fn given_a_closed_or_crashed_log_the_open_transactions_and_aborted_index_survive() {
    for crash in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        // Enough data for several segments (1 KiB each), so snapshots and several txnindex files exist.
        for round in 0..6 {
            log.append(txn(P1, round * 3, 3, &format!("a{round}")), 0, 0).unwrap();
            end(&mut log, P1, MarkerKind::Abort);
            log.append(batch(&format!("p{round}"), 3, 1_000, 100), 0, 0).unwrap();
        }
        log.append(txn(P2, 0, 2, "open"), 0, 0).unwrap();
        let open_at = log.log_end_offset() - 2;
        let before = committed_values(&log);
        assert_eq!(log.aborted_transactions(0, i64::MAX).len(), 6);
        assert!(log.segment_count() > 2);
        assert!(!files_with_ext(dir.path(), "txnindex").is_empty());
        if crash {
            drop(log);
        } else {
            log.close().unwrap();
        }
        let mut log = open(dir.path());
        assert_eq!(log.first_unstable_offset(), Some(open_at), "crash: {crash}");
        assert_eq!(log.aborted_transactions(0, i64::MAX).len(), 6, "crash: {crash}");
        assert_eq!(committed_values(&log), before, "crash: {crash}");
        assert!(before.iter().all(|v| v.starts_with('p')), "{before:?}");
        end(&mut log, P2, MarkerKind::Commit);
        assert_eq!(log.first_unstable_offset(), None);
    }
}

#[test]
fn given_a_damaged_or_missing_txnindex_the_log_rebuilds_it_from_the_markers() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    for round in 0..4 {
        log.append(txn(P1, round * 3, 3, &format!("a{round}")), 0, 0).unwrap();
        end(&mut log, P1, MarkerKind::Abort);
        log.append(batch(&format!("p{round}"), 3, 1_000, 100), 0, 0).unwrap();
    }
    let expected = log.aborted_transactions(0, i64::MAX);
    log.close().unwrap();
    let files = files_with_ext(dir.path(), "txnindex");
    std::fs::write(&files[0], b"torn").unwrap();
    std::fs::remove_file(files.last().unwrap()).unwrap();
    let log = open(dir.path());
    assert_eq!(log.aborted_transactions(0, i64::MAX), expected);
}

#[test]
fn given_a_truncation_below_a_marker_the_transaction_is_open_again_and_its_abort_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    log.append(txn(P1, 0, 2, "t"), 0, 0).unwrap();
    let marker = end(&mut log, P1, MarkerKind::Abort);
    assert_eq!(log.aborted_transactions(0, 10).len(), 1);
    log.truncate_to(marker).unwrap();
    assert_eq!(log.first_unstable_offset(), Some(0));
    assert!(log.aborted_transactions(0, 10).is_empty());
    assert!(files_with_ext(dir.path(), "txnindex").is_empty());
}

#[test]
fn given_replicated_markers_a_follower_tracks_the_transactions_as_its_leader_did() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let mut leader = open(leader_dir.path());
    let mut follower = open(follower_dir.path());
    leader.append(txn(P1, 0, 2, "a"), 0, 0).unwrap();
    leader.append(txn(P2, 0, 2, "b"), 0, 0).unwrap();
    end(&mut leader, P1, MarkerKind::Abort);
    let read = leader.read(0, usize::MAX, None).unwrap();
    follower.append_as_follower(read.records).unwrap();
    assert_eq!(follower.first_unstable_offset(), Some(2));
    assert_eq!(follower.aborted_transactions(0, 10), leader.aborted_transactions(0, 10));
}

#[test]
fn markers_from_clients_stale_producers_or_stale_coordinators_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let forged = marker_batch(P1, 0, Marker { kind: MarkerKind::Commit, coordinator_epoch: 0 }, 1);
    let e = log.append(forged, 0, 0).unwrap_err();
    assert!(matches!(e, StorageError::InvalidRecord { .. }), "{e}");

    let mut b = BatchBuilder::new(Compression::None).with_producer(P1, 3, 0);
    b.set_transactional(true);
    b.append(1, None, Some(b"x"), &[]);
    log.append(b.build(), 0, 0).unwrap();
    let stale_epoch = log.append_marker(P1, 2, Marker { kind: MarkerKind::Abort, coordinator_epoch: 0 }, 0, 1);
    assert!(matches!(stale_epoch, Err(StorageError::InvalidProducerEpoch { current: 3, got: 2, .. })));
    log.append_marker(P1, 3, Marker { kind: MarkerKind::Commit, coordinator_epoch: 5 }, 0, 1).unwrap();
    let stale_coordinator = log.append_marker(P1, 3, Marker { kind: MarkerKind::Abort, coordinator_epoch: 4 }, 0, 1);
    assert!(matches!(stale_coordinator, Err(StorageError::CoordinatorFenced { current: 5, got: 4, .. })));
    assert_eq!(log.log_end_offset(), 2, "refused markers write nothing");
}
