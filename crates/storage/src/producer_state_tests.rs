//! Unit tests of the sequence checks and the snapshot format.

use super::*;
use vltava_record::increment_sequence;

fn batch(epoch: i16, first_seq: i32, count: i32, first_offset: i64) -> ProducerBatch {
    ProducerBatch {
        producer_id: 7,
        epoch,
        first_seq,
        last_seq: increment_sequence(first_seq, count - 1),
        first_offset,
        last_offset: first_offset + i64::from(count) - 1,
        max_timestamp: 1_000,
        transactional: false,
        control: false,
        marker: None,
        coordinator_epoch: -1,
    }
}

fn entry_after(batches: &[ProducerBatch]) -> ProducerEntry {
    let mut e = ProducerEntry::new(batches[0].epoch);
    batches.iter().for_each(|b| {
        e.apply(b);
    });
    e
}

#[test]
fn an_unknown_producer_may_start_at_any_sequence() {
    assert_eq!(ProducerStates::check(None, &batch(0, 0, 3, 0)).unwrap(), Verdict::Append);
    assert_eq!(ProducerStates::check(None, &batch(3, 42, 3, 0)).unwrap(), Verdict::Append);
}

#[test]
fn the_next_batch_must_continue_the_sequence() {
    let e = entry_after(&[batch(0, 0, 3, 10)]);
    assert_eq!(ProducerStates::check(Some(&e), &batch(0, 3, 2, 13)).unwrap(), Verdict::Append);
    match ProducerStates::check(Some(&e), &batch(0, 5, 1, 13)) {
        Err(StorageError::OutOfOrderSequence { expected: 3, got: 5, .. }) => {}
        other => panic!("a gap must be refused, got {other:?}"),
    }
}

#[test]
fn a_batch_stored_before_is_a_duplicate_with_its_original_offsets() {
    let stored = [batch(0, 0, 3, 10), batch(0, 3, 2, 20), batch(0, 5, 4, 30)];
    let e = entry_after(&stored);
    let again = batch(0, 3, 2, 99);
    match ProducerStates::check(Some(&e), &again).unwrap() {
        Verdict::Duplicate(m) => assert_eq!((m.first_offset, m.last_offset), (20, 21)),
        other => panic!("expected a duplicate, got {other:?}"),
    }
}

#[test]
fn batches_stored_back_to_back_form_one_run_and_any_part_of_it_is_a_duplicate() {
    // 70 batches of 2 records at consecutive offsets (one big request, say): one run.
    let stored: Vec<_> = (0..70).map(|i| batch(0, i * 2, 2, 100 + i64::from(i) * 2)).collect();
    let e = entry_after(&stored);
    assert_eq!(e.batches.len(), 1);
    for (first_seq, count, offset) in [(0, 2, 100), (4, 2, 104), (138, 2, 238), (10, 6, 110)] {
        match ProducerStates::check(Some(&e), &batch(0, first_seq, count, 0)).unwrap() {
            Verdict::Duplicate(m) => {
                assert_eq!((m.first_offset, m.last_offset), (offset, offset + i64::from(count) - 1));
            }
            other => panic!("seq {first_seq}: expected a duplicate, got {other:?}"),
        }
    }
    // Overlapping the end of the run: neither stored nor next.
    assert!(matches!(
        ProducerStates::check(Some(&e), &batch(0, 139, 2, 0)),
        Err(StorageError::OutOfOrderSequence { .. })
    ));
    assert_eq!(ProducerStates::check(Some(&e), &batch(0, 140, 2, 0)).unwrap(), Verdict::Append);
}

#[test]
fn only_the_last_five_batches_are_remembered() {
    let stored: Vec<_> = (0..7).map(|i| batch(0, i * 2, 2, i64::from(i) * 10)).collect();
    let e = entry_after(&stored);
    assert_eq!(e.batches.len(), MAX_CACHED_BATCHES);
    assert!(matches!(ProducerStates::check(Some(&e), &batch(0, 4, 2, 0)).unwrap(), Verdict::Duplicate(_)));
    // Older than the cache: neither a known duplicate nor the next sequence.
    assert!(matches!(
        ProducerStates::check(Some(&e), &batch(0, 0, 2, 0)),
        Err(StorageError::OutOfOrderSequence { .. })
    ));
}

#[test]
fn an_older_epoch_is_refused_and_a_newer_one_starts_at_zero() {
    let e = entry_after(&[batch(2, 0, 3, 0)]);
    assert!(matches!(
        ProducerStates::check(Some(&e), &batch(1, 3, 1, 3)),
        Err(StorageError::InvalidProducerEpoch { current: 2, got: 1, .. })
    ));
    assert_eq!(ProducerStates::check(Some(&e), &batch(3, 0, 1, 3)).unwrap(), Verdict::Append);
    assert!(matches!(
        ProducerStates::check(Some(&e), &batch(3, 3, 1, 3)),
        Err(StorageError::OutOfOrderSequence { expected: 0, .. })
    ));
}

