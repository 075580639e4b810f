//! What a partition remembers about idempotent and transactional producers (Kafka's
//! `ProducerStateManager`): for each producer id, its epoch and the sequence ranges of its last
//! [`MAX_CACHED_BATCHES`] *runs* of batches with the offsets they got. A run is batches stored
//! back to back, at consecutive sequence numbers and consecutive offsets (the batches of one
//! produce request, and of successive requests no other producer wrote between): where Kafka
//! remembers 5 batches, and so caps a producer at 5 batches in flight per partition, a run
//! covers a whole request of any number of batches, so a retried request is recognised however
//! many batches it carries.
//!
//! - **Leader appends** check each producer batch against it ([`ProducerStates::check`]): a
//!   batch already stored (same epoch and sequence range) is a [`Verdict::Duplicate`] and gets
//!   its original offsets back instead of a second copy; a sequence gap is
//!   `OUT_OF_ORDER_SEQUENCE_NUMBER`; an older epoch is `INVALID_PRODUCER_EPOCH`.
//! - **Follower appends and recovery** apply batches without checking (the leader did).
//! - **Snapshots** (`{offset:020}.snapshot`, Kafka's name) hold the whole state as of an offset:
//!   written when a segment rolls and when the log closes, so that opening a log scans only the
//!   batch headers after the newest snapshot, never the whole log. A truncation reloads the
//!   newest snapshot at or below the new end and scans forward from it.
//! - Producers expire `producer.id.expiration.ms` after their last batch's timestamp, unless a
//!   transaction of theirs is open.
//! - **Transactions**: a producer's first transactional batch opens its transaction in the
//!   partition (its offset bounds the last stable offset, see
//!   [`ProducerStates::first_unstable_offset`]); the COMMIT or ABORT marker closes it and is
//!   reported as a [`CompletedTxn`], which the log records in the aborted-transaction index when
//!   it aborted. A marker from an older producer epoch is `INVALID_PRODUCER_EPOCH`, one from an
//!   older coordinator epoch `TRANSACTION_COORDINATOR_FENCED`.
//!
//! Snapshot format (big-endian): `version i16 (1)`, `crc u32` (CRC-32C of everything after
//! it), `count i32`, then per producer: `producer_id i64`, `epoch i16`, `last_timestamp i64`,
//! `coordinator_epoch i32`, `current_txn_first_offset i64` (-1: none), `batch_count i8`, then per
//! batch (oldest first): `first_seq i32`, `last_seq i32`, `first_offset i64`, `last_offset i64`,
//! `max_timestamp i64`. A snapshot failing its CRC or length checks is ignored (logged) and an
//! older one, or the log itself, is used instead.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use vltava_record::header::{CONTROL_FLAG, TRANSACTIONAL_FLAG};
use vltava_record::{MarkerKind, RecordBatch, increment_sequence, parse_marker};

use crate::StorageError;
use crate::checkpoint;
use crate::error::IoContext;
use crate::scan::{BatchHeader, scan};
use crate::segment::Segment;

/// How many of a producer's most recent batches a partition remembers: Kafka's 5, also the
/// largest number of requests an idempotent producer may have in flight per partition.
pub const MAX_CACHED_BATCHES: usize = 5;

/// Extension of producer-state snapshot files.
pub(crate) const SNAPSHOT_EXT: &str = "snapshot";

/// How many snapshots are kept (older ones are deleted when a new one is written).
const KEPT_SNAPSHOTS: usize = 2;

const SNAPSHOT_VERSION: i16 = 1;

/// The producer fields of one batch, with the offsets it has (or will get) in this log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    /// Producer id (never negative here).
    pub producer_id: i64,
    /// Producer epoch.
    pub epoch: i16,
    /// Sequence number of the first record.
    pub first_seq: i32,
    /// Sequence number of the last record.
    pub last_seq: i32,
    /// Offset of the first record.
    pub first_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The batch's max timestamp.
    pub max_timestamp: i64,
    /// Part of a transaction.
    pub transactional: bool,
    /// A transaction marker (control batch).
    pub control: bool,
    /// The marker's kind, for a control batch holding a transaction marker.
    pub marker: Option<MarkerKind>,
    /// The marker's coordinator epoch (-1 for data batches).
    pub coordinator_epoch: i32,
}

