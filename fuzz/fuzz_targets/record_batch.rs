//! RecordBatch v2 as a producer, a leader (for a follower) or a log sends it: framing, header
//! checks, CRC, record decoding (every codec), control markers, fetch decoding, recompression.
//!
//! Input: one mode byte, then concatenated batches. Mode bit 0 fixes every batch's CRC first.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use vltava_record::{Compression, RecordBatch, batches, decode_fetched, emptied_batch, parse_marker, rewrite_batch};

const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut buf = rest.to_vec();
    if mode & 1 == 1 {
        vltava_fuzz::fix_crcs(&mut buf);
    }
    let bytes = Bytes::from(buf);
    let _ = vltava_record::batch_size_at(&bytes);
    for batch in batches(bytes.clone()) {
        let Ok(batch) = batch else { break };
        let produce_ok = batch.validate().is_ok();
        let stored_ok = batch.validate_stored().is_ok();
        // Produce ignores the base offset (the log assigns it); a stored batch's must be real.
        let offsets_fit = (0..i64::MAX - i64::from(i32::MAX)).contains(&batch.base_offset());
        assert!(!produce_ok || !offsets_fit || stored_ok, "a batch valid for produce must be valid for storage");
        let Ok(records) = batch.records() else { continue };
        assert_eq!(records.len() as i64, i64::from(batch.record_count()));
        let mut keys = 0usize;
        batch.for_each_key(|_, _| keys += 1).expect("for_each_key after records() succeeded");
        assert_eq!(keys, records.len());
        let _ = parse_marker(&batch);
        let emptied = RecordBatch::parse(emptied_batch(&batch)).expect("an emptied batch frames");
        emptied.verify_crc().expect("an emptied batch has its CRC");
        if produce_ok {
            let codec = CODECS[usize::from(mode >> 1) % CODECS.len()];
            let log_append_time = (mode & 0x80 != 0).then_some(1_700_000_000_000);
            if let Ok(Some(out)) = rewrite_batch(&batch, Some(codec), log_append_time) {
                let again = RecordBatch::parse(out).expect("a rewritten batch frames");
                again.validate().expect("a rewritten batch is valid");
                let rewritten = again.records().expect("a rewritten batch decodes");
                assert_eq!(rewritten.len(), records.len());
                for (a, b) in rewritten.iter().zip(&records) {
                    assert_eq!((a.offset, &a.key, &a.value, &a.headers), (b.offset, &b.key, &b.value, &b.headers));
                }
            }
        }
    }
    let _ = decode_fetched(bytes, i64::from(mode), mode & 2 != 0);
});
