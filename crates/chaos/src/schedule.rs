//! The seeded fault schedule: one fault at a time, each for a few seconds, with quiet gaps
//! between them. The same seed, duration and mix give the same schedule; which broker a
//! role-based target ("the leader of partition 2") names is decided when the fault starts.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// The kinds of fault, as `--faults` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// kill -9, restarted when the window ends.
    Kill,
    /// SIGSTOP for longer than the session timeouts, then SIGCONT.
    Pause,
    /// One node cut off from every other node.
    Isolate,
    /// A minority (a controller and a broker) cut off from the majority.
    Split,
    /// Two halves that cannot reach each other, and one node that reaches both.
    Bridge,
    /// One node's packets to the others dropped (theirs still reach it).
    OneWay,
    /// 30% of one node's packets to and from the others dropped.
    Lossy,
    /// The broker with the small tmpfs data directory runs out of space.
    DiskFull,
}

/// Every kind, in `--faults all` order.
pub const ALL: [FaultKind; 8] = [
    FaultKind::Kill,
    FaultKind::Pause,
    FaultKind::Isolate,
    FaultKind::Split,
    FaultKind::Bridge,
    FaultKind::OneWay,
    FaultKind::Lossy,
    FaultKind::DiskFull,
];

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        f.write_str(&name)
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL.iter()
            .find(|k| k.to_string() == s)
            .copied()
            .ok_or_else(|| format!("unknown fault {s:?} (expected {})", ALL.map(|k| k.to_string()).join(", ")))
    }
}

/// Parses `--faults`: `all` or a comma-separated list of kinds.
pub fn parse_mix(s: &str) -> Result<Vec<FaultKind>, String> {
    if s.trim() == "all" {
        return Ok(ALL.to_vec());
    }
    s.split(',').map(|k| k.trim().parse()).collect()
}

/// Whom a fault hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A process by name ("broker-2", "controller-1", "gateway").
    Named(String),
    /// The current leader of a partition of the topic under test.
    PartitionLeader(i32),
    /// The coordinator of the workload's group.
    GroupCoordinator,
    /// The coordinator of the first transactional producer.
    TxnCoordinator,
    /// The Raft leader of the controller quorum.
    ControllerLeader,
}

/// One fault window.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// When it starts, from the start of the workload.
    #[serde(with = "millis")]
    pub start: Duration,
    /// How long it lasts.
    #[serde(with = "millis")]
    pub length: Duration,
    /// What it is.
    pub kind: FaultKind,
    /// Whom it hits (for kill, pause, isolate, one-way, lossy).
    pub target: Target,
    /// A random number the fault uses to pick sides (split, bridge).
    pub pick: u64,
}

mod millis {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

/// Generates the schedule of a run: faults from `mix` between `warmup` and `duration`, the first
/// ones covering every kind of the mix once (in a seeded order), the rest drawn at random.
pub fn generate(seed: u64, duration: Duration, mix: &[FaultKind], brokers: u32, partitions: i32) -> Vec<Window> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut first: Vec<FaultKind> = mix.to_vec();
    first.shuffle(&mut rng);
    let warmup = Duration::from_secs(5);
    let mut at = warmup;
    let mut out = Vec::new();
    while !mix.is_empty() {
        let kind = if out.len() < first.len() { first[out.len()] } else { mix[rng.random_range(0..mix.len())] };
        let length = match kind {
            // Longer than the group session (6 s) and the broker session (3 s).
            FaultKind::Pause => Duration::from_millis(rng.random_range(7_000..12_000)),
            _ => Duration::from_millis(rng.random_range(4_000..10_000)),
        };
        if at + length > duration {
            break;
        }
        let target = match kind {
            FaultKind::Split | FaultKind::Bridge | FaultKind::DiskFull => Target::Named(String::new()),
            _ => match rng.random_range(0..10) {
                0..=2 => Target::PartitionLeader(rng.random_range(0..partitions.max(1))),
                3 => Target::GroupCoordinator,
                4 => Target::TxnCoordinator,
                5 => Target::ControllerLeader,
                6 => Target::Named(format!("controller-{}", rng.random_range(1..=3))),
                7 => Target::Named("gateway".into()),
                _ => Target::Named(format!("broker-{}", rng.random_range(1..=brokers))),
            },
        };
        out.push(Window { start: at, length, kind, target, pick: rng.random() });
        at += length + Duration::from_millis(rng.random_range(2_000..6_000));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let a = generate(42, Duration::from_secs(120), &ALL, 3, 6);
        let b = generate(42, Duration::from_secs(120), &ALL, 3, 6);
        let c = generate(43, Duration::from_secs(120), &ALL, 3, 6);
        let json = |w: &Vec<Window>| serde_json::to_string(w).unwrap();
        assert_eq!(json(&a), json(&b));
        assert_ne!(json(&a), json(&c));
    }

    #[test]
    fn every_kind_of_the_mix_comes_first_and_windows_do_not_overlap() {
        let windows = generate(7, Duration::from_secs(200), &ALL, 3, 6);
        let first: std::collections::HashSet<FaultKind> = windows.iter().take(ALL.len()).map(|w| w.kind).collect();
        assert_eq!(first.len(), ALL.len(), "{windows:?}");
        for w in windows.windows(2) {
            assert!(w[0].start + w[0].length < w[1].start);
        }
        assert!(windows.last().is_some_and(|w| w.start + w.length <= Duration::from_secs(200)));
    }

    #[test]
    fn fault_mixes_parse_by_name() {
        assert_eq!(parse_mix("all").unwrap().len(), ALL.len());
        assert_eq!(parse_mix("kill, disk-full").unwrap(), vec![FaultKind::Kill, FaultKind::DiskFull]);
        assert!(parse_mix("kill,meteor").unwrap_err().contains("meteor"));
    }
}
