//! What the log cleaner does with each batch of the range it cleans ([`Rewriter`]): keep it,
//! rebuild it with fewer records, empty it, or drop it. The batches are fed in log order, from
//! the log start, because a transaction marker's fate depends on the batches before it.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use vltava_record::{BatchBuilder, Compression, RecordBatch, emptied_batch, rewrite_batch, set_partition_leader_epoch};

use crate::StorageError;
use crate::txn_index::AbortedTxn;

/// What becomes of one batch.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Stored unchanged.
    Keep,
    /// Replaced by these bytes (same base offset and offset range).
    Replace(Bytes),
    /// Removed.
    Remove,
}

/// The per-batch rules of a cleaning pass (see [`crate::cleaner`]).
pub(crate) struct Rewriter {
    /// Each key of the dirty section to the offset of its latest record there.
    latest: HashMap<Bytes, i64>,
    /// Tombstones and transaction markers in batches older than this may be removed.
    horizon: i64,
    aborted: Vec<AbortedTxn>,
    /// Each producer's last batch (by last offset), which keeps at least its header.
    last_batch_of: HashMap<i64, i64>,
    /// The topic's codec (`compression.type`), which rewritten batches are stored with; `None`
    /// keeps each batch's own.
    codec: Option<Compression>,
    /// For each producer with a transaction seen since its last marker: whether any of that
    /// transaction's batches stays in the log (then its marker must stay too).
    txn_retained: HashMap<i64, bool>,
    /// Records removed so far.
    pub(crate) records_removed: u64,
    /// Transaction markers removed so far.
    pub(crate) markers_removed: u64,
}

impl Rewriter {
    pub(crate) fn new(
        latest: HashMap<Bytes, i64>,
        horizon: i64,
        aborted: Vec<AbortedTxn>,
        last_batch_of: HashMap<i64, i64>,
        codec: Option<Compression>,
    ) -> Rewriter {
        Rewriter {
            latest,
            horizon,
            aborted,
            last_batch_of,
            codec,
            txn_retained: HashMap::new(),
            records_removed: 0,
            markers_removed: 0,
        }
    }

    /// Whether `batch` belongs to an aborted transaction.
    pub(crate) fn is_aborted(aborted: &[AbortedTxn], batch: &RecordBatch) -> bool {
        batch.is_transactional()
            && aborted.iter().any(|a| {
                a.producer_id == batch.producer_id()
                    && a.first_offset <= batch.base_offset()
                    && batch.base_offset() <= a.last_offset
            })
    }

