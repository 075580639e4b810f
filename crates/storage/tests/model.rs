//! Model-based property test: random appends (with leader epoch changes), reads, rolls,
//! truncations, retention and reopens (clean and crashed) against a simple in-memory model,
//! including the leader-epoch cache.

mod common;

use common::*;
use proptest::prelude::*;
use vltava_record::{BatchBuilder, Compression, batches};
use vltava_storage::{Log, LogConfig};

#[derive(Debug, Clone)]
enum Op {
    /// One produce call with batches of the given record counts, under a new leader epoch
    /// when the flag is set.
    Append(Vec<usize>, u16, bool),
    Read {
        at: f64,
        max_bytes: usize,
        bound: Option<f64>,
    },
    Roll,
    Reopen {
        clean: bool,
    },
    Truncate(f64),
    RetainBytes(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop::collection::vec(1usize..6, 1..4), 0u16..120, prop::bool::weighted(0.3))
            .prop_map(|(c, v, bump)| Op::Append(c, v, bump)),
        5 => (0.0..1.0f64, 1usize..1500, prop::option::of(0.0..1.2f64))
            .prop_map(|(at, max_bytes, bound)| Op::Read { at, max_bytes, bound }),
        1 => Just(Op::Roll),
        2 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => (0.0..1.1f64).prop_map(Op::Truncate),
        1 => (200u16..3000).prop_map(Op::RetainBytes),
    ]
}

#[derive(Debug, Clone)]
struct ModelBatch {
    base: i64,
    epoch: i32,
    values: Vec<String>,
}

struct Model {
    batches: Vec<ModelBatch>,
    start: i64,
    end: i64,
    counter: u64,
    epoch: i32,
}

impl Model {
    fn value_at(&self, offset: i64) -> Option<&str> {
        let b = self.batches.iter().rev().find(|b| b.base <= offset)?;
        b.values.get((offset - b.base) as usize).map(String::as_str)
    }
    fn pick(&self, frac: f64) -> i64 {
        self.start + ((self.end - self.start) as f64 * frac).floor() as i64
    }
    /// The leader-epoch cache of the remaining batches: an entry where the epoch grows, the
    /// first one starting at the log start offset.
    fn epochs(&self) -> Vec<(i32, i64)> {
        let mut out: Vec<(i32, i64)> = Vec::new();
        for b in &self.batches {
            if out.last().is_none_or(|(e, _)| b.epoch > *e) {
                out.push((b.epoch, b.base.max(self.start)));
            }
        }
        out
    }
}

fn check_read(log: &Log, model: &Model, offset: i64, max_bytes: usize, bound: Option<i64>) {
    let r = log.read(offset, max_bytes, bound).unwrap();
    assert_eq!((r.log_start_offset, r.log_end_offset), (model.start, model.end));
    let limit = bound.unwrap_or(model.end).min(model.end);
    let first_batch_fits = model
        .batches
        .iter()
        .find(|b| b.base + b.values.len() as i64 > offset)
        .is_some_and(|b| b.base + (b.values.len() as i64) <= limit);
    if offset >= limit || !first_batch_fits {
        assert!(r.records.is_empty(), "offset {offset} limit {limit}");
        return;
    }
    assert!(!r.records.is_empty(), "offset {offset} limit {limit}");
    let parsed: Vec<_> = batches(r.records.clone()).map(|b| b.unwrap()).collect();
    assert!(parsed[0].base_offset() <= offset && parsed[0].last_offset() >= offset);
    assert_eq!(r.first_offset, parsed[0].base_offset());
    assert!(parsed.len() == 1 || r.records.len() <= max_bytes);
    for b in &parsed {
        assert!(b.last_offset() < limit);
        b.validate().unwrap();
        for rec in b.records().unwrap() {
            assert_eq!(Some(value(&rec).as_str()), model.value_at(rec.offset), "offset {}", rec.offset);
        }
    }
}