/// A transaction that ended in this partition (its marker was just applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    /// The producer whose transaction it was.
    pub producer_id: i64,
    /// Its first offset in this partition (the marker's own offset when it wrote nothing here).
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    /// True for an ABORT marker.
    pub aborted: bool,
}

impl ProducerBatch {
    /// The producer fields of a batch whose first record has offset `first_offset`; `None` for a
    /// batch without a producer id.
    pub(crate) fn from_header(h: &BatchHeader, first_offset: i64) -> Option<ProducerBatch> {
        (h.producer_id >= 0).then(|| ProducerBatch {
            producer_id: h.producer_id,
            epoch: h.producer_epoch,
            first_seq: h.base_sequence,
            last_seq: increment_sequence(h.base_sequence, h.last_offset_delta),
            first_offset,
            last_offset: first_offset.saturating_add(i64::from(h.last_offset_delta)),
            max_timestamp: h.max_timestamp,
            transactional: h.attributes & TRANSACTIONAL_FLAG != 0,
            control: h.attributes & CONTROL_FLAG != 0,
            marker: None,
            coordinator_epoch: -1,
        })
    }

    /// The same for a parsed batch; a control batch's marker is decoded too.
    pub(crate) fn from_batch(b: &RecordBatch, first_offset: i64) -> Result<Option<ProducerBatch>, StorageError> {
        let Some(mut p) = Self::from_batch_header(b, first_offset) else {
            return Ok(None);
        };
        if let Some(m) = parse_marker(b).map_err(|e| StorageError::CorruptBatch { reason: e.to_string() })? {
            p.marker = Some(m.kind);
            p.coordinator_epoch = m.coordinator_epoch;
        }
        Ok(Some(p))
    }

    fn from_batch_header(b: &RecordBatch, first_offset: i64) -> Option<ProducerBatch> {
        (b.producer_id() >= 0).then(|| ProducerBatch {
            producer_id: b.producer_id(),
            epoch: b.producer_epoch(),
            first_seq: b.base_sequence(),
            last_seq: increment_sequence(b.base_sequence(), b.last_offset_delta()),
            first_offset,
            last_offset: first_offset.saturating_add(i64::from(b.last_offset_delta())),
            max_timestamp: b.max_timestamp(),
            transactional: b.is_transactional(),
            control: b.is_control(),
            marker: None,
            coordinator_epoch: -1,
        })
    }

    fn metadata(&self) -> BatchMetadata {
        BatchMetadata {
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            max_timestamp: self.max_timestamp,
        }
    }
}

/// One remembered batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Sequence number of the first record.
    pub first_seq: i32,
    /// Sequence number of the last record.
    pub last_seq: i32,
    /// Offset of the first record.
    pub first_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The batch's max timestamp.
    pub max_timestamp: i64,
}