    /// Decides what becomes of `batch`, the next batch in log order.
    pub(crate) fn decide(&mut self, batch: &RecordBatch) -> Result<Decision, StorageError> {
        let producer = batch.producer_id();
        if batch.is_control() {
            // A marker goes once no batch of its transaction is left and it is older than the
            // horizon, so that a consumer that read the transaction's data also reads its end.
            let retained = self.txn_retained.remove(&producer).unwrap_or(false);
            if !retained && batch.max_timestamp() < self.horizon {
                self.markers_removed += 1;
                return Ok(Decision::Remove);
            }
            return Ok(Decision::Keep);
        }
        let count = batch.record_count().max(0) as usize;
        let (keep, records) = if Self::is_aborted(&self.aborted, batch) {
            // Never read (read_committed drops them): removed, so they cannot hide a value.
            (vec![false; count], Vec::new())
        } else {
            let records = batch.records()?;
            let expired_tombstones = batch.max_timestamp() < self.horizon;
            let keep = records
                .iter()
                .map(|r| match &r.key {
                    None => true,
                    Some(k) => match self.latest.get(k) {
                        // A key of the dirty section: only its latest record stays.
                        Some(latest) => *latest == r.offset && !(r.value.is_none() && expired_tombstones),
                        // A key only in the clean section: already its latest record.
                        None => !(r.value.is_none() && expired_tombstones),
                    },
                })
                .collect();
            (keep, records)
        };
        let kept = keep.iter().filter(|k| **k).count();
        self.records_removed += (count - kept) as u64;
        let is_last_of_producer = producer >= 0 && self.last_batch_of.get(&producer) == Some(&batch.last_offset());
        let stays = kept > 0 || is_last_of_producer;
        if batch.is_transactional() {
            *self.txn_retained.entry(producer).or_insert(false) |= stays;
        }
        if kept == 0 {
            return Ok(match (count, is_last_of_producer) {
                (0, _) => Decision::Keep,
                (_, true) => Decision::Replace(emptied_batch(batch)),
                (_, false) => Decision::Remove,
            });
        }
        // Rewritten batches take the topic's codec; so does a whole batch stored with another.
        let codec = self.codec.unwrap_or(batch.compression()?);
        if kept == count && codec == batch.compression()? {
            return Ok(Decision::Keep);
        }
        let mut builder =
            BatchBuilder::new(codec).with_producer(producer, batch.producer_epoch(), batch.base_sequence());
        builder.set_transactional(batch.is_transactional());
        for (r, _) in records.iter().zip(&keep).filter(|(_, k)| **k) {
            let delta = i32::try_from(r.offset - batch.base_offset()).unwrap_or(i32::MAX);
            builder.append_at(delta, r.timestamp, r.key.as_deref(), r.value.as_deref(), &r.headers);
        }
        builder.set_last_offset_delta(batch.last_offset_delta());
        let rebuilt = builder.build_at(batch.base_offset());
        let rebuilt = match batch.is_log_append_time() {
            true => rewrite_batch(&RecordBatch::parse(rebuilt)?, None, Some(batch.max_timestamp()))?
                .expect("a timestamp change"),
            false => rebuilt,
        };
        let mut rebuilt = BytesMut::from(&rebuilt[..]);
        set_partition_leader_epoch(&mut rebuilt, batch.partition_leader_epoch());
        Ok(Decision::Replace(rebuilt.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// Batches of `(key, value, timestamp)` records at consecutive offsets from 0.
    fn log_of(batches_of: &[Vec<(u8, Option<u16>, i64)>], codec: Compression) -> Vec<RecordBatch> {
        let mut offset = 0;
        let mut out = Vec::new();
        for records in batches_of {
            let mut b = BatchBuilder::new(codec);
            for (k, v, ts) in records {
                b.append(*ts, Some(&[*k]), v.map(|v| v.to_be_bytes()).as_ref().map(|v| &v[..]), &[]);
            }
            out.push(RecordBatch::parse(b.build_at(offset)).unwrap());
            offset += records.len() as i64;
        }
        out
    }

    proptest! {
        /// In memory, every batch the dirty section as a whole: what the rewriter keeps is, for
        /// each key, exactly its latest record (unless that is a tombstone older than the
        /// horizon), at its offset, with its value and timestamp; batches keep their offset range.
        #[test]
        fn the_rewriter_keeps_exactly_each_keys_latest_record(
            batches_of in prop::collection::vec(
                prop::collection::vec((0u8..6, prop::option::weighted(0.8, any::<u16>()), 0i64..100), 1..5),
                1..30,
            ),
            horizon in 0i64..120,
            zstd in any::<bool>(),
        ) {
            let codec = if zstd { Compression::Zstd } else { Compression::None };
            let log = log_of(&batches_of, codec);
            let mut latest = HashMap::new();
            let mut written = BTreeMap::new();
            for b in &log {
                for r in b.records().unwrap() {
                    latest.insert(r.key.clone().unwrap(), r.offset);
                    written.insert(r.offset, r);
                }
            }
            let mut rewriter = Rewriter::new(latest.clone(), horizon, Vec::new(), HashMap::new(), None);
            let mut kept = Vec::new();
            for b in &log {
                let out = match rewriter.decide(b).unwrap() {
                    Decision::Keep => Some(b.clone()),
                    Decision::Replace(bytes) => Some(RecordBatch::parse(bytes).unwrap()),
                    Decision::Remove => None,
                };
                if let Some(out) = out {
                    out.validate_stored().unwrap();
                    prop_assert_eq!((out.base_offset(), out.last_offset()), (b.base_offset(), b.last_offset()));
                    prop_assert_eq!(out.compression().unwrap(), codec);
                    kept.extend(out.records().unwrap());
                }
            }
            let mut expected: Vec<i64> = latest
                .values()
                .copied()
                .filter(|o| {
                    let r = &written[o];
                    let batch = log.iter().find(|b| b.base_offset() <= *o && *o <= b.last_offset()).unwrap();
                    r.value.is_some() || batch.max_timestamp() >= horizon
                })
                .collect();
            expected.sort_unstable();
            prop_assert_eq!(kept.iter().map(|r| r.offset).collect::<Vec<_>>(), expected);
            for r in &kept {
                prop_assert_eq!(r, &written[&r.offset]);
            }
            let removed = written.len() - kept.len();
            prop_assert_eq!(rewriter.records_removed, removed as u64);
        }
    }
}
