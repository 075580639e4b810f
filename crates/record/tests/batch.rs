//! Behavioural tests for RecordBatch v2 encoding and decoding.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use vltava_record::{
    BatchBuilder, Compression, Header, MAGIC, RECORD_BATCH_OVERHEAD, RecordBatch, RecordError, batch_size_at, batches,
    set_base_offset, set_partition_leader_epoch,
};

const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

fn header(key: &str, value: Option<&[u8]>) -> Header {
    Header { key: key.to_owned(), value: value.map(Bytes::copy_from_slice) }
}

fn sample_batch(codec: Compression) -> Bytes {
    let mut b = BatchBuilder::new(codec);
    b.append(1_000, Some(b"k0"), Some(b"v0"), &[]);
    b.append(999, None, Some(b"no key"), &[header("h", Some(b"x"))]);
    b.append(1_005, Some(b"tombstone"), None, &[header("null", None)]);
    b.build()
}

#[test]
fn every_codec_round_trips_keys_values_nulls_headers_and_timestamps() {
    let long_value = vec![b'z'; 70_000];
    for codec in CODECS {
        let mut b = BatchBuilder::new(codec);
        b.append(1_700_000_000_000, Some(b"key-a"), Some(b"value-a"), &[]);
        b.append(1_699_999_999_000, None, Some(&long_value), &[]);
        b.append(1_700_000_000_500, Some(b""), None, &[header("trace", Some(b"abc")), header("empty", None)]);
        assert_eq!(b.len(), 3);
        let batch = RecordBatch::parse(b.build()).unwrap();
        batch.validate().unwrap();
        assert_eq!(batch.compression().unwrap(), codec);
        assert_eq!(batch.record_count(), 3);
        assert_eq!(batch.base_timestamp(), 1_700_000_000_000);
        assert_eq!(batch.max_timestamp(), 1_700_000_000_500);
        let records = batch.records().unwrap();
        assert_eq!(records.len(), 3, "{codec}");
        assert_eq!(records[0].offset, 0);
        assert_eq!(records[0].key.as_deref(), Some(&b"key-a"[..]));
        assert_eq!(records[0].value.as_deref(), Some(&b"value-a"[..]));
        assert_eq!(records[1].timestamp, 1_699_999_999_000);
        assert_eq!(records[1].key, None);
        assert_eq!(records[1].value.as_deref(), Some(&long_value[..]));
        assert_eq!(records[2].offset, 2);
        assert_eq!(records[2].key.as_deref(), Some(&b""[..]));
        assert_eq!(records[2].value, None);
        assert_eq!(records[2].headers, vec![header("trace", Some(b"abc")), header("empty", None)]);
    }
}

#[test]
fn compressed_batches_are_smaller_for_repetitive_data() {
    let value = vec![b'a'; 1000];
    let mut sizes = Vec::new();
    for codec in CODECS {
        let mut b = BatchBuilder::new(codec);
        for i in 0..50 {
            b.append(i, None, Some(&value), &[]);
        }
        sizes.push((codec, b.estimated_size(), b.build().len()));
    }
    let (_, estimate, plain) = sizes[0];
    assert_eq!(estimate, plain, "estimate is exact for uncompressed batches");
    for (codec, _, size) in &sizes[1..] {
        assert!(*size < plain / 4, "{codec}: {size} vs {plain}");
    }
}

#[test]
fn known_inputs_produce_header_fields_at_kafka_byte_positions() {
    let mut b = BatchBuilder::new(Compression::Lz4).with_producer(77, 3, 12);
    b.set_transactional(true);
    b.append(5_000, Some(b"k"), Some(b"v"), &[]);
    b.append(5_010, Some(b"k"), Some(b"v"), &[]);
    let bytes = b.build();
    let be_i64 = |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
    let be_i32 = |at: usize| i32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    let be_i16 = |at: usize| i16::from_be_bytes(bytes[at..at + 2].try_into().unwrap());
    assert_eq!(be_i64(0), 0, "base offset");
    assert_eq!(be_i32(8) as usize, bytes.len() - 12, "batch length");
    assert_eq!(be_i32(12), -1, "partition leader epoch");
    assert_eq!(bytes[16] as i8, MAGIC);
    assert_eq!(be_i32(17) as u32, crc32c::crc32c(&bytes[21..]), "crc");
    assert_eq!(be_i16(21), 3 | 0x10, "attributes: lz4 + transactional");
    assert_eq!(be_i32(23), 1, "last offset delta");
    assert_eq!(be_i64(27), 5_000, "base timestamp");
    assert_eq!(be_i64(35), 5_010, "max timestamp");
    assert_eq!(be_i64(43), 77, "producer id");
    assert_eq!(be_i16(51), 3, "producer epoch");
    assert_eq!(be_i32(53), 12, "base sequence");
    assert_eq!(be_i32(57), 2, "record count");
    assert_eq!(&bytes[61..65], &[0x04, 0x22, 0x4d, 0x18], "LZ4 frame magic");
}

