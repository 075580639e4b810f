//! Opening a partition directory whose files hold arbitrary contents, as after a crash, a torn
//! write or a damaged disk: segments, offset and time indexes, transaction indexes, producer
//! snapshots, the leader-epoch, log-start, recovery-point and cleaner checkpoints, leftovers of
//! an interrupted compaction swap.
//!
//! Input: a flags byte (bit 0: fix the CRCs of batches and snapshots first; bit 1: small
//! segments), then framed entries ([`vltava_fuzz::entries`]): kind (which file), base offset,
//! contents.
//!
//! Whatever the files hold, `Log::open` either reports an error or yields a log that serves only
//! whole batches with valid CRCs, in offset order, and takes new appends that survive a reopen.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vltava_record::{BatchBuilder, Compression, batches};
use vltava_storage::{Log, LogConfig};

/// The file an entry of kind `kind` for segment (or snapshot) `base` is written to.
fn file_name(kind: u8, base: u32) -> String {
    let base = format!("{base:020}");
    match kind % 14 {
        0 => format!("{base}.log"),
        1 => format!("{base}.index"),
        2 => format!("{base}.timeindex"),
        3 => format!("{base}.txnindex"),
        4 => format!("{base}.snapshot"),
        5 => format!("{base}.log.cleaned"),
        6 => format!("{base}.log.swap"),
        7 => format!("{base}.log.tmp"),
        8 => "leader-epoch-checkpoint".into(),
        9 => "log-start-offset".into(),
        10 => "recovery-point".into(),
        11 => "cleaner-offset-checkpoint".into(),
        12 => "partition.metadata".into(),
        _ => ".clean-shutdown".into(),
    }
}

fn config(small: bool) -> LogConfig {
    LogConfig { segment_bytes: if small { 256 } else { 1 << 20 }, index_interval_bytes: 64, ..LogConfig::default() }
}

/// Reads the whole log; every batch served must be whole, CRC-valid and in offset order.
fn read_all(log: &Log) -> i64 {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    assert!(start <= end, "log start {start} beyond log end {end}");
    let mut offset = start;
    let mut served = 0;
    for _ in 0..10_000 {
        if offset >= end {
            break;
        }
        let read = match log.read(offset, 1 << 16, None) {
            Ok(read) => read,
            // Damage recovery trusted (below the recovery point) is reported, never served.
            Err(vltava_storage::StorageError::Corrupt { .. }) => break,
            Err(e) => panic!("a read inside [log start, log end) fails only on damage: {e}"),
        };
        if read.records.is_empty() {
            break;
        }
        for batch in batches(read.records.clone()) {
            let batch = batch.expect("a served buffer holds whole batches");
            batch.validate_stored().expect("a served batch is valid (CRC, magic, counts)");
            assert!(batch.next_offset() > offset, "offsets must grow: {} after {offset}", batch.last_offset());
            assert!(batch.last_offset() < end, "a batch beyond the log end was served");
            offset = batch.next_offset();
            served += 1;
        }
    }
    served
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let (fix_crcs, small_segments) = (flags & 1 != 0, flags & 2 != 0);
    let dir = vltava_fuzz::scratch_dir();
    for (kind, base, contents) in vltava_fuzz::entries(rest) {
        let mut contents = contents.to_vec();
        if fix_crcs && matches!(kind % 14, 0 | 5 | 6) {
            vltava_fuzz::fix_crcs(&mut contents);
        }
        if fix_crcs && kind % 14 == 4 {
            vltava_fuzz::fix_snapshot_crc(&mut contents);
        }
        std::fs::write(dir.path().join(file_name(kind, base)), contents).expect("writing a scratch file");
    }
    let Ok(mut log) = Log::open(dir.path(), config(small_segments)) else { return };
    read_all(&log);
    for epoch in [-1, 0, 1, 5, i32::MAX] {
        let _ = log.end_offset_for_epoch(epoch);
    }
    let _ = log.offset_for_timestamp(0);
    let epoch = log.latest_epoch().unwrap_or(0).saturating_add(1);
    let mut builder = BatchBuilder::new(Compression::None);
    builder.append(1_700_000_000_000, Some(b"key"), Some(b"value"), &[]);
    let end = log.log_end_offset();
    let appended = log.append(builder.build(), epoch, 1_700_000_000_000);
    let Ok(info) = appended else { return };
    assert_eq!(info.first_offset, end, "an append lands at the log end");
    log.close().expect("closing a recovered log");
    let log = Log::open(dir.path(), config(small_segments)).expect("reopening a log this process closed");
    assert_eq!(log.log_end_offset(), end + 1, "an appended record survives a clean reopen");
    let tail = log.read(end, 1 << 16, None).expect("reading the appended record");
    let batch = batches(tail.records).next().expect("one batch").expect("the appended batch frames");
    assert_eq!(batch.records().expect("decodes")[0].value.as_deref(), Some(&b"value"[..]));
    read_all(&log);
});
