//! `vltava topic create|list|describe|delete`.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use serde::Serialize;
use vltava_client::{Admin, NewTopic, PartitionDescription, TopicDescription, TopicSummary};

use super::ServerArgs;
use crate::output::{Table, print_json, print_text};

/// Topic administration.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum TopicCommand {
    /// Creates a topic.
    Create(CreateArgs),
    /// Lists every topic.
    List(ListArgs),
    /// Describes a topic: its configuration and each partition's leader, replicas, ISR and offsets.
    Describe(DescribeArgs),
    /// Deletes a topic and all of its data.
    Delete(DeleteArgs),
    /// Adds partitions and changes per-topic configuration.
    Alter(AlterArgs),
}

/// Arguments of `vltava topic alter`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AlterArgs {
    /// Topic name.
    pub name: String,
    /// The new partition count (it can only grow; keyed records may map to other partitions after).
    #[arg(long, value_name = "N")]
    pub partitions: Option<i32>,
    /// Sets a configuration key by Kafka's name (e.g. `retention.ms=60000`); repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_config_pair)]
    pub configs: Vec<(String, String)>,
    /// Removes a configuration key (back to the broker default); repeatable.
    #[arg(long = "delete-config", value_name = "KEY")]
    pub delete_configs: Vec<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Arguments of `vltava topic create`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct CreateArgs {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    #[arg(long, value_name = "N")]
    pub partitions: i32,
    /// Replicas per partition (default: the server's default).
    #[arg(long, value_name = "R")]
    pub replication_factor: Option<i32>,
    /// A topic configuration override, by Kafka's name (e.g. `retention.ms=60000`); repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_config_pair)]
    pub configs: Vec<(String, String)>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Arguments of `vltava topic list`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ListArgs {
    /// Print one JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Arguments of `vltava topic describe`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DescribeArgs {
    /// Topic name.
    pub name: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Arguments of `vltava topic delete`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DeleteArgs {
    /// Topic name.
    pub name: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Parses one `--config key=value` (the value may contain `=`; the key may not be empty).
pub fn parse_config_pair(s: &str) -> Result<(String, String), String> {
    let Some((key, value)) = s.split_once('=') else {
        return Err(format!("invalid config {s:?}: expected KEY=VALUE"));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("invalid config {s:?}: the key is empty"));
    }
    Ok((key.to_string(), value.to_string()))
}

/// Collects `--config` pairs into a map, rejecting a key given twice.
pub fn configs_to_map(pairs: &[(String, String)]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (key, value) in pairs {
        if map.insert(key.clone(), value.clone()).is_some() {
            anyhow::bail!("config {key:?} is given more than once");
        }
    }
    Ok(map)
}

/// Runs a topic command.
pub async fn run(command: TopicCommand) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create(args) => create(args).await,
        TopicCommand::List(args) => list(args).await,
        TopicCommand::Describe(args) => describe(args).await,
        TopicCommand::Delete(args) => delete(args).await,
        TopicCommand::Alter(args) => alter(args).await,
    }
}

