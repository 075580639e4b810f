//! `vltava partition reassign|reassignments`: moving partition replicas between brokers (Kafka's
//! `kafka-reassign-partitions`, KIP-455).

use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde::Serialize;
use vltava_client::{Admin, PartitionDescription, PartitionReassignment};

use super::ServerArgs;
use crate::output::{Table, print_json, print_text};

/// How often `reassign --wait` asks whether the move is done.
pub const WAIT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Partition commands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum PartitionCommand {
    /// Moves a partition to new replicas, or cancels a move in progress (`--cancel`).
    ///
    /// The new replicas copy the log from the leader and join the ISR; once all of them are in
    /// sync the old replicas are dropped, and leadership moves if the leader is one of them.
    Reassign(ReassignArgs),
    /// Lists the partitions being reassigned.
    Reassignments(ReassignmentsArgs),
}

/// Arguments of `vltava partition reassign`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ReassignArgs {
    /// Topic name.
    #[arg(long)]
    pub topic: String,
    /// Partition index.
    #[arg(long, value_name = "P")]
    pub partition: i32,
    /// The new replica broker ids, comma-separated, preferred leader first (e.g. `2,3,4`).
    #[arg(
        long,
        value_name = "IDS",
        value_delimiter = ',',
        num_args = 1..,
        required_unless_present = "cancel",
        conflicts_with = "cancel"
    )]
    pub replicas: Vec<i32>,
    /// Cancels the reassignment in progress: the partition goes back to its replicas from before.
    #[arg(long)]
    pub cancel: bool,
    /// Waits until the move completes, then prints the final replicas and ISR.
    #[arg(long, conflicts_with = "cancel")]
    pub wait: bool,
    /// How long `--wait` waits (e.g. `90s`, `5m`).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration, requires = "wait")]
    pub timeout: Duration,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Arguments of `vltava partition reassignments`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ReassignmentsArgs {
    /// Print one JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Runs a partition command.
pub async fn run(command: PartitionCommand) -> anyhow::Result<()> {
    match command {
        PartitionCommand::Reassign(args) => reassign(args).await,
        PartitionCommand::Reassignments(args) => reassignments(args).await,
    }
}

async fn reassign(args: ReassignArgs) -> anyhow::Result<()> {
    let admin = Admin::connect(&args.server.server).await?;
    let name = format!("{}-{}", args.topic, args.partition);
    if args.cancel {
        let p = admin.cancel_reassignment(&args.topic, args.partition).await?;
        return print_text(&format!("Cancelled the reassignment of {name}: {}.\n", state_text(&p)));
    }
    let p = admin.reassign_partition(&args.topic, args.partition, args.replicas.clone()).await?;
    if !args.wait || !is_reassigning(&p) {
        return print_text(&started_text(&name, &p));
    }
    eprintln!("{}", started_text(&name, &p).trim_end());
    let started_epoch = p.partition_epoch;
    let deadline = Instant::now() + args.timeout;
    let p = loop {
        let pending = admin.list_reassignments().await?;
        let mine = pending.iter().find(|r| r.topic == args.topic && r.partition == args.partition);
        if mine.is_none() {
            // Confirm with the partition itself: the answering server's view may be a moment
            // behind (not yet showing the move, or still showing it).
            let topic = admin.describe_topic(&args.topic).await?;
            let p = topic
                .partitions
                .into_iter()
                .find(|p| p.partition == args.partition)
                .ok_or_else(|| anyhow::anyhow!("{name} disappeared while being reassigned"))?;
            if p.partition_epoch > started_epoch && !is_reassigning(&p) {
                break p;
            }
        }
        if Instant::now() >= deadline {
            let still = mine.map_or_else(String::new, |r| {
                format!(": still adding {} (ISR {})", or_none(&r.adding_replicas), join_ids(&r.isr))
            });
            anyhow::bail!(
                "the reassignment of {name} did not complete within {}{still}",
                humantime::format_duration(args.timeout)
            );
        }
        tokio::time::sleep(WAIT_POLL_INTERVAL).await;
    };
    if p.replicas != args.replicas {
        anyhow::bail!(
            "the reassignment of {name} ended without reaching replicas {} (was it cancelled or replaced?): {}",
            join_ids(&args.replicas),
            state_text(&p)
        );
    }
    print_text(&format!("Reassignment of {name} complete: {}.\n", state_text(&p)))
}

async fn reassignments(args: ReassignmentsArgs) -> anyhow::Result<()> {
    let admin = Admin::connect(&args.server.server).await?;
    let list = admin.list_reassignments().await?;
    if args.json {
        let json: Vec<ReassignmentJson<'_>> = list.iter().map(ReassignmentJson::from).collect();
        print_json(&json)
    } else {
        print_text(&reassignments_table(&list))
    }
}

fn is_reassigning(p: &PartitionDescription) -> bool {
    !p.adding_replicas.is_empty() || !p.removing_replicas.is_empty()
}

/// What `reassign` prints after starting a move.
pub fn started_text(name: &str, p: &PartitionDescription) -> String {
    if is_reassigning(p) {
        format!(
            "Reassignment of {name} started: replicas {} (adding {}, removing {}), ISR {}.\n",
            join_ids(&p.replicas),
            or_none(&p.adding_replicas),
            or_none(&p.removing_replicas),
            join_ids(&p.isr)
        )
    } else {
        format!("Reassignment of {name} complete: {}.\n", state_text(p))
    }
}

/// `replicas 2,3,4, ISR 2,3,4, leader 2`.
fn state_text(p: &PartitionDescription) -> String {
    format!("replicas {}, ISR {}, leader {}", join_ids(&p.replicas), join_ids(&p.isr), p.leader)
}

/// The table `partition reassignments` prints.
pub fn reassignments_table(list: &[PartitionReassignment]) -> String {
    let mut table = Table::new(["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING", "ISR", "LEADER"]);
    for r in list {
        table.row([
            r.topic.clone(),
            r.partition.to_string(),
            join_ids(&r.replicas),
            or_none(&r.adding_replicas),
            or_none(&r.removing_replicas),
            join_ids(&r.isr),
            r.leader.to_string(),
        ]);
    }
    table.render()
}

/// One partition of `partition reassignments --json`.
#[derive(Debug, Serialize)]
pub struct ReassignmentJson<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Partition index.
    pub partition: i32,
    /// Every replica during the move: target first, then those being removed.
    pub replicas: &'a [i32],
    /// Replicas being added.
    pub adding_replicas: &'a [i32],
    /// Replicas being removed.
    pub removing_replicas: &'a [i32],
    /// In-sync replicas.
    pub isr: &'a [i32],
    /// Leader broker id, -1 when none.
    pub leader: i32,
}

