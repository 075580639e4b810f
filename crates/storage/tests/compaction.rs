//! Log compaction ([`Log::clean`]): for random sequences of keyed writes, deletes, rolls and
//! cleanings, the log read from the start holds each key's latest record (or nothing once a
//! tombstone expired), every surviving record at the offset it was written at; an interrupted
//! swap is settled on open.

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use vltava_record::{BatchBuilder, Compression, Record};
use vltava_storage::{Log, LogConfig};

fn everything(log: &Log) -> Vec<Record> {
    let mut out = Vec::new();
    let mut at = log.log_start_offset();
    for _ in 0..10_000 {
        let read = log.read(at, 1 << 20, None).unwrap();
        let got = vltava_record::decode_fetched(read.records, at, true).unwrap();
        out.extend(got.records);
        if got.next_offset == at {
            break;
        }
        at = got.next_offset;
    }
    out
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u16),
    Delete(u8),
    Clean,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..8, any::<u16>()).prop_map(|(k, v)| Op::Put(k, v)),
        1 => (0u8..8).prop_map(Op::Delete),
        1 => Just(Op::Clean),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn the_cleaned_log_holds_each_keys_latest_record_at_its_offset(
        ops in proptest::collection::vec(op(), 1..120),
        max_keys in 1usize..10,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), compact_config()).unwrap();
        let mut written: BTreeMap<i64, (u8, Option<String>)> = BTreeMap::new();
        let mut now = 10_000i64;
        let mut times: BTreeMap<i64, i64> = BTreeMap::new();
        for op in ops {
            now += 100;
            match op {
                Op::Put(k, v) => {
                    let value = format!("{k}-{v}");
                    let info = log.append(put(k, Some(&value), now), 0, now).unwrap();
                    written.insert(info.first_offset, (k, Some(value)));
                }
                Op::Delete(k) => {
                    let info = log.append(put(k, None, now), 0, now).unwrap();
                    written.insert(info.first_offset, (k, None));
                    times.insert(info.first_offset, now);
                }
                Op::Clean => {
                    let end = log.log_end_offset();
                    // A small offset map: a pass may cover only part of the dirty section.
                    log.clean(now, max_keys).unwrap();
                    prop_assert_eq!(log.log_end_offset(), end, "cleaning never moves the log end");
                    // A key's latest write, if a tombstone younger than delete.retention.ms, is
                    // still there for consumers reading from the start.
                    let present: std::collections::BTreeSet<i64> = everything(&log).iter().map(|r| r.offset).collect();
                    let mut latest: BTreeMap<u8, (i64, bool)> = BTreeMap::new();
                    for (offset, (k, v)) in &written {
                        latest.insert(*k, (*offset, v.is_none()));
                    }
                    for (k, (offset, tombstone)) in latest {
                        if tombstone && times[&offset] >= now - compact_config().delete_retention_ms {
                            prop_assert!(present.contains(&offset), "key {}'s fresh tombstone at {} is gone", k, offset);
                        }
                    }
                }
                Op::Reopen => {
                    drop(log);
                    log = Log::open(dir.path(), compact_config()).unwrap();
                }
            }
        }
        log.clean(now + 5_000, 1_000).unwrap();
        let records = everything(&log);
        // The clean section holds at most one record per key, and no expired tombstone.
        let clean_end = log.dirty_stats(now + 5_000).unwrap().first_dirty_offset;
        let mut clean_keys = std::collections::BTreeSet::new();
        for r in records.iter().filter(|r| r.offset < clean_end) {
            prop_assert!(clean_keys.insert(r.key.clone()), "two records of one key below {}", clean_end);
            prop_assert!(r.value.is_some(), "an expired tombstone at {}", r.offset);
        }
        // Every surviving record is the one written at its offset.
        for r in &records {
            let (k, v) = &written[&r.offset];
            let key = format!("key-{k}");
            prop_assert_eq!(r.key.as_deref(), Some(key.as_bytes()));
            prop_assert_eq!(r.value.as_deref(), v.as_deref().map(str::as_bytes));
        }
        // Each key's last surviving record is its latest write; a key may be gone only when
        // that write was a tombstone.
        let mut latest_written: BTreeMap<u8, (i64, bool)> = BTreeMap::new();
        for (offset, (k, v)) in &written {
            latest_written.insert(*k, (*offset, v.is_none()));
        }
        let mut latest_present: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        for r in &records {
            latest_present.insert(r.key.clone().unwrap().to_vec(), r.offset);
        }
        for (k, (offset, tombstone)) in latest_written {
            match latest_present.get(format!("key-{k}").as_bytes()) {
                Some(present) => prop_assert_eq!(*present, offset, "key {}", k),
                None => prop_assert!(tombstone, "key {} vanished without a tombstone", k),
            }
        }
        // Reopening (indexes rebuilt from the cleaned files) reads the same.
        drop(log);
        let log = Log::open(dir.path(), compact_config()).unwrap();
        prop_assert_eq!(everything(&log), records);
    }
}

