//! `vltava group describe G`: the group's state and members and, per partition, its owner,
//! committed offset, log end offset and lag (Kafka's `kafka-consumer-groups --describe`), as
//! the group's coordinator reports them.

use std::collections::BTreeMap;

use clap::Args;
use serde::Serialize;
use vltava_client::{Admin, GroupDescription as Wire, PartitionSet};

use super::ServerArgs;
use crate::output::{Table, print_json, print_text};

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

/// One member, as `group describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// The client's id.
    pub client_id: String,
    /// The client's address.
    pub host: String,
    /// The member's epoch.
    pub member_epoch: i32,
    /// The partitions it owns, as `topic-partition`.
    pub partitions: Vec<String>,
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
    /// The member that owns it, `null` if none.
    pub member_id: Option<String>,
}

/// The document `group describe --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupDescription {
    /// Group id.
    pub group: String,
    /// `Empty`, `Assigning`, `Reconciling` or `Stable`.
    pub state: String,
    /// The group epoch.
    pub group_epoch: i32,
    /// The epoch of the target assignment.
    pub assignment_epoch: i32,
    /// The coordinator's broker id.
    pub coordinator: i32,
    /// Sum of the known lags.
    pub total_lag: i64,
    /// Members, sorted by id.
    pub members: Vec<Member>,
    /// Partitions the group owns or committed offsets for, sorted.
    pub partitions: Vec<GroupPartition>,
}

fn known(v: i64) -> Option<i64> {
    (v >= 0).then_some(v)
}

fn names(set: Option<&PartitionSet>) -> Vec<String> {
    set.into_iter()
        .flat_map(|s| &s.topics)
        .flat_map(|t| t.partitions.iter().map(move |p| format!("{}-{p}", t.topic)))
        .collect()
}

impl From<Wire> for GroupDescription {
    fn from(d: Wire) -> Self {
        let partitions: Vec<GroupPartition> = d
            .partitions
            .into_iter()
            .map(|p| GroupPartition {
                topic: p.topic,
                partition: p.partition,
                committed_offset: known(p.committed_offset),
                log_end_offset: known(p.log_end_offset),
                lag: known(p.lag),
                member_id: Some(p.member_id).filter(|m| !m.is_empty()),
            })
            .collect();
        let members = d
            .members
            .into_iter()
            .map(|m| Member {
                partitions: names(m.assignment.as_ref()),
                member_id: m.member_id,
                instance_id: m.instance_id,
                client_id: m.client_id,
                host: m.client_host,
                member_epoch: m.member_epoch,
            })
            .collect();
        GroupDescription {
            group: d.group_id,
            state: d.state,
            group_epoch: d.group_epoch,
            assignment_epoch: d.assignment_epoch,
            coordinator: d.coordinator_id,
            total_lag: partitions.iter().filter_map(|p| p.lag).sum(),
            members,
            partitions,
        }
    }
}

impl GroupDescription {
    /// The text `group describe` prints: a summary line, then one row per partition.
    pub fn table(&self) -> String {
        let mut text = format!(
            "Group {} is {} with {} member(s) (group epoch {}, coordinator {})\n\n",
            self.group,
            self.state,
            self.members.len(),
            self.group_epoch,
            self.coordinator
        );
        let members: BTreeMap<&str, &Member> = self.members.iter().map(|m| (m.member_id.as_str(), m)).collect();
        let mut table = Table::new([
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ]);
        let dash = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        for p in &self.partitions {
            let owner = p.member_id.as_deref().and_then(|m| members.get(m));
            table.row([
                self.group.clone(),
                p.topic.clone(),
                p.partition.to_string(),
                dash(p.committed_offset),
                dash(p.log_end_offset),
                dash(p.lag),
                p.member_id.clone().unwrap_or_else(|| "-".into()),
                owner.map_or_else(|| "-".into(), |m| m.host.clone()),
                owner.map_or_else(|| "-".into(), |m| m.client_id.clone()),
            ]);
        }
        text.push_str(&table.render());
        text
    }
}

/// Runs `vltava group describe`.
pub async fn run(args: DescribeArgs) -> anyhow::Result<()> {
    let admin = Admin::connect(&args.server.server).await?;
    let description = GroupDescription::from(admin.describe_group(&args.group).await?);
    if args.json { print_json(&description) } else { print_text(&description.table()) }
}

#[cfg(test)]
mod tests {
    use vltava_client::{MemberDescription, PartitionLag};
    use vltava_proto::v1::TopicPartitions;

    use super::*;

    #[test]
    fn description_json_and_table() {
        let wire = Wire {
            group_id: "g".into(),
            state: "Stable".into(),
            group_epoch: 3,
            assignment_epoch: 3,
            coordinator_id: 2,
            members: vec![MemberDescription {
                member_id: "m1".into(),
                client_id: "cli".into(),
                client_host: "10.0.0.1".into(),
                member_epoch: 3,
                assignment: Some(PartitionSet {
                    topics: vec![TopicPartitions { topic: "t".into(), partitions: vec![0] }],
                }),
                ..Default::default()
            }],
            partitions: vec![
                PartitionLag {
                    topic: "t".into(),
                    partition: 0,
                    committed_offset: 5,
                    log_end_offset: 12,
                    lag: 7,
                    member_id: "m1".into(),
                    ..Default::default()
                },
                PartitionLag {
                    topic: "t".into(),
                    partition: 1,
                    committed_offset: -1,
                    log_end_offset: 3,
                    lag: -1,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let d = GroupDescription::from(wire);
        assert_eq!(d.total_lag, 7);
        assert_eq!(d.members[0].partitions, vec!["t-0".to_string()]);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["group"], "g");
        assert_eq!(v["state"], "Stable");
        assert_eq!(v["partitions"][0]["lag"], 7);
        assert_eq!(v["partitions"][1]["committed_offset"], serde_json::Value::Null);
        assert_eq!(v["partitions"][1]["member_id"], serde_json::Value::Null);
        let table = d.table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("Group g is Stable with 1 member(s)"), "{table}");
        assert!(lines[2].starts_with("GROUP  TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG"), "{table}");
        assert!(lines[3].split_whitespace().eq(["g", "t", "0", "5", "12", "7", "m1", "10.0.0.1", "cli"]));
        assert!(lines[4].split_whitespace().eq(["g", "t", "1", "-", "3", "-", "-", "-", "-"]));
    }
}
