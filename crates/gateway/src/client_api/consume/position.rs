//! Where each partition of a stream reads ([`Start`]) and how a failing partition backs off
//! ([`PartitionState`]).

use std::time::Duration;

use tokio::time::Instant;

/// Longest pause before retrying a failing partition (Kafka's `retry.backoff.max.ms`).
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Where a partition's reading starts (or goes on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// At the group's committed offset, else `auto_offset_reset`.
    Committed,
    /// At `auto_offset_reset`.
    Reset,
    /// At this offset.
    At(i64),
}

/// A partition the stream reads.
#[derive(Debug)]
pub(super) struct PartitionState {
    pub position: Start,
    /// The offset last committed for the group (or found committed).
    pub committed: Option<i64>,
    pub retry_at: Option<Instant>,
    failures: u32,
}

impl PartitionState {
    /// A partition starting at `position`, not backing off.
    pub fn new(position: Start) -> Self {
        Self { position, committed: None, retry_at: None, failures: 0 }
    }

    /// Whether the partition is not backing off at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|t| t <= now)
    }

    /// Ends the backoff after a success.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }

    /// Backs off after a failure: `base`, doubled at each failure in a row, at most
    /// [`MAX_BACKOFF`].
    pub fn back_off(&mut self, base: Duration) {
        self.failures = self.failures.saturating_add(1);
        let delay = base.saturating_mul(1 << self.failures.min(16).saturating_sub(1)).min(MAX_BACKOFF);
        self.retry_at = Some(Instant::now() + delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_from_the_base_to_the_cap() {
        let mut state = PartitionState::new(Start::Reset);
        let base = Duration::from_millis(100);
        let mut delays = Vec::new();
        for _ in 0..6 {
            let before = Instant::now();
            state.back_off(base);
            delays.push(state.retry_at.unwrap().duration_since(before));
        }
        assert!(delays[0] >= base && delays[0] < base * 2, "{delays:?}");
        assert!(delays[2] >= base * 4, "{delays:?}");
        assert!(delays[5] <= MAX_BACKOFF + Duration::from_millis(50), "{delays:?}");
        state.succeeded();
        assert!(state.ready(Instant::now()));
        assert_eq!(state.failures, 0);
    }
}
