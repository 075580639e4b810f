//! The history checker: what a run recorded ([`Event`]s) and what the healed cluster holds
//! ([`FinalRead`]) against Kafka's guarantees. Each violation is an [`Anomaly`] naming the records
//! involved. Unacknowledged sends may be lost: that is not a violation.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::history::{Event, TxnOutcome, parse_value};

/// What the healed cluster holds, read from the beginning of every partition of the topic.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FinalRead {
    /// `read_uncommitted`: every data record, by partition, as `(offset, value)` in offset order.
    pub uncommitted: BTreeMap<i32, Vec<(i64, String)>>,
    /// `read_committed`: what a transactional reader sees.
    pub committed: BTreeMap<i32, Vec<(i64, String)>>,
    /// The group's committed offsets at the end.
    pub group_offsets: BTreeMap<i32, i64>,
    /// Partitions that could not be read to their end (a stuck last stable offset, a partition
    /// without a leader): a finding of its own.
    #[serde(default)]
    pub incomplete: Vec<Incomplete>,
}

/// A partition the final read could not read to its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incomplete {
    /// Whether it was the `read_committed` read.
    pub committed: bool,
    /// The partition.
    pub partition: i32,
    /// Where the read stopped.
    pub position: i64,
    /// The partition's high watermark.
    pub end: i64,
}

impl FinalRead {
    /// Whether the final read of `partition` (committed or not) stopped before `offset`: what lies
    /// there is unknown, neither lost nor kept.
    fn unread(&self, committed: bool, partition: i32, offset: i64) -> bool {
        self.incomplete.iter().any(|i| i.committed == committed && i.partition == partition && offset >= i.position)
    }
}

/// The kinds of violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// An acknowledged record (or one of a committed transaction) is not in the log.
    Lost,
    /// One send stored at two offsets although the producer is idempotent.
    Duplicated,
    /// One offset seen with two values (across acknowledgements, reads and the final read).
    InconsistentOffsets,
    /// A producer's records in a partition out of its send order.
    Reordered,
    /// A `read_committed` reader saw a record of an aborted transaction.
    AbortedRead,
    /// A group's committed offset went backwards.
    CommittedOffsetRegression,
    /// A group's consumption jumped over records nobody in the group consumed.
    Skip,
}

/// One violation, with the records that show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Its kind.
    pub kind: AnomalyKind,
    /// The partition.
    pub partition: i32,
    /// The offset involved, when one is.
    pub offset: Option<i64>,
    /// The value involved, when one is.
    pub value: Option<String>,
    /// When it was observed (ms since the start), when known.
    pub t: Option<u64>,
    /// What exactly is wrong.
    pub detail: String,
}

/// What the checker found, and how much it looked at.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Verdict {
    /// Every violation.
    pub anomalies: Vec<Anomaly>,
    /// Counts by kind (every kind listed, zeros included).
    pub counts: BTreeMap<String, usize>,
    /// Records sent.
    pub sent: usize,
    /// Records acknowledged.
    pub acknowledged: usize,
    /// Records that failed (fate unknown).
    pub failed: usize,
    /// Records read by consumers during the run.
    pub read: usize,
    /// Records in the final read (read_uncommitted).
    pub stored: usize,
    /// Transactions committed / aborted / unknown.
    pub transactions: BTreeMap<String, usize>,
    /// Group commits accepted.
    pub commits: usize,
}

impl Verdict {
    /// Whether no guarantee was violated.
    pub fn ok(&self) -> bool {
        self.anomalies.is_empty()
    }
}

const ALL_KINDS: [AnomalyKind; 7] = [
    AnomalyKind::Lost,
    AnomalyKind::Duplicated,
    AnomalyKind::InconsistentOffsets,
    AnomalyKind::Reordered,
    AnomalyKind::AbortedRead,
    AnomalyKind::CommittedOffsetRegression,
    AnomalyKind::Skip,
];

/// Most anomalies of one kind listed (the counts stay exact).
const MAX_LISTED: usize = 50;

