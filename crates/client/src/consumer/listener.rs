//! [`RebalanceListener`]: what a subscribed consumer's application hears when its partitions
//! change (Kafka's `ConsumerRebalanceListener`).

use crate::types::TopicPartition;

/// Called from [`Consumer::poll`](super::Consumer::poll) (never from a background task) when the
/// group moves partitions to or away from this consumer.
///
/// With `enable.auto.commit` the consumer commits the positions of revoked partitions before
/// [`on_partitions_revoked`](RebalanceListener::on_partitions_revoked) runs, so the next owner
/// starts where this one stopped. With manual commits, commit after processing each `poll`.
pub trait RebalanceListener: Send {
    /// The group gave these partitions to this consumer; their positions start at the group's
    /// committed offset (else `auto.offset.reset`).
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]);

    /// These partitions are being taken away for another member; this consumer returns none of
    /// their records after this call.
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]);

    /// These partitions were lost: the coordinator fenced this member (its session lapsed, or
    /// `poll` was not called within `max.poll.interval.ms`), so they may already belong to
    /// another member and committing them is refused. The consumer rejoins the group next.
    /// By default the same as a revocation.
    fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
        self.on_partitions_revoked(partitions);
    }
}

/// The listener used when the application sets none.
#[derive(Debug, Default)]
pub(crate) struct NoopListener;

impl RebalanceListener for NoopListener {
    fn on_partitions_assigned(&mut self, _: &[TopicPartition]) {}
    fn on_partitions_revoked(&mut self, _: &[TopicPartition]) {}
}
