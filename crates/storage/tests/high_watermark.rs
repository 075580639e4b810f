//! The data directory's high watermark checkpoint (`replication-offset-checkpoint`), the legacy
//! per-partition file it replaces, and `partition.metadata`.

use std::collections::BTreeMap;
use std::fs;

use vltava_storage::HighWatermarkCheckpoint;
use vltava_storage::checkpoint::{
    HIGH_WATERMARK_CHECKPOINT_FILE, LEGACY_HIGH_WATERMARK_FILE, read_legacy_high_watermark,
    remove_legacy_high_watermark,
};
use vltava_storage::partition_metadata::{PARTITION_METADATA_FILE, is_partition_dir, read_topic_id, write_topic_id};

fn entries(list: &[(&str, i32, i64)]) -> BTreeMap<(String, i32), i64> {
    list.iter().map(|(t, p, hw)| ((t.to_string(), *p), *hw)).collect()
}

#[test]
fn given_high_watermarks_when_checkpointed_should_write_kafkas_format_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cp = HighWatermarkCheckpoint::open(dir.path()).unwrap();
    assert_eq!(cp.get("orders", 0), None, "missing file: empty");
    assert!(cp.write(entries(&[("orders", 1, 7), ("orders", 0, 12), ("audit.log", 3, 0)])).unwrap());
    let text = fs::read_to_string(dir.path().join(HIGH_WATERMARK_CHECKPOINT_FILE)).unwrap();
    assert_eq!(text, "0\n3\naudit.log 3 0\norders 0 12\norders 1 7\n");
    assert_eq!(cp.get("orders", 0), Some(12));

    let reopened = HighWatermarkCheckpoint::open(dir.path()).unwrap();
    assert_eq!(reopened.entries(), entries(&[("orders", 1, 7), ("orders", 0, 12), ("audit.log", 3, 0)]));
}

#[test]
fn given_unchanged_high_watermarks_should_not_rewrite_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cp = HighWatermarkCheckpoint::open(dir.path()).unwrap();
    assert!(cp.write(entries(&[("t", 0, 5)])).unwrap());
    fs::remove_file(dir.path().join(HIGH_WATERMARK_CHECKPOINT_FILE)).unwrap();
    assert!(!cp.write(entries(&[("t", 0, 5)])).unwrap(), "unchanged: skipped");
    assert!(!dir.path().join(HIGH_WATERMARK_CHECKPOINT_FILE).exists());
    assert!(cp.write(entries(&[("t", 0, 6)])).unwrap());
    assert_eq!(fs::read_to_string(dir.path().join(HIGH_WATERMARK_CHECKPOINT_FILE)).unwrap(), "0\n1\nt 0 6\n");

    let reopened = HighWatermarkCheckpoint::open(dir.path()).unwrap();
    fs::remove_file(dir.path().join(HIGH_WATERMARK_CHECKPOINT_FILE)).unwrap();
    assert!(!reopened.write(entries(&[("t", 0, 6)])).unwrap(), "the loaded contents count as written");
}

#[test]
fn given_a_dropped_partition_when_checkpointed_should_leave_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cp = HighWatermarkCheckpoint::open(dir.path()).unwrap();
    cp.write(entries(&[("a", 0, 1), ("b", 0, 2)])).unwrap();
    cp.write(entries(&[("b", 0, 2)])).unwrap();
    assert_eq!(HighWatermarkCheckpoint::open(dir.path()).unwrap().get("a", 0), None);
}

#[test]
fn given_a_garbage_checkpoint_when_opened_should_start_empty_and_write_a_good_one() {
    let garbage: [&[u8]; 8] = [
        b"",
        b"1\n1\nt 0 5\n",
        b"0\n2\nt 0 5\n",
        b"0\n1\nt 0\n",
        b"0\n1\nt 0 -5\n",
        b"0\n1\nt zero 5\n",
        b"0\n1\nt 0 5\nu 0 6\n",
        b"\xff\x00\x13",
    ];
    for bytes in garbage {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(HIGH_WATERMARK_CHECKPOINT_FILE), bytes).unwrap();
        let cp = HighWatermarkCheckpoint::open(dir.path()).unwrap();
        assert_eq!(cp.entries(), BTreeMap::new(), "{bytes:?}");
        assert!(cp.write(entries(&[("t", 0, 5)])).unwrap());
        assert_eq!(HighWatermarkCheckpoint::open(dir.path()).unwrap().get("t", 0), Some(5), "{bytes:?}");
    }
}

