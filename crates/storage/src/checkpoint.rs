//! Small checkpoint files written atomically (tmp + fsync + rename + fsync dir).
//!
//! Offset checkpoints hold one decimal offset followed by a newline; the leader-epoch
//! checkpoint (see `epoch_cache`) uses [`write_text`] and [`read_text`] with its own format.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::StorageError;
use crate::error::IoContext;

/// Name of the log start offset checkpoint.
pub(crate) const LOG_START_OFFSET_FILE: &str = "log-start-offset";
/// Name of the recovery point checkpoint.
pub(crate) const RECOVERY_POINT_FILE: &str = "recovery-point";
/// Name of the clean shutdown marker.
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";
/// Name of the leader-epoch cache checkpoint (Kafka's `leader-epoch-checkpoint`).
pub(crate) const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";
/// Name of the high watermark checkpoint.
pub(crate) const HIGH_WATERMARK_FILE: &str = "high-watermark";

/// Atomically replaces `dir/name` with `value`.
pub(crate) fn write(dir: &Path, name: &str, value: i64) -> Result<(), StorageError> {
    write_text(dir, name, &format!("{value}\n"))
}

/// Atomically replaces `dir/name` with `text`.
pub(crate) fn write_text(dir: &Path, name: &str, text: &str) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut file = File::create(&tmp).at(&tmp)?;
    file.write_all(text.as_bytes()).at(&tmp)?;
    file.sync_all().at(&tmp)?;
    drop(file);
    fs::rename(&tmp, &path).at(&path)?;
    sync_dir(dir)
}

/// Reads `dir/name`; `None` if it is missing or unparsable (logged), so recovery falls back to
/// the safe default.
pub(crate) fn read(dir: &Path, name: &str) -> Result<Option<i64>, StorageError> {
    let Some(text) = read_text(dir, name)? else {
        return Ok(None);
    };
    match text.trim().parse::<i64>() {
        Ok(v) if v >= 0 => Ok(Some(v)),
        _ => {
            tracing::warn!(path = %dir.join(name).display(), "ignoring unparsable checkpoint");
            Ok(None)
        }
    }
}

/// Reads `dir/name` as text (invalid UTF-8 replaced, so it fails to parse rather than to
/// read); `None` if the file is missing.
pub(crate) fn read_text(dir: &Path, name: &str) -> Result<Option<String>, StorageError> {
    let path = dir.join(name);
    match fs::read(&path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

/// fsyncs a directory so that creations, renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}
