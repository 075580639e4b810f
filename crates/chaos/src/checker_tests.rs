//! The checker on hand-made histories: a clean one passes, and each kind of violation is found
//! with the records that show it.

use std::collections::BTreeMap;

use crate::checker::{AnomalyKind, FinalRead, check};
use crate::history::{Event, TxnOutcome};

fn send(t: u64, client: &str, n: u64, txn: Option<&str>) -> Event {
    Event::Send {
        t,
        client: client.into(),
        key: format!("k{n}"),
        value: format!("{client}:{n}"),
        txn: txn.map(str::to_string),
    }
}

fn ack(t: u64, client: &str, n: u64, partition: i32, offset: i64) -> Event {
    Event::Ack { t, client: client.into(), value: format!("{client}:{n}"), partition, offset }
}

fn read(t: u64, client: &str, group: bool, partition: i32, offset: i64, value: &str) -> Event {
    Event::Read { t, client: client.into(), group, committed: true, partition, offset, value: value.into() }
}

fn commit(t: u64, partition: i32, offset: i64) -> Event {
    Event::Commit { t_start: t, t: t + 1, client: "c0".into(), partition, offset, ok: true }
}

fn log(records: &[(i64, &str)]) -> Vec<(i64, String)> {
    records.iter().map(|(o, v)| (*o, v.to_string())).collect()
}

/// p0 holds p1:0, p1:1, p1:2 at 0..3, all acknowledged, read by the group and committed.
fn clean() -> (Vec<Event>, FinalRead) {
    let mut events = Vec::new();
    for n in 0..3 {
        events.push(send(n * 10, "p1", n, None));
        events.push(ack(n * 10 + 5, "p1", n, 0, n as i64));
    }
    for n in 0..3 {
        events.push(read(100 + n, "c0", true, 0, n as i64, &format!("p1:{n}")));
    }
    events.push(commit(110, 0, 3));
    let records = log(&[(0, "p1:0"), (1, "p1:1"), (2, "p1:2")]);
    let stored = FinalRead {
        uncommitted: BTreeMap::from([(0, records.clone())]),
        committed: BTreeMap::from([(0, records)]),
        group_offsets: BTreeMap::from([(0, 3)]),
        incomplete: Vec::new(),
    };
    (events, stored)
}

fn kinds(events: &[Event], stored: &FinalRead) -> Vec<AnomalyKind> {
    check(events, stored).anomalies.iter().map(|a| a.kind).collect()
}

#[test]
fn a_clean_history_has_no_anomaly() {
    let (events, stored) = clean();
    let verdict = check(&events, &stored);
    assert!(verdict.ok(), "{:?}", verdict.anomalies);
    assert_eq!((verdict.sent, verdict.acknowledged, verdict.stored, verdict.commits), (3, 3, 3, 1));
    assert_eq!(verdict.counts.len(), 7);
}

#[test]
fn an_acknowledged_record_missing_from_the_log_is_lost() {
    let (events, mut stored) = clean();
    stored.uncommitted.insert(0, log(&[(0, "p1:0"), (1, "p1:1")]));
    stored.committed = stored.uncommitted.clone();
    stored.group_offsets.clear(); // no group activity in the first six events
    let verdict = check(&events[..6], &stored);
    assert_eq!(verdict.anomalies.len(), 1, "{:?}", verdict.anomalies);
    let lost = &verdict.anomalies[0];
    assert_eq!((lost.kind, lost.partition, lost.offset), (AnomalyKind::Lost, 0, Some(2)));
    assert_eq!(lost.value.as_deref(), Some("p1:2"));
}

#[test]
fn an_unacknowledged_send_may_be_lost() {
    let (mut events, stored) = clean();
    events.push(send(200, "p1", 3, None));
    events.push(Event::SendFailed { t: 230, client: "p1".into(), value: "p1:3".into(), error: "timeout".into() });
    assert!(check(&events, &stored).ok());
}

#[test]
fn one_send_at_two_offsets_is_a_duplicate() {
    let (events, mut stored) = clean();
    stored.uncommitted.get_mut(&0).unwrap().push((3, "p1:2".into()));
    assert_eq!(kinds(&events, &stored), vec![AnomalyKind::Duplicated]);
}

#[test]
fn an_offset_read_with_another_value_is_inconsistent() {
    let (mut events, stored) = clean();
    events.push(read(150, "reader", false, 0, 1, "p2:7"));
    let verdict = check(&events, &stored);
    assert_eq!(verdict.anomalies.len(), 1);
    assert_eq!(verdict.anomalies[0].kind, AnomalyKind::InconsistentOffsets);
    assert!(verdict.anomalies[0].detail.contains("p2:7"), "{}", verdict.anomalies[0].detail);
}

