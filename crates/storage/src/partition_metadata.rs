//! `partition.metadata`: the id of the topic a partition directory belongs to (Kafka's file and
//! format: `version: 0` then `topic_id: {id}`), so that a topic deleted and re-created under the
//! same name while a broker was down is never mistaken for the old one. Written atomically with
//! fsync, like every checkpoint.

use std::path::Path;

use crate::StorageError;
use crate::checkpoint;

/// Name of the file in a partition directory.
pub const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// The topic id recorded in `partition_dir`, or `None` if the file is missing or names none.
pub fn read_topic_id(partition_dir: &Path) -> Option<String> {
    let text = checkpoint::read_text(partition_dir, PARTITION_METADATA_FILE).ok()??;
    text.lines().find_map(|l| l.strip_prefix("topic_id: ")).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Records `topic_id` in `partition_dir` (a no-op when it is already recorded).
///
/// # Errors
///
/// [`StorageError::InvalidConfig`] for an empty id or one with whitespace; I/O errors.
pub fn write_topic_id(partition_dir: &Path, topic_id: &str) -> Result<(), StorageError> {
    if topic_id.is_empty() || topic_id.contains(char::is_whitespace) {
        return Err(StorageError::InvalidConfig(format!("invalid topic id {topic_id:?}")));
    }
    if read_topic_id(partition_dir).as_deref() == Some(topic_id) {
        return Ok(());
    }
    checkpoint::write_text(partition_dir, PARTITION_METADATA_FILE, &format!("version: 0\ntopic_id: {topic_id}\n"))
}

/// Whether `dir` is a partition directory (it holds a `partition.metadata` file).
pub fn is_partition_dir(dir: &Path) -> bool {
    dir.is_dir() && dir.join(PARTITION_METADATA_FILE).exists()
}
