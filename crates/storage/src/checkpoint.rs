//! Checkpoint files, all written atomically (tmp + fsync + rename + fsync dir).
//!
//! - Per partition directory: `log-start-offset` and `recovery-point` hold one decimal offset
//!   and a newline; the leader-epoch checkpoint (see `epoch_cache`) uses [`write_text`] and
//!   [`read_text`] with its own format.
//! - Per data directory: [`HighWatermarkCheckpoint`], every hosted partition's high watermark in
//!   one `replication-offset-checkpoint` file, as Kafka keeps it. It is written by the broker's
//!   maintenance task from values it already holds in memory, so its fsync never holds a
//!   partition's log lock (appends go on while it is written).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

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
/// Name of the per-partition high watermark file of earlier versions, read once on upgrade.
pub const LEGACY_HIGH_WATERMARK_FILE: &str = "high-watermark";
/// Name of the data directory's high watermark checkpoint (Kafka's name).
pub const HIGH_WATERMARK_CHECKPOINT_FILE: &str = "replication-offset-checkpoint";
/// Version on the first line of [`HIGH_WATERMARK_CHECKPOINT_FILE`].
const HW_VERSION: u32 = 0;

/// A partition: topic name and index.
pub type TopicPartition = (String, i32);

/// The high watermarks of every partition of one data directory, in one
/// `replication-offset-checkpoint` file: a version line `0`, an entry count line, then one
/// `{topic} {partition} {high_watermark}` line per partition (sorted).
///
/// The last written (or loaded) contents are kept in memory: [`HighWatermarkCheckpoint::write`]
/// skips the file when nothing changed, and [`HighWatermarkCheckpoint::get`] answers without
/// touching the disk. Writers are serialised by this value's own lock, never a log's.
#[derive(Debug)]
pub struct HighWatermarkCheckpoint {
    dir: PathBuf,
    last: Mutex<BTreeMap<TopicPartition, i64>>,
}

impl HighWatermarkCheckpoint {
    /// Loads the checkpoint of data directory `dir` (created if missing). A missing file is an
    /// empty checkpoint; an unparsable one is logged and treated as empty (every partition then
    /// starts from its log start offset and catches up, as in Kafka), never an error that stops
    /// the broker.
    ///
    /// # Errors
    ///
    /// I/O errors creating `dir` or reading the file.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        fs::create_dir_all(dir).at(dir)?;
        let entries = match read_text(dir, HIGH_WATERMARK_CHECKPOINT_FILE)? {
            None => BTreeMap::new(),
            Some(text) => parse_high_watermarks(&text).unwrap_or_else(|reason| {
                tracing::warn!(dir = %dir.display(), %reason, "ignoring the high watermark checkpoint");
                BTreeMap::new()
            }),
        };
        Ok(Self { dir: dir.to_path_buf(), last: Mutex::new(entries) })
    }

    /// The checkpointed high watermark of `topic`-`partition`, if any.
    pub fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.last.lock().get(&(topic.to_string(), partition)).copied()
    }

    /// Every checkpointed entry (last written or loaded).
    pub fn entries(&self) -> BTreeMap<TopicPartition, i64> {
        self.last.lock().clone()
    }

    /// Replaces the file with `entries` unless they equal what was last written or loaded.
    /// Returns whether the file was written.
    ///
    /// # Errors
    ///
    /// [`StorageError::InvalidConfig`] for a negative high watermark or a topic name the
    /// format cannot hold (empty, or with whitespace); I/O errors (the previous file then stays
    /// in place, whole).
    pub fn write(&self, entries: BTreeMap<TopicPartition, i64>) -> Result<bool, StorageError> {
        let mut last = self.last.lock();
        if *last == entries {
            return Ok(false);
        }
        let mut text = format!("{HW_VERSION}\n{}\n", entries.len());
        for ((topic, partition), hw) in &entries {
            if *hw < 0 || topic.is_empty() || topic.contains(char::is_whitespace) {
                return Err(StorageError::InvalidConfig(format!(
                    "cannot checkpoint high watermark {hw} of partition {topic:?}-{partition}"
                )));
            }
            text.push_str(&format!("{topic} {partition} {hw}\n"));
        }
        write_text(&self.dir, HIGH_WATERMARK_CHECKPOINT_FILE, &text)?;
        *last = entries;
        Ok(true)
    }
}

/// Parses the `replication-offset-checkpoint` format; `Err` says what is wrong.
pub(crate) fn parse_high_watermarks(text: &str) -> Result<BTreeMap<TopicPartition, i64>, String> {
    let mut lines = text.lines();
    let version = lines.next().ok_or("empty file")?;
    if version.trim().parse::<u32>() != Ok(HW_VERSION) {
        return Err(format!("unsupported version {version:?}"));
    }
    let count: usize = lines.next().ok_or("missing entry count")?.trim().parse().map_err(|_| "bad entry count")?;
    let mut entries = BTreeMap::new();
    for line in lines.by_ref().take(count) {
        let mut fields = line.split_whitespace();
        let (Some(topic), Some(partition), Some(hw), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(format!("malformed entry {line:?}"));
        };
        let partition: i32 = partition.parse().map_err(|_| format!("bad partition in {line:?}"))?;
        let hw: i64 = hw.parse().map_err(|_| format!("bad offset in {line:?}"))?;
        if partition < 0 || hw < 0 {
            return Err(format!("negative value in {line:?}"));
        }
        entries.insert((topic.to_string(), partition), hw);
    }
    if entries.len() != count {
        return Err(format!("{count} entries announced, {} found", entries.len()));
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("trailing data after the entries".into());
    }
    Ok(entries)
}

/// Reads the per-partition `high-watermark` file an earlier version wrote in `partition_dir`;
/// `None` if it is missing or unparsable. Used once, when a partition without an entry in the
/// data directory's checkpoint is opened after an upgrade.
pub fn read_legacy_high_watermark(partition_dir: &Path) -> Option<i64> {
    read(partition_dir, LEGACY_HIGH_WATERMARK_FILE).unwrap_or_else(|e| {
        tracing::warn!(dir = %partition_dir.display(), error = %e, "cannot read the legacy high watermark file");
        None
    })
}

/// Removes the legacy per-partition `high-watermark` file, once the data directory's checkpoint
/// holds the partition's high watermark.
///
/// # Errors
///
/// I/O errors other than the file being absent.
pub fn remove_legacy_high_watermark(partition_dir: &Path) -> Result<(), StorageError> {
    let path = partition_dir.join(LEGACY_HIGH_WATERMARK_FILE);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(partition_dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

/// Atomically replaces `dir/name` with `value`.
pub(crate) fn write(dir: &Path, name: &str, value: i64) -> Result<(), StorageError> {
    write_text(dir, name, &format!("{value}\n"))
}

/// Atomically replaces `dir/name` with `text`.
pub(crate) fn write_text(dir: &Path, name: &str, text: &str) -> Result<(), StorageError> {
    write_bytes(dir, name, text.as_bytes())
}

/// Atomically replaces `dir/name` with `bytes` (write `*.tmp`, fsync, rename, fsync the directory).
pub(crate) fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut file = File::create(&tmp).at(&tmp)?;
    file.write_all(bytes).at(&tmp)?;
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