#[test]
fn uncompressed_record_encoding_matches_kafka_byte_for_byte() {
    let mut b = BatchBuilder::new(Compression::None);
    b.append(100, Some(b"k"), None, &[header("h", Some(b"v"))]);
    let bytes = b.build();
    // length=11 (zigzag 22), attributes 0, tsDelta 0, offsetDelta 0, keyLen 1 (2) 'k',
    // valueLen -1 (1), 1 header (2): keyLen 1 (2) 'h', valueLen 1 (2) 'v'.
    assert_eq!(&bytes[RECORD_BATCH_OVERHEAD..], &[22, 0, 0, 0, 2, b'k', 1, 2, 2, b'h', 2, b'v']);
}

#[test]
fn defaults_are_non_idempotent_with_no_flags() {
    let batch = RecordBatch::parse(sample_batch(Compression::None)).unwrap();
    assert_eq!(batch.producer_id(), -1);
    assert_eq!(batch.producer_epoch(), -1);
    assert_eq!(batch.base_sequence(), -1);
    assert!(!batch.is_transactional());
    assert!(!batch.is_control());
    assert_eq!(batch.partition_leader_epoch(), -1);
    assert_eq!(batch.last_offset(), 2);
    assert_eq!(batch.next_offset(), 3);
    assert_eq!(batch.size(), batch.as_bytes().len());
}

#[test]
fn flipped_byte_anywhere_in_the_crc_range_is_detected() {
    let good = sample_batch(Compression::Gzip);
    for at in [21, 30, 60, 61, good.len() - 1] {
        let mut bad = BytesMut::from(&good[..]);
        bad[at] ^= 0x01;
        let batch = RecordBatch::parse(bad.freeze()).unwrap();
        assert!(matches!(batch.verify_crc(), Err(RecordError::CrcMismatch { .. })), "byte {at}");
        assert!(matches!(batch.validate(), Err(RecordError::CrcMismatch { .. })));
    }
}

#[test]
fn stamping_base_offset_and_epoch_keeps_the_crc_valid() {
    let mut bytes = BytesMut::from(&sample_batch(Compression::Snappy)[..]);
    set_base_offset(&mut bytes, 1_000);
    set_partition_leader_epoch(&mut bytes, 7);
    let batch = RecordBatch::parse(bytes.freeze()).unwrap();
    batch.validate().unwrap();
    assert_eq!(batch.base_offset(), 1_000);
    assert_eq!(batch.partition_leader_epoch(), 7);
    let offsets: Vec<i64> = batch.records().unwrap().iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![1_000, 1_001, 1_002]);
}

#[test]
fn build_at_places_the_records_at_the_given_offsets() {
    let mut b = BatchBuilder::new(Compression::Lz4);
    b.append(1_000, Some(b"k0"), Some(b"v0"), &[]);
    b.append(1_001, None, Some(b"v1"), &[]);
    let batch = RecordBatch::parse(b.build_at(42)).unwrap();
    batch.validate().unwrap();
    assert_eq!(batch.base_offset(), 42);
    let offsets: Vec<i64> = batch.records().unwrap().iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![42, 43]);
}

#[test]
fn truncated_input_is_reported_with_needed_and_available() {
    let bytes = sample_batch(Compression::None);
    let cut = bytes.slice(..bytes.len() - 1);
    assert_eq!(
        RecordBatch::parse(cut),
        Err(RecordError::Truncated { needed: bytes.len(), available: bytes.len() - 1 })
    );
    assert_eq!(
        RecordBatch::parse(bytes.slice(..20)),
        Err(RecordError::Truncated { needed: RECORD_BATCH_OVERHEAD, available: 20 })
    );
}

