//! `vltava group list|describe|reset-offsets|delete`: consumer groups (`describe` and
//! `reset-offsets` have their own modules).

use clap::{Args, Subcommand};
use vltava_client::Admin;

use super::ServerArgs;
use crate::output::{print_json, print_text};

/// Consumer groups.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum GroupCommand {
    /// Lists the groups that have members or committed offsets.
    List(ListArgs),
    /// Shows a group's state, its members and, per partition, the owner, committed offset, log
    /// end offset and lag.
    Describe(super::group_describe::DescribeArgs),
    /// Moves a group's committed offsets (the group must have no members); shows the new
    /// offsets, and stores them with `--execute`.
    ResetOffsets(super::group_reset::ResetArgs),
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

/// Runs a group command.
pub async fn run(command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List(args) => list(args).await,
        GroupCommand::Describe(args) => super::group_describe::run(args).await,
        GroupCommand::ResetOffsets(args) => super::group_reset::run(args).await,
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
