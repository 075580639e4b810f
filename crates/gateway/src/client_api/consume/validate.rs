//! The checks of a Consume request, and the [`Settings`] a valid one gives its stream.

use std::collections::BTreeSet;
use std::time::Duration;

use tonic::Status;
use vltava_common::WireError;
use vltava_proto::v1::ConsumeRequest;

use crate::client_api::{convert, read};

/// Records per message when the request does not say (Kafka's `max.poll.records`).
const DEFAULT_MAX_RECORDS: usize = 500;
/// Auto-commit interval when the request does not say (Kafka's `auto.commit.interval.ms`).
const DEFAULT_COMMIT_INTERVAL_MS: usize = 5_000;

/// What a stream was asked for, checked.
#[derive(Debug)]
pub(super) struct Settings {
    pub topic: String,
    /// Explicit partitions of a plain subscription; `None` means all.
    pub partitions: Option<BTreeSet<i32>>,
    /// ListOffsets spec of `auto_offset_reset`.
    pub reset: i64,
    pub group_id: Option<String>,
    pub auto_commit: bool,
    pub max_records: usize,
    pub max_bytes: i32,
    pub commit_interval: Duration,
    /// `vltava.v1.IsolationLevel` of every read.
    pub isolation_level: i32,
}

impl Settings {
    /// Checks `request`: a valid topic, a valid group id if any (and `auto_commit` only with one),
    /// non-negative counts (0 means the default) and known enum values. Explicit partitions count
    /// only for a plain subscription: a group assigns its own.
    pub fn of(request: ConsumeRequest) -> Result<Self, Status> {
        convert::check_topic(&request.topic)?;
        let group_id = (!request.group_id.is_empty()).then_some(request.group_id);
        if let Some(group) = &group_id {
            vltava_common::names::validate_group_id(group).map_err(WireError::into_status)?;
        } else if request.auto_commit {
            return Err(convert::invalid("auto_commit needs a group_id (a plain subscription has nothing to commit)"));
        }
        let commit_ms =
            convert::count_or(request.auto_commit_interval_ms, "auto_commit_interval_ms", DEFAULT_COMMIT_INTERVAL_MS)?;
        let max_bytes = convert::count_or(request.max_bytes, "max_bytes", read::DEFAULT_MAX_BYTES)?;
        Ok(Self {
            partitions: (group_id.is_none() && !request.partitions.is_empty())
                .then(|| request.partitions.iter().copied().collect()),
            reset: convert::reset_spec(request.auto_offset_reset)?,
            auto_commit: request.auto_commit,
            max_records: convert::count_or(request.max_records, "max_records", DEFAULT_MAX_RECORDS)?,
            max_bytes: i32::try_from(max_bytes).unwrap_or(i32::MAX),
            commit_interval: Duration::from_millis(commit_ms as u64),
            isolation_level: convert::isolation(request.isolation_level)?,
            topic: request.topic,
            group_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_check_the_request() {
        let request = |f: fn(&mut ConsumeRequest)| {
            let mut r = ConsumeRequest { topic: "t".into(), ..Default::default() };
            f(&mut r);
            Settings::of(r)
        };
        let plain = request(|_| {}).unwrap();
        assert_eq!((plain.max_records, plain.reset, plain.partitions), (500, convert::LATEST, None));
        assert_eq!(plain.commit_interval, Duration::from_secs(5));
        let explicit = request(|r| r.partitions = vec![2, 0, 2]).unwrap();
        assert_eq!(explicit.partitions, Some(BTreeSet::from([0, 2])));
        let grouped = request(|r| {
            r.group_id = "g".into();
            r.partitions = vec![1];
        })
        .unwrap();
        assert_eq!(grouped.partitions, None, "a group assigns the partitions");
        assert!(request(|r| r.topic.clear()).is_err());
        assert!(request(|r| r.auto_commit = true).is_err(), "auto_commit without a group");
        assert!(request(|r| r.max_records = -1).is_err());
    }
}
