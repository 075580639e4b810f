//! Specifications of crash recovery on `Log::open`.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use common::*;
use vltava_storage::{Log, LogConfig};

fn config() -> LogConfig {
    LogConfig { index_interval_bytes: 100, ..LogConfig::default() }
}

/// Appends `n` batches of 3 records and drops the log without closing it (a crash).
fn crashed_log(dir: &Path, config: LogConfig, n: usize) -> Vec<usize> {
    let mut log = Log::open(dir, config).unwrap();
    let mut sizes = Vec::new();
    for i in 0..n {
        let b = batch(&format!("b{i}"), 3, i as i64, 40);
        sizes.push(b.len());
        log.append(b, 1, 0).unwrap();
    }
    drop(log);
    sizes
}

fn log_file(dir: &Path) -> PathBuf {
    files_with_ext(dir, "log").pop().unwrap()
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

fn assert_contiguous(log: &Log, expected_records: usize) {
    let records = read_all(log, log.log_start_offset());
    assert_eq!(records.len(), expected_records);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, log.log_start_offset() + i as i64);
    }
}

#[test]
fn given_a_crash_without_flush_when_reopened_should_keep_every_written_batch() {
    let dir = tempfile::tempdir().unwrap();
    crashed_log(dir.path(), config(), 10);
    assert!(!dir.path().join(".clean-shutdown").exists());
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_end_offset(), 30);
    assert_contiguous(&log, 30);
    assert_eq!(log.recovery_point(), 30, "recovered data is flushed on open");
}

#[test]
fn given_torn_tail_when_reopened_should_keep_every_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = crashed_log(dir.path(), config(), 10);
    let path = log_file(dir.path());
    let whole: u64 = sizes[..9].iter().map(|s| *s as u64).sum();
    OpenOptions::new().write(true).open(&path).unwrap().set_len(whole + 70).unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_end_offset(), 27);
    assert_eq!(file_len(&path), whole, "torn batch cut off");
    assert_contiguous(&log, 27);
    assert_eq!(log.append(batch("new", 2, 0, 10), 1, 0).unwrap().first_offset, 27);
    assert_contiguous(&log, 29);
}

#[test]
fn given_a_torn_batch_header_when_reopened_should_cut_it() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = crashed_log(dir.path(), config(), 4);
    let path = log_file(dir.path());
    let whole: u64 = sizes[..3].iter().map(|s| *s as u64).sum();
    OpenOptions::new().write(true).open(&path).unwrap().set_len(whole + 20).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_end_offset(), 9);
    assert_eq!(file_len(&path), whole);
}

#[test]
fn given_garbage_after_the_last_batch_when_reopened_should_drop_only_the_garbage() {
    let dir = tempfile::tempdir().unwrap();
    crashed_log(dir.path(), config(), 5);
    let path = log_file(dir.path());
    let good = file_len(&path);
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&[0xab; 500]).unwrap();
    drop(f);
    let mut log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_end_offset(), 15);
    assert_eq!(file_len(&path), good);
    assert_contiguous(&log, 15);
    assert_eq!(log.append(batch("x", 1, 0, 10), 1, 0).unwrap().first_offset, 15);
}

#[test]
fn given_a_flipped_byte_inside_the_last_batch_when_reopened_should_drop_that_batch() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = crashed_log(dir.path(), config(), 6);
    let path = log_file(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_end_offset(), 15);
    assert_eq!(file_len(&path), (bytes.len() - sizes[5]) as u64);
    assert_contiguous(&log, 15);
}

#[test]
fn given_clean_shutdown_and_a_corrupt_tail_when_reopened_should_still_drop_the_bad_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    for i in 0..6 {
        log.append(batch(&i.to_string(), 3, 0, 40), 0, 0).unwrap();
    }
    log.close().unwrap();
    let path = log_file(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_end_offset(), 15);
    assert_contiguous(&log, 15);
}

#[test]
fn given_a_corrupt_middle_segment_and_no_recovery_point_when_reopened_should_cut_there_and_drop_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..20 {
        log.append(batch(&i.to_string(), 3, 0, 40), 0, 0).unwrap();
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 4);
    drop(log);
    fs::remove_file(dir.path().join("recovery-point")).unwrap();
    let second = dir.path().join(format!("{:020}.log", bases[1]));
    let mut bytes = fs::read(&second).unwrap();
    let second_batch_size = bytes.len() / ((bases[2] - bases[1]) as usize / 3);
    bytes[second_batch_size + 70] ^= 0xff; // inside the second batch of the segment
    fs::write(&second, &bytes).unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.segment_base_offsets(), bases[..2].to_vec());
    assert_eq!(log.log_end_offset(), bases[1] + 3);
    assert_contiguous(&log, bases[1] as usize + 3);
    for base in &bases[2..] {
        assert!(!dir.path().join(format!("{base:020}.log")).exists());
        assert!(!dir.path().join(format!("{base:020}.index")).exists());
    }
}