/// What a partition knows about one producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// The newest epoch seen.
    pub epoch: i16,
    /// The last batches of that epoch, oldest first (at most [`MAX_CACHED_BATCHES`]).
    pub batches: VecDeque<BatchMetadata>,
    /// Timestamp of its last batch (for expiration).
    pub last_timestamp: i64,
    /// The transaction coordinator's epoch of the last marker (-1 if none).
    pub coordinator_epoch: i32,
    /// First offset of its transaction still open in this partition, if any.
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerEntry {
    fn new(epoch: i16) -> Self {
        Self {
            epoch,
            batches: VecDeque::new(),
            last_timestamp: -1,
            coordinator_epoch: -1,
            current_txn_first_offset: None,
        }
    }

    /// Sequence number of the last record stored, if any batch of this epoch is remembered.
    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    /// Where `b` was stored, if it lies inside a remembered run: every sequence number of a run
    /// was stored at the offset its position in the run gives.
    fn duplicate_of(&self, b: &ProducerBatch) -> Option<BatchMetadata> {
        if b.epoch != self.epoch || b.first_seq > b.last_seq {
            return None;
        }
        let run = self.batches.iter().find(|m| m.first_seq <= b.first_seq && b.last_seq <= m.last_seq)?;
        let first_offset = run.first_offset + i64::from(b.first_seq - run.first_seq);
        Some(BatchMetadata {
            first_seq: b.first_seq,
            last_seq: b.last_seq,
            first_offset,
            last_offset: first_offset + i64::from(b.last_seq - b.first_seq),
            max_timestamp: run.max_timestamp,
        })
    }

    /// Records `b` (already checked, or replicated from a leader that checked it); returns the
    /// transaction a marker ended.
    fn apply(&mut self, b: &ProducerBatch) -> Option<CompletedTxn> {
        if b.epoch > self.epoch {
            self.epoch = b.epoch;
            self.batches.clear();
        }
        self.last_timestamp = self.last_timestamp.max(b.max_timestamp);
        if b.control {
            // A marker ends the producer's transaction in this partition.
            let first = self.current_txn_first_offset.take();
            let kind = b.marker?;
            self.coordinator_epoch = self.coordinator_epoch.max(b.coordinator_epoch);
            return Some(CompletedTxn {
                producer_id: b.producer_id,
                first_offset: first.unwrap_or(b.first_offset),
                last_offset: b.first_offset,
                aborted: kind == MarkerKind::Abort,
            });
        }
        if b.transactional && self.current_txn_first_offset.is_none() {
            self.current_txn_first_offset = Some(b.first_offset);
        }
        if b.first_seq < 0 {
            // Not numbered (NO_SEQUENCE): nothing to deduplicate later.
            return None;
        }
        // A batch that continues the last run in both sequence and offset extends it (the
        // batches of one request, and of successive requests no other producer came between).
        if let Some(run) = self.batches.back_mut()
            && run.last_seq < i32::MAX
            && b.first_seq == run.last_seq + 1
            && b.first_offset == run.last_offset + 1
            && b.first_seq <= b.last_seq
        {
            run.last_seq = b.last_seq;
            run.last_offset = b.last_offset;
            run.max_timestamp = run.max_timestamp.max(b.max_timestamp);
            return None;
        }
        if self.batches.len() == MAX_CACHED_BATCHES {
            self.batches.pop_front();
        }
        self.batches.push_back(b.metadata());
        None
    }
}

/// What a leader does with a producer batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Store it.
    Append,
    /// Already stored, with these offsets: answer with them, store nothing.
    Duplicate(BatchMetadata),
}

/// The producer state of one partition (see the module documentation).
#[derive(Debug)]
pub(crate) struct ProducerStates {
    dir: PathBuf,
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: first offset to producer id (derived from `producers`).
    ongoing: BTreeMap<i64, i64>,
}

