//! The command line: `vltava <COMMAND> ...`, parsed with clap.

use clap::{Parser, Subcommand};

use crate::commands::consume::ConsumeArgs;
use crate::commands::group::GroupCommand;
use crate::commands::perf::PerfCommand;
use crate::commands::produce::ProduceArgs;
use crate::commands::topic::TopicCommand;
use crate::dev::DevArgs;

/// Vltava: a Kafka-like event-streaming platform with gRPC APIs.
///
/// Client commands connect to `--server` (env `VLTAVA_SERVER`, default 127.0.0.1:7070). Errors
/// are printed as one line on stderr and exit with status 1.
#[derive(Debug, Parser)]
#[command(name = "vltava", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Every `vltava` command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a single-node server (metadata service and broker) for development.
    Dev(DevArgs),
    /// Runs the stateless client-facing gateway in front of the brokers.
    Gateway(crate::gateway::GatewayArgs),
    /// Runs one controller of the quorum, or adds/removes a voter.
    Controller(crate::controller::ControllerArgs),
    /// Runs one broker of a cluster.
    Broker(crate::broker::BrokerArgs),
    /// Runs a whole cluster (controllers, brokers, gateway) as local processes.
    LocalCluster(crate::local_cluster::LocalClusterArgs),
    /// Describes the controller quorum and the brokers.
    #[command(subcommand)]
    Cluster(crate::commands::cluster::ClusterCommand),
    /// Creates, lists, describes and deletes topics.
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Moves partition replicas between brokers and lists the moves in progress.
    #[command(subcommand)]
    Partition(crate::commands::partition::PartitionCommand),
    /// Sends one record per stdin line to a topic.
    Produce(ProduceArgs),
    /// Prints a topic's records to stdout.
    Consume(ConsumeArgs),
    /// Lists consumer groups and shows their offsets and lag.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Measures produce or consume throughput and latency.
    #[command(subcommand)]
    Perf(PerfCommand),
}

impl Command {
    /// Whether this is a client command (as opposed to the `dev` server).
    pub fn is_client(&self) -> bool {
        match self {
            Command::Dev(_) | Command::Gateway(_) | Command::Broker(_) | Command::LocalCluster(_) => false,
            Command::Controller(args) => args.action.is_some(),
            _ => true,
        }
    }
}