impl<'a> From<&'a PartitionReassignment> for ReassignmentJson<'a> {
    fn from(r: &'a PartitionReassignment) -> Self {
        ReassignmentJson {
            topic: &r.topic,
            partition: r.partition,
            replicas: &r.replicas,
            adding_replicas: &r.adding_replicas,
            removing_replicas: &r.removing_replicas,
            isr: &r.isr,
            leader: r.leader,
        }
    }
}

fn join_ids(ids: &[i32]) -> String {
    let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
    ids.join(",")
}

fn or_none(ids: &[i32]) -> String {
    if ids.is_empty() { "-".into() } else { join_ids(ids) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moving() -> PartitionReassignment {
        PartitionReassignment {
            topic: "orders".into(),
            partition: 2,
            replicas: vec![3, 4, 1],
            adding_replicas: vec![4],
            removing_replicas: vec![1],
            isr: vec![1, 3],
            leader: 1,
        }
    }

    #[test]
    fn reassignments_table_and_json() {
        let table = reassignments_table(&[moving()]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].split_whitespace().eq([
            "TOPIC",
            "PARTITION",
            "REPLICAS",
            "ADDING",
            "REMOVING",
            "ISR",
            "LEADER"
        ]));
        assert!(lines[1].split_whitespace().eq(["orders", "2", "3,4,1", "4", "1", "1,3", "1"]));
        let list = [moving()];
        let json: Vec<ReassignmentJson<'_>> = list.iter().map(ReassignmentJson::from).collect();
        assert_eq!(
            serde_json::to_string(&json).unwrap(),
            r#"[{"topic":"orders","partition":2,"replicas":[3,4,1],"adding_replicas":[4],"removing_replicas":[1],"isr":[1,3],"leader":1}]"#
        );
        assert_eq!(reassignments_table(&[]), "TOPIC  PARTITION  REPLICAS  ADDING  REMOVING  ISR  LEADER\n");
    }

    #[test]
    fn started_text_tells_a_move_in_progress_from_a_completed_one() {
        let mut p = PartitionDescription {
            partition: 0,
            leader: 1,
            replicas: vec![2, 1],
            isr: vec![1],
            adding_replicas: vec![2],
            removing_replicas: vec![1],
            ..Default::default()
        };
        assert_eq!(
            started_text("t-0", &p),
            "Reassignment of t-0 started: replicas 2,1 (adding 2, removing 1), ISR 1.\n"
        );
        p.replicas = vec![1];
        p.adding_replicas.clear();
        p.removing_replicas.clear();
        assert_eq!(started_text("t-0", &p), "Reassignment of t-0 complete: replicas 1, ISR 1, leader 1.\n");
    }
}