impl ProducerStates {
    /// The producer `id`'s entry, if it is known.
    pub(crate) fn get(&self, id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&id)
    }

    /// Each known producer's last remembered batch's last offset: the batch a log cleaner keeps
    /// (emptied if need be) so that a rebuild of this state from the log still finds it.
    pub(crate) fn last_batch_offsets(&self) -> HashMap<i64, i64> {
        self.producers.iter().filter_map(|(id, e)| Some((*id, e.batches.back()?.last_offset))).collect()
    }

    /// First offset of the oldest transaction still open in this partition, if any.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Checks a transaction marker for producer `producer_id` against the stored state.
    pub(crate) fn check_marker(&self, b: &ProducerBatch) -> Result<(), StorageError> {
        let Some(entry) = self.producers.get(&b.producer_id) else {
            return Ok(());
        };
        if b.epoch < entry.epoch {
            return Err(StorageError::InvalidProducerEpoch {
                producer_id: b.producer_id,
                current: entry.epoch,
                got: b.epoch,
            });
        }
        if b.coordinator_epoch < entry.coordinator_epoch {
            return Err(StorageError::CoordinatorFenced {
                producer_id: b.producer_id,
                current: entry.coordinator_epoch,
                got: b.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Checks a client's batch against the entry `current` (the stored one, or one already
    /// updated by earlier batches of the same request).
    pub(crate) fn check(current: Option<&ProducerEntry>, b: &ProducerBatch) -> Result<Verdict, StorageError> {
        let Some(entry) = current else {
            // Unknown (new, or its state expired): any sequence starts it, as in Kafka.
            return Ok(Verdict::Append);
        };
        if b.epoch < entry.epoch {
            return Err(StorageError::InvalidProducerEpoch {
                producer_id: b.producer_id,
                current: entry.epoch,
                got: b.epoch,
            });
        }
        if b.first_seq < 0 {
            // NO_SEQUENCE: a broker-written transactional batch (offset commits), not numbered.
            return Ok(Verdict::Append);
        }
        if let Some(dup) = entry.duplicate_of(b) {
            return Ok(Verdict::Duplicate(dup));
        }
        let expected = match (b.epoch > entry.epoch, entry.last_seq()) {
            // A new epoch (or one whose only batches were markers) starts at sequence 0.
            (true, _) | (false, None) => 0,
            (false, Some(last)) => increment_sequence(last, 1),
        };
        if b.first_seq != expected {
            return Err(StorageError::OutOfOrderSequence {
                producer_id: b.producer_id,
                epoch: b.epoch,
                expected,
                got: b.first_seq,
            });
        }
        Ok(Verdict::Append)
    }

    /// Applies `b` to the entry in `pending` (copied from the stored state on first use).
    pub(crate) fn apply_pending(&self, pending: &mut HashMap<i64, ProducerEntry>, b: &ProducerBatch) {
        pending
            .entry(b.producer_id)
            .or_insert_with(|| {
                self.producers.get(&b.producer_id).cloned().unwrap_or_else(|| ProducerEntry::new(b.epoch))
            })
            .apply(b);
    }

    /// Makes the entries of a successful append the stored state.
    pub(crate) fn commit(&mut self, pending: HashMap<i64, ProducerEntry>) {
        for (id, entry) in pending {
            let before = self.producers.get(&id).and_then(|e| e.current_txn_first_offset);
            self.track(id, before, entry.current_txn_first_offset);
            self.producers.insert(id, entry);
        }
    }

    /// Applies one batch at once (follower appends, markers and recovery scans).
    pub(crate) fn apply(&mut self, b: &ProducerBatch) -> Option<CompletedTxn> {
        let entry = self.producers.entry(b.producer_id).or_insert_with(|| ProducerEntry::new(b.epoch));
        let before = entry.current_txn_first_offset;
        let completed = entry.apply(b);
        let after = entry.current_txn_first_offset;
        self.track(b.producer_id, before, after);
        completed
    }

    /// Keeps `ongoing` in step with one producer's open transaction moving from `before` to `after`.
    fn track(&mut self, id: i64, before: Option<i64>, after: Option<i64>) {
        if before == after {
            return;
        }
        if let Some(first) = before
            && self.ongoing.get(&first) == Some(&id)
        {
            self.ongoing.remove(&first);
        }
        if let Some(first) = after {
            self.ongoing.insert(first, id);
        }
    }

    fn rebuild_ongoing(&mut self) {
        self.ongoing =
            self.producers.iter().filter_map(|(id, e)| e.current_txn_first_offset.map(|f| (f, *id))).collect();
    }

    /// Forgets producers whose last batch is older than `expiration_ms` before `now_ms` and who
    /// have no open transaction. Returns how many were removed.
    pub(crate) fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        // A producer with an open transaction is kept, so `ongoing` is unchanged.
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some() || e.last_timestamp.saturating_add(expiration_ms) > now_ms
        });
        before - self.producers.len()
    }

    /// Loads the newest valid snapshot at or below `log_end_offset` and applies every batch
    /// header from there (or from the log start when there is none) to the log end.
    /// Every transaction the scan saw end is passed to `completed` (so that the aborted ones
    /// can be put back in the aborted-transaction index if a crash lost them).
    pub(crate) fn recover(
        dir: &Path,
        segments: &BTreeMap<i64, Segment>,
        log_start_offset: i64,
        log_end_offset: i64,
        from_start: bool,
        completed: &mut dyn FnMut(CompletedTxn, Option<i64>) -> Result<(), StorageError>,
    ) -> Result<ProducerStates, StorageError> {
        let mut states = ProducerStates { dir: dir.to_path_buf(), producers: HashMap::new(), ongoing: BTreeMap::new() };
        states.reload(segments, log_start_offset, log_end_offset, from_start, completed)?;
        Ok(states)
    }

    /// Rebuilds the state for a log now ending at `log_end_offset` (after a truncation):
    /// snapshots above it are deleted, the newest remaining one is loaded (unless `from_start`:
    /// the whole log is scanned) and the batches after it are applied. `completed` gets every
    /// transaction that ended in the scanned batches, with the first unstable offset right
    /// after it ended.
    pub(crate) fn reload(
        &mut self,
        segments: &BTreeMap<i64, Segment>,
        log_start_offset: i64,
        log_end_offset: i64,
        from_start: bool,
        completed: &mut dyn FnMut(CompletedTxn, Option<i64>) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let mut from = log_start_offset;
        self.producers.clear();
        self.ongoing.clear();
        for (offset, path) in list_snapshots(&self.dir)?.into_iter().rev() {
            if offset > log_end_offset {
                remove(&path)?;
                continue;
            }
            if from_start {
                continue;
            }
            match read_snapshot(&path)? {
                Ok(producers) => {
                    self.producers = producers;
                    from = offset.max(log_start_offset);
                    break;
                }
                Err(reason) => {
                    tracing::warn!(path = %path.display(), %reason, "ignoring a bad producer state snapshot");
                    remove(&path)?;
                }
            }
        }
        self.rebuild_ongoing();
        let scanned = self.scan_from(segments, from, log_end_offset, completed)?;
        if scanned > 0 {
            tracing::debug!(dir = %self.dir.display(), from, scanned, producers = self.producers.len(), "producer state rebuilt from batch headers");
        }
        Ok(())
    }

    /// Applies the producer batches in `[from, log_end_offset)`; returns how many batches were read.
    fn scan_from(
        &mut self,
        segments: &BTreeMap<i64, Segment>,
        from: i64,
        log_end_offset: i64,
        completed: &mut dyn FnMut(CompletedTxn, Option<i64>) -> Result<(), StorageError>,
    ) -> Result<usize, StorageError> {
        let mut count = 0;
        if from >= log_end_offset {
            return Ok(0);
        }
        let start = segments.range(..=from).next_back().map_or(from, |(base, _)| *base);
        for segment in segments.range(start..).map(|(_, s)| s) {
            let Some((pos, _)) = segment.find_batch(from.max(segment.base_offset))? else {
                continue;
            };
            let mut batches = Vec::new();
            let end =
                scan(&segment.file, &segment.log_path, pos, segment.size, false, None, |p, h| batches.push((p, *h)))?;
            if let Some(reason) = end.error {
                return Err(StorageError::Corrupt { path: segment.log_path.clone(), position: end.valid_end, reason });
            }
            for (pos, h) in batches.iter().filter(|(_, h)| h.base_offset >= from) {
                count += 1;
                let Some(mut b) = ProducerBatch::from_header(h, h.base_offset) else { continue };
                if b.control {
                    // Markers are tiny: read the record to learn commit or abort.
                    let batch = RecordBatch::parse(segment.read_batch(*pos, h)?)?;
                    b = ProducerBatch::from_batch(&batch, h.base_offset)?.unwrap_or(b);
                }
                if let Some(done) = self.apply(&b) {
                    completed(done, self.first_unstable_offset())?;
                }
            }
        }
        Ok(count)
    }

    /// Writes the state as of `offset` (the log end offset) to `{offset:020}.snapshot` and
    /// deletes all but the newest [`KEPT_SNAPSHOTS`] snapshots.
    pub(crate) fn write_snapshot(&self, offset: i64) -> Result<(), StorageError> {
        let name = snapshot_name(offset);
        checkpoint::write_bytes(&self.dir, &name, &encode(&self.producers))?;
        let snapshots = list_snapshots(&self.dir)?;
        let excess = snapshots.len().saturating_sub(KEPT_SNAPSHOTS);
        for (_, path) in snapshots.into_iter().take(excess) {
            remove(&path)?;
        }
        Ok(())
    }

    /// Forgets everything and deletes every snapshot (the log restarts empty).
    pub(crate) fn clear(&mut self) -> Result<(), StorageError> {
        self.producers.clear();
        self.ongoing.clear();
        for (_, path) in list_snapshots(&self.dir)? {
            remove(&path)?;
        }
        Ok(())
    }
}