#[test]
fn given_a_value_the_format_cannot_hold_should_refuse_it_and_keep_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let cp = HighWatermarkCheckpoint::open(dir.path()).unwrap();
    cp.write(entries(&[("t", 0, 5)])).unwrap();
    for bad in [entries(&[("t", 0, -1)]), entries(&[("has space", 0, 1)]), entries(&[("", 0, 1)])] {
        assert!(cp.write(bad).is_err());
    }
    assert_eq!(HighWatermarkCheckpoint::open(dir.path()).unwrap().entries(), entries(&[("t", 0, 5)]));
    assert_eq!(cp.get("t", 0), Some(5));
}

#[test]
fn given_a_stray_tmp_file_from_a_crash_should_be_ignored_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cp = HighWatermarkCheckpoint::open(dir.path()).unwrap();
    cp.write(entries(&[("t", 0, 5)])).unwrap();
    fs::write(dir.path().join(format!("{HIGH_WATERMARK_CHECKPOINT_FILE}.tmp")), b"0\n1\nt 0 9").unwrap();
    let cp = HighWatermarkCheckpoint::open(dir.path()).unwrap();
    assert_eq!(cp.get("t", 0), Some(5), "a torn write never replaces the file");
    cp.write(entries(&[("t", 0, 6)])).unwrap();
    assert_eq!(HighWatermarkCheckpoint::open(dir.path()).unwrap().get("t", 0), Some(6));
}

#[test]
fn given_a_legacy_high_watermark_file_should_read_it_and_remove_it() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(read_legacy_high_watermark(dir.path()), None);
    fs::write(dir.path().join(LEGACY_HIGH_WATERMARK_FILE), "42\n").unwrap();
    assert_eq!(read_legacy_high_watermark(dir.path()), Some(42));
    remove_legacy_high_watermark(dir.path()).unwrap();
    assert!(!dir.path().join(LEGACY_HIGH_WATERMARK_FILE).exists());
    remove_legacy_high_watermark(dir.path()).unwrap();
    for garbage in [&b"twelve\n"[..], b"", b"-4\n", b"\xff\x00\x13"] {
        fs::write(dir.path().join(LEGACY_HIGH_WATERMARK_FILE), garbage).unwrap();
        assert_eq!(read_legacy_high_watermark(dir.path()), None, "{garbage:?}");
    }
}

#[test]
fn given_a_topic_id_should_round_trip_partition_metadata() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(read_topic_id(dir.path()), None);
    assert!(!is_partition_dir(dir.path()));
    write_topic_id(dir.path(), "Zk3xq1").unwrap();
    assert_eq!(fs::read_to_string(dir.path().join(PARTITION_METADATA_FILE)).unwrap(), "version: 0\ntopic_id: Zk3xq1\n");
    assert_eq!(read_topic_id(dir.path()).as_deref(), Some("Zk3xq1"));
    assert!(is_partition_dir(dir.path()));
    write_topic_id(dir.path(), "other").unwrap();
    assert_eq!(read_topic_id(dir.path()).as_deref(), Some("other"));
    assert!(write_topic_id(dir.path(), "").is_err());
    assert!(write_topic_id(dir.path(), "a b").is_err());
    assert_eq!(read_topic_id(dir.path()).as_deref(), Some("other"), "a refused id leaves the file alone");
    fs::write(dir.path().join(PARTITION_METADATA_FILE), "version: 0\n").unwrap();
    assert_eq!(read_topic_id(dir.path()), None, "no id line");
}
