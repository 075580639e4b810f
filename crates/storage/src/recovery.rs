//! Opening a log directory and recovering it after a crash.
//!
//! Policy (documented in the crate root):
//! - Without a `.clean-shutdown` marker every segment that may hold data at or above the
//!   recovery point is fully validated (length, magic, CRC-32C, offsets growing) batch by
//!   batch, and its indexes are rebuilt from the log.
//! - Every other segment trusts its indexes after sanity checks (file size a multiple of the
//!   entry size, monotonic entries, last entry pointing at a batch with the matching offset);
//!   only the tail after its last offset index entry is validated. A failed check falls back
//!   to full validation.
//! - At the first torn or corrupt batch the segment is cut there and every later segment is
//!   deleted, as Kafka does.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::checkpoint::{self, CLEAN_SHUTDOWN_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
use crate::cleaner_plan::CleanerState;
use crate::epoch_cache::LeaderEpochCache;
use crate::error::IoContext;
use crate::index::{Index, OffsetIndex, TimeIndex, remove_if_exists};
use crate::producer_state::ProducerStates;
use crate::scan::{BatchHeader, scan};
use crate::segment::{INDEX_EXT, LOG_EXT, Segment, TIME_INDEX_EXT, open_log_file, segment_path};
use crate::txn_index::TxnIndex;
use crate::{Log, LogConfig, StorageError};

/// Parses `{base:020}.{ext}` file names.
fn parse_name(name: &str) -> Option<(i64, &str)> {
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, ext))
}

/// Lists segment base offsets, removing stray `.tmp` files and orphaned index files.
fn list_segments(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".tmp") {
            tracing::warn!(path = %path.display(), "removing stray temporary file");
            remove_if_exists(&path)?;
            continue;
        }
        match parse_name(name) {
            Some((base, LOG_EXT)) => logs.push(base),
            Some((base, INDEX_EXT | TIME_INDEX_EXT)) => indexes.push((base, path)),
            _ => {}
        }
    }
    logs.sort_unstable();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            tracing::warn!(path = %path.display(), "removing index without a log file");
            remove_if_exists(&path)?;
        }
    }
    Ok(logs)
}

/// Outcome of loading one segment.
struct Loaded {
    segment: Segment,
    /// The segment was cut at a torn or corrupt batch.
    cut: bool,
    /// The segment was fully validated and its indexes rebuilt.
    rebuilt: bool,
}

/// Loads the indexes of a trusted segment; `Err(reason)` if they fail a sanity check.
fn load_indexes(segment: &Segment, dir: &Path) -> Result<Result<(OffsetIndex, TimeIndex), String>, StorageError> {
    let base = segment.base_offset;
    let offsets = match OffsetIndex::load(segment_path(dir, base, INDEX_EXT))? {
        Ok(i) => i,
        Err(reason) => return Ok(Err(format!("offset index {reason}"))),
    };
    let times = match TimeIndex::load(segment_path(dir, base, TIME_INDEX_EXT))? {
        Ok(i) => i,
        Err(reason) => return Ok(Err(format!("time index {reason}"))),
    };
    if let Some(last) = offsets.last() {
        if u64::from(last.pos) >= segment.size {
            return Ok(Err("offset index points past the log".into()));
        }
        match segment.header_at(u64::from(last.pos)) {
            Ok(h) if h.base_offset == base.saturating_add(i64::from(last.rel)) => {}
            _ => return Ok(Err("offset index entry does not match the batch it points at".into())),
        }
    }
    if offsets.entries().first().is_some_and(|e| e.rel == 0 && e.pos != 0) {
        return Ok(Err("offset index entry for the first batch is not at position 0".into()));
    }
    Ok(Ok((offsets, times)))
}

