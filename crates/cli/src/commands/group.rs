//! `vltava group list|describe`: consumer groups, their committed offsets and lag.

use clap::{Args, Subcommand};
use serde::Serialize;
use vltava_client::{Admin, OffsetSpec, TopicPartition};

use super::ServerArgs;
use crate::output::{Table, error_message, print_json, print_text};

/// Consumer groups.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum GroupCommand {
    /// Lists the groups that have members or committed offsets.
    List(ListArgs),
    /// Shows a group's committed offset, log end offset and lag per partition.
    Describe(DescribeArgs),
    /// Deletes a group with no members: its committed offsets and state.
    Delete(DeleteArgs),
}

/// Arguments of `vltava group delete`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DeleteArgs {
    /// Group id.
    pub group: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Arguments of `vltava group list`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ListArgs {
    /// Print one JSON array of group ids instead of one id per line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Arguments of `vltava group describe`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DescribeArgs {
    /// Group id.
    pub group: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Runs a group command.
pub async fn run(command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List(args) => list(args).await,
        GroupCommand::Describe(args) => describe(args).await,
        GroupCommand::Delete(args) => delete(args).await,
    }
}

async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let admin = Admin::connect(&args.server.server).await?;
    admin.delete_group(&args.group).await?;
    print_text(&format!("deleted group {}\n", args.group))
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let admin = Admin::connect(&args.server.server).await?;
    let groups = admin.list_groups().await?;
    if args.json {
        print_json(&groups)
    } else {
        let mut text = String::new();
        for g in &groups {
            text.push_str(g);
            text.push('\n');
        }
        print_text(&text)
    }
}

/// One partition of a group, as `group describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The committed offset (the next offset the group reads), `null` if none.
    pub committed_offset: Option<i64>,
    /// The partition's log end offset (high watermark), `null` if it could not be read.
    pub log_end_offset: Option<i64>,
    /// `log_end_offset - committed_offset` (at least 0), `null` if either is unknown.
    pub lag: Option<i64>,
    /// Why the log end offset could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The document `group describe --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupDescription {
    /// Group id.
    pub group: String,
    /// Sum of the known lags.
    pub total_lag: i64,
    /// Partitions the group committed offsets for, sorted.
    pub partitions: Vec<GroupPartition>,
}

impl GroupPartition {
    /// A row from a committed offset and the log end offset lookup's outcome.
    pub fn new(tp: &TopicPartition, committed: i64, end: Result<i64, String>) -> Self {
        let committed_offset = (committed >= 0).then_some(committed);
        let (log_end_offset, error) = match end {
            Ok(end) => (Some(end), None),
            Err(e) => (None, Some(e)),
        };
        let lag = match (committed_offset, log_end_offset) {
            (Some(c), Some(e)) => Some((e - c).max(0)),
            _ => None,
        };
        GroupPartition {
            topic: tp.topic.clone(),
            partition: tp.partition,
            committed_offset,
            log_end_offset,
            lag,
            error,
        }
    }
}

impl GroupDescription {
    /// A description from its partitions.
    pub fn new(group: String, partitions: Vec<GroupPartition>) -> Self {
        let total_lag = partitions.iter().filter_map(|p| p.lag).sum();
        GroupDescription { group, total_lag, partitions }
    }

    /// The table `group describe` prints.
    pub fn table(&self) -> String {
        let mut table = Table::new(["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"]);
        let dash = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        for p in &self.partitions {
            table.row([
                self.group.clone(),
                p.topic.clone(),
                p.partition.to_string(),
                dash(p.committed_offset),
                dash(p.log_end_offset),
                dash(p.lag),
            ]);
        }
        table.render()
    }
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let admin = Admin::connect(&args.server.server).await?;
    let committed = admin.group_offsets(&args.group).await?;
    if committed.is_empty() && !admin.list_groups().await?.contains(&args.group) {
        anyhow::bail!("group {:?} does not exist (it has no committed offsets)", args.group);
    }
    let ends = futures::future::join_all(committed.iter().map(|(tp, _)| {
        let admin = admin.clone();
        async move { admin.list_offsets(tp, OffsetSpec::Latest).await }
    }))
    .await;
    let partitions = committed
        .iter()
        .zip(ends)
        .map(|((tp, offset), end)| {
            let end = end.map_err(|e| error_message(&anyhow::Error::new(e)));
            GroupPartition::new(tp, *offset, end)
        })
        .collect();
    let description = GroupDescription::new(args.group, partitions);
    if args.json { print_json(&description) } else { print_text(&description.table()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_end_minus_committed_and_unknown_when_either_is_missing() {
        let tp = TopicPartition::new("t", 0);
        let p = GroupPartition::new(&tp, 5, Ok(12));
        assert_eq!((p.committed_offset, p.log_end_offset, p.lag), (Some(5), Some(12), Some(7)));
        let p = GroupPartition::new(&tp, -1, Ok(12));
        assert_eq!((p.committed_offset, p.lag), (None, None));
        let p = GroupPartition::new(&tp, 5, Err("UNKNOWN_TOPIC_OR_PARTITION: gone".into()));
        assert_eq!((p.log_end_offset, p.lag), (None, None));
        assert_eq!(p.error.as_deref(), Some("UNKNOWN_TOPIC_OR_PARTITION: gone"));
        // Retention may move the end below nothing, never a negative lag.
        assert_eq!(GroupPartition::new(&tp, 20, Ok(12)).lag, Some(0));
    }

    #[test]
    fn description_json_and_table() {
        let d = GroupDescription::new(
            "g".into(),
            vec![
                GroupPartition::new(&TopicPartition::new("t", 0), 5, Ok(12)),
                GroupPartition::new(&TopicPartition::new("t", 1), -1, Ok(3)),
            ],
        );
        assert_eq!(d.total_lag, 7);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["group"], "g");
        assert_eq!(v["partitions"][0]["lag"], 7);
        assert_eq!(v["partitions"][1]["committed_offset"], serde_json::Value::Null);
        assert!(v["partitions"][0].get("error").is_none());
        let table = d.table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("GROUP  TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG"));
        assert!(lines[1].split_whitespace().eq(["g", "t", "0", "5", "12", "7"]));
        assert!(lines[2].split_whitespace().eq(["g", "t", "1", "-", "3", "-"]));
    }
}
