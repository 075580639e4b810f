//! Storage throughput: appending batches of 100 records x 100 bytes, and reading them back
//! sequentially in 1 MiB fetches.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vltava_record::{BatchBuilder, Compression};
use vltava_storage::{Log, LogConfig};

const RECORDS_PER_BATCH: u64 = 100;
const VALUE_BYTES: usize = 100;

fn sample_batch() -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    let value = vec![b'v'; VALUE_BYTES];
    for i in 0..RECORDS_PER_BATCH {
        b.append(1_700_000_000_000 + i as i64, None, Some(&value), &[]);
    }
    b.build()
}

fn config() -> LogConfig {
    LogConfig { segment_bytes: 64 * 1024 * 1024, retention_ms: -1, ..LogConfig::default() }
}

fn append(c: &mut Criterion) {
    let batch = sample_batch();
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(RECORDS_PER_BATCH));
    group.bench_function("batch_100x100B", |b| {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).unwrap();
        b.iter(|| black_box(log.append(batch.clone(), 0, 0).unwrap()));
    });
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("batch_100x100B_bytes", |b| {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).unwrap();
        b.iter(|| black_box(log.append(batch.clone(), 0, 0).unwrap()));
    });
    group.finish();
}

fn sequential_read(c: &mut Criterion) {
    let batch = sample_batch();
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    for _ in 0..2_000 {
        log.append(batch.clone(), 0, 0).unwrap();
    }
    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Bytes(log.size_bytes()));
    group.bench_function("sequential_1MiB_fetches", |b| {
        b.iter(|| {
            let mut offset = 0;
            while offset < log.log_end_offset() {
                let r = log.read(offset, 1 << 20, None).unwrap();
                offset = vltava_record::batches(r.records).last().unwrap().unwrap().next_offset();
            }
            black_box(offset)
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    targets = append, sequential_read
}
criterion_main!(benches);
