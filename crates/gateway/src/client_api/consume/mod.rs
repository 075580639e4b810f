//! Consume: one task per stream reads the stream's partitions from their leaders and hands the
//! records to the client, a message of at most `max_records` at a time.
//!
//! Flow control: the task sends through a channel of capacity 1 and fetches again only once the
//! previous fetch's records were all taken, so a client that stops reading (HTTP/2 flow control
//! stops tonic from taking messages) stops the fetching too; the gateway holds at most one fetch
//! (`max_bytes`) per stream. The task ends when the client hangs up.
//!
//! Each fetch long-polls the leaders for up to `POLL_WAIT_MS`. Transient errors (leader changes,
//! unreachable brokers, a topic being re-created) back the partition off, growing from the
//! gateway's `retry_backoff` to `MAX_BACKOFF`, with a metadata refresh; `OFFSET_OUT_OF_RANGE`
//! moves the partition to `auto_offset_reset` (as Kafka consumers do); any other error ends the
//! stream with that error.
//!
//! A managed subscription (a `group_id`) is a member of the broker-side consumer group (see
//! [`Membership`]) and reads what the group's coordinator assigns it: it sends an `Assignment`
//! first and after every change, stops reading (and, with `auto_commit`, commits, then
//! releases) revoked partitions, and starts newly assigned ones from the group's committed
//! offset, else `auto_offset_reset`. With `auto_commit` it commits its delivered positions
//! (the offset after the last record handed to the stream) every `auto_commit_interval_ms`, on
//! revocation and when the stream ends. "Delivered" means handed to gRPC: records still in flight
//! when a client hangs up count as delivered, as records returned by a Kafka consumer's `poll` do.
//!
//! # Layout
//! - here: [`start`], which checks the call and starts the stream's task.
//! - `validate`: the request's checks and the stream's `Settings`.
//! - `stream`: the task (`StreamTask`): following the topic and the group, fetching, delivering.
//! - `position`: where each partition reads, and its backoff.
//! - `commit`: group offsets: where claimed partitions start, and auto-commit.

mod commit;
mod position;
mod stream;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::{ConsumeRequest, ConsumeResponse};

use self::position::{PartitionState, Start};
use self::stream::{Exit, StreamTask};
use self::validate::Settings;
use super::membership::Membership;
use super::topic;
use crate::brokers::Brokers;

/// The stream of a Consume call.
pub type ConsumeStream = ReceiverStream<Result<ConsumeResponse, Status>>;

/// Checks the request, joins the group (managed subscriptions) and starts the stream's task.
/// An unknown topic, or an explicit partition it does not have, fails the call.
pub(super) async fn start(
    brokers: Brokers,
    membership: &Arc<Membership>,
    request: ConsumeRequest,
) -> Result<ConsumeStream, Status> {
    let settings = Settings::of(request)?;
    let partitions = topic::partition_count(brokers.router(), &settings.topic).await?;
    let unknown = |message: String| WireError::new(ErrorCode::UnknownTopicOrPartition, message).into_status();
    if partitions == 0 {
        return Err(unknown(format!("topic {:?} does not exist", settings.topic)));
    }
    if let Some(p) = settings.partitions.iter().flatten().find(|p| !(0..partitions).contains(*p)) {
        return Err(unknown(format!(
            "partition {p} does not exist: topic {} has partitions 0..{partitions}",
            settings.topic
        )));
    }
    let member = settings.group_id.as_deref().map(|group| membership.join(group, &settings.topic));
    let owned: BTreeMap<i32, PartitionState> = match (&member, &settings.partitions) {
        (Some(_), _) => BTreeMap::new(), // claimed as the group assigns them
        (None, Some(explicit)) => explicit.iter().map(|&p| (p, PartitionState::new(Start::Reset))).collect(),
        (None, None) => (0..partitions).map(|p| (p, PartitionState::new(Start::Reset))).collect(),
    };
    let (tx, rx) = mpsc::channel(1);
    tracing::debug!(topic = %settings.topic, group = ?settings.group_id, "consume stream started");
    let mut task = StreamTask::new(brokers, settings, tx, member, owned, partitions);
    // A plain stream knows its partitions: it finds its start offsets before answering, so that
    // whatever is published once the call has returned is delivered.
    if !task.is_managed()
        && let Err(Exit::Failed(status)) = task.resolve_positions().await
    {
        return Err(status);
    }
    tokio::spawn(task.run());
    Ok(ReceiverStream::new(rx))
}
