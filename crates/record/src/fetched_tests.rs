//! Tests of [`decode_fetched_committed`]: aborted transactions are dropped, committed ones and
//! non-transactional records kept, markers never returned.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::control::{Marker, MarkerKind, marker_batch};
use crate::{BatchBuilder, Compression, set_base_offset};

fn txn_batch(base: i64, producer_id: i64, values: &[&str]) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None).with_producer(producer_id, 0, 0);
    b.set_transactional(true);
    for v in values {
        b.append(1, None, Some(v.as_bytes()), &[]);
    }
    b.build_at(base)
}

fn plain_batch(base: i64, values: &[&str]) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    for v in values {
        b.append(1, None, Some(v.as_bytes()), &[]);
    }
    b.build_at(base)
}

fn marker(base: i64, producer_id: i64, kind: MarkerKind) -> Bytes {
    let mut m = BytesMut::from(&marker_batch(producer_id, 0, Marker { kind, coordinator_epoch: 0 }, 1)[..]);
    set_base_offset(&mut m, base);
    m.freeze()
}

fn values(f: &FetchedRecords) -> Vec<String> {
    f.records.iter().map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap()).collect()
}

/// Offsets: 0-1 producer 1 (aborted), 2-3 producer 2 (committed), 4 plain, 5 abort marker of 1,
/// 6 commit marker of 2, 7 producer 1 again (a later, committed transaction), 8 its marker.
fn interleaved() -> Bytes {
    let mut data = BytesMut::new();
    for part in [
        txn_batch(0, 1, &["a1", "a2"]),
        txn_batch(2, 2, &["c1", "c2"]),
        plain_batch(4, &["p"]),
        marker(5, 1, MarkerKind::Abort),
        marker(6, 2, MarkerKind::Commit),
        txn_batch(7, 1, &["n1"]),
        marker(8, 1, MarkerKind::Commit),
    ] {
        data.extend_from_slice(&part);
    }
    data.freeze()
}

#[test]
fn aborted_transactions_are_dropped_and_committed_ones_kept() {
    let aborted = [AbortedTransaction { producer_id: 1, first_offset: 0 }];
    let got = decode_fetched_committed(interleaved(), 0, true, &aborted).unwrap();
    assert_eq!(values(&got), ["c1", "c2", "p", "n1"]);
    assert_eq!(got.next_offset, 9);
}

#[test]
fn without_aborted_transactions_everything_but_the_markers_is_returned() {
    let got = decode_fetched(interleaved(), 0, true).unwrap();
    assert_eq!(values(&got), ["a1", "a2", "c1", "c2", "p", "n1"]);
    assert_eq!(got.next_offset, 9);
}

#[test]
fn a_fetch_starting_inside_an_aborted_transaction_still_drops_its_rest() {
    let aborted = [AbortedTransaction { producer_id: 1, first_offset: 0 }];
    let got = decode_fetched_committed(interleaved(), 1, true, &aborted).unwrap();
    assert_eq!(values(&got), ["c1", "c2", "p", "n1"]);
}