fn index_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = ["index", "timeindex"]
        .iter()
        .flat_map(|ext| files_with_ext(dir, ext))
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn given_deleted_index_files_when_reopened_should_rebuild_identical_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..25 {
        log.append(batch(&i.to_string(), 2, 1_000 + i, 30), 0, 0).unwrap();
    }
    log.close().unwrap();
    let before = index_bytes(dir.path());
    assert!(before.iter().any(|(_, b)| !b.is_empty()));
    for (path, _) in &before {
        fs::remove_file(path).unwrap();
    }
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_contiguous(&log, 50);
    assert_eq!(log.offset_for_timestamp(1_010).unwrap(), Some((20, 1_010)));
    log.close().unwrap();
    assert_eq!(index_bytes(dir.path()), before);
}

#[test]
fn given_corrupt_index_files_when_reopened_should_rebuild_them_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..25 {
        log.append(batch(&i.to_string(), 2, 1_000 + i, 30), 0, 0).unwrap();
    }
    log.close().unwrap();
    let before = index_bytes(dir.path());
    let indexes: Vec<_> = before.iter().filter(|(_, b)| b.len() >= 16).collect();
    assert!(indexes.len() >= 3);
    fs::write(&indexes[0].0, [1u8; 13]).unwrap(); // not a multiple of the entry size
    let mut reversed = indexes[1].1.clone();
    let entry = if indexes[1].0.extension().unwrap() == "index" { 8 } else { 12 };
    reversed.rotate_left(entry); // first entry moved last: not monotonic
    fs::write(&indexes[1].0, reversed).unwrap();
    let past_the_log: Vec<u8> = [1u32, 5, 2, 10_000_000].iter().flat_map(|v| v.to_be_bytes()).collect();
    let offset_indexes = files_with_ext(dir.path(), "index");
    let pointing_past = offset_indexes.iter().find(|p| **p != indexes[0].0 && **p != indexes[1].0).unwrap();
    fs::write(pointing_past, &past_the_log).unwrap(); // monotonic, but points past the log
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_contiguous(&log, 50);
    for offset in 0..50 {
        let r = log.read(offset, 1, None).unwrap();
        assert_eq!(r.first_offset, offset / 2 * 2);
    }
    log.close().unwrap();
    assert_eq!(index_bytes(dir.path()), before);
}

#[test]
fn given_stray_tmp_and_orphan_index_files_when_opened_should_remove_them() {
    let dir = tempfile::tempdir().unwrap();
    crashed_log(dir.path(), config(), 2);
    let tmp = dir.path().join("recovery-point.tmp");
    let orphan = dir.path().join(format!("{:020}.index", 500));
    let orphan_time = dir.path().join(format!("{:020}.timeindex", 500));
    fs::write(&tmp, "12").unwrap();
    fs::write(&orphan, [0u8; 8]).unwrap();
    fs::write(&orphan_time, [0u8; 12]).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert!(!tmp.exists() && !orphan.exists() && !orphan_time.exists());
    assert_eq!(log.log_end_offset(), 6);
}

#[test]
fn given_a_zero_length_active_segment_when_reopened_should_continue_at_its_base() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    log.append(batch("a", 4, 0, 10), 0, 0).unwrap();
    log.roll(0).unwrap();
    drop(log);
    let active = dir.path().join(format!("{:020}.log", 4));
    assert_eq!(file_len(&active), 0);
    let mut log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 4]);
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(log.append(batch("b", 1, 0, 10), 0, 0).unwrap().first_offset, 4);
    assert_contiguous(&log, 5);
}

#[test]
fn given_an_empty_or_missing_directory_when_opened_should_start_at_offset_zero() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("topic-0");
    let log = Log::open(&nested, config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    assert!(nested.join(format!("{:020}.log", 0)).exists());
    drop(log);
    fs::remove_file(nested.join(format!("{:020}.log", 0))).unwrap();
    let log = Log::open(&nested, config()).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    assert!(log.read(0, 100, None).unwrap().records.is_empty());
}

#[test]
fn given_repeated_crashes_when_reopened_each_time_should_accumulate_all_batches() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..5 {
        let mut log = Log::open(dir.path(), small_config()).unwrap();
        assert_eq!(log.log_end_offset(), round * 12);
        for i in 0..4 {
            log.append(batch(&format!("{round}-{i}"), 3, round, 60), 0, 0).unwrap();
        }
        if round % 2 == 0 {
            drop(log);
        } else {
            log.close().unwrap();
        }
    }
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_contiguous(&log, 60);
}

#[test]
fn given_an_invalid_config_when_opening_should_fail_without_touching_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("p");
    let bad = LogConfig { segment_bytes: 0, ..LogConfig::default() };
    assert!(matches!(Log::open(&target, bad), Err(vltava_storage::StorageError::InvalidConfig(_))));
    assert!(!target.exists());
}