#[test]
fn wrong_magic_extra_bytes_and_bad_counts_are_rejected() {
    let bytes = sample_batch(Compression::None);
    let mut wrong_magic = BytesMut::from(&bytes[..]);
    wrong_magic[16] = 1;
    assert_eq!(RecordBatch::parse(wrong_magic.freeze()), Err(RecordError::InvalidMagic(1)));
    let mut longer = BytesMut::from(&bytes[..]);
    longer.extend_from_slice(b"x");
    assert!(matches!(RecordBatch::parse(longer.freeze()), Err(RecordError::Malformed(_))));
    let empty = RecordBatch::parse(BatchBuilder::new(Compression::None).build()).unwrap();
    assert!(matches!(empty.validate(), Err(RecordError::Malformed(_))));
}

#[test]
fn unknown_codec_fails_validation() {
    let mut bytes = BytesMut::from(&sample_batch(Compression::None)[..]);
    bytes[22] |= 0x07; // codec id 7
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    let batch = RecordBatch::parse(bytes.freeze()).unwrap();
    assert_eq!(batch.validate(), Err(RecordError::UnsupportedCompression(7)));
}

#[test]
fn batch_size_at_reads_the_length_field() {
    let bytes = sample_batch(Compression::None);
    assert_eq!(batch_size_at(&bytes), Some(bytes.len()));
    assert_eq!(batch_size_at(&bytes[..12]), Some(bytes.len()));
    assert_eq!(batch_size_at(&bytes[..11]), None);
}

#[test]
fn iterator_walks_concatenated_batches_then_reports_a_partial_tail_once() {
    let mut buf = BytesMut::new();
    let mut next = 0i64;
    let mut expected = Vec::new();
    for (i, codec) in CODECS.iter().enumerate() {
        let mut b = BatchBuilder::new(*codec);
        for j in 0..=i {
            b.append(j as i64, None, Some(format!("{i}-{j}").as_bytes()), &[]);
        }
        let start = buf.len();
        buf.extend_from_slice(&b.build());
        set_base_offset(&mut buf[start..], next);
        expected.push(next);
        next += i as i64 + 1;
    }
    let whole = buf.clone().freeze();
    let bases: Vec<i64> = batches(whole).map(|b| b.unwrap().base_offset()).collect();
    assert_eq!(bases, expected);

    buf.extend_from_slice(&sample_batch(Compression::None)[..30]);
    let mut iter = batches(buf.freeze());
    for _ in 0..CODECS.len() {
        iter.next().unwrap().unwrap();
    }
    assert_eq!(
        iter.next(),
        Some(Err(RecordError::Truncated { needed: sample_batch(Compression::None).len(), available: 30 }))
    );
    assert_eq!(iter.next(), None);
}

#[test]
fn estimated_size_grows_with_each_append() {
    let mut b = BatchBuilder::new(Compression::Zstd);
    assert!(b.is_empty());
    assert_eq!(b.estimated_size(), RECORD_BATCH_OVERHEAD);
    b.append(0, Some(b"key"), Some(&[0u8; 100]), &[]);
    let one = b.estimated_size();
    assert!(one > RECORD_BATCH_OVERHEAD + 100);
    b.append(0, Some(b"key"), Some(&[0u8; 100]), &[]);
    assert_eq!(b.estimated_size() - one, one - RECORD_BATCH_OVERHEAD);
}

fn arb_codec() -> impl Strategy<Value = Compression> {
    prop::sample::select(CODECS.to_vec())
}

type ArbRecord = (i64, Option<Vec<u8>>, Option<Vec<u8>>, Vec<(String, Option<Vec<u8>>)>);