#[test]
fn ten_thousand_updates_of_a_hundred_keys_shrink_to_about_a_hundred_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig { segment_bytes: 64 * 1024, ..compact_config() }).unwrap();
    for i in 0..10_000i64 {
        log.append(put((i % 100) as u8, Some(&format!("v{i}")), 1_000 + i), 0, 1_000 + i).unwrap();
    }
    let before = log.size_bytes();
    let outcome = log.clean(20_000, 1_000).unwrap();
    assert!(outcome.segments > 0 && outcome.records_removed > 9_000, "{outcome:?}");
    let records = everything(&log);
    let active_records = records.iter().filter(|r| r.offset >= *log.segment_base_offsets().last().unwrap()).count();
    assert!(records.len() <= 100 + active_records, "{} records", records.len());
    assert!(log.size_bytes() < before / 5, "{} of {before} bytes left", log.size_bytes());
    for k in 0..100u8 {
        let last = records.iter().filter(|r| r.key.as_deref() == Some(format!("key-{k}").as_bytes())).last().unwrap();
        let expected = format!("v{}", 9_900 + i64::from(k));
        assert_eq!(last.value.as_deref(), Some(expected.as_bytes()), "key {k}");
    }
}

#[test]
fn an_interrupted_swap_is_finished_and_an_unfinished_cleaning_dropped_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config()).unwrap();
    for i in 0..40i64 {
        log.append(put((i % 4) as u8, Some(&format!("v{i}")), 1_000 + i), 0, 1_000 + i).unwrap();
    }
    let first = log.segment_base_offsets()[0];
    let before = everything(&log);
    log.close().unwrap();
    let log_file = dir.path().join(format!("{first:020}.log"));
    // A crash after the cleaned file was complete: the swap finishes (here with the same bytes).
    std::fs::copy(&log_file, dir.path().join(format!("{first:020}.log.swap"))).unwrap();
    // A crash while another cleaned file was being written: it is dropped.
    std::fs::write(dir.path().join(format!("{first:020}.log.cleaned")), b"half written").unwrap();
    let log = Log::open(dir.path(), compact_config()).unwrap();
    assert_eq!(everything(&log), before);
    assert!(!files_with_ext(dir.path(), "swap").iter().chain(&files_with_ext(dir.path(), "cleaned")).any(|_| true));
}

#[test]
fn a_log_without_compaction_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig { compact: false, ..compact_config() }).unwrap();
    for i in 0..40i64 {
        log.append(put(0, Some("same key"), 1_000 + i), 0, 1_000 + i).unwrap();
    }
    assert_eq!(log.clean(100_000, 1_000).unwrap().segments, 0);
    assert_eq!(everything(&log).len(), 40);
}

#[test]
fn an_aborted_transaction_never_hides_the_value_it_did_not_replace() {
    use vltava_record::{Marker, MarkerKind};
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config()).unwrap();
    log.append(put(1, Some("committed"), 1_000), 0, 1_000).unwrap();
    let mut b = BatchBuilder::new(Compression::None).with_producer(9, 0, 0);
    b.set_transactional(true);
    b.append(1_001, Some(b"key-1"), Some(b"aborted"), &[]);
    log.append(b.build(), 0, 1_001).unwrap();
    log.append_marker(9, 0, Marker { kind: MarkerKind::Abort, coordinator_epoch: 0 }, 0, 1_002).unwrap();
    // Enough later records (other keys) to push all of that out of the active segment.
    for i in 0..20i64 {
        log.append(put(2, Some(&format!("v{i}")), 2_000 + i), 0, 2_000 + i).unwrap();
    }
    log.clean(3_000, 1_000).unwrap();
    let values: Vec<String> = everything(&log)
        .iter()
        .filter(|r| r.key.as_deref() == Some(b"key-1"))
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(values, ["committed"], "the aborted record is gone, the committed one kept");
}

/// Found by the `log_append` fuzz target: a cleaned segment kept the write-mode file handle it was
/// written with. Once it was the active segment again (a truncation removed the segments after
/// it), appends went to that handle's cursor, past the truncated end: the file got a hole of
/// zeros, which reads then refused as corrupt.
#[test]
fn a_cleaned_segment_that_becomes_active_again_appends_at_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { min_cleanable_dirty_ratio: 0.0, ..compact_config() };
    let mut log = Log::open(dir.path(), config.clone()).unwrap();
    let put = |log: &mut Log, key: &[u8], value: &[u8]| {
        let mut b = BatchBuilder::new(Compression::None);
        b.append(10_000, Some(key), Some(value), &[]);
        log.append(b.build(), 0, 10_000).unwrap();
    };
    for i in 0..6u8 {
        put(&mut log, &[b'k', i % 2], &[i]);
        log.roll(10_000).unwrap();
    }
    log.clean(10_000_000, 1 << 16).unwrap();
    assert!(log.segment_count() < 7, "the cleaner merged segments");
    log.truncate_to(1).unwrap();
    assert_eq!(log.segment_count(), 1, "the cleaned segment is the active one");
    put(&mut log, b"k9", b"after");
    let values: Vec<Vec<u8>> = everything(&log).iter().map(|r| r.value.clone().unwrap().to_vec()).collect();
    assert_eq!(values.last().map(Vec::as_slice), Some(&b"after"[..]), "{values:?}");
    drop(log);
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(everything(&log).last().and_then(|r| r.value.clone()).as_deref(), Some(&b"after"[..]));
}
