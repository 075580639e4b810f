//! Small checkpoint files written atomically (tmp + fsync + rename + fsync dir).
//!
//! Each checkpoint holds one decimal offset followed by a newline.

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

/// Atomically replaces `dir/name` with `value`.
pub(crate) fn write(dir: &Path, name: &str, value: i64) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut file = File::create(&tmp).at(&tmp)?;
    file.write_all(format!("{value}\n").as_bytes()).at(&tmp)?;
    file.sync_all().at(&tmp)?;
    drop(file);
    fs::rename(&tmp, &path).at(&path)?;
    sync_dir(dir)
}

/// Reads `dir/name`; `None` if it is missing or unparsable (logged), so recovery falls back to
/// the safe default.
pub(crate) fn read(dir: &Path, name: &str) -> Result<Option<i64>, StorageError> {
    let path = dir.join(name);
    match fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<i64>() {
            Ok(v) if v >= 0 => Ok(Some(v)),
            _ => {
                tracing::warn!(path = %path.display(), "ignoring unparsable checkpoint");
                Ok(None)
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

/// fsyncs a directory so that creations, renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}