fn arb_record() -> impl Strategy<Value = ArbRecord> {
    (
        -1_000_000i64..4_000_000_000_000,
        prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..200)),
        prop::collection::vec(("[a-z\u{e9}]{0,8}", prop::option::of(prop::collection::vec(any::<u8>(), 0..10))), 0..3),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_records_round_trip_through_any_codec(
        codec in arb_codec(),
        records in prop::collection::vec(arb_record(), 1..20),
        base in 0i64..1_000_000,
    ) {
        let mut b = BatchBuilder::new(codec);
        for (ts, key, value, headers) in &records {
            let headers: Vec<Header> = headers
                .iter()
                .map(|(k, v)| Header { key: k.clone(), value: v.clone().map(Bytes::from) })
                .collect();
            b.append(*ts, key.as_deref(), value.as_deref(), &headers);
        }
        let mut bytes = BytesMut::from(&b.build()[..]);
        set_base_offset(&mut bytes, base);
        let batch = RecordBatch::parse(bytes.freeze()).unwrap();
        prop_assert!(batch.validate().is_ok());
        prop_assert_eq!(batch.max_timestamp(), records.iter().map(|r| r.0).max().unwrap());
        let decoded = batch.records().unwrap();
        prop_assert_eq!(decoded.len(), records.len());
        for (i, (rec, (ts, key, value, headers))) in decoded.iter().zip(&records).enumerate() {
            prop_assert_eq!(rec.offset, base + i as i64);
            prop_assert_eq!(rec.timestamp, *ts);
            prop_assert_eq!(rec.key.as_deref(), key.as_deref());
            prop_assert_eq!(rec.value.as_deref(), value.as_deref());
            prop_assert_eq!(rec.headers.len(), headers.len());
            for (h, (k, v)) in rec.headers.iter().zip(headers) {
                prop_assert_eq!(&h.key, k);
                prop_assert_eq!(h.value.as_deref(), v.as_deref());
            }
        }
    }
}

#[test]
fn for_each_key_sees_every_records_key_at_its_offset_without_decoding_the_rest() {
    for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let mut b = BatchBuilder::new(codec);
        b.append(1, Some(b"a"), Some(b"one"), &[header("h", Some(b"x"))]);
        b.append_at(3, 2, None, Some(b"keyless"), &[]);
        b.append_at(7, 3, Some(b"b"), None, &[]);
        b.set_last_offset_delta(9);
        let batch = RecordBatch::parse(b.build_at(100)).unwrap();
        let mut keys = Vec::new();
        batch.for_each_key(|offset, key| keys.push((offset, key.map(<[u8]>::to_vec)))).unwrap();
        let expected: Vec<_> =
            batch.records().unwrap().into_iter().map(|r| (r.offset, r.key.map(|k| k.to_vec()))).collect();
        assert_eq!(keys, expected, "{codec:?}");
        assert_eq!(keys, [(100, Some(b"a".to_vec())), (103, None), (107, Some(b"b".to_vec()))]);
    }
    // A record whose length ends inside its key is refused, not read past.
    let mut b = BatchBuilder::new(Compression::None);
    b.append(1, Some(b"a-long-key"), Some(b"v"), &[]);
    let mut bytes = b.build().to_vec();
    let record_length_at = vltava_record::header::HEADER_LEN;
    bytes[record_length_at] = 2 * 3; // varint 3: the key alone is longer
    let batch = RecordBatch::parse(Bytes::from(bytes)).unwrap();
    assert!(batch.for_each_key(|_, _| {}).is_err());
}

/// Found by the `record_batch` fuzz target: a batch whose base offset is near `i64::MAX`
/// overflowed `base_offset + last_offset_delta` (a panic in debug builds, a negative offset in
/// release builds). Offsets now saturate, and such a batch never passes for a stored one.
#[test]
fn a_base_offset_near_the_top_of_the_range_does_not_overflow() {
    let mut builder = BatchBuilder::new(Compression::None);
    for i in 0..3u8 {
        builder.append(1_000, Some(&[i]), Some(b"v"), &[]);
    }
    let batch = RecordBatch::parse(builder.build_at(i64::MAX - 1)).unwrap();
    assert_eq!(batch.last_offset(), i64::MAX);
    assert_eq!(batch.next_offset(), i64::MAX);
    let offsets: Vec<i64> = batch.records().unwrap().iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![i64::MAX - 1, i64::MAX, i64::MAX]);
    let mut keys = 0;
    batch.for_each_key(|_, _| keys += 1).unwrap();
    assert_eq!(keys, 3);
    assert!(batch.validate_stored().is_err(), "a log cannot hold offsets past i64::MAX");
}
