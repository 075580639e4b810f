//! Conversions between the thin-client messages and Kafka records, and the request checks the
//! three calls share.

use tonic::Status;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1 as pb;

/// Kafka's ListOffsets "earliest".
pub(super) const EARLIEST: i64 = -2;
/// Kafka's ListOffsets "latest" (the high watermark).
pub(super) const LATEST: i64 = -1;

/// The status of a malformed request: `INVALID_ARGUMENT`, with `INVALID_REQUEST` as its code.
pub(super) fn invalid(message: impl Into<String>) -> Status {
    WireError::new(ErrorCode::InvalidRequest, message).into_status()
}

/// Checks a topic name by Kafka's rules (an empty name is refused with a clear message).
pub(super) fn check_topic(topic: &str) -> Result<(), Status> {
    vltava_common::names::validate_topic_name(topic).map_err(WireError::into_status)
}

/// A non-negative count or size from a request, where 0 means "the default".
pub(super) fn count_or(value: i32, field: &str, default: usize) -> Result<usize, Status> {
    match value {
        0 => Ok(default),
        v if v > 0 => Ok(v as usize),
        v => Err(invalid(format!("{field} must not be negative, got {v}"))),
    }
}

/// The batch codec of a requested compression.
pub(super) fn codec(compression: i32) -> Result<vltava_record::Compression, Status> {
    use vltava_record::Compression as Codec;
    match pb::Compression::try_from(compression) {
        Ok(pb::Compression::Unspecified | pb::Compression::None) => Ok(Codec::None),
        Ok(pb::Compression::Gzip) => Ok(Codec::Gzip),
        Ok(pb::Compression::Snappy) => Ok(Codec::Snappy),
        Ok(pb::Compression::Lz4) => Ok(Codec::Lz4),
        Ok(pb::Compression::Zstd) => Ok(Codec::Zstd),
        Err(_) => Err(invalid(format!("unknown compression {compression}"))),
    }
}

/// The ListOffsets spec (earliest or latest) an `auto_offset_reset` stands for; unspecified is
/// latest, Kafka's default.
pub(super) fn reset_spec(reset: i32) -> Result<i64, Status> {
    match pb::OffsetReset::try_from(reset) {
        Ok(pb::OffsetReset::Earliest) => Ok(EARLIEST),
        Ok(pb::OffsetReset::Unspecified | pb::OffsetReset::Latest) => Ok(LATEST),
        Err(_) => Err(invalid(format!("unknown auto_offset_reset {reset}"))),
    }
}

/// Checks an `isolation_level` field: a known `IsolationLevel` value.
pub(super) fn isolation(level: i32) -> Result<i32, Status> {
    match pb::IsolationLevel::try_from(level) {
        Ok(_) => Ok(level),
        Err(_) => Err(invalid(format!("unknown isolation_level {level}"))),
    }
}

/// Kafka record headers of published headers.
pub(super) fn record_headers(headers: &[pb::Header]) -> Vec<vltava_record::Header> {
    headers.iter().map(|h| vltava_record::Header { key: h.key.clone(), value: Some(h.value.clone()) }).collect()
}

/// A decoded record as the thin client reads it. A null header value reads as empty bytes
/// (`Header.value` cannot be absent).
pub(super) fn consumed(topic: &str, partition: i32, record: vltava_record::Record) -> pb::ConsumedRecord {
    pb::ConsumedRecord {
        topic: topic.to_string(),
        partition,
        offset: record.offset,
        timestamp_ms: record.timestamp,
        key: record.key,
        value: record.value,
        headers: record
            .headers
            .into_iter()
            .map(|h| pb::Header { key: h.key, value: h.value.unwrap_or_default() })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn compressions_map_to_codecs_and_unknown_values_are_refused() {
        use vltava_record::Compression as Codec;
        let cases = [
            (pb::Compression::Unspecified, Codec::None),
            (pb::Compression::None, Codec::None),
            (pb::Compression::Gzip, Codec::Gzip),
            (pb::Compression::Snappy, Codec::Snappy),
            (pb::Compression::Lz4, Codec::Lz4),
            (pb::Compression::Zstd, Codec::Zstd),
        ];
        for (asked, codec_) in cases {
            assert_eq!(codec(asked as i32).unwrap(), codec_);
        }
        assert_eq!(codec(99).unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn offset_reset_defaults_to_latest() {
        assert_eq!(reset_spec(pb::OffsetReset::Unspecified as i32).unwrap(), LATEST);
        assert_eq!(reset_spec(pb::OffsetReset::Latest as i32).unwrap(), LATEST);
        assert_eq!(reset_spec(pb::OffsetReset::Earliest as i32).unwrap(), EARLIEST);
        assert!(reset_spec(7).is_err());
    }

    #[test]
    fn counts_default_at_zero_and_refuse_negatives() {
        assert_eq!(count_or(0, "max_records", 500).unwrap(), 500);
        assert_eq!(count_or(3, "max_records", 500).unwrap(), 3);
        let e = count_or(-1, "max_records", 500).unwrap_err();
        assert!(e.message().contains("max_records"), "{e:?}");
    }

    #[test]
    fn consumed_records_keep_nulls_and_header_order() {
        let record = vltava_record::Record {
            offset: 7,
            timestamp: 1_000,
            key: None,
            value: Some(Bytes::new()),
            headers: vec![
                vltava_record::Header { key: "b".into(), value: Some(Bytes::from_static(b"1")) },
                vltava_record::Header { key: "a".into(), value: None },
            ],
        };
        let c = consumed("t", 2, record);
        assert_eq!((c.topic.as_str(), c.partition, c.offset, c.timestamp_ms), ("t", 2, 7, 1_000));
        assert_eq!((c.key, c.value), (None, Some(Bytes::new())));
        let headers: Vec<_> = c.headers.iter().map(|h| (h.key.as_str(), h.value.as_ref())).collect();
        assert_eq!(headers, vec![("b", &b"1"[..]), ("a", &b""[..])]);
    }
}