/// Checks `events` against `stored`.
pub fn check(events: &[Event], stored: &FinalRead) -> Verdict {
    let mut found = Vec::new();
    let txns = transactions(events);
    lost(events, stored, &txns, &mut found);
    duplicated(stored, &mut found);
    inconsistent(events, stored, &mut found);
    reordered(events, stored, &mut found);
    aborted_reads(events, stored, &txns, &mut found);
    regressions(events, stored, &mut found);
    skips(events, stored, &mut found);
    let mut counts: BTreeMap<String, usize> = ALL_KINDS.iter().map(|k| (kind_name(*k), 0)).collect();
    for a in &found {
        *counts.entry(kind_name(a.kind)).or_default() += 1;
    }
    let mut listed: HashMap<AnomalyKind, usize> = HashMap::new();
    found.retain(|a| {
        let n = listed.entry(a.kind).or_default();
        *n += 1;
        *n <= MAX_LISTED
    });
    let mut transactions_by_outcome = BTreeMap::new();
    for outcome in txns.values() {
        *transactions_by_outcome.entry(format!("{outcome:?}").to_lowercase()).or_default() += 1;
    }
    Verdict {
        anomalies: found,
        counts,
        sent: events.iter().filter(|e| matches!(e, Event::Send { .. })).count(),
        acknowledged: events.iter().filter(|e| matches!(e, Event::Ack { .. })).count(),
        failed: events.iter().filter(|e| matches!(e, Event::SendFailed { .. })).count(),
        read: events.iter().filter(|e| matches!(e, Event::Read { .. })).count(),
        stored: stored.uncommitted.values().map(Vec::len).sum(),
        transactions: transactions_by_outcome,
        commits: events.iter().filter(|e| matches!(e, Event::Commit { ok: true, .. })).count(),
    }
}

/// The snake_case name of a kind (as in the JSON report).
pub fn kind_name(kind: AnomalyKind) -> String {
    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Each transactional value's transaction outcome.
fn transactions(events: &[Event]) -> HashMap<String, TxnOutcome> {
    let mut out = HashMap::new();
    for e in events {
        if let Event::TxnEnd { txn, outcome, .. } = e {
            out.insert(txn.clone(), *outcome);
        }
    }
    out
}

/// The transaction of each transactional value.
fn txn_of(events: &[Event]) -> HashMap<&str, &str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Send { value, txn: Some(txn), .. } => Some((value.as_str(), txn.as_str())),
            _ => None,
        })
        .collect()
}

fn anomaly(
    kind: AnomalyKind,
    partition: i32,
    offset: Option<i64>,
    value: Option<&str>,
    t: Option<u64>,
    detail: String,
) -> Anomaly {
    Anomaly { kind, partition, offset, value: value.map(str::to_string), t, detail }
}

/// Where each value is stored in the final read: value -> [(partition, offset)].
fn locations(log: &BTreeMap<i32, Vec<(i64, String)>>) -> HashMap<&str, Vec<(i32, i64)>> {
    let mut out: HashMap<&str, Vec<(i32, i64)>> = HashMap::new();
    for (p, records) in log {
        for (o, v) in records {
            out.entry(v.as_str()).or_default().push((*p, *o));
        }
    }
    out
}

/// Acknowledged non-transactional records and records of committed transactions must be in the
/// log (the committed view for the latter), at their acknowledged offset.
fn lost(events: &[Event], stored: &FinalRead, txns: &HashMap<String, TxnOutcome>, found: &mut Vec<Anomaly>) {
    let txn_of = txn_of(events);
    let all = locations(&stored.uncommitted);
    let committed = locations(&stored.committed);
    for e in events {
        let Event::Ack { t, value, partition, offset, .. } = e else { continue };
        let in_txn = txn_of.get(value.as_str());
        if let Some(txn) = in_txn
            && txns.get(*txn) != Some(&TxnOutcome::Commit)
        {
            continue;
        }
        let view = if in_txn.is_some() { &committed } else { &all };
        match view.get(value.as_str()) {
            None if stored.unread(in_txn.is_some(), *partition, *offset) => {}
            None => found.push(anomaly(
                AnomalyKind::Lost,
                *partition,
                Some(*offset),
                Some(value),
                Some(*t),
                format!(
                    "acknowledged at offset {offset} at {t} ms{}, but absent from the final read",
                    in_txn.map(|x| format!(" in committed transaction {x}")).unwrap_or_default()
                ),
            )),
            Some(places) if !places.contains(&(*partition, *offset)) => found.push(anomaly(
                AnomalyKind::InconsistentOffsets,
                *partition,
                Some(*offset),
                Some(value),
                Some(*t),
                format!("acknowledged at p{partition}@{offset}, but stored at {places:?}"),
            )),
            Some(_) => {}
        }
    }
}

/// No value at two offsets: every producer is idempotent.
fn duplicated(stored: &FinalRead, found: &mut Vec<Anomaly>) {
    for (value, places) in locations(&stored.uncommitted) {
        if places.len() > 1 {
            found.push(anomaly(
                AnomalyKind::Duplicated,
                places[1].0,
                Some(places[1].1),
                Some(value),
                None,
                format!("one send stored {} times, at {places:?}", places.len()),
            ));
        }
    }
}

