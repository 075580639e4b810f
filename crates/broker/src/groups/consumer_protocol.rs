//! The topics of a classic consumer's subscription (`ConsumerProtocolSubscription`, the
//! metadata consumers send with JoinGroup): all the coordinator needs to read of it.

use bytes::Buf;

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
            if b.remaining() < 2 {
                return None;
            }
            let len = b.get_i16();
            let len = usize::try_from(len).ok().filter(|l| *l <= b.remaining())?;
            topics.push(String::from_utf8(b[..len].to_vec()).ok()?);
            b.advance(len);
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
}