fn run(ops: Vec<Op>, segment_bytes: u64, interval: u64) {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes, index_interval_bytes: interval, retention_ms: -1, ..LogConfig::default() };
    let mut log = Some(Log::open(dir.path(), config.clone()).unwrap());
    let mut model = Model { batches: Vec::new(), start: 0, end: 0, counter: 0, epoch: 0 };
    for op in ops {
        let l = log.as_mut().unwrap();
        match op {
            Op::Append(counts, value_len, bump) => {
                model.epoch += i32::from(bump);
                let mut payload = Vec::new();
                let mut new_batches = Vec::new();
                let mut base = model.end;
                for count in counts {
                    let mut b = BatchBuilder::new(Compression::None);
                    let mut values = Vec::new();
                    for _ in 0..count {
                        model.counter += 1;
                        let v = format!("{}:{}", model.counter, "x".repeat(value_len as usize));
                        b.append(model.counter as i64, None, Some(v.as_bytes()), &[]);
                        values.push(v);
                    }
                    payload.extend_from_slice(&b.build());
                    new_batches.push(ModelBatch { base, epoch: model.epoch, values });
                    base += count as i64;
                }
                let info = l.append(payload.into(), model.epoch, 0).unwrap();
                assert_eq!(info.first_offset, model.end);
                assert_eq!(info.last_offset, base - 1);
                model.end = base;
                model.batches.extend(new_batches);
            }
            Op::Read { at, max_bytes, bound } => {
                let offset = model.pick(at);
                let bound = bound.map(|f| model.start + ((model.end - model.start) as f64 * f) as i64);
                check_read(l, &model, offset, max_bytes, bound);
            }
            Op::Roll => l.roll(0).unwrap(),
            Op::Reopen { clean } => {
                let old = log.take().unwrap();
                if clean {
                    old.close().unwrap()
                } else {
                    drop(old)
                }
                log = Some(Log::open(dir.path(), config.clone()).unwrap());
            }
            Op::Truncate(frac) => {
                let target = model.pick(frac).max(model.start);
                l.truncate_to(target).unwrap();
                if target < model.end {
                    let keep = model.batches.iter().position(|b| b.base + b.values.len() as i64 > target).unwrap();
                    let new_end = model.batches[keep].base;
                    model.batches.truncate(keep);
                    model.end = new_end;
                }
            }
            Op::RetainBytes(bytes) => {
                let mut c = config.clone();
                c.retention_bytes = i64::from(bytes);
                l.set_config(c);
                let before = l.size_bytes();
                let out = l.apply_retention(0).unwrap();
                l.set_config(config.clone());
                assert!(out.deleted_segments == 0 || before - out.deleted_bytes >= u64::from(bytes));
                assert!(out.log_start_offset >= model.start);
                model.start = out.log_start_offset;
                model.batches.retain(|b| b.base >= model.start);
                if let Some(first) = model.batches.first() {
                    assert_eq!(first.base, model.start, "log start at a batch boundary");
                }
            }
        }
        let l = log.as_ref().unwrap();
        assert_eq!(l.log_end_offset(), model.end);
        assert_eq!(l.log_start_offset(), model.start);
        // Entries starting at the log end offset (left by retention emptying the log) own no
        // batch and are dropped on open, as in Kafka.
        let cached: Vec<_> = l.epoch_entries().into_iter().filter(|(_, s)| *s < model.end).collect();
        assert_eq!(cached, model.epochs());
        if let Some(&(latest, _)) = cached.last() {
            assert_eq!(l.end_offset_for_epoch(latest), (latest, model.end));
        }
    }
    let l = log.as_ref().unwrap();
    let all = read_all(l, model.start);
    assert_eq!(all.len() as i64, model.end - model.start);
    for r in &all {
        assert_eq!(Some(value(r).as_str()), model.value_at(r.offset));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn log_behaves_like_a_vec_of_batches(
        ops in prop::collection::vec(op(), 1..40),
        segment_bytes in 300u64..3000,
        interval in 0u64..400,
    ) {
        run(ops, segment_bytes, interval);
    }
}
