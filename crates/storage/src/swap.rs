//! The cleaner's crash-safe replacement of a segment's log file: written to
//! `{base}.log.cleaned` and fsynced, renamed to `{base}.log.swap`, then renamed over
//! `{base}.log` with the old indexes removed (they are rebuilt). Opening a log settles what a
//! crash interrupted ([`settle`]): a `.cleaned` file is deleted (the old segment stays), a
//! `.swap` file finishes its swap (the new segment wins).

use std::io::Write;
use std::path::Path;

use crate::StorageError;
use crate::error::IoContext;
use crate::index::remove_if_exists;
use crate::segment::{INDEX_EXT, LOG_EXT, TIME_INDEX_EXT, segment_path};

/// Suffix of a segment being written by the cleaner.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a cleaned segment ready to replace the original.
pub(crate) const SWAP_SUFFIX: &str = ".swap";

/// Writes `bytes` as the cleaned segment at `base` and swaps it in (see the module
/// documentation); the old indexes are removed, to be rebuilt.
pub(crate) fn swap_in(dir: &Path, base: i64, bytes: &[u8]) -> Result<(), StorageError> {
    let log = segment_path(dir, base, LOG_EXT);
    let cleaned = suffixed(&log, CLEANED_SUFFIX);
    let swap = suffixed(&log, SWAP_SUFFIX);
    let mut file = std::fs::File::create(&cleaned).at(&cleaned)?;
    file.write_all(bytes).at(&cleaned)?;
    file.sync_all().at(&cleaned)?;
    drop(file);
    std::fs::rename(&cleaned, &swap).at(&swap)?;
    crate::checkpoint::sync_dir(dir)?;
    finish_swap(dir, base)
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
fn suffixed(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// Finishes or rolls back interrupted swaps in `dir` (see the module documentation); returns
/// the bases of the segments swapped, whose indexes must be rebuilt.
pub(crate) fn settle(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let mut swapped = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        if name.ends_with(CLEANED_SUFFIX) {
            tracing::warn!(file = name, "removing an unfinished cleaned segment");
            remove_if_exists(&path)?;
        } else if let Some(log) = name.strip_suffix(SWAP_SUFFIX)
            && let Some(base) = log.strip_suffix(&format!(".{LOG_EXT}")).and_then(|b| b.parse::<i64>().ok())
        {
            tracing::warn!(base, "finishing an interrupted swap of a cleaned segment");
            finish_swap(dir, base)?;
            swapped.push(base);
        }
    }
    Ok(swapped)
}