#[test]
fn sequences_wrap_from_i32_max_to_zero() {
    assert_eq!(increment_sequence(i32::MAX, 1), 0);
    assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    let e = entry_after(&[batch(0, i32::MAX - 1, 2, 0)]);
    assert_eq!(e.last_seq(), Some(i32::MAX));
    assert_eq!(ProducerStates::check(Some(&e), &batch(0, 0, 1, 2)).unwrap(), Verdict::Append);
}

#[test]
fn markers_end_the_open_transaction_and_keep_no_sequence() {
    let mut data = batch(0, 0, 2, 40);
    data.transactional = true;
    let mut e = entry_after(&[data]);
    assert_eq!(e.current_txn_first_offset, Some(40));
    let marker =
        ProducerBatch { control: true, transactional: true, first_seq: -1, last_seq: -1, ..batch(0, 0, 1, 42) };
    e.apply(&marker);
    assert_eq!(e.current_txn_first_offset, None);
    assert_eq!(e.last_seq(), Some(1), "a marker is not a batch of the producer's sequence");
}

#[test]
fn snapshots_round_trip_and_a_damaged_one_is_refused() {
    let mut producers = HashMap::new();
    producers.insert(7, entry_after(&[batch(0, 0, 3, 10), batch(0, 3, 2, 20)]));
    let mut open = entry_after(&[batch(4, 0, 1, 30)]);
    open.current_txn_first_offset = Some(30);
    open.coordinator_epoch = 9;
    producers.insert(8, open);
    let bytes = encode(&producers);
    assert_eq!(decode(&bytes).unwrap(), producers);
    let mut damaged = bytes.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert!(decode(&damaged).unwrap_err().contains("crc"));
    assert!(decode(&bytes[..bytes.len() - 3]).is_err());
}

#[test]
fn expiry_keeps_producers_with_an_open_transaction() {
    let mut states = ProducerStates { dir: PathBuf::new(), producers: HashMap::new(), ongoing: BTreeMap::new() };
    states.apply(&batch(0, 0, 1, 0));
    let mut txn = ProducerBatch { producer_id: 8, transactional: true, ..batch(0, 0, 1, 1) };
    txn.max_timestamp = 1_000;
    states.apply(&txn);
    assert_eq!(states.remove_expired(1_000 + 500, 1_000), 0);
    assert_eq!(states.remove_expired(1_000 + 1_000, 1_000), 1);
    assert!(states.get(7).is_none() && states.get(8).is_some());
}

#[test]
fn markers_end_transactions_and_the_oldest_open_one_bounds_the_first_unstable_offset() {
    let mut states = ProducerStates { dir: PathBuf::new(), producers: HashMap::new(), ongoing: BTreeMap::new() };
    let txn = |pid, first| ProducerBatch { producer_id: pid, transactional: true, ..batch(0, 0, 1, first) };
    let marker = |pid, at, kind| ProducerBatch {
        producer_id: pid,
        transactional: true,
        control: true,
        marker: Some(kind),
        coordinator_epoch: 0,
        ..batch(0, -1, 1, at)
    };
    assert_eq!(states.apply(&txn(1, 10)), None);
    assert_eq!(states.apply(&txn(2, 11)), None);
    assert_eq!(states.apply(&txn(1, 12)), None);
    assert_eq!(states.first_unstable_offset(), Some(10));
    let done = states.apply(&marker(1, 13, MarkerKind::Commit)).unwrap();
    assert_eq!(done, CompletedTxn { producer_id: 1, first_offset: 10, last_offset: 13, aborted: false });
    assert_eq!(states.first_unstable_offset(), Some(11));
    let done = states.apply(&marker(2, 14, MarkerKind::Abort)).unwrap();
    assert!(done.aborted && done.first_offset == 11);
    assert_eq!(states.first_unstable_offset(), None);
    // The open transaction survives a snapshot round trip.
    states.apply(&txn(3, 15));
    let mut reloaded = ProducerStates {
        dir: PathBuf::new(),
        producers: decode(&encode(&states.producers)).unwrap(),
        ongoing: BTreeMap::new(),
    };
    reloaded.rebuild_ongoing();
    assert_eq!(reloaded.first_unstable_offset(), Some(15));
}

/// Found by the `checkpoints` fuzz target: a snapshot with a valid CRC whose producer count says
/// 2³¹ - 1 made `decode` reserve room for that many entries (tens of gigabytes) and abort.
#[test]
fn a_snapshot_claiming_billions_of_producers_is_rejected_without_reserving_for_them() {
    let mut bytes = SNAPSHOT_VERSION.to_be_bytes().to_vec();
    let body = i32::MAX.to_be_bytes();
    bytes.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    bytes.extend_from_slice(&body);
    let err = decode(&bytes).expect_err("2^31 - 1 producers in 4 bytes");
    assert!(!err.is_empty());
}
