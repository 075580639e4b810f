//! The cleaner's crash-safe replacement of segments. A cleaned group of one or more consecutive
//! segments is written to `{first}.log.cleaned` and fsynced ([`cleaned_path`]); committing it
//! renames that file to `{first}.log.swap` (the commit point), deletes the other segments of
//! the group (a merge), then renames the swap file over `{first}.log` with the old indexes
//! removed (they are rebuilt). Opening a log settles what a crash interrupted ([`settle`]): a
//! `.cleaned` file is deleted (the old segments stay), a `.swap` file finishes its swap (the
//! segments whose base offsets fall inside its offset range are deleted, then it is renamed), so
//! either the old segments or the new one hold the data, never both and never neither.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::StorageError;
use crate::error::IoContext;
use crate::index::remove_if_exists;
use crate::scan::read_header;
use crate::segment::{INDEX_EXT, LOG_EXT, TIME_INDEX_EXT, segment_path};
use crate::txn_index::TXN_INDEX_EXT;

/// Suffix of a segment being written by the cleaner.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a cleaned segment ready to replace the original.
pub(crate) const SWAP_SUFFIX: &str = ".swap";

/// Where the cleaner writes the group that starts at `base`.
pub(crate) fn cleaned_path(dir: &Path, base: i64) -> PathBuf {
    suffixed(&segment_path(dir, base, LOG_EXT), CLEANED_SUFFIX)
}

/// Deletes a segment's files (log, indexes, transaction index).
pub(crate) fn delete_segment_files(dir: &Path, base: i64) -> Result<(), StorageError> {
    for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT, TXN_INDEX_EXT] {
        remove_if_exists(&segment_path(dir, base, ext))?;
    }
    Ok(())
}

/// Commits the fsynced cleaned file of the group `bases` (ascending; the first names the
/// result): see the module documentation.
pub(crate) fn commit(dir: &Path, bases: &[i64]) -> Result<(), StorageError> {
    let first = bases[0];
    let cleaned = cleaned_path(dir, first);
    let swap = suffixed(&segment_path(dir, first, LOG_EXT), SWAP_SUFFIX);
    std::fs::rename(&cleaned, &swap).at(&swap)?;
    crate::checkpoint::sync_dir(dir)?;
    for &base in &bases[1..] {
        delete_segment_files(dir, base)?;
    }
    finish_swap(dir, first)
}

/// Completes a swap whose `.swap` file is complete: the indexes go (they describe the old
/// segment), the swap file replaces the log.
fn finish_swap(dir: &Path, base: i64) -> Result<(), StorageError> {
    let log = segment_path(dir, base, LOG_EXT);
    let swap = suffixed(&log, SWAP_SUFFIX);
    remove_if_exists(&segment_path(dir, base, INDEX_EXT))?;
    remove_if_exists(&segment_path(dir, base, TIME_INDEX_EXT))?;
    std::fs::rename(&swap, &log).at(&log)?;
    crate::checkpoint::sync_dir(dir)
}

/// `path` with `suffix` appended to its file name.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// The offset after the last batch of a (complete, fsynced) swap file.
fn swap_end(path: &Path) -> Result<i64, StorageError> {
    let file = File::open(path).at(path)?;
    let size = file.metadata().at(path)?.len();
    let (mut pos, mut end) = (0, i64::MIN);
    while pos < size {
        let header = read_header(&file, path, pos, size)?;
        end = header.next_offset();
        pos += header.size;
    }
    Ok(end)
}

/// The base offset of a `{base:020}.log{suffix}` file name.
fn base_of(name: &str, suffix: &str) -> Option<i64> {
    name.strip_suffix(suffix)?.strip_suffix(&format!(".{LOG_EXT}"))?.parse().ok()
}

/// Finishes or rolls back interrupted swaps in `dir` (see the module documentation); returns
/// the bases of the segments swapped, whose indexes must be rebuilt.
pub(crate) fn settle(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let mut swaps = Vec::new();
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        if name.ends_with(CLEANED_SUFFIX) {
            tracing::warn!(file = name, "removing an unfinished cleaned segment");
            remove_if_exists(&path)?;
        } else if let Some(base) = base_of(&name, SWAP_SUFFIX) {
            swaps.push((base, path));
        } else if let Some(base) = base_of(&name, "") {
            logs.push(base);
        }
    }
    let mut swapped = Vec::new();
    for (base, path) in swaps {
        let end = swap_end(&path)?;
        for &merged in logs.iter().filter(|&&b| b > base && b < end) {
            tracing::warn!(base, merged, "deleting a segment merged by an interrupted swap");
            delete_segment_files(dir, merged)?;
        }
        tracing::warn!(base, "finishing an interrupted swap of a cleaned segment");
        finish_swap(dir, base)?;
        swapped.push(base);
    }
    Ok(swapped)
}
