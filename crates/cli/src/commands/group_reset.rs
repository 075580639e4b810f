//! `vltava group reset-offsets G --topic T[:P,P...] --to-...`: moves a group's committed offsets
//! (Kafka's `kafka-consumer-groups --reset-offsets`).
//!
//! As in Kafka it only shows the new offsets unless `--execute` is given, the group must have
//! no members (the coordinator refuses with `NON_EMPTY_GROUP` otherwise), and targets outside a
//! partition's log are moved to its nearest end (with a note on stderr).

use clap::Args;
use serde::Serialize;
use vltava_client::{Admin, OffsetSpec, TopicPartition};

use super::ServerArgs;
use crate::output::{Table, print_json, print_text};

/// Arguments of `vltava group reset-offsets`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ResetArgs {
    /// Group id.
    pub group: String,
    /// The topic whose offsets move, optionally with partitions: `orders` or `orders:0,2`.
    #[arg(long, value_name = "T[:P,P...]")]
    pub topic: String,
    /// Where the offsets move.
    #[command(flatten)]
    pub to: ResetTo,
    /// Store the new offsets (without it, only show them).
    #[arg(long)]
    pub execute: bool,
    /// Print a JSON array of {topic, partition, offset} instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Exactly one target.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
#[group(required = true, multiple = false)]
pub struct ResetTo {
    /// The log start of each partition.
    #[arg(long)]
    pub to_earliest: bool,
    /// The log end of each partition (skip everything stored).
    #[arg(long)]
    pub to_latest: bool,
    /// The first record at or after a time: RFC 3339 (`2026-12-03T10:00:00Z`) or epoch ms.
    #[arg(long, value_name = "TIME", value_parser = parse_datetime)]
    pub to_datetime: Option<i64>,
    /// This offset in every partition.
    #[arg(long, value_name = "N")]
    pub to_offset: Option<i64>,
    /// The committed offset plus N (N may be negative).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
}

/// Parses `--to-datetime`: epoch milliseconds or an RFC 3339 time.
pub fn parse_datetime(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let time = humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("invalid time {s:?} ({e}): use RFC 3339 like 2026-12-03T10:00:00Z, or epoch ms"))?;
    let since = time.duration_since(std::time::UNIX_EPOCH).map_err(|_| format!("{s:?} is before 1970"))?;
    i64::try_from(since.as_millis()).map_err(|_| format!("{s:?} is too far in the future"))
}

/// Parses `--topic`: `T` or `T:P,P,...`.
pub fn parse_topic(s: &str) -> anyhow::Result<(String, Option<Vec<i32>>)> {
    match s.split_once(':') {
        None => Ok((s.to_string(), None)),
        Some((topic, parts)) => {
            let partitions = parts
                .split(',')
                .map(|p| {
                    p.trim().parse::<i32>().map_err(|_| anyhow::anyhow!("invalid partition {p:?} in --topic {s:?}"))
                })
                .collect::<anyhow::Result<Vec<i32>>>()?;
            Ok((topic.to_string(), Some(partitions)))
        }
    }
}

/// One partition's new offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewOffset {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The offset the group will read next.
    pub offset: i64,
}

/// The wanted offset of one partition before clamping: `committed` is the group's (-1 none).
pub fn target(to: &ResetTo, start: i64, end: i64, committed: i64, at_time: Option<i64>) -> i64 {
    if to.to_earliest {
        start
    } else if to.to_latest {
        end
    } else if let Some(n) = to.to_offset {
        n
    } else if let Some(n) = to.shift_by {
        // Kafka shifts from the committed offset; with none, from the log end.
        let base = if committed >= 0 { committed } else { end };
        base.saturating_add(n)
    } else {
        // A time with no record at or after it: the end.
        at_time.filter(|o| *o >= 0).unwrap_or(end)
    }
}

/// Runs `vltava group reset-offsets`.
pub async fn run(args: ResetArgs) -> anyhow::Result<()> {
    let admin = Admin::connect(&args.server.server).await?;
    let (topic, partitions) = parse_topic(&args.topic)?;
    let count = admin.describe_topic(&topic).await?.partitions.len() as i32;
    let partitions = partitions.unwrap_or_else(|| (0..count).collect());
    if let Some(p) = partitions.iter().find(|p| !(0..count).contains(*p)) {
        anyhow::bail!("topic {topic:?} has no partition {p} ({count} partitions)");
    }
    let committed = admin.group_offsets(&args.group).await?;
    let mut plan = Vec::with_capacity(partitions.len());
    for p in partitions {
        let tp = TopicPartition::new(topic.clone(), p);
        let start = admin.list_offsets(&tp, OffsetSpec::Earliest).await?;
        let end = admin.list_offsets(&tp, OffsetSpec::Latest).await?;
        let at_time = match args.to.to_datetime {
            Some(ms) => Some(admin.list_offsets(&tp, OffsetSpec::Timestamp(ms)).await?),
            None => None,
        };
        let current = committed.iter().find(|(c, _)| *c == tp).map_or(-1, |(_, o)| *o);
        let wanted = target(&args.to, start, end, current, at_time);
        let offset = wanted.clamp(start, end.max(start));
        if offset != wanted {
            eprintln!("note: {tp}: offset {wanted} is outside the log [{start}, {end}]; using {offset}");
        }
        plan.push(NewOffset { topic: topic.clone(), partition: p, offset });
    }
    if args.execute {
        let offsets: Vec<(TopicPartition, i64)> =
            plan.iter().map(|n| (TopicPartition::new(n.topic.clone(), n.partition), n.offset)).collect();
        admin.alter_group_offsets(&args.group, &offsets).await?;
    } else {
        eprintln!("dry run: nothing was changed (add --execute to store these offsets)");
    }
    if args.json {
        return print_json(&plan);
    }
    let mut table = Table::new(["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]);
    for n in &plan {
        table.row([args.group.clone(), n.topic.clone(), n.partition.to_string(), n.offset.to_string()]);
    }
    print_text(&table.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(f: impl FnOnce(&mut ResetTo)) -> ResetTo {
        let mut t =
            ResetTo { to_earliest: false, to_latest: false, to_datetime: None, to_offset: None, shift_by: None };
        f(&mut t);
        t
    }

    #[test]
    fn targets_follow_kafkas_rules() {
        assert_eq!(target(&to(|t| t.to_earliest = true), 3, 10, 7, None), 3);
        assert_eq!(target(&to(|t| t.to_latest = true), 3, 10, 7, None), 10);
        assert_eq!(target(&to(|t| t.to_offset = Some(5)), 3, 10, 7, None), 5);
        assert_eq!(target(&to(|t| t.shift_by = Some(-2)), 3, 10, 7, None), 5);
        assert_eq!(target(&to(|t| t.shift_by = Some(-2)), 3, 10, -1, None), 8);
        assert_eq!(target(&to(|t| t.to_datetime = Some(1)), 3, 10, 7, Some(4)), 4);
        assert_eq!(target(&to(|t| t.to_datetime = Some(1)), 3, 10, 7, Some(-1)), 10);
    }

    #[test]
    fn topics_and_times_parse() {
        assert_eq!(parse_topic("t").unwrap(), ("t".to_string(), None));
        assert_eq!(parse_topic("t:0,2").unwrap(), ("t".to_string(), Some(vec![0, 2])));
        assert!(parse_topic("t:x").is_err());
        assert_eq!(parse_datetime("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_datetime("1970-01-01T00:00:01Z"), Ok(1000));
        assert!(parse_datetime("yesterday").is_err());
    }
}
