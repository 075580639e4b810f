//! The data directory's high watermark checkpoint as the broker's replica manager uses it: one
//! `replication-offset-checkpoint` file for every hosted partition, read when a partition opens,
//! upgraded from the per-partition `high-watermark` files of earlier versions.
//!
//! The partitions here are followers (two replicas, this broker not leading), so nothing moves
//! their high watermark at open: what they start with is what the checkpoint held.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use vltava_broker::BrokerConfig;
use vltava_broker::replica_manager::ReplicaManager;
use vltava_metadata::{BrokerRegistration, MemoryMetadata, MetadataService, create_request};
use vltava_storage::HighWatermarkCheckpoint;
use vltava_storage::checkpoint::{HIGH_WATERMARK_CHECKPOINT_FILE, LEGACY_HIGH_WATERMARK_FILE};
use vltava_testkit::inprocess::batch;

/// Two registered brokers and topic `t` (one partition on both); returns the metadata and the
/// id of the broker that follows.
async fn two_replica_topic() -> (Arc<MemoryMetadata>, i32) {
    let md = MemoryMetadata::new("hw-test", 2);
    for id in [1, 2] {
        md.register_broker(BrokerRegistration::new(id, format!("127.0.0.1:{}", 9000 + id), None)).await.unwrap();
    }
    // Topics get the metadata's default replication factor: 2.
    let (topic, _) = md.create_topic(create_request("t", 1)).await.unwrap();
    let leader = topic.partitions[0].leader;
    (md, if leader == 1 { 2 } else { 1 })
}

fn manager(dir: &std::path::Path, broker_id: i32) -> ReplicaManager {
    ReplicaManager::new(&BrokerConfig { broker_id, data_dir: dir.to_path_buf(), ..Default::default() }).unwrap()
}

fn checkpoint_file(dir: &std::path::Path) -> PathBuf {
    dir.join("logs").join(HIGH_WATERMARK_CHECKPOINT_FILE)
}

/// Opens `t`-0 as a follower, appends five records from the leader and takes its high watermark
/// to `hw`.
fn follow_and_append(replicas: &ReplicaManager, md: &MemoryMetadata, hw: i64) {
    replicas.apply_image(md.image()).unwrap();
    let part = replicas.partition("t", 0).unwrap();
    assert_eq!(part.high_watermark(), 0, "a new follower starts at 0");
    let epoch = part.leader_state().leader_epoch;
    part.append_as_follower_blocking(batch("r", 5, 1_000), epoch).unwrap();
    part.set_follower_high_watermark(hw);
}

/// A follower of `t`-0 that appended five records, reached high watermark `hw`, checkpointed it
/// (when `checkpoint`) and stopped: the metadata, the follower's id and its data directory.
async fn stopped_follower(hw: i64, checkpoint: bool) -> (Arc<MemoryMetadata>, i32, tempfile::TempDir) {
    let (md, follower) = two_replica_topic().await;
    let dir = tempfile::tempdir().unwrap();
    let replicas = manager(dir.path(), follower);
    follow_and_append(&replicas, &md, hw);
    if checkpoint {
        assert!(replicas.checkpoint_high_watermarks().unwrap(), "first write");
        assert!(!replicas.checkpoint_high_watermarks().unwrap(), "nothing changed: no write");
    }
    replicas.close_all_blocking();
    (md, follower, dir)
}

#[tokio::test]
async fn given_a_checkpointed_high_watermark_when_the_broker_restarts_should_resume_from_it() {
    let (md, follower, dir) = stopped_follower(3, true).await;
    assert_eq!(fs::read_to_string(checkpoint_file(dir.path())).unwrap(), "0\n1\nt 0 3\n");

    let restarted = manager(dir.path(), follower);
    restarted.apply_image(md.image()).unwrap();
    let part = restarted.partition("t", 0).unwrap();
    assert_eq!(part.log_end_offset(), 5);
    assert_eq!(part.high_watermark(), 3, "resumed from the checkpoint");
}

#[tokio::test]
async fn given_a_checkpoint_beyond_the_recovered_log_should_clamp_to_the_log_end() {
    let (md, follower, dir) = stopped_follower(5, true).await;
    fs::write(checkpoint_file(dir.path()), "0\n1\nt 0 40\n").unwrap();

    let restarted = manager(dir.path(), follower);
    restarted.apply_image(md.image()).unwrap();
    assert_eq!(restarted.partition("t", 0).unwrap().high_watermark(), 5);
}

#[tokio::test]
async fn given_an_earlier_versions_high_watermark_file_should_upgrade_to_the_data_directory_checkpoint() {
    let (md, follower, dir) = stopped_follower(0, false).await;
    // What an earlier version left: a per-partition file and no data directory checkpoint.
    let legacy = dir.path().join("logs").join("t-0").join(LEGACY_HIGH_WATERMARK_FILE);
    fs::write(&legacy, "4\n").unwrap();
    assert!(!checkpoint_file(dir.path()).exists());

    let upgraded = manager(dir.path(), follower);
    upgraded.apply_image(md.image()).unwrap();
    assert_eq!(upgraded.partition("t", 0).unwrap().high_watermark(), 4, "read from the legacy file");
    upgraded.checkpoint_high_watermarks().unwrap();
    assert_eq!(fs::read_to_string(checkpoint_file(dir.path())).unwrap(), "0\n1\nt 0 4\n");
    assert!(!legacy.exists(), "the legacy file goes once its value is in the new checkpoint");
}

#[tokio::test]
async fn given_partitions_not_yet_opened_should_keep_their_entries_until_their_log_is_deleted() {
    let (md, follower, dir) = stopped_follower(2, true).await;

    // A restarted broker checkpointing before its first image arrives keeps what it cannot see.
    let restarted = manager(dir.path(), follower);
    restarted.checkpoint_high_watermarks().unwrap();
    let kept = HighWatermarkCheckpoint::open(&dir.path().join("logs")).unwrap();
    assert_eq!(kept.get("t", 0), Some(2));

    // Once the topic is deleted, its log and its entry go.
    restarted.apply_image(md.image()).unwrap();
    md.delete_topic("t").await.unwrap();
    restarted.apply_image(md.image()).unwrap();
    assert!(!dir.path().join("logs").join("t-0").exists());
    restarted.checkpoint_high_watermarks().unwrap();
    assert_eq!(fs::read_to_string(checkpoint_file(dir.path())).unwrap(), "0\n0\n");
}

#[tokio::test]
async fn given_a_topic_recreated_while_the_broker_was_down_should_not_inherit_the_old_high_watermark() {
    let (md, follower, dir) = stopped_follower(5, true).await;

    md.delete_topic("t").await.unwrap();
    md.create_topic(create_request("t", 1)).await.unwrap();
    let restarted = manager(dir.path(), follower);
    restarted.apply_image(md.image()).unwrap();
    let part = restarted.partition("t", 0).unwrap();
    assert_eq!(part.log_end_offset(), 0, "the old log is gone");
    assert_eq!(part.high_watermark(), 0, "the old topic's high watermark is not inherited");
}