/// Opens the segment at `base`, validating it fully (`full`) or trusting its indexes.
fn load_segment(dir: &Path, base: i64, full: bool, interval: u64) -> Result<Loaded, StorageError> {
    let log_path = segment_path(dir, base, LOG_EXT);
    let file = open_log_file(&log_path)?;
    let size = file.metadata().at(&log_path)?.len();
    let mut segment = Segment {
        base_offset: base,
        file,
        size,
        next_offset: base,
        offset_index: Index::from_entries(segment_path(dir, base, INDEX_EXT), Vec::new()),
        time_index: Index::from_entries(segment_path(dir, base, TIME_INDEX_EXT), Vec::new()),
        log_path,
        bytes_since_index: 0,
        max_timestamp: -1,
        offset_of_max_timestamp: base,
        roll_base_ms: None,
        unsynced: false,
        torn: false,
    };
    let mut rebuild = full;
    let (mut from, mut expected) = (0, base);
    if !full {
        match load_indexes(&segment, dir)? {
            Ok((offsets, times)) => {
                if let Some(last) = offsets.last() {
                    from = u64::from(last.pos);
                    expected = base.saturating_add(i64::from(last.rel));
                }
                segment.offset_index = offsets;
                segment.time_index = times;
            }
            Err(reason) => {
                tracing::warn!(path = %segment.log_path.display(), %reason, "rebuilding indexes");
                rebuild = true;
            }
        }
    }
    let mut seen: Vec<(u64, BatchHeader)> = Vec::new();
    let mut end = scan(&segment.file, &segment.log_path, from, size, true, Some(expected), |p, h| seen.push((p, *h)))?;
    let time_ok = |s: &Segment, next: i64| {
        s.time_index.last().is_none_or(|t| s.base_offset.saturating_add(i64::from(t.rel)) < next)
    };
    let tail_next = seen.last().map_or(expected, |(_, h)| h.next_offset());
    if !rebuild && (end.error.is_some() || !time_ok(&segment, tail_next)) {
        // Trusted indexes disagree with the log: validate the whole segment instead.
        tracing::warn!(path = %segment.log_path.display(), "tail check failed, validating whole segment");
        rebuild = true;
        seen.clear();
        end = scan(&segment.file, &segment.log_path, 0, size, true, Some(base), |p, h| seen.push((p, *h)))?;
    }
    let cut = end.error.is_some();
    if let Some(reason) = &end.error {
        let dropped = size - end.valid_end;
        tracing::warn!(
            path = %segment.log_path.display(),
            position = end.valid_end,
            dropped_bytes = dropped,
            %reason,
            "truncating segment at first invalid batch"
        );
        segment.file.set_len(end.valid_end).at(&segment.log_path)?;
        segment.size = end.valid_end;
        segment.unsynced = true;
    }
    if rebuild {
        segment.offset_index = Index::from_entries(segment.offset_index.path().to_path_buf(), Vec::new());
        segment.time_index = Index::from_entries(segment.time_index.path().to_path_buf(), Vec::new());
        for (pos, h) in &seen {
            segment.track_batch(*pos, h.base_offset, h.size, h.max_timestamp, interval);
        }
        segment.offset_index.rewrite()?;
        segment.time_index.rewrite()?;
    }
    segment.next_offset = seen.last().map_or(expected, |(_, h)| h.next_offset());
    segment.recompute_tail()?;
    Ok(Loaded { segment, cut, rebuilt: rebuild })
}

