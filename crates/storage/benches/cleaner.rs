//! Log cleaner throughput: compacting a log of 100-byte records (batches of 100) whose 10,000
//! keys are each updated many times, measured in bytes of dirty log cleaned per second (one
//! thread, the page cache warm).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use vltava_record::{BatchBuilder, Compression};
use vltava_storage::{Log, LogConfig};

const BATCHES: u64 = 2_000;
const RECORDS_PER_BATCH: u64 = 100;
const KEYS: u64 = 10_000;

fn config() -> LogConfig {
    LogConfig { segment_bytes: 4 * 1024 * 1024, retention_ms: -1, compact: true, ..LogConfig::default() }
}

fn batch(n: u64) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    let value = vec![b'v'; 100];
    for i in 0..RECORDS_PER_BATCH {
        let key = format!("key-{:05}", (n * RECORDS_PER_BATCH + i) % KEYS);
        b.append(1_700_000_000_000, Some(key.as_bytes()), Some(&value), &[]);
    }
    b.build()
}

/// A fresh log of `BATCHES` batches; returns it with its size in bytes.
fn dirty_log() -> (tempfile::TempDir, Log, u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    for n in 0..BATCHES {
        log.append(batch(n), 0, 0).unwrap();
    }
    log.roll(0).unwrap();
    let size = log.size_bytes();
    (dir, log, size)
}

fn clean(c: &mut Criterion) {
    let (_dir, _log, size) = dirty_log();
    let mut group = c.benchmark_group("cleaner");
    group.throughput(Throughput::Bytes(size));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("compact_20MB_10k_keys", |b| {
        b.iter_batched(
            dirty_log,
            |(dir, mut log, _)| {
                let outcome = log.clean(1_700_000_000_000, 1_000_000).unwrap();
                assert!(outcome.records_removed > 0);
                (dir, log)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, clean);
criterion_main!(benches);