#[test]
fn a_producers_records_out_of_send_order_are_reordered() {
    let (mut events, mut stored) = clean();
    // p1:1 and p1:2 swapped in the log (and acknowledged so).
    events[3] = ack(15, "p1", 1, 0, 2);
    events[5] = ack(25, "p1", 2, 0, 1);
    let records = log(&[(0, "p1:0"), (1, "p1:2"), (2, "p1:1")]);
    stored.uncommitted.insert(0, records.clone());
    stored.committed.insert(0, records);
    events.retain(|e| !matches!(e, Event::Read { .. }));
    let found = kinds(&events, &stored);
    assert!(found.contains(&AnomalyKind::Reordered), "{found:?}");
    assert!(found.iter().all(|k| *k == AnomalyKind::Reordered || *k == AnomalyKind::Skip), "{found:?}");
}

/// The clean history plus a transaction `t0/0` of one record at p0@3, ended with `outcome`.
fn with_transaction(outcome: TxnOutcome) -> (Vec<Event>, FinalRead) {
    let (mut events, stored) = clean();
    events.push(send(300, "t0", 0, Some("t0/0")));
    events.push(ack(305, "t0", 0, 0, 3));
    events.push(Event::TxnEnd {
        t: 310,
        client: "t0".into(),
        txn: "t0/0".into(),
        outcome,
        values: vec!["t0:0".into()],
    });
    (events, stored)
}

#[test]
fn a_read_committed_read_of_an_aborted_transaction_is_reported() {
    let (mut events, mut stored) = with_transaction(TxnOutcome::Abort);
    stored.uncommitted.get_mut(&0).unwrap().push((3, "t0:0".into()));
    assert!(check(&events, &stored).ok(), "aborted records stay in the log, invisible");
    events.push(read(320, "reader", false, 0, 3, "t0:0"));
    assert_eq!(kinds(&events, &stored), vec![AnomalyKind::AbortedRead]);
}

#[test]
fn a_committed_transaction_invisible_to_read_committed_is_lost() {
    let (events, mut stored) = with_transaction(TxnOutcome::Commit);
    stored.uncommitted.get_mut(&0).unwrap().push((3, "t0:0".into()));
    let found = kinds(&events, &stored);
    assert!(found.contains(&AnomalyKind::Lost), "{found:?}");
    stored.committed.get_mut(&0).unwrap().push((3, "t0:0".into()));
    assert!(check(&events, &stored).ok());
}

#[test]
fn a_commit_below_an_earlier_accepted_one_is_a_regression() {
    let (mut events, stored) = clean();
    events.push(commit(200, 0, 1));
    assert_eq!(kinds(&events, &stored), vec![AnomalyKind::CommittedOffsetRegression]);
}

#[test]
fn a_member_finding_an_older_committed_offset_is_a_regression() {
    let (mut events, stored) = clean();
    events.push(Event::Fetched { t: 300, client: "c1".into(), partition: 0, offset: 0 });
    assert_eq!(kinds(&events, &stored), vec![AnomalyKind::CommittedOffsetRegression]);
}

#[test]
fn commits_that_overlap_in_time_are_not_ordered() {
    let (mut events, stored) = clean();
    // Sent before the commit of 3 was answered (t = 111): no order between the two.
    events.push(Event::Commit { t_start: 105, t: 130, client: "c1".into(), partition: 0, offset: 2, ok: true });
    assert!(check(&events, &stored).ok());
}

#[test]
fn a_committed_range_with_unconsumed_records_is_a_skip() {
    let (mut events, stored) = clean();
    events.retain(|e| !matches!(e, Event::Read { offset: 1, .. }));
    let verdict = check(&events, &stored);
    assert_eq!(verdict.anomalies.len(), 1);
    let skip = &verdict.anomalies[0];
    assert_eq!((skip.kind, skip.offset), (AnomalyKind::Skip, Some(1)));
}

#[test]
fn records_read_by_a_reader_outside_the_group_do_not_count_for_the_group() {
    let (mut events, stored) = clean();
    events.retain(|e| !matches!(e, Event::Read { offset: 1, .. }));
    events.push(read(105, "reader", false, 0, 1, "p1:1"));
    assert_eq!(kinds(&events, &stored), vec![AnomalyKind::Skip]);
}

#[test]
fn records_beyond_where_the_final_read_stopped_are_not_judged_lost() {
    let (events, mut stored) = clean();
    stored.uncommitted.insert(0, log(&[(0, "p1:0"), (1, "p1:1")]));
    stored.committed = stored.uncommitted.clone();
    stored.group_offsets.clear(); // no group activity in the first six events
    stored.incomplete.push(crate::checker::Incomplete { committed: false, partition: 0, position: 2, end: 3 });
    let verdict = check(&events[..6], &stored);
    assert!(verdict.ok(), "{:?}", verdict.anomalies);
    // Below where the read stopped, a missing record is lost all the same.
    stored.uncommitted.insert(0, log(&[(0, "p1:0"), (2, "p1:2")]));
    stored.incomplete[0].position = 3;
    assert_eq!(kinds(&events[..6], &stored), vec![AnomalyKind::Lost]);
}

#[test]
fn the_final_committed_offset_counts_for_skips() {
    let (mut events, mut stored) = clean();
    events.retain(|e| !matches!(e, Event::Commit { .. }));
    events.retain(|e| !matches!(e, Event::Read { offset: 2, .. }));
    stored.group_offsets.insert(0, 3);
    assert_eq!(kinds(&events, &stored), vec![AnomalyKind::Skip]);
}
