//! The small files of a partition or data directory, parsed on their own: the leader-epoch
//! checkpoint, the high-watermark checkpoint, producer-state snapshots and transaction indexes.
//! (`log_recovery` reaches the same parsers through `Log::open`, far more slowly.)
//!
//! Input: one selector byte, then the file. Bit 7 fixes a snapshot's CRC first.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vltava_storage::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 4 {
        0 => {
            if let Ok(entries) = fuzzing::leader_epoch_checkpoint(&String::from_utf8_lossy(rest)) {
                assert!(entries.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "entries must grow");
                assert!(entries.iter().all(|(e, o)| *e >= 0 && *o >= 0));
            }
        }
        1 => {
            if let Ok(count) = fuzzing::high_watermark_checkpoint(&String::from_utf8_lossy(rest)) {
                assert!(count <= rest.len());
            }
        }
        2 => {
            let mut bytes = rest.to_vec();
            if which & 0x80 != 0 {
                vltava_fuzz::fix_snapshot_crc(&mut bytes);
            }
            if let Ok(count) = fuzzing::producer_snapshot(&bytes) {
                assert!(count <= bytes.len());
            }
        }
        _ => {
            let base = i64::from(which >> 2);
            if let Ok(count) = fuzzing::txn_index(rest, base) {
                assert!(count <= rest.len());
            }
        }
    }
});