/// Opens (creating if needed) and recovers the log in `dir`.
pub(crate) fn open(dir: &Path, config: LogConfig) -> Result<Log, StorageError> {
    config.validate()?;
    fs::create_dir_all(dir).at(dir)?;
    let clean_marker = dir.join(CLEAN_SHUTDOWN_FILE);
    let clean = clean_marker.exists();
    let swapped = crate::swap::settle(dir)?;
    let mut bases = list_segments(dir)?;
    let checkpointed_start = checkpoint::read(dir, LOG_START_OFFSET_FILE)?.unwrap_or(0);
    let recovery_point = checkpoint::read(dir, RECOVERY_POINT_FILE)?.unwrap_or(0);

    // Segments wholly below the log start offset (a crash during retention) are deleted.
    while bases.len() >= 2 && bases[1] <= checkpointed_start {
        crate::swap::delete_segment_files(dir, bases.remove(0))?;
    }

    let mut segments = BTreeMap::new();
    let mut rebuilt = Vec::new();
    let mut expected_next: Option<i64> = None;
    let mut first_emptied: Option<i64> = None;
    for (i, &base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        // A segment may start after the previous one's last offset (the cleaner removed that
        // segment's last batches), never before.
        if expected_next.is_some_and(|e| base < e) {
            tracing::warn!(dir = %dir.display(), base, expected = ?expected_next, "offset gap between segments; deleting it and later segments");
            for &b in &bases[i..] {
                crate::swap::delete_segment_files(dir, b)?;
            }
            break;
        }
        let full = swapped.contains(&base) || (!clean && next_base.is_none_or(|nb| nb > recovery_point));
        let loaded = load_segment(dir, base, full, config.index_interval_bytes)?;
        if loaded.segment.is_empty() && next_base.is_some() && !loaded.cut {
            tracing::warn!(base, "removing empty inactive segment");
            loaded.segment.delete()?;
            // The log still starts where it did if the cleaner emptied its first segments.
            first_emptied.get_or_insert(base);
            continue;
        }
        expected_next = Some(loaded.segment.next_offset);
        if loaded.rebuilt {
            rebuilt.push(base);
        }
        segments.insert(base, loaded.segment);
        if loaded.cut {
            for &b in &bases[i + 1..] {
                tracing::warn!(base = b, "deleting segment after a truncated one");
                crate::swap::delete_segment_files(dir, b)?;
            }
            break;
        }
    }

    let first_base = segments.keys().next().copied().unwrap_or(0);
    let mut log_start_offset = checkpointed_start.max(first_emptied.map_or(first_base, |e| e.min(first_base)));
    let leo = segments.values().next_back().map_or(log_start_offset, |s| s.next_offset);
    if leo < log_start_offset {
        tracing::warn!(leo, log_start_offset, "log start offset beyond the data; starting empty");
        for (_, s) in std::mem::take(&mut segments) {
            s.delete()?;
        }
    }
    if segments.is_empty() {
        segments.insert(log_start_offset, Segment::create(dir, log_start_offset)?);
    }
    if first_emptied.is_none() {
        log_start_offset = log_start_offset.max(*segments.keys().next().expect("non-empty"));
    }

    let last_base = *segments.keys().next_back().expect("non-empty");
    for base in rebuilt {
        if let Some(s) = segments.get_mut(&base) {
            if base == last_base { s.flush()? } else { s.seal()? }
        }
    }
    let leo = segments.values().next_back().expect("non-empty").next_offset;
    let epochs = LeaderEpochCache::recover(dir, &segments, log_start_offset, leo)?;
    let bounds: Vec<(i64, i64)> = segments.values().map(|s| (s.base_offset, s.next_offset)).collect();
    let (mut aborted, damaged) = TxnIndex::load(dir, &bounds)?;
    if damaged {
        // Rebuilt from the whole log: the snapshots do not remember finished transactions.
        tracing::warn!(dir = %dir.display(), "rebuilding the aborted-transaction index from the whole log");
    }
    let producers =
        ProducerStates::recover(dir, &segments, log_start_offset, leo, damaged, &mut |done, first_unstable| {
            crate::txn_index::index_completed(&mut aborted, &segments, done, first_unstable)
        })?;
    let mut log = Log {
        dir: dir.to_path_buf(),
        config,
        segments,
        log_start_offset,
        recovery_point,
        unflushed_messages: 0,
        last_flush_ms: None,
        epochs,
        producers,
        aborted,
        cleaner: CleanerState::load(dir, log_start_offset)?,
    };
    let leo = log.log_end_offset();
    if checkpointed_start != log_start_offset {
        checkpoint::write(dir, LOG_START_OFFSET_FILE, log_start_offset)?;
    }
    if recovery_point != leo {
        log.recovery_point = leo;
        checkpoint::write(dir, RECOVERY_POINT_FILE, leo)?;
    }
    if clean {
        remove_if_exists(&clean_marker)?;
    }
    checkpoint::sync_dir(dir)?;
    tracing::debug!(dir = %dir.display(), clean, log_start_offset, leo, segments = log.segments.len(), "log opened");
    Ok(log)
}
