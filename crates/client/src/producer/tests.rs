//! Accumulator and partitioner behaviour, without a server.

use std::collections::HashSet;

use bytes::Bytes;

use super::accumulator::{Accumulator, Completion};
use crate::types::ProducerRecord;
use vltava_record::Compression;

fn record(value_len: usize) -> ProducerRecord {
    ProducerRecord::new("t", Bytes::from(vec![7u8; value_len]))
}

fn append(acc: &Accumulator, partition: usize, rec: &ProducerRecord, sticky: bool) -> bool {
    let topic = acc.topic("t").unwrap();
    acc.append(&topic.partitions[partition], rec, 1, rec.estimated_size(), Completion::Future, sticky, None).is_ok()
}

fn ready_batches(acc: &Accumulator, partition: usize) -> Vec<u32> {
    let topic = acc.topic("t").unwrap();
    let inner = topic.partitions[partition].inner.lock();
    inner.ready.iter().map(|b| b.count).collect()
}

#[test]
fn a_batch_is_sealed_when_the_next_record_would_exceed_batch_size() {
    let acc = Accumulator::new(Compression::None, 1_000, 1 << 20);
    acc.ensure_topic("t", 1);
    let rec = record(100); // ~110 bytes encoded
    for _ in 0..8 {
        assert!(append(&acc, 0, &rec, false));
    }
    assert!(ready_batches(&acc, 0).is_empty(), "8 records fit in 1000 bytes");
    for _ in 0..8 {
        assert!(append(&acc, 0, &rec, false));
    }
    let ready = ready_batches(&acc, 0);
    assert_eq!(ready.len(), 1, "{ready:?}");
    let topic = acc.topic("t").unwrap();
    let inner = topic.partitions[0].inner.lock();
    let sealed = &inner.ready[0];
    assert!(sealed.size() <= 1_000, "sealed batch is {} bytes", sealed.size());
    assert!(sealed.size() + 110 > 1_000, "sealed batch of {} bytes had room for another record", sealed.size());
    assert_eq!(sealed.count + inner.open.as_ref().unwrap().count, 16);
    assert_eq!(sealed.reserved, sealed.count as usize * rec.estimated_size());
}

#[test]
fn a_record_larger_than_batch_size_gets_a_batch_of_its_own() {
    let acc = Accumulator::new(Compression::None, 100, 1 << 20);
    acc.ensure_topic("t", 1);
    assert!(append(&acc, 0, &record(10), false));
    assert!(append(&acc, 0, &record(500), false));
    assert_eq!(ready_batches(&acc, 0), vec![1, 1]);
    assert!(acc.topic("t").unwrap().partitions[0].inner.lock().open.is_none());
}

#[test]
fn sticky_partition_stays_until_its_batch_is_sealed_then_moves() {
    let acc = Accumulator::new(Compression::None, 1_000, 1 << 20);
    let topic = acc.ensure_topic("t", 4);
    let rec = record(100);
    let first = acc.sticky_partition(&topic);
    for _ in 0..8 {
        assert_eq!(acc.sticky_partition(&topic), first);
        assert!(append(&acc, first as usize, &rec, true));
    }
    // The ninth record does not fit: the append is aborted and the full batch sealed.
    assert!(!append(&acc, first as usize, &rec, true));
    assert_eq!(ready_batches(&acc, first as usize), vec![8]);
    let second = acc.sticky_partition(&topic);
    assert_ne!(second, first, "a sealed batch moves the sticky partition");
    assert_eq!(acc.sticky_partition(&topic), second);

    // Over many seals every partition gets used, never twice in a row.
    let mut used = HashSet::new();
    for _ in 0..200 {
        let p = acc.sticky_partition(&topic);
        used.insert(p);
        let q = &topic.partitions[p as usize];
        let mut inner = q.inner.lock();
        if inner.open.is_none() {
            drop(inner);
            assert!(append(&acc, p as usize, &rec, true));
            inner = q.inner.lock();
        }
        q.seal(&mut inner); // as linger expiry would
        drop(inner);
        assert_ne!(acc.sticky_partition(&topic), p);
    }
    assert_eq!(used.len(), 4, "{used:?}");
}

#[test]
fn topics_grow_when_metadata_shows_more_partitions() {
    let acc = Accumulator::new(Compression::None, 1_000, 1 << 20);
    let t = acc.ensure_topic("t", 2);
    assert!(append(&acc, 1, &record(5), false));
    let grown = acc.ensure_topic("t", 5);
    assert_eq!(grown.partition_count(), 5);
    assert!(std::sync::Arc::ptr_eq(&t.partitions[1], &grown.partitions[1]), "existing queues are kept");
    assert_eq!(acc.ensure_topic("t", 3).partition_count(), 5, "never shrinks");
    assert!(!acc.is_idle());
    assert_eq!(acc.incomplete().len(), 1);
}

#[tokio::test]
async fn delivery_futures_resolve_with_base_offset_plus_index() {
    let acc = Accumulator::new(Compression::None, 1_000, 1 << 20);
    let topic = acc.ensure_topic("t", 1);
    let q = &topic.partitions[0];
    let futures: Vec<_> = (0..3)
        .map(|_| acc.append(q, &record(1), 42, 10, Completion::Future, false, None).ok().flatten().unwrap())
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    acc.append(q, &record(1), 43, 10, Completion::Callback(Box::new(move |r| tx.send(r).unwrap())), false, None).ok();
    let batch = q.inner.lock().open.take().unwrap();
    batch.complete(&q.topic, 0, Ok(100));
    for (i, f) in futures.into_iter().enumerate() {
        let md = f.await.unwrap();
        assert_eq!((md.offset, md.partition, md.timestamp, &*md.topic), (100 + i as i64, 0, 42, "t"));
    }
    assert_eq!(rx.recv().unwrap().unwrap().offset, 103);
}