fn snapshot_name(offset: i64) -> String {
    format!("{offset:020}.{SNAPSHOT_EXT}")
}

fn remove(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

/// The snapshots in `dir`, oldest first.
fn list_snapshots(dir: &Path) -> Result<Vec<(i64, PathBuf)>, StorageError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(stem) = name.strip_suffix(&format!(".{SNAPSHOT_EXT}")) else { continue };
        if stem.len() == 20
            && let Ok(offset) = stem.parse::<i64>()
        {
            found.push((offset, path));
        }
    }
    found.sort_unstable();
    Ok(found)
}

fn encode(producers: &HashMap<i64, ProducerEntry>) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + producers.len() * 64);
    body.extend_from_slice(&(producers.len() as i32).to_be_bytes());
    let mut ids: Vec<&i64> = producers.keys().collect();
    ids.sort_unstable();
    for id in ids {
        let e = &producers[id];
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(&e.epoch.to_be_bytes());
        body.extend_from_slice(&e.last_timestamp.to_be_bytes());
        body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        body.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
        body.push(e.batches.len() as u8);
        for b in &e.batches {
            body.extend_from_slice(&b.first_seq.to_be_bytes());
            body.extend_from_slice(&b.last_seq.to_be_bytes());
            body.extend_from_slice(&b.first_offset.to_be_bytes());
            body.extend_from_slice(&b.last_offset.to_be_bytes());
            body.extend_from_slice(&b.max_timestamp.to_be_bytes());
        }
    }
    let mut out = Vec::with_capacity(6 + body.len());
    out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads a snapshot file; the inner `Err` says why its content is unusable.
