//! The thin-client API (`GatewayService`) against a real in-process broker: placement by Kafka's
//! rules, exact round trips, streams plain and managed by a group, flow control, and errors.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use common::{Cluster, WAIT, bounded, code};
use tonic::Code;
use tonic::Streaming;
use tonic::transport::{Channel, Endpoint};
use vltava_proto::v1::consume_response::Payload;
use vltava_proto::v1::gateway_service_client::GatewayServiceClient;
use vltava_proto::v1::*;
use vltava_testkit::eventually;

async fn api(c: &Cluster) -> GatewayServiceClient<Channel> {
    GatewayServiceClient::new(c.channel().await).max_decoding_message_size(64 << 20)
}

fn record(key: Option<&str>, value: Option<&str>) -> Record {
    Record {
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        ..Default::default()
    }
}

fn to(partition: i32, value: &str) -> Record {
    Record { partition: Some(partition), ..record(None, Some(value)) }
}

fn publish_request(topic: &str, records: Vec<Record>) -> PublishRequest {
    PublishRequest { topic: topic.into(), records, ..Default::default() }
}

async fn publish(c: &Cluster, topic: &str, records: Vec<Record>) -> Vec<PublishResult> {
    let results = bounded(api(c).await.publish(publish_request(topic, records))).await.unwrap().into_inner().results;
    assert!(results.iter().all(|r| r.error_code == ErrorCode::None as i32), "{results:?}");
    results
}

fn read_request(topic: &str, partition: i32, offset: i64) -> ReadRequest {
    ReadRequest { partitions: vec![ReadPartition { topic: topic.into(), partition, offset }], ..Default::default() }
}

async fn read(c: &Cluster, request: ReadRequest) -> Vec<PartitionRead> {
    bounded(api(c).await.read(request)).await.unwrap().into_inner().partitions
}

fn value_of(r: &ConsumedRecord) -> String {
    String::from_utf8(r.value.clone().unwrap_or_default().to_vec()).unwrap()
}

async fn consume(c: &Cluster, request: ConsumeRequest) -> Streaming<ConsumeResponse> {
    bounded(api(c).await.consume(request)).await.unwrap().into_inner()
}

fn group_request(topic: &str, group: &str) -> ConsumeRequest {
    ConsumeRequest {
        topic: topic.into(),
        group_id: group.into(),
        auto_offset_reset: OffsetReset::Earliest as i32,
        auto_commit: true,
        auto_commit_interval_ms: 100,
        ..Default::default()
    }
}

async fn next(stream: &mut Streaming<ConsumeResponse>) -> Payload {
    bounded(stream.message()).await.unwrap().expect("the stream goes on").payload.expect("a payload")
}

async fn next_assignment(stream: &mut Streaming<ConsumeResponse>) -> Assignment {
    match next(stream).await {
        Payload::Assignment(a) => a,
        other => panic!("expected an assignment, got {other:?}"),
    }
}

/// The next `n` records of a stream (failing on an assignment in between).
async fn next_records(stream: &mut Streaming<ConsumeResponse>, n: usize) -> Vec<ConsumedRecord> {
    let mut out = Vec::new();
    while out.len() < n {
        match next(stream).await {
            Payload::Records(set) => out.extend(set.records),
            other => panic!("expected records, got {other:?} after {} records", out.len()),
        }
    }
    assert_eq!(out.len(), n, "more records than expected: {out:?}");
    out
}

/// (partition → values) of records, in arrival order within each partition.
fn by_partition(records: &[ConsumedRecord]) -> BTreeMap<i32, Vec<String>> {
    let mut out: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for r in records {
        out.entry(r.partition).or_default().push(value_of(r));
    }
    out
}

/// The group's committed offsets of `partitions` of `topic` (-1: none).
async fn committed(c: &Cluster, group: &str, topic: &str, partitions: &[i32]) -> Vec<i64> {
    let request = FetchOffsetsRequest {
        group_id: group.into(),
        partitions: partitions.iter().map(|&partition| TopicPartition { topic: topic.into(), partition }).collect(),
    };
    let offsets = bounded(c.groups().await.fetch_offsets(request)).await.unwrap().into_inner().offsets;
    offsets.iter().map(|o| o.offset).collect()
}