async fn alter(args: AlterArgs) -> anyhow::Result<()> {
    if args.partitions.is_none() && args.configs.is_empty() && args.delete_configs.is_empty() {
        anyhow::bail!("nothing to alter: give --partitions, --config or --delete-config");
    }
    let set = configs_to_map(&args.configs)?;
    let admin = Admin::connect(&args.server.server).await?;
    let mut out = String::new();
    if let Some(total) = args.partitions {
        let t = admin.create_partitions(&args.name, total).await?;
        out.push_str(&format!("Topic {} now has {} partitions.\n", t.name, t.partitions.len()));
    }
    if !set.is_empty() || !args.delete_configs.is_empty() {
        let t = admin.alter_configs(&args.name, set.into_iter().collect(), args.delete_configs.clone()).await?;
        let configs: BTreeMap<_, _> = t.configs.iter().collect();
        let shown: Vec<String> = configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!(
            "Topic {} configuration: {}.\n",
            t.name,
            if shown.is_empty() { "defaults".into() } else { shown.join(", ") }
        ));
    }
    print_text(&out)
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let configs = configs_to_map(&args.configs)?;
    let admin = Admin::connect(&args.server.server).await?;
    let topic = NewTopic {
        name: args.name.clone(),
        partitions: args.partitions,
        replication_factor: args.replication_factor.unwrap_or(0),
        configs,
    };
    let created = admin.create_topic(topic).await?;
    print_text(&format!("Created topic {}.\n", created.name))
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let admin = Admin::connect(&args.server.server).await?;
    let topics = admin.list_topics().await?;
    if args.json {
        let json: Vec<TopicSummaryJson<'_>> = topics.iter().map(TopicSummaryJson::from).collect();
        print_json(&json)
    } else {
        print_text(&topic_table(&topics))
    }
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let admin = Admin::connect(&args.server.server).await?;
    let topic = admin.describe_topic(&args.name).await?;
    if args.json { print_json(&TopicJson::from(&topic)) } else { print_text(&describe_text(&topic)) }
}

async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let admin = Admin::connect(&args.server.server).await?;
    admin.delete_topic(&args.name).await?;
    print_text(&format!("Deleted topic {}.\n", args.name))
}

/// One topic of `topic list --json`.
#[derive(Debug, Serialize)]
pub struct TopicSummaryJson<'a> {
    /// Topic name.
    pub name: &'a str,
    /// Topic id (a UUID).
    pub topic_id: &'a str,
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i32,
}

impl<'a> From<&'a TopicSummary> for TopicSummaryJson<'a> {
    fn from(t: &'a TopicSummary) -> Self {
        TopicSummaryJson {
            name: &t.name,
            topic_id: &t.topic_id,
            partitions: t.partitions,
            replication_factor: t.replication_factor,
        }
    }
}

/// The document `topic describe --json` prints.
#[derive(Debug, Serialize)]
pub struct TopicJson<'a> {
    /// Topic name.
    pub name: &'a str,
    /// Topic id (a UUID).
    pub topic_id: &'a str,
    /// Number of partitions.
    pub partition_count: usize,
    /// Replicas of the first partition.
    pub replication_factor: usize,
    /// Configuration overrides, sorted by key.
    pub configs: BTreeMap<&'a str, &'a str>,
    /// Partitions, by index.
    pub partitions: Vec<PartitionJson<'a>>,
}

/// One partition in [`TopicJson`].
#[derive(Debug, Serialize)]
pub struct PartitionJson<'a> {
    /// Partition index.
    pub partition: i32,
    /// Leader broker id, -1 when none.
    pub leader: i32,
    /// Replica broker ids.
    pub replicas: &'a [i32],
    /// In-sync replica broker ids.
    pub isr: &'a [i32],
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Partition epoch (bumped at every change of the partition).
    pub partition_epoch: i32,
    /// First offset in the log (-1 when unknown).
    pub log_start_offset: i64,
    /// Next offset to be written (-1 when unknown).
    pub log_end_offset: i64,
    /// High watermark (-1 when unknown).
    pub high_watermark: i64,
    /// Dirty ratio of a compacted partition (-1 when not compacted or unknown).
    pub dirty_ratio: f64,
    /// Replicas a reassignment in progress is adding (empty when none is).
    pub adding_replicas: &'a [i32],
    /// Replicas a reassignment in progress is removing (empty when none is).
    pub removing_replicas: &'a [i32],
}

impl<'a> From<&'a TopicDescription> for TopicJson<'a> {
    fn from(t: &'a TopicDescription) -> Self {
        let mut partitions: Vec<&PartitionDescription> = t.partitions.iter().collect();
        partitions.sort_by_key(|p| p.partition);
        TopicJson {
            name: &t.name,
            topic_id: &t.topic_id,
            partition_count: t.partitions.len(),
            replication_factor: replication_factor(t),
            configs: t.configs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            partitions: partitions
                .into_iter()
                .map(|p| PartitionJson {
                    partition: p.partition,
                    leader: p.leader,
                    replicas: &p.replicas,
                    isr: &p.isr,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                    log_start_offset: p.log_start_offset,
                    log_end_offset: p.log_end_offset,
                    high_watermark: p.high_watermark,
                    dirty_ratio: p.dirty_ratio,
                    adding_replicas: &p.adding_replicas,
                    removing_replicas: &p.removing_replicas,
                })
                .collect(),
        }
    }
}