/// One offset, one value: across acknowledgements, every consumer's reads and the final read.
fn inconsistent(events: &[Event], stored: &FinalRead, found: &mut Vec<Anomaly>) {
    let mut observations: Vec<(i32, i64, &str, String, Option<u64>)> = Vec::new();
    for (p, records) in &stored.uncommitted {
        for (o, v) in records {
            observations.push((*p, *o, v, "final read".into(), None));
        }
    }
    for e in events {
        match e {
            Event::Read { t, client, partition, offset, value, .. } => {
                observations.push((*partition, *offset, value, format!("read by {client} at {t} ms"), Some(*t)))
            }
            Event::Ack { t, client, partition, offset, value } => {
                observations.push((*partition, *offset, value, format!("acknowledged to {client} at {t} ms"), Some(*t)))
            }
            _ => {}
        }
    }
    // The first observation of an offset is the reference for the later ones.
    let mut seen: HashMap<(i32, i64), (&str, String)> = HashMap::new();
    let mut reported: HashSet<(i32, i64)> = HashSet::new();
    for (p, o, v, by, t) in observations {
        match seen.get(&(p, o)) {
            None => {
                seen.insert((p, o), (v, by));
            }
            Some((first, first_by)) => {
                if *first != v && reported.insert((p, o)) {
                    found.push(anomaly(
                        AnomalyKind::InconsistentOffsets,
                        p,
                        Some(o),
                        Some(v),
                        t,
                        format!("p{p}@{o} held {first:?} ({first_by}) and {v:?} ({by})"),
                    ));
                }
            }
        }
    }
}

/// Within a partition, each producer's records in the order it sent them (idempotence keeps
/// order through retries): send numbers grow with offsets. Checked on the final log, so
/// unacknowledged records that were stored count too; and acknowledged records in send order
/// must have growing offsets.
fn reordered(events: &[Event], stored: &FinalRead, found: &mut Vec<Anomaly>) {
    // A send the SDK gave up on may still land later: after a failed batch the SDK takes a new
    // producer id instead of bumping the epoch (so nothing fences the old one), which Kafka's
    // producer does not; such records are left out of the order check.
    let failed: HashSet<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::SendFailed { value, .. } => Some(value.as_str()),
            _ => None,
        })
        .collect();
    for (p, records) in &stored.uncommitted {
        let mut last: HashMap<&str, (u64, i64)> = HashMap::new();
        for (o, v) in records {
            if failed.contains(v.as_str()) {
                continue;
            }
            let Some((client, n)) = parse_value(v) else { continue };
            if let Some((prev_n, prev_o)) = last.get(client)
                && n < *prev_n
            {
                found.push(anomaly(
                    AnomalyKind::Reordered,
                    *p,
                    Some(*o),
                    Some(v),
                    None,
                    format!("{client}'s send #{n} stored at {o}, after its send #{prev_n} at {prev_o}"),
                ));
            }
            last.insert(client, (n, *o));
        }
    }
    // (producer, partition) -> [(send number, offset, value, acknowledged at)].
    type Acks<'a> = BTreeMap<(&'a str, i32), Vec<(u64, i64, &'a str, u64)>>;
    let mut acked: Acks = BTreeMap::new();
    for e in events {
        if let Event::Ack { t, client, value, partition, offset } = e
            && let Some((_, n)) = parse_value(value)
        {
            acked.entry((client.as_str(), *partition)).or_default().push((n, *offset, value.as_str(), *t));
        }
    }
    for ((client, p), mut acks) in acked {
        acks.sort_unstable();
        for w in acks.windows(2) {
            if w[1].1 <= w[0].1 {
                found.push(anomaly(
                    AnomalyKind::Reordered,
                    p,
                    Some(w[1].1),
                    Some(w[1].2),
                    Some(w[1].3),
                    format!(
                        "{client}'s send #{} acknowledged at {}, not after its send #{} at {}",
                        w[1].0, w[1].1, w[0].0, w[0].1
                    ),
                ));
            }
        }
    }
}