/// Runs a client or server command.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Dev(args) => crate::dev::run(args).await,
        Command::Gateway(args) => crate::gateway::run(args).await,
        Command::Controller(args) => crate::controller::run(args).await,
        Command::Broker(args) => crate::broker::run(args).await,
        Command::LocalCluster(args) => crate::local_cluster::run(args).await,
        Command::Cluster(c) => crate::commands::cluster::run(c).await,
        Command::Topic(c) => crate::commands::topic::run(c).await,
        Command::Partition(c) => crate::commands::partition::run(c).await,
        Command::Produce(args) => crate::commands::produce::run(args).await,
        Command::Consume(args) => crate::commands::consume::run(args).await,
        Command::Group(c) => crate::commands::group::run(c).await,
        Command::Perf(c) => crate::commands::perf::run(c).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use vltava_client::{Acks, Compression};

    use super::*;
    use crate::commands::consume::StartOffset;
    use crate::commands::partition::{PartitionCommand, ReassignArgs, ReassignmentsArgs};
    use crate::commands::topic::TopicCommand;
    use crate::commands::{DEFAULT_SERVER, ServerArgs, group, topic};

    fn parse(args: &[&str]) -> Command {
        let argv = std::iter::once("vltava").chain(args.iter().copied());
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli.command,
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    fn parse_err(args: &[&str]) -> String {
        let argv = std::iter::once("vltava").chain(args.iter().copied());
        Cli::try_parse_from(argv).expect_err("should not parse").to_string()
    }

    fn topic_cmd(args: &[&str]) -> TopicCommand {
        match parse(args) {
            Command::Topic(c) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn group_cmd(args: &[&str]) -> GroupCommand {
        match parse(args) {
            Command::Group(c) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn perf_cmd(args: &[&str]) -> PerfCommand {
        match parse(args) {
            Command::Perf(c) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    /// The server when no `--server` is given (`VLTAVA_SERVER` wins over the default if set).
    fn default_server() -> String {
        std::env::var("VLTAVA_SERVER").unwrap_or_else(|_| DEFAULT_SERVER.to_string())
    }

    fn server(addr: &str) -> ServerArgs {
        ServerArgs { server: addr.to_string() }
    }

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_client_command_takes_server_with_env_and_default() {
        let cmd = Cli::command();
        let leaves: &[&[&str]] = &[
            &["topic", "create"],
            &["topic", "list"],
            &["topic", "describe"],
            &["topic", "delete"],
            &["partition", "reassign"],
            &["partition", "reassignments"],
            &["produce"],
            &["consume"],
            &["group", "list"],
            &["group", "describe"],
            &["perf", "produce"],
            &["perf", "consume"],
            &["perf", "metadata"],
        ];
        for path in leaves {
            let mut sub = &cmd;
            for name in *path {
                sub = sub.find_subcommand(name).unwrap_or_else(|| panic!("no {path:?}"));
            }
            let arg = sub.get_arguments().find(|a| a.get_id() == "server").unwrap_or_else(|| panic!("{path:?}"));
            assert_eq!(arg.get_long(), Some("server"), "{path:?}");
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some("VLTAVA_SERVER"), "{path:?}");
            assert_eq!(arg.get_default_values(), ["127.0.0.1:7070"], "{path:?}");
        }
    }

    #[test]
    fn topic_create_with_defaults_and_configs() {
        let Command::Topic(TopicCommand::Create(a)) = parse(&["topic", "create", "orders", "--partitions", "3"]) else {
            panic!("not topic create")
        };
        assert_eq!(a.name, "orders");
        assert_eq!(a.partitions, 3);
        assert_eq!(a.replication_factor, None);
        assert!(a.configs.is_empty());
        assert_eq!(a.server.server, default_server());

        let Command::Topic(TopicCommand::Create(a)) = parse(&[
            "topic",
            "create",
            "orders",
            "--partitions",
            "6",
            "--replication-factor",
            "3",
            "--config",
            "retention.ms=1000",
            "--config",
            "cleanup.policy=delete",
            "--server",
            "10.0.0.1:9000",
        ]) else {
            panic!("not topic create")
        };
        assert_eq!(a.replication_factor, Some(3));
        assert_eq!(a.configs, vec![("retention.ms".into(), "1000".into()), ("cleanup.policy".into(), "delete".into())]);
        assert_eq!(a.server, server("10.0.0.1:9000"));
    }

    #[test]
    fn topic_create_rejects_bad_configs_and_missing_partitions() {
        assert!(parse_err(&["topic", "create", "t", "--partitions", "1", "--config", "nokey"]).contains("KEY=VALUE"));
        assert!(parse_err(&["topic", "create", "t", "--partitions", "1", "--config", "=v"]).contains("key is empty"));
        assert!(parse_err(&["topic", "create", "t"]).contains("--partitions"));
        assert!(parse_err(&["topic", "create", "t", "--partitions", "x"]).contains("invalid value"));
    }

    #[test]
    fn topic_list_describe_delete() {
        assert_eq!(
            topic_cmd(&["topic", "list"]),
            TopicCommand::List(topic::ListArgs { json: false, server: server(&default_server()) })
        );
        assert_eq!(
            topic_cmd(&["topic", "list", "--json", "--server", "h:1"]),
            TopicCommand::List(topic::ListArgs { json: true, server: server("h:1") })
        );
        assert_eq!(
            topic_cmd(&["topic", "describe", "t", "--json"]),
            TopicCommand::Describe(topic::DescribeArgs {
                name: "t".into(),
                json: true,
                server: server(&default_server())
            })
        );
        assert_eq!(
            topic_cmd(&["topic", "delete", "t"]),
            TopicCommand::Delete(topic::DeleteArgs { name: "t".into(), server: server(&default_server()) })
        );
        assert!(parse_err(&["topic", "describe"]).contains("<NAME>"));
    }

    fn partition_cmd(args: &[&str]) -> PartitionCommand {
        match parse(args) {
            Command::Partition(c) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn partition_reassign_start_wait_and_cancel() {
        let start = ReassignArgs {
            topic: "t".into(),
            partition: 1,
            replicas: vec![2, 3, 4],
            cancel: false,
            wait: false,
            timeout: std::time::Duration::from_secs(60),
            server: server(&default_server()),
        };
        assert_eq!(
            partition_cmd(&["partition", "reassign", "--topic", "t", "--partition", "1", "--replicas", "2,3,4"]),
            PartitionCommand::Reassign(start.clone())
        );
        assert_eq!(
            partition_cmd(&[
                "partition",
                "reassign",
                "--topic",
                "t",
                "--partition",
                "1",
                "--replicas",
                "2,3,4",
                "--wait",
                "--timeout",
                "90s",
                "--server",
                "h:1",
            ]),
            PartitionCommand::Reassign(ReassignArgs {
                wait: true,
                timeout: std::time::Duration::from_secs(90),
                server: server("h:1"),
                ..start.clone()
            })
        );
        assert_eq!(
            partition_cmd(&["partition", "reassign", "--cancel", "--topic", "t", "--partition", "1"]),
            PartitionCommand::Reassign(ReassignArgs { replicas: vec![], cancel: true, ..start })
        );
        let base = ["partition", "reassign", "--topic", "t", "--partition", "1"];
        let with = |extra: &[&str]| parse_err(&[&base[..], extra].concat());
        assert!(with(&[]).contains("--replicas"), "replicas or --cancel is required");
        assert!(with(&["--cancel", "--replicas", "1"]).contains("cannot be used with"));
        assert!(with(&["--cancel", "--wait"]).contains("cannot be used with"));
        assert!(with(&["--replicas", "1", "--timeout", "5s"]).contains("--wait"));
        assert!(with(&["--replicas", "1,x"]).contains("invalid value"));
        assert!(with(&["--replicas", "1", "--wait", "--timeout", "soon"]).contains("invalid value"));
        assert!(parse_err(&["partition", "reassign", "--partition", "1", "--replicas", "1"]).contains("--topic"));
    }

    #[test]
    fn partition_reassignments() {
        assert_eq!(
            partition_cmd(&["partition", "reassignments"]),
            PartitionCommand::Reassignments(ReassignmentsArgs { json: false, server: server(&default_server()) })
        );
        assert_eq!(
            partition_cmd(&["partition", "reassignments", "--json", "--server", "h:2"]),
            PartitionCommand::Reassignments(ReassignmentsArgs { json: true, server: server("h:2") })
        );
    }

    #[test]
    fn produce_defaults_and_options() {
        let Command::Produce(a) = parse(&["produce", "t"]) else { panic!("not produce") };
        assert_eq!(a.topic, "t");
        assert_eq!(a.key_separator, None);
        assert_eq!(a.acks, Acks::All);
        assert_eq!(a.partition, None);
        assert_eq!(a.compression, Compression::None);
        assert_eq!(a.server.server, default_server());

        let Command::Produce(a) = parse(&[
            "produce",
            "t",
            "--key-separator",
            ":",
            "--acks",
            "1",
            "--partition",
            "2",
            "--compression",
            "zstd",
        ]) else {
            panic!("not produce")
        };
        assert_eq!(a.key_separator.as_deref(), Some(":"));
        assert_eq!((a.acks, a.partition, a.compression), (Acks::Leader, Some(2), Compression::Zstd));
        let Command::Produce(a) = parse(&["produce", "t", "--acks", "0"]) else { panic!("not produce") };
        assert_eq!(a.acks, Acks::None);
        let Command::Produce(a) = parse(&["produce", "t", "--acks=-1"]) else { panic!("not produce") };
        assert_eq!(a.acks, Acks::All);
        assert!(parse_err(&["produce", "t", "--acks", "2"]).contains("acks"));
        assert!(parse_err(&["produce", "t", "--compression", "brotli"]).contains("compression"));
        assert!(parse_err(&["produce"]).contains("<TOPIC>"));
    }

    #[test]
    fn consume_defaults_and_options() {
        let Command::Consume(a) = parse(&["consume", "t"]) else { panic!("not consume") };
        assert_eq!(a.topic, "t");
        assert_eq!((a.group, a.from_beginning, a.partition, a.offset), (None, false, None, None));
        assert_eq!((a.max_messages, a.timeout_ms), (None, None));
        assert!(!a.print_key && !a.print_offset && !a.json);
        assert_eq!(a.server.server, default_server());

        let Command::Consume(a) = parse(&[
            "consume",
            "t",
            "--group",
            "g",
            "--from-beginning",
            "--max-messages",
            "10",
            "--timeout-ms",
            "500",
            "--print-key",
            "--print-offset",
            "--json",
        ]) else {
            panic!("not consume")
        };
        assert_eq!(a.group.as_deref(), Some("g"));
        assert!(a.from_beginning && a.print_key && a.print_offset && a.json);
        assert_eq!((a.max_messages, a.timeout_ms), (Some(10), Some(500)));

        let Command::Consume(a) = parse(&["consume", "t", "--partition", "1", "--offset", "42"]) else {
            panic!("not consume")
        };
        assert_eq!((a.partition, a.offset), (Some(1), Some(StartOffset::At(42))));
        let Command::Consume(a) = parse(&["consume", "t", "--partition", "0", "--offset", "earliest"]) else {
            panic!("not consume")
        };
        assert_eq!(a.offset, Some(StartOffset::Earliest));
    }

    #[test]
    fn consume_offset_needs_a_partition_and_excludes_from_beginning() {
        assert!(parse_err(&["consume", "t", "--offset", "5"]).contains("--partition"));
        assert!(
            parse_err(&["consume", "t", "--partition", "0", "--offset", "5", "--from-beginning"])
                .contains("cannot be used with")
        );
        assert!(parse_err(&["consume", "t", "--partition", "0", "--offset", "x"]).contains("invalid offset"));
        assert!(!parse_err(&["consume", "t", "--max-messages", "-1"]).is_empty());
    }

    #[test]
    fn group_list_and_describe() {
        assert_eq!(
            group_cmd(&["group", "list"]),
            GroupCommand::List(group::ListArgs { json: false, server: server(&default_server()) })
        );
        assert_eq!(
            group_cmd(&["group", "describe", "g", "--json", "--server", "h:2"]),
            GroupCommand::Describe(crate::commands::group_describe::DescribeArgs {
                group: "g".into(),
                json: true,
                server: server("h:2")
            })
        );
        let GroupCommand::ResetOffsets(reset) =
            group_cmd(&["group", "reset-offsets", "g", "--topic", "t:0,1", "--shift-by", "-2", "--execute"])
        else {
            panic!("not reset-offsets")
        };
        assert_eq!((reset.topic.as_str(), reset.to.shift_by, reset.execute), ("t:0,1", Some(-2), true));
        assert!(!reset.to.to_earliest && !reset.json);
        assert!(parse_err(&["group", "reset-offsets", "g", "--topic", "t"]).contains("--to-earliest"));
        assert!(
            parse_err(&["group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"])
                .contains("cannot be used")
        );
    }

    #[test]
    fn perf_produce_defaults_and_options() {
        let Command::Perf(PerfCommand::Produce(a)) =
            parse(&["perf", "produce", "--topic", "t", "--num-records", "1000", "--record-size", "100"])
        else {
            panic!("not perf produce")
        };
        assert_eq!((a.topic.as_str(), a.num_records, a.record_size), ("t", 1000, 100));
        assert_eq!(a.acks, Acks::All);
        assert_eq!(a.throughput, -1.0);
        assert_eq!((a.batch_size, a.linger_ms), (None, None));
        assert_eq!(a.compression, Compression::None);
        assert!(!a.json);
        assert_eq!(a.server.server, default_server());

        let Command::Perf(PerfCommand::Produce(a)) = parse(&[
            "perf",
            "produce",
            "--topic",
            "t",
            "--num-records",
            "5",
            "--record-size",
            "1",
            "--acks",
            "0",
            "--throughput",
            "-1",
            "--batch-size",
            "65536",
            "--linger-ms",
            "20",
            "--compression",
            "lz4",
            "--json",
        ]) else {
            panic!("not perf produce")
        };
        assert_eq!((a.acks, a.throughput, a.batch_size, a.linger_ms), (Acks::None, -1.0, Some(65536), Some(20)));
        assert_eq!(a.compression, Compression::Lz4);
        assert!(a.json);
        let Command::Perf(PerfCommand::Produce(a)) = parse(&[
            "perf",
            "produce",
            "--topic",
            "t",
            "--num-records",
            "5",
            "--record-size",
            "1",
            "--throughput",
            "500",
        ]) else {
            panic!("not perf produce")
        };
        assert_eq!(a.throughput, 500.0);
        assert!(parse_err(&["perf", "produce", "--topic", "t", "--record-size", "1"]).contains("--num-records"));
    }

    #[test]
    fn perf_consume_defaults_and_options() {
        assert_eq!(
            perf_cmd(&["perf", "consume", "--topic", "t", "--num-records", "10"]),
            PerfCommand::Consume(crate::commands::perf_consume::PerfConsumeArgs {
                topic: "t".into(),
                num_records: 10,
                timeout_ms: 10_000,
                json: false,
                via_gateway: false,
                server: server(&default_server()),
            })
        );
        let Command::Perf(PerfCommand::Consume(a)) =
            parse(&["perf", "consume", "--topic", "t", "--num-records", "10", "--json", "--timeout-ms", "50"])
        else {
            panic!("not perf consume")
        };
        assert!(a.json);
        assert_eq!(a.timeout_ms, 50);
        assert_eq!(crate::commands::perf_stats::REPORT_INTERVAL, std::time::Duration::from_secs(5));
    }

    #[test]
    fn perf_metadata_defaults_and_options() {
        use crate::commands::perf::perf_metadata::PerfMetadataArgs;
        assert_eq!(
            perf_cmd(&["perf", "metadata", "--topics", "2000", "--concurrency", "16"]),
            PerfCommand::Metadata(PerfMetadataArgs {
                topics: 2000,
                concurrency: 16,
                partitions: 1,
                replication_factor: None,
                keep: false,
                json: false,
                server: server(&default_server()),
            })
        );
        assert_eq!(
            perf_cmd(&[
                "perf",
                "metadata",
                "--topics",
                "100",
                "--concurrency",
                "1",
                "--partitions",
                "100",
                "--replication-factor",
                "3",
                "--keep",
                "--json",
                "--server",
                "h:1",
            ]),
            PerfCommand::Metadata(PerfMetadataArgs {
                topics: 100,
                concurrency: 1,
                partitions: 100,
                replication_factor: Some(3),
                keep: true,
                json: true,
                server: server("h:1"),
            })
        );
        assert!(parse_err(&["perf", "metadata", "--concurrency", "1"]).contains("--topics"));
        assert!(parse_err(&["perf", "metadata", "--topics", "1"]).contains("--concurrency"));
        for bad in [
            &["--topics", "0", "--concurrency", "1"][..],
            &["--topics", "1", "--concurrency", "0"],
            &["--topics", "1", "--concurrency", "1", "--partitions", "0"],
            &["--topics", "1", "--concurrency", "1", "--replication-factor", "0"],
            &["--topics", "x", "--concurrency", "1"],
        ] {
            let args: Vec<&str> = ["perf", "metadata"].into_iter().chain(bad.iter().copied()).collect();
            assert!(parse_err(&args).contains("invalid value"), "{bad:?}");
        }
    }

    #[test]
    fn dev_is_wired() {
        let Command::Dev(a) = parse(&["dev"]) else { panic!("not dev") };
        assert_eq!(a.listen.to_string(), "127.0.0.1:7070");
        assert!(!Command::Dev(a).is_client());
        assert!(parse(&["topic", "list"]).is_client());
    }
}