/// The largest replica count, not counting replicas a reassignment is removing.
fn replication_factor(t: &TopicDescription) -> usize {
    t.partitions.iter().map(|p| p.replicas.len() - p.removing_replicas.len()).max().unwrap_or(0)
}

/// The table `topic list` prints.
pub fn topic_table(topics: &[TopicSummary]) -> String {
    let mut table = Table::new(["NAME", "PARTITIONS", "REPLICATION-FACTOR", "TOPIC-ID"]);
    for t in topics {
        table.row([t.name.clone(), t.partitions.to_string(), t.replication_factor.to_string(), t.topic_id.clone()]);
    }
    table.render()
}

/// The text `topic describe` prints: a summary line, then a table of partitions.
pub fn describe_text(t: &TopicDescription) -> String {
    let configs: BTreeMap<&str, &str> = t.configs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let configs: Vec<String> = configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut out = format!(
        "Topic: {}  TopicId: {}  PartitionCount: {}  ReplicationFactor: {}  Configs: {}\n",
        t.name,
        t.topic_id,
        t.partitions.len(),
        replication_factor(t),
        configs.join(",")
    );
    let mut partitions: Vec<&PartitionDescription> = t.partitions.iter().collect();
    partitions.sort_by_key(|p| p.partition);
    // A compacted topic also shows how dirty each partition is.
    let compacted = partitions.iter().any(|p| p.dirty_ratio >= 0.0);
    let mut headers = vec![
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "LEADER-EPOCH",
        "LOG-START-OFFSET",
        "LOG-END-OFFSET",
        "HIGH-WATERMARK",
    ];
    if compacted {
        headers.push("DIRTY-RATIO");
    }
    let mut table = Table::new(headers);
    for p in &partitions {
        let mut row = vec![
            p.partition.to_string(),
            p.leader.to_string(),
            join_ids(&p.replicas),
            join_ids(&p.isr),
            p.leader_epoch.to_string(),
            p.log_start_offset.to_string(),
            p.log_end_offset.to_string(),
            p.high_watermark.to_string(),
        ];
        if compacted {
            row.push(if p.dirty_ratio >= 0.0 { format!("{:.2}", p.dirty_ratio) } else { "-".into() });
        }
        table.row(row);
    }
    out.push_str(&table.render());
    for p in partitions.iter().filter(|p| !p.adding_replicas.is_empty() || !p.removing_replicas.is_empty()) {
        out.push_str(&format!(
            "Partition {} is being reassigned: adding [{}], removing [{}].\n",
            p.partition,
            join_ids(&p.adding_replicas),
            join_ids(&p.removing_replicas)
        ));
    }
    out
}