/// No read_committed read of an aborted transaction's record, during the run or at the end.
fn aborted_reads(events: &[Event], stored: &FinalRead, txns: &HashMap<String, TxnOutcome>, found: &mut Vec<Anomaly>) {
    let txn_of = txn_of(events);
    let aborted = |value: &str| txn_of.get(value).is_some_and(|txn| txns.get(*txn) == Some(&TxnOutcome::Abort));
    for e in events {
        if let Event::Read { t, client, committed: true, partition, offset, value, .. } = e
            && aborted(value)
        {
            found.push(anomaly(
                AnomalyKind::AbortedRead,
                *partition,
                Some(*offset),
                Some(value),
                Some(*t),
                format!("{client} (read_committed) read a record of aborted transaction {}", txn_of[value.as_str()]),
            ));
        }
    }
    for (p, records) in &stored.committed {
        for (o, v) in records {
            if aborted(v) {
                found.push(anomaly(
                    AnomalyKind::AbortedRead,
                    *p,
                    Some(*o),
                    Some(v),
                    None,
                    format!(
                        "the final read_committed read returned a record of aborted transaction {}",
                        txn_of[v.as_str()]
                    ),
                ));
            }
        }
    }
}

/// A group's committed offset never goes back: a commit sent after another was accepted is not
/// lower, a member never finds a committed offset below one accepted before it asked, and the
/// final offsets are not below any accepted commit.
fn regressions(events: &[Event], stored: &FinalRead, found: &mut Vec<Anomaly>) {
    // Accepted commits per partition: (answered at, sent at, offset).
    let mut accepted: BTreeMap<i32, Vec<(u64, u64, i64)>> = BTreeMap::new();
    for e in events {
        if let Event::Commit { t_start, t, partition, offset, ok: true, .. } = e {
            accepted.entry(*partition).or_default().push((*t, *t_start, *offset));
        }
    }
    for commits in accepted.values_mut() {
        commits.sort_unstable();
    }
    // The highest offset accepted before `t` (answered before `t`).
    let floor = |p: i32, t: u64| -> Option<(i64, u64)> {
        accepted.get(&p)?.iter().filter(|(answered, _, _)| *answered < t).map(|(a, _, o)| (*o, *a)).max()
    };
    for (p, commits) in &accepted {
        for (answered, sent, offset) in commits {
            if let Some((before, at)) = floor(*p, *sent)
                && *offset < before
            {
                found.push(anomaly(
                    AnomalyKind::CommittedOffsetRegression,
                    *p,
                    Some(*offset),
                    None,
                    Some(*answered),
                    format!("commit of {offset} sent at {sent} ms accepted, after {before} was accepted at {at} ms"),
                ));
            }
        }
    }
    for e in events {
        if let Event::Fetched { t, client, partition, offset } = e
            && let Some((before, at)) = floor(*partition, *t)
            && *offset < before
        {
            found.push(anomaly(
                AnomalyKind::CommittedOffsetRegression,
                *partition,
                Some(*offset),
                None,
                Some(*t),
                format!("{client} found committed offset {offset} at {t} ms, after {before} was accepted at {at} ms"),
            ));
        }
    }
    for (p, final_offset) in &stored.group_offsets {
        if let Some((before, at)) = floor(*p, u64::MAX)
            && *final_offset < before
        {
            found.push(anomaly(
                AnomalyKind::CommittedOffsetRegression,
                *p,
                Some(*final_offset),
                None,
                None,
                format!("the final committed offset is {final_offset}, below {before} accepted at {at} ms"),
            ));
        }
    }
}

/// Below the group's highest accepted commit, every record a read_committed member could see
/// (the final read_committed log) was read by some member.
fn skips(events: &[Event], stored: &FinalRead, found: &mut Vec<Anomaly>) {
    let mut consumed: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
    let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
    for e in events {
        match e {
            Event::Read { group: true, partition, offset, .. } => {
                consumed.entry(*partition).or_default().insert(*offset);
            }
            Event::Commit { partition, offset, ok: true, .. } => {
                let c = committed.entry(*partition).or_insert(*offset);
                *c = (*c).max(*offset);
            }
            _ => {}
        }
    }
    for (p, offset) in &stored.group_offsets {
        let c = committed.entry(*p).or_insert(*offset);
        *c = (*c).max(*offset);
    }
    let empty = BTreeSet::new();
    for (p, upto) in committed {
        let got = consumed.get(&p).unwrap_or(&empty);
        let missing: Vec<&(i64, String)> = stored
            .committed
            .get(&p)
            .map(|records| records.iter().filter(|(o, _)| *o < upto && !got.contains(o)).collect())
            .unwrap_or_default();
        if let Some((first, value)) = missing.first() {
            found.push(anomaly(
                AnomalyKind::Skip,
                p,
                Some(*first),
                Some(value),
                None,
                format!(
                    "the group committed {upto}, but nobody in it consumed {} record(s) below it (first at {first})",
                    missing.len()
                ),
            ));
        }
    }
}
