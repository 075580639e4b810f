//! Offset gaps, as a compacted log has them (the cleaner removes records and whole batches but
//! keeps the others' offsets): a follower copies such a log, reads skip the gaps, and recovery
//! (clean or after a crash) keeps every batch, within and across segments.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use vltava_record::{BatchBuilder, Compression, RecordBatch, set_partition_leader_epoch};
use vltava_storage::{Log, LogConfig};

/// A stored batch at `base` holding the records at `deltas` and spanning `base..=base + last`.
fn cleaned(base: i64, deltas: &[i32], last: i32) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    for d in deltas {
        b.append_at(*d, 1_000, Some(format!("k{}", base + i64::from(*d)).as_bytes()), Some(b"v"), &[]);
    }
    b.set_last_offset_delta(last);
    let mut buf = BytesMut::from(&b.build_at(base)[..]);
    set_partition_leader_epoch(&mut buf, 0);
    buf.freeze()
}

fn offsets(log: &Log, from: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut at = from;
    for _ in 0..100 {
        let read = log.read(at, 1 << 20, None).unwrap();
        let got = vltava_record::decode_fetched(read.records, at, true).unwrap();
        out.extend(got.records.iter().map(|r| r.offset));
        if got.next_offset == at {
            break;
        }
        at = got.next_offset;
    }
    out
}

/// Batches: offsets 0, 1, 2; then (gap 3..=9) a batch spanning 10..=15 keeping 10 and 13; then 16.
fn compacted() -> Bytes {
    concat(&[cleaned(0, &[0, 1, 2], 2), cleaned(10, &[0, 3], 5), cleaned(16, &[0], 0)])
}

#[test]
fn a_follower_copies_a_compacted_log_and_reads_skip_its_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    log.append_as_follower(compacted()).unwrap();
    assert_eq!(log.log_end_offset(), 17);
    assert_eq!(offsets(&log, 0), vec![0, 1, 2, 10, 13, 16]);
    assert_eq!(offsets(&log, 5), vec![10, 13, 16], "a read inside a gap starts at the next record");
    assert_eq!(offsets(&log, 14), vec![16]);
    // The leader carries on from the log end.
    let info = log.append(batch("new", 2, 1_000, 0), 0, 1_000).unwrap();
    assert_eq!(info.first_offset, 17);
    let stored = log.read(17, 1 << 20, None).unwrap().records;
    RecordBatch::parse(stored).unwrap().validate().unwrap();
}

#[test]
fn gaps_within_and_across_segments_survive_a_clean_close_and_a_crash() {
    for crash in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        // 200-byte segments: every batch rolls a new one, so a segment may start after a gap.
        let config = LogConfig { segment_bytes: 200, ..small_config() };
        let mut log = Log::open(dir.path(), config.clone()).unwrap();
        // One append per batch, so that each may roll a segment.
        for b in [
            cleaned(0, &[0, 1, 2], 2),
            cleaned(10, &[0, 3], 5),
            cleaned(16, &[0], 0),
            cleaned(40, &[1], 1),
            cleaned(50, &[0, 2], 9),
        ] {
            log.append_as_follower(b).unwrap();
        }
        assert!(log.segment_count() >= 3, "{}", log.segment_count());
        assert!(log.segment_base_offsets().contains(&17), "a segment starts at 17, its first batch at 40");
        let before = offsets(&log, 0);
        assert_eq!(before, vec![0, 1, 2, 10, 13, 16, 41, 50, 52]);
        let end = log.log_end_offset();
        assert_eq!(end, 60);
        if crash {
            drop(log);
        } else {
            log.close().unwrap();
        }
        let log = Log::open(dir.path(), config).unwrap();
        assert_eq!(log.log_end_offset(), end, "crash: {crash}");
        assert_eq!(offsets(&log, 0), before, "crash: {crash}");
    }
}

/// Found by the `log_append` fuzz target: truncating to an offset inside a gap set the log end
/// to the base of the first removed batch (beyond the gap), while recovery after a crash found the
/// end of the last batch kept: the log end offset changed across a restart.
#[test]
fn truncating_into_a_gap_ends_the_log_where_recovery_would() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 1 << 20, ..LogConfig::default() };
    let mut log = Log::open(dir.path(), config.clone()).unwrap();
    log.append_as_follower(cleaned(0, &[0, 1, 2], 2)).unwrap();
    log.roll(1).unwrap();
    log.append_as_follower(cleaned(6, &[0, 1], 1)).unwrap();
    assert_eq!(log.log_end_offset(), 8);
    log.truncate_to(4).unwrap();
    assert_eq!(log.log_end_offset(), 3, "nothing lies at 3..=5: the log ends after the batch kept");
    log.flush().unwrap();
    drop(log);
    std::fs::remove_file(dir.path().join(".clean-shutdown")).ok();
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.log_end_offset(), 3, "recovery agrees");
    assert_eq!(offsets(&log, 0), vec![0, 1, 2]);
}