fn join_ids(ids: &[i32]) -> String {
    let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
    ids.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TopicDescription {
        TopicDescription {
            name: "orders".into(),
            topic_id: "id-1".into(),
            partitions: vec![
                PartitionDescription {
                    partition: 1,
                    leader: 2,
                    replicas: vec![2, 1],
                    isr: vec![2],
                    leader_epoch: 3,
                    log_start_offset: 0,
                    log_end_offset: 7,
                    high_watermark: 6,
                    adding_replicas: vec![1],
                    dirty_ratio: -1.0,
                    ..Default::default()
                },
                PartitionDescription {
                    partition: 0,
                    leader: 1,
                    replicas: vec![1, 2],
                    isr: vec![1, 2],
                    leader_epoch: 0,
                    log_start_offset: 5,
                    log_end_offset: 10,
                    high_watermark: 10,
                    dirty_ratio: -1.0,
                    ..Default::default()
                },
            ],
            configs: [("retention.ms".to_string(), "1000".to_string())].into_iter().collect(),
        }
    }

    #[test]
    fn config_pairs_parse_and_reject_garbage() {
        assert_eq!(parse_config_pair("retention.ms=1000"), Ok(("retention.ms".into(), "1000".into())));
        assert_eq!(parse_config_pair("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_config_pair("empty="), Ok(("empty".into(), String::new())));
        assert!(parse_config_pair("novalue").unwrap_err().contains("expected KEY=VALUE"));
        assert!(parse_config_pair("=1").unwrap_err().contains("key is empty"));
        let pairs = vec![("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string())];
        assert_eq!(configs_to_map(&pairs).unwrap().len(), 2);
        let dup = vec![("a".to_string(), "1".to_string()), ("a".to_string(), "2".to_string())];
        assert!(configs_to_map(&dup).unwrap_err().to_string().contains("more than once"));
    }

    #[test]
    fn describe_json_has_every_partition_field_sorted_by_partition() {
        let t = sample();
        let v = serde_json::to_value(TopicJson::from(&t)).unwrap();
        assert_eq!(v["name"], "orders");
        assert_eq!(v["topic_id"], "id-1");
        assert_eq!(v["configs"]["retention.ms"], "1000");
        assert_eq!(v["partition_count"], 2);
        assert_eq!(v["replication_factor"], 2);
        let p0 = &v["partitions"][0];
        assert_eq!(p0["partition"], 0);
        assert_eq!(p0["leader"], 1);
        assert_eq!(p0["replicas"], serde_json::json!([1, 2]));
        assert_eq!(p0["isr"], serde_json::json!([1, 2]));
        assert_eq!(p0["leader_epoch"], 0);
        assert_eq!(p0["partition_epoch"], 0);
        assert_eq!(p0["log_start_offset"], 5);
        assert_eq!(p0["log_end_offset"], 10);
        assert_eq!(p0["high_watermark"], 10);
        assert_eq!(v["partitions"][1]["high_watermark"], 6);
        assert_eq!(v["partitions"][1]["adding_replicas"], serde_json::json!([1]));
        assert_eq!(p0["removing_replicas"], serde_json::json!([]));
    }

    #[test]
    fn describe_text_shows_summary_and_partition_rows() {
        let text = describe_text(&sample());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Topic: orders  TopicId: id-1  PartitionCount: 2  ReplicationFactor: 2  Configs: retention.ms=1000"
        );
        assert!(lines[1].starts_with("PARTITION  LEADER  REPLICAS"));
        assert!(lines[2].split_whitespace().eq(["0", "1", "1,2", "1,2", "0", "5", "10", "10"]));
        assert!(lines[3].split_whitespace().eq(["1", "2", "2,1", "2", "3", "0", "7", "6"]));
        assert_eq!(lines[4], "Partition 1 is being reassigned: adding [1], removing [].");
    }

    #[test]
    fn a_compacted_topic_shows_each_partitions_dirty_ratio() {
        let mut t = sample();
        t.partitions[0].dirty_ratio = 0.256;
        let text = describe_text(&t);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].ends_with("DIRTY-RATIO"), "{text}");
        assert_eq!(lines[3].split_whitespace().last(), Some("0.26"), "{text}");
        assert_eq!(lines[2].split_whitespace().last(), Some("-"), "unknown here: {text}");
    }

    #[test]
    fn list_json_and_table() {
        let topics =
            vec![TopicSummary { name: "t".into(), topic_id: "u".into(), partitions: 3, replication_factor: 1 }];
        let json: Vec<TopicSummaryJson<'_>> = topics.iter().map(TopicSummaryJson::from).collect();
        assert_eq!(
            serde_json::to_string(&json).unwrap(),
            r#"[{"name":"t","topic_id":"u","partitions":3,"replication_factor":1}]"#
        );
        let table = topic_table(&topics);
        assert!(table.lines().nth(1).unwrap().split_whitespace().eq(["t", "3", "1", "u"]));
    }
}
