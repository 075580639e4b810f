//! The compression codecs on arbitrary compressed sections: the input (after a codec byte) is
//! wrapped in a valid batch header with that codec and a correct CRC, so every input reaches the
//! decompressor and the record decoder behind it.
#![no_main]

use bytes::{BufMut, Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use vltava_record::RecordBatch;
use vltava_record::header::{BATCH_LENGTH, HEADER_LEN, LOG_OVERHEAD};

fuzz_target!(|data: &[u8]| {
    let Some((&choice, section)) = data.split_first() else { return };
    let codec = i16::from(choice % 5);
    let count = i32::from(choice >> 3);
    let mut buf = BytesMut::with_capacity(HEADER_LEN + section.len());
    buf.put_i64(0); // base offset
    buf.put_i32((HEADER_LEN - LOG_OVERHEAD + section.len()) as i32);
    buf.put_i32(0); // partition leader epoch
    buf.put_i8(2); // magic
    buf.put_u32(0); // crc, fixed below
    buf.put_i16(codec);
    buf.put_i32(count.max(1) - 1); // last offset delta
    buf.put_i64(0); // base timestamp
    buf.put_i64(0); // max timestamp
    buf.put_i64(-1); // producer id
    buf.put_i16(-1);
    buf.put_i32(-1);
    buf.put_i32(count);
    buf.put_slice(section);
    debug_assert_eq!(buf[BATCH_LENGTH..BATCH_LENGTH + 4].len(), 4);
    let mut buf = buf.to_vec();
    vltava_fuzz::fix_crcs(&mut buf);
    let batch = RecordBatch::parse(Bytes::from(buf)).expect("the wrapper frames");
    batch.verify_crc().expect("the wrapper's CRC is right");
    if let Ok(records) = batch.records() {
        assert_eq!(records.len() as i32, count);
    }
});