fn read_snapshot(path: &Path) -> Result<Result<HashMap<i64, ProducerEntry>, String>, StorageError> {
    let bytes = std::fs::read(path).at(path)?;
    Ok(decode(&bytes))
}

/// The smallest encoded producer entry: id, epoch, last timestamp, coordinator epoch, current
/// transaction's first offset and the batch count.
const MIN_ENTRY_LEN: usize = 8 + 2 + 8 + 4 + 8 + 1;

fn decode(bytes: &[u8]) -> Result<HashMap<i64, ProducerEntry>, String> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.i16()?;
    if version != SNAPSHOT_VERSION {
        return Err(format!("unknown snapshot version {version}"));
    }
    let crc = r.i32()? as u32;
    if crc32c::crc32c(&bytes[r.at..]) != crc {
        return Err("crc mismatch".into());
    }
    let count = usize::try_from(r.i32()?).map_err(|_| "negative count")?;
    // The count comes from the file: never reserve more than its remaining bytes could hold.
    let mut producers = HashMap::with_capacity(count.min((bytes.len() - r.at) / MIN_ENTRY_LEN));
    for _ in 0..count {
        let id = r.i64()?;
        let mut e = ProducerEntry::new(r.i16()?);
        e.last_timestamp = r.i64()?;
        e.coordinator_epoch = r.i32()?;
        e.current_txn_first_offset = Some(r.i64()?).filter(|o| *o >= 0);
        let batches = r.u8()?;
        for _ in 0..batches {
            e.batches.push_back(BatchMetadata {
                first_seq: r.i32()?,
                last_seq: r.i32()?,
                first_offset: r.i64()?,
                last_offset: r.i64()?,
                max_timestamp: r.i64()?,
            });
        }
        producers.insert(id, e);
    }
    if r.at != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - r.at));
    }
    Ok(producers)
}

/// [`decode`] for the fuzz targets: the number of producers.
#[cfg(feature = "fuzzing")]
pub(crate) fn decode_snapshot(bytes: &[u8]) -> Result<usize, String> {
    decode(bytes).map(|p| p.len())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let end = self.at + N;
        let slice = self.bytes.get(self.at..end).ok_or("truncated snapshot")?;
        self.at = end;
        Ok(slice.try_into().expect("N bytes"))
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take::<1>()?[0])
    }
    fn i16(&mut self) -> Result<i16, String> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Result<i32, String> {
        self.take().map(i32::from_be_bytes)
    }
    fn i64(&mut self) -> Result<i64, String> {
        self.take().map(i64::from_be_bytes)
    }
}

#[cfg(test)]
#[path = "producer_state_tests.rs"]
mod tests;
