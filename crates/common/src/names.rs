//! Validation of names by Kafka's rules.

use crate::error::{ErrorCode, WireError};

/// Longest topic name Kafka accepts.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Checks a topic name: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), WireError> {
    let invalid =
        |why: String| Err(WireError::new(ErrorCode::InvalidTopic, format!("invalid topic name {name:?}: {why}")));
    if name.is_empty() {
        return invalid("it is empty".into());
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are not allowed".into());
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return invalid(format!("it is {} characters long, the limit is {MAX_TOPIC_NAME_LEN}", name.len()));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return invalid(format!("character {c:?} is not allowed (use ASCII letters, digits, '.', '_' and '-')"));
    }
    Ok(())
}

/// Checks a consumer-group id: non-empty, at most 255 bytes, no control characters.
pub fn validate_group_id(group: &str) -> Result<(), WireError> {
    if group.is_empty() || group.len() > 255 || group.chars().any(char::is_control) {
        return Err(WireError::new(
            ErrorCode::InvalidGroupId,
            format!("invalid group id {group:?}: it must be 1 to 255 bytes without control characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafkas_rules() {
        for ok in ["a", "orders", "orders.v1", "a_b-c", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "with space", "slash/no", "ü", &"x".repeat(250)] {
            let e = validate_topic_name(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidTopic, "{bad}");
        }
    }

    #[test]
    fn group_ids_must_be_non_empty() {
        assert!(validate_group_id("g").is_ok());
        assert_eq!(validate_group_id("").unwrap_err().code, ErrorCode::InvalidGroupId);
    }
}
