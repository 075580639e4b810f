//! What the coordinator reads of the classic consumer protocol's opaque bytes: the topics of
//! a subscription (`ConsumerProtocolSubscription`, a member's JoinGroup metadata) and the
//! partitions of an assignment (`ConsumerProtocolAssignment`, from the leader's SyncGroup), for
//! DescribeGroups, lag owners and OffsetDelete. Both start with a version and a list, the same
//! at every version.

use bytes::Buf;

use super::assignor::TopicPartitions;

/// A big-endian `i16`-length string.
fn string(b: &mut &[u8]) -> Option<String> {
    if b.remaining() < 2 {
        return None;
    }
    let len = usize::try_from(b.get_i16()).ok().filter(|l| *l <= b.remaining())?;
    let s = String::from_utf8(b[..len].to_vec()).ok()?;
    b.advance(len);
    Some(s)
}

/// The partitions of a consumer's assignment; empty when the bytes are not one.
pub fn assigned_partitions(mut assignment: &[u8]) -> TopicPartitions {
    let read = |b: &mut &[u8]| -> Option<TopicPartitions> {
        if b.remaining() < 6 {
            return None;
        }
        let _version = b.get_i16();
        let topics = b.get_i32();
        let mut out = TopicPartitions::new();
        for _ in 0..topics.max(0) {
            let topic = string(b)?;
            if b.remaining() < 4 {
                return None;
            }
            let n = usize::try_from(b.get_i32()).ok().filter(|n| n.saturating_mul(4) <= b.remaining())?;
            out.entry(topic).or_default().extend((0..n).map(|_| b.get_i32()));
        }
        Some(out)
    };
    read(&mut assignment).unwrap_or_default()
}

/// The subscribed topics in a consumer's JoinGroup metadata (any version: the topic list comes
/// first); empty when the bytes are not a consumer subscription.
pub fn subscribed_topics(mut metadata: &[u8]) -> Vec<String> {
    let read = |b: &mut &[u8]| -> Option<Vec<String>> {
        if b.remaining() < 6 {
            return None;
        }
        let _version = b.get_i16();
        let count = b.get_i32();
        let mut topics = Vec::new();
        for _ in 0..count.max(0) {
            topics.push(string(b)?);
        }
        Some(topics)
    };
    read(&mut metadata).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_read_from_a_subscription_and_garbage_reads_as_none() {
        let mut b = vec![0u8, 1, 0, 0, 0, 2];
        for t in ["orders", "payments"] {
            b.extend((t.len() as i16).to_be_bytes());
            b.extend(t.as_bytes());
        }
        b.extend([0xff, 0xff, 0xff, 0xff]); // null user data
        assert_eq!(subscribed_topics(&b), vec!["orders".to_string(), "payments".to_string()]);
        assert!(subscribed_topics(&[0, 0, 0x7f, 0xff, 0xff, 0xff]).is_empty(), "a count beyond the bytes");
        assert!(subscribed_topics(&[1]).is_empty());
    }

    #[test]
    fn partitions_are_read_from_an_assignment() {
        let mut b = vec![0u8, 0, 0, 0, 0, 1];
        b.extend(6i16.to_be_bytes());
        b.extend(b"orders");
        b.extend(2i32.to_be_bytes());
        b.extend(0i32.to_be_bytes());
        b.extend(3i32.to_be_bytes());
        b.extend([0xff, 0xff, 0xff, 0xff]);
        let parts = assigned_partitions(&b);
        assert_eq!(parts.get("orders").map(|p| p.iter().copied().collect::<Vec<_>>()), Some(vec![0, 3]));
        assert!(assigned_partitions(&b[..b.len() - 9]).is_empty(), "a truncated assignment reads as none");
        assert!(assigned_partitions(&[]).is_empty());
    }
}
