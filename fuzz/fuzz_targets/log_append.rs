//! A log driven by arbitrary produce requests (as a leader appends them), replica fetch
//! responses (as a follower appends them) and the operations between them: transaction markers,
//! truncation, rolls, compaction, retention and reopening.
//!
//! Input: a flags byte (bit 0: compacted; bits 1-2: the topic's codec; bit 3: LogAppendTime),
//! then framed operations ([`vltava_fuzz::entries`]): 0 append as leader (payload: batches,
//! number: leader epoch, bit 8 fixes CRCs), 1 append as follower, 2 transaction marker,
//! 3 truncate to, 4 roll, 5 clean, 6 retention, 7 reopen (bit 0: as after a crash).
//!
//! Every append either fails with an error or lands whole; the log then serves only valid batches
//! in offset order, and a reopen (clean, or after losing the `.clean-shutdown` marker) yields the
//! same log end offset.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use vltava_record::{Marker, MarkerKind, batches};
use vltava_storage::config::CompressionType;
use vltava_storage::{Log, LogConfig};

fn check(log: &Log) {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    assert!(start <= end);
    let mut offset = start;
    for _ in 0..1_000 {
        if offset >= end {
            break;
        }
        let read = log.read(offset, 1 << 16, None).expect("reading inside the log");
        if read.records.is_empty() {
            break;
        }
        for batch in batches(read.records) {
            let batch = batch.expect("whole batches");
            batch.validate_stored().expect("valid batches");
            assert!(batch.next_offset() > offset && batch.last_offset() < end);
            offset = batch.next_offset();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let dir = vltava_fuzz::scratch_dir();
    let config = LogConfig {
        segment_bytes: 512,
        index_interval_bytes: 64,
        compact: flags & 1 != 0,
        compression_type: match (flags >> 1) % 4 {
            0 => CompressionType::Producer,
            1 => CompressionType::Uncompressed,
            2 => CompressionType::Lz4,
            _ => CompressionType::Zstd,
        },
        message_timestamp_type: if flags & 8 != 0 {
            vltava_storage::TimestampType::LogAppendTime
        } else {
            vltava_storage::TimestampType::CreateTime
        },
        message_timestamp_before_max_ms: i64::MAX,
        message_timestamp_after_max_ms: i64::MAX,
        ..LogConfig::default()
    };
    let now = 1_700_000_000_000;
    let mut log = Log::open(dir.path(), config.clone()).expect("opening an empty log");
    for (op, number, payload) in vltava_fuzz::entries(rest).into_iter().take(32) {
        let fix_crcs = number & 0x100 != 0;
        match op % 8 {
            0 => {
                let mut bytes = payload.to_vec();
                if fix_crcs {
                    vltava_fuzz::fix_crcs(&mut bytes);
                }
                let end = log.log_end_offset();
                if let Ok(info) = log.append(Bytes::from(bytes), (number & 0xff) as i32, now) {
                    assert!(info.first_offset >= 0 && info.last_offset < log.log_end_offset());
                    assert!(info.duplicates > 0 || info.batch_count == 0 || info.first_offset == end);
                }
            }
            1 => {
                let mut bytes = payload.to_vec();
                if fix_crcs {
                    vltava_fuzz::fix_crcs(&mut bytes);
                }
                let _ = log.append_as_follower(Bytes::from(bytes));
            }
            2 => {
                let kind = if number & 1 == 0 { MarkerKind::Commit } else { MarkerKind::Abort };
                let epoch_now = log.latest_epoch().unwrap_or(0);
                let producer_id = i64::from((number >> 1) & 0xff);
                let producer_epoch = (number >> 9) as i16;
                let marker = Marker { kind, coordinator_epoch: 0 };
                let _ = log.append_marker(producer_id, producer_epoch, marker, epoch_now, now);
            }
            3 => {
                let to = i64::from(number).max(log.log_start_offset()).min(log.log_end_offset());
                let _ = log.truncate_to(to);
            }
            4 => {
                let _ = log.roll(now);
            }
            5 => {
                let _ = log.clean(now + 86_400_000, 1 << 16);
            }
            6 => {
                let _ = log.apply_retention(now + 86_400_000);
            }
            _ => {
                let end = log.log_end_offset();
                if number & 1 == 1 {
                    log.flush().expect("flushing");
                    drop(log);
                    let _ = std::fs::remove_file(dir.path().join(".clean-shutdown"));
                } else {
                    log.close().expect("closing");
                }
                log = Log::open(dir.path(), config.clone()).expect("reopening a log this process wrote");
                assert_eq!(log.log_end_offset(), end, "a reopen keeps every flushed record");
            }
        }
        check(&log);
    }
});