/// Polls the committed offsets (every 50 ms, for at most [`WAIT`]) until `done` holds for them.
async fn committed_when(
    c: &Cluster,
    group: &str,
    topic: &str,
    partitions: &[i32],
    done: impl Fn(&[i64]) -> bool,
) -> Vec<i64> {
    eventually(WAIT, "the committed offsets to move", || async {
        let offsets = committed(c, group, topic, partitions).await;
        done(&offsets).then_some(offsets)
    })
    .await
}

/// The tests, in a module named like the file so that `cargo test --workspace --all-targets
/// gateway_api` selects exactly them.
mod gateway_api {
    use super::*;

    #[tokio::test]
    async fn given_a_transaction_through_the_gateway_read_committed_reads_and_streams_see_it_only_once_committed() {
        use vltava_proto::v1::transaction_service_client::TransactionServiceClient;
        let c = Cluster::start().await;
        c.create_topic("txn", 1).await;
        let mut txns = TransactionServiceClient::new(c.channel().await);
        let find = FindTransactionCoordinatorRequest { transactional_id: "gw-txn".into() };
        bounded(txns.find_transaction_coordinator(find)).await.unwrap();
        let init = InitProducerIdRequest { transactional_id: "gw-txn".into(), transaction_timeout_ms: 60_000 };
        let id = bounded(txns.init_producer_id(init)).await.unwrap().into_inner();
        let add = AddPartitionsToTxnRequest {
            transactional_id: "gw-txn".into(),
            producer_id: id.producer_id,
            producer_epoch: id.producer_epoch,
            topics: vec![TxnTopic { topic: "txn".into(), partitions: vec![0] }],
        };
        bounded(txns.add_partitions_to_txn(add)).await.unwrap();
        let mut b = vltava_record::BatchBuilder::new(vltava_record::Compression::None).with_producer(
            id.producer_id,
            id.producer_epoch as i16,
            0,
        );
        b.set_transactional(true);
        b.append(vltava_common::time::now_ms(), None, Some(b"pending"), &[]);
        c.produce("txn", 0, b.build()).await.unwrap();

        let committed = |mut r: ReadRequest| {
            r.isolation_level = IsolationLevel::ReadCommitted as i32;
            r
        };
        let p = &read(&c, committed(read_request("txn", 0, -2))).await[0];
        assert!(p.records.is_empty(), "open: nothing below the last stable offset");
        let p = &read(&c, read_request("txn", 0, -2)).await[0];
        assert_eq!(p.records.iter().map(value_of).collect::<Vec<_>>(), ["pending"]);
        let mut stream = consume(
            &c,
            ConsumeRequest {
                topic: "txn".into(),
                auto_offset_reset: OffsetReset::Earliest as i32,
                isolation_level: IsolationLevel::ReadCommitted as i32,
                ..Default::default()
            },
        )
        .await;

        let end = EndTxnRequest {
            transactional_id: "gw-txn".into(),
            producer_id: id.producer_id,
            producer_epoch: id.producer_epoch,
            commit: true,
        };
        bounded(txns.end_txn(end)).await.unwrap();
        let p = &read(&c, committed(read_request("txn", 0, -2))).await[0];
        assert_eq!(p.records.iter().map(value_of).collect::<Vec<_>>(), ["pending"]);
        assert_eq!(p.next_offset, 2, "the marker is skipped, not returned");
        let streamed = next_records(&mut stream, 1).await;
        assert_eq!(value_of(&streamed[0]), "pending");

        let bad = ReadRequest { isolation_level: 7, ..read_request("txn", 0, 0) };
        let e = bounded(api(&c).await.read(bad)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        let gone = WriteTxnMarkersRequest::default();
        assert_eq!(bounded(txns.write_txn_markers(gone)).await.unwrap_err().code(), Code::PermissionDenied);
        c.stop().await;
    }

    #[tokio::test]
    async fn given_keyed_records_publish_should_place_them_by_kafkas_murmur2_and_answer_in_request_order() {
        let c = Cluster::start().await;
        c.create_topic("keyed", 6).await;
        // Kafka's murmur2 of these keys (from Kafka's UtilsTest) and the partitions that implies.
        let kafka =
            [("21", -973_932_308i32, 0), ("a-little-bit-long-string", -985_981_536, 2), ("abc", 479_470_107, 3)];
        for (key, hash, partition) in kafka {
            assert_eq!((hash & 0x7fff_ffff) % 6, partition);
            assert_eq!(vltava_record::murmur2::partition_for_key(key.as_bytes(), 6) as i32, partition);
        }
        let keys = ["abc", "21", "user-1", "abc", "a-little-bit-long-string", "21", "user-2", "", "abc"];
        let mut records: Vec<Record> = keys.iter().map(|k| record(Some(k), Some(&format!("v-{k}")))).collect();
        records.push(Record { partition: Some(4), ..record(Some("abc"), Some("explicit")) });
        records.push(Record { partition: Some(6), ..record(Some("abc"), Some("out of range")) });
        records.push(Record { partition: Some(-1), ..record(None, Some("negative")) });
        let results =
            bounded(api(&c).await.publish(publish_request("keyed", records))).await.unwrap().into_inner().results;
        assert_eq!(results.len(), keys.len() + 3);

        let mut next_offset: BTreeMap<i32, i64> = BTreeMap::new();
        for (key, result) in keys.iter().zip(&results) {
            let expected = vltava_record::murmur2::partition_for_key(key.as_bytes(), 6) as i32;
            assert_eq!(result.partition, expected, "{key}: {result:?}");
            assert_eq!(result.error_code, ErrorCode::None as i32, "{result:?}");
            let offset = next_offset.entry(expected).or_default();
            assert_eq!(result.offset, *offset, "records of one partition get consecutive offsets in request order");
            *offset += 1;
            assert!(result.timestamp_ms > 0, "stamped by the gateway");
        }
        assert_eq!((results[0].partition, results[1].partition, results[4].partition), (3, 0, 2));
        let explicit = &results[keys.len()];
        assert_eq!((explicit.partition, explicit.error_code), (4, 0), "an explicit partition wins over the key");
        for bad in &results[keys.len() + 1..] {
            assert_eq!(bad.error_code, ErrorCode::UnknownTopicOrPartition as i32, "{bad:?}");
            assert_eq!(bad.offset, -1);
            assert!(bad.error_message.contains("does not exist"), "{bad:?}");
        }

        // What was stored is where the results say.
        let on_3: Vec<String> = keys
            .iter()
            .filter(|k| vltava_record::murmur2::partition_for_key(k.as_bytes(), 6) == 3)
            .map(|k| format!("v-{k}"))
            .collect();
        assert!(on_3.len() >= 3, "{on_3:?}");
        let stored = read(&c, read_request("keyed", 3, -2)).await.remove(0);
        assert_eq!(stored.records.iter().map(value_of).collect::<Vec<_>>(), on_3);
        let offsets: Vec<i64> = stored.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..on_3.len() as i64).collect::<Vec<_>>());
        c.stop().await;
    }

    #[tokio::test]
    async fn given_keyless_records_each_request_should_go_to_one_partition_rotating_across_requests() {
        let c = Cluster::start().await;
        c.create_topic("spread", 3).await;
        let mut chosen = Vec::new();
        for request in 0..6 {
            let records = (0..4).map(|i| record(None, Some(&format!("r{request}-{i}")))).collect();
            let results = publish(&c, "spread", records).await;
            let partitions: BTreeSet<i32> = results.iter().map(|r| r.partition).collect();
            assert_eq!(partitions.len(), 1, "one partition per request: {results:?}");
            let offsets: Vec<i64> = results.iter().map(|r| r.offset).collect();
            assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "{offsets:?}");
            chosen.push(results[0].partition);
        }
        assert!(chosen.windows(2).all(|w| w[0] != w[1]), "consecutive requests rotate: {chosen:?}");
        assert_eq!(chosen.iter().copied().collect::<BTreeSet<_>>(), BTreeSet::from([0, 1, 2]), "{chosen:?}");
        c.stop().await;
    }

    #[tokio::test]
    async fn given_published_records_read_should_return_them_exactly_and_honour_max_records_and_latest() {
        let c = Cluster::start().await;
        c.create_topic("exact", 2).await;
        let header = |k: &str, v: &str| Header { key: k.into(), value: Bytes::copy_from_slice(v.as_bytes()) };
        let records = vec![
            Record {
                partition: Some(1),
                headers: vec![header("b", "1"), header("a", ""), header("b", "2")],
                timestamp_ms: 1_600_000_000_123,
                ..record(Some("k1"), Some("v1"))
            },
            Record { partition: Some(1), ..record(None, None) },
            Record { partition: Some(1), ..record(Some(""), Some("")) },
        ];
        let results = publish(&c, "exact", records.clone()).await;
        assert_eq!(results.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(results[0].timestamp_ms, 1_600_000_000_123);

        let read_back = read(&c, read_request("exact", 1, -2)).await.remove(0);
        assert_eq!(read_back.error_code, ErrorCode::None as i32, "{read_back:?}");
        assert_eq!((read_back.next_offset, read_back.high_watermark, read_back.log_start_offset), (3, 3, 0));
        assert_eq!(read_back.records.len(), 3);
        for ((sent, got), result) in records.iter().zip(&read_back.records).zip(&results) {
            assert_eq!((got.topic.as_str(), got.partition, got.offset), ("exact", 1, result.offset));
            assert_eq!(got.key, sent.key, "absent and empty keys differ");
            assert_eq!(got.value, sent.value, "null and empty values differ");
            assert_eq!(got.headers, sent.headers, "headers keep their order and repeats");
            assert_eq!(got.timestamp_ms, result.timestamp_ms);
        }

        let first_two = read(&c, ReadRequest { max_records: 2, ..read_request("exact", 1, 0) }).await.remove(0);
        assert_eq!(first_two.records.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(first_two.next_offset, 2);
        let rest = read(&c, read_request("exact", 1, first_two.next_offset)).await.remove(0);
        assert_eq!(rest.records.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![2]);

        // Latest: nothing yet, and the position to go on from; then a long poll that new records end.
        let latest = read(&c, read_request("exact", 1, -1)).await.remove(0);
        assert!(latest.records.is_empty());
        assert_eq!(latest.next_offset, 3);
        let request = ReadRequest { max_wait_ms: 15_000, ..read_request("exact", 1, latest.next_offset) };
        let mut client = api(&c).await;
        let waiting = tokio::spawn(async move { client.read(request).await });
        publish(&c, "exact", vec![to(1, "late-0"), to(1, "late-1")]).await;
        let late = bounded(waiting).await.unwrap().unwrap().into_inner().partitions.remove(0);
        assert_eq!(late.records.iter().map(value_of).collect::<Vec<_>>(), vec!["late-0", "late-1"]);
        assert_eq!(late.records[0].offset, 3);

        // Partitions answer on their own, in request order.
        let mixed = ReadRequest {
            partitions: vec![
                ReadPartition { topic: "nope".into(), partition: 0, offset: 0 },
                ReadPartition { topic: "exact".into(), partition: 0, offset: -2 },
            ],
            ..Default::default()
        };
        let answers = read(&c, mixed).await;
        assert_eq!(answers[0].error_code, ErrorCode::UnknownTopicOrPartition as i32, "{answers:?}");
        assert_eq!((answers[1].error_code, answers[1].records.len(), answers[1].next_offset), (0, 0, 0));
        c.stop().await;
    }

    #[tokio::test]
    async fn given_each_compression_published_records_should_be_stored_compressed_and_read_back() {
        let c = Cluster::start().await;
        c.create_topic("codecs", 1).await;
        let codecs = [
            (Compression::Gzip, vltava_record::Compression::Gzip),
            (Compression::Lz4, vltava_record::Compression::Lz4),
            (Compression::Zstd, vltava_record::Compression::Zstd),
            (Compression::Snappy, vltava_record::Compression::Snappy),
            (Compression::None, vltava_record::Compression::None),
        ];
        let mut offset = 0;
        for (asked, stored) in codecs {
            let values: Vec<String> = (0..50).map(|i| format!("{}-{i}-{}", stored.name(), "x".repeat(100))).collect();
            let records = values.iter().map(|v| record(Some("k"), Some(v))).collect();
            let request = PublishRequest { compression: asked as i32, ..publish_request("codecs", records) };
            let results = bounded(api(&c).await.publish(request)).await.unwrap().into_inner().results;
            assert!(results.iter().all(|r| r.error_code == 0 && r.partition == 0), "{results:?}");

            let raw = FetchRequest {
                max_wait_ms: 0,
                min_bytes: 0,
                max_bytes: 1 << 20,
                partitions: vec![FetchPartition {
                    topic: "codecs".into(),
                    partition: 0,
                    fetch_offset: offset,
                    partition_max_bytes: 0,
                }],
                ..Default::default()
            };
            let raw = bounded(c.records().await.fetch(raw)).await.unwrap().into_inner().partitions.remove(0).records;
            let batch = vltava_record::batches(raw).next().unwrap().unwrap();
            assert_eq!(batch.compression().unwrap(), stored, "{asked:?}");

            let read_back = read(&c, read_request("codecs", 0, offset)).await.remove(0);
            assert_eq!(read_back.records.iter().map(value_of).collect::<Vec<_>>(), values, "{asked:?}");
            offset += 50;
        }
        c.stop().await;
    }

    #[tokio::test]
    async fn given_malformed_requests_or_unknown_topics_the_gateway_should_say_so_clearly() {
        let c = Cluster::start().await;
        c.create_topic("t", 1).await;
        let mut client = api(&c).await;

        let err = bounded(client.publish(publish_request("", vec![record(None, Some("v"))]))).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains("empty"), "{err:?}");
        let err = bounded(client.publish(publish_request("t", vec![]))).await.unwrap_err();
        assert_eq!((err.code(), code(&err).as_str()), (Code::InvalidArgument, "INVALID_REQUEST"), "{err:?}");
        assert!(err.message().contains("at least one record"), "{err:?}");
        let bad_acks = PublishRequest { acks: Some(2), ..publish_request("t", vec![record(None, Some("v"))]) };
        let err = bounded(client.publish(bad_acks)).await.unwrap_err();
        assert_eq!(code(&err), "INVALID_REQUIRED_ACKS", "{err:?}");

        let results =
            bounded(client.publish(publish_request("missing", vec![record(Some("k"), None), record(None, None)])))
                .await
                .unwrap()
                .into_inner()
                .results;
        assert_eq!(results.len(), 2);
        for r in &results {
            assert_eq!((r.error_code, r.partition, r.offset), (ErrorCode::UnknownTopicOrPartition as i32, -1, -1));
        }

        let err = bounded(client.read(read_request("", 0, 0))).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        let err = bounded(client.read(ReadRequest::default())).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

        let err = bounded(client.consume(ConsumeRequest { topic: "missing".into(), ..Default::default() }))
            .await
            .unwrap_err();
        assert_eq!((err.code(), code(&err).as_str()), (Code::NotFound, "UNKNOWN_TOPIC_OR_PARTITION"), "{err:?}");
        let beyond = ConsumeRequest { topic: "t".into(), partitions: vec![1], ..Default::default() };
        let err = bounded(client.consume(beyond)).await.unwrap_err();
        assert_eq!(code(&err), "UNKNOWN_TOPIC_OR_PARTITION", "{err:?}");
        let no_group = ConsumeRequest { topic: "t".into(), auto_commit: true, ..Default::default() };
        assert_eq!(bounded(client.consume(no_group)).await.unwrap_err().code(), Code::InvalidArgument);
        c.stop().await;
    }

    #[tokio::test]
    async fn given_a_plain_stream_it_should_deliver_records_published_after_it_started() {
        let c = Cluster::start().await;
        c.create_topic("live", 2).await;
        publish(&c, "live", vec![to(0, "old-0"), to(1, "old-1")]).await;
        // The default start is the latest offset: only what is published from now on.
        let mut latest = consume(&c, ConsumeRequest { topic: "live".into(), ..Default::default() }).await;
        let explicit = ConsumeRequest {
            topic: "live".into(),
            partitions: vec![1],
            auto_offset_reset: OffsetReset::Earliest as i32,
            ..Default::default()
        };
        let mut earliest_1 = consume(&c, explicit).await;

        let new: Vec<Record> = (0..6).map(|i| to(i % 2, &format!("new-{i}"))).collect();
        publish(&c, "live", new).await;
        let got = by_partition(&next_records(&mut latest, 6).await);
        let expected = BTreeMap::from([
            (0, vec!["new-0".to_string(), "new-2".into(), "new-4".into()]),
            (1, vec!["new-1".to_string(), "new-3".into(), "new-5".into()]),
        ]);
        assert_eq!(got, expected);
        let got = next_records(&mut earliest_1, 4).await;
        assert_eq!(got.iter().map(value_of).collect::<Vec<_>>(), vec!["old-1", "new-1", "new-3", "new-5"]);
        assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        drop((latest, earliest_1));
        c.stop().await;
    }

    /// The next assignment of `stream` that `done` accepts (assignments in between are the
    /// incremental steps of a rebalance).
    async fn assignment_until(
        stream: &mut Streaming<ConsumeResponse>,
        done: impl Fn(&Assignment) -> bool,
    ) -> Assignment {
        for _ in 0..20 {
            let a = next_assignment(stream).await;
            if done(&a) {
                return a;
            }
        }
        panic!("no such assignment in 20 steps");
    }

    /// The next `n` records of a stream, skipping assignments that do not change its partitions.
    async fn records_skipping_epoch_bumps(
        stream: &mut Streaming<ConsumeResponse>,
        partitions: &[i32],
        n: usize,
    ) -> Vec<ConsumedRecord> {
        let mut out = Vec::new();
        while out.len() < n {
            match next(stream).await {
                Payload::Records(set) => out.extend(set.records),
                Payload::Assignment(a) => assert_eq!(a.partitions, partitions, "only an epoch bump: {a:?}"),
            }
        }
        assert_eq!(out.len(), n, "more records than expected: {out:?}");
        out
    }

    #[tokio::test]
    async fn given_two_streams_of_one_group_they_should_split_the_partitions_and_hand_them_over() {
        let c = Cluster::start().await;
        c.create_topic("shared", 4).await;
        let first: Vec<Record> = (0..40).map(|i| to(i % 4, &format!("a-{i}"))).collect();
        publish(&c, "shared", first).await;

        // The only member gets every partition in its first assignment.
        let mut a = consume(&c, group_request("shared", "g")).await;
        let a_first = next_assignment(&mut a).await;
        assert_eq!(a_first.partitions, vec![0, 1, 2, 3]);
        assert!(!a_first.member_id.is_empty() && a_first.member_epoch > 0, "{a_first:?}");
        assert_eq!(next_records(&mut a, 40).await.len(), 40);

        // A second member: a gives up two partitions (committing them first), b gets them once a
        // no longer holds them.
        let mut b = consume(&c, group_request("shared", "g")).await;
        let a_share = assignment_until(&mut a, |s| s.partitions.len() == 2).await.partitions;
        let b_share = assignment_until(&mut b, |s| s.partitions.len() == 2).await.partitions;
        let all: BTreeSet<i32> = a_share.iter().chain(&b_share).copied().collect();
        assert_eq!(all, BTreeSet::from([0, 1, 2, 3]), "a split: {a_share:?} / {b_share:?}");

        // b starts where a left its partitions: only new records.
        publish(&c, "shared", (0..8).map(|i| to(i % 4, &format!("b-{i}"))).collect()).await;
        let to_a = by_partition(&records_skipping_epoch_bumps(&mut a, &a_share, 4).await);
        let to_b = by_partition(&records_skipping_epoch_bumps(&mut b, &b_share, 4).await);
        assert_eq!(to_a.keys().copied().collect::<Vec<_>>(), a_share);
        assert_eq!(to_b.keys().copied().collect::<Vec<_>>(), b_share);
        for (p, values) in &to_b {
            assert_eq!(values, &vec![format!("b-{p}"), format!("b-{}", p + 4)], "only new records on {p}");
        }

        // b hangs up: a gets every partition, from where b was (b committed on leaving).
        drop(b);
        assignment_until(&mut a, |s| s.partitions.len() == 4).await;
        publish(&c, "shared", b_share.iter().map(|p| to(*p, &format!("c-{p}"))).collect()).await;
        let taken_over = records_skipping_epoch_bumps(&mut a, &[0, 1, 2, 3], b_share.len()).await;
        let offsets: BTreeSet<(i32, i64)> = taken_over.iter().map(|r| (r.partition, r.offset)).collect();
        let expected: BTreeSet<(i32, i64)> = b_share.iter().map(|p| (*p, 12)).collect();
        assert_eq!(offsets, expected, "no record of b's is delivered twice");

        // Auto-commit: the delivered positions are committed (at the latest when the stream ends).
        drop(a);
        let want: Vec<i64> = (0..4).map(|p| if b_share.contains(&p) { 13 } else { 12 }).collect();
        let offsets = committed_when(&c, "g", "shared", &[0, 1, 2, 3], |o| o == want.as_slice()).await;
        assert_eq!(offsets, want);
        c.stop().await;
    }

    #[tokio::test]
    async fn given_a_client_that_stops_reading_the_gateway_should_stop_fetching_not_buffer_everything() {
        const TOTAL: usize = 4_000;
        let c = Cluster::start().await;
        c.create_topic("flood", 1).await;
        let payload = "p".repeat(1_000);
        for chunk in 0..TOTAL / 400 {
            let records = (0..400).map(|i| record(None, Some(&format!("{:05}-{payload}", chunk * 400 + i)))).collect();
            publish(&c, "flood", records).await;
        }

        // A client with small HTTP/2 windows that reads the first message, then stops reading.
        let endpoint = Endpoint::from_shared(format!("http://{}", c.gateway.addr))
            .unwrap()
            .initial_stream_window_size(Some(64 * 1024))
            .initial_connection_window_size(Some(64 * 1024));
        let channel = bounded(endpoint.connect()).await.unwrap();
        let request = ConsumeRequest { max_records: 10, auto_commit_interval_ms: 20, ..group_request("flood", "slow") };
        let mut stream = bounded(GatewayServiceClient::new(channel).consume(request)).await.unwrap().into_inner();
        assert_eq!(next_assignment(&mut stream).await.partitions, vec![0]);

        // What the gateway handed to the stream is committed every 20 ms; it stays far below what
        // exists, however long the client waits (the observable bound of what was read ahead).
        let stuck = committed_when(&c, "slow", "flood", &[0], |o| o[0] > 0).await[0];
        tokio::time::sleep(Duration::from_millis(500)).await;
        let later = committed(&c, "slow", "flood", &[0]).await[0];
        assert!(later >= stuck && later <= 400, "the gateway read {later} of {TOTAL} records ahead of the client");

        // Once read, everything arrives in order, at most 10 records per message.
        let mut seen = 0;
        while seen < TOTAL {
            let Payload::Records(set) = next(&mut stream).await else { panic!("unexpected assignment") };
            assert!(!set.records.is_empty() && set.records.len() <= 10, "{} records", set.records.len());
            for r in set.records {
                assert_eq!((r.offset, &value_of(&r)[..5]), (seen as i64, &format!("{seen:05}")[..]));
                seen += 1;
            }
        }
        drop(stream);
        committed_when(&c, "slow", "flood", &[0], |o| o[0] == TOTAL as i64).await;
        c.stop().await;
    }
}
