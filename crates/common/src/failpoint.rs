//! Failpoints: named places where a test can make a server pause, to hold it in a state that is
//! otherwise too brief to hit (a transaction decided but its markers not yet written) and then
//! kill it there with `kill -9`.
//!
//! Set `VLTAVA_FAILPOINTS` to comma-separated `name=duration` pairs (`humantime` durations, such
//! as `txn.before_markers=4s`) in the environment of the process. Unset, a failpoint costs one
//! lookup in an empty map. Production deployments never set it.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

/// The environment variable that arms failpoints.
pub const ENV: &str = "VLTAVA_FAILPOINTS";

static ARMED: LazyLock<HashMap<String, Duration>> =
    LazyLock::new(|| std::env::var(ENV).map(|v| parse(&v)).unwrap_or_default());

/// Parses `name=duration,...`; malformed entries are ignored (and logged).
pub fn parse(spec: &str) -> HashMap<String, Duration> {
    let mut out = HashMap::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match entry.split_once('=').map(|(n, d)| (n.trim(), humantime::parse_duration(d.trim()))) {
            Some((name, Ok(pause))) if !name.is_empty() => {
                out.insert(name.to_string(), pause);
            }
            _ => tracing::warn!(entry, "ignoring a malformed {ENV} entry (expected name=duration)"),
        }
    }
    out
}

/// Pauses for the duration armed for `name`, if any.
pub async fn pause(name: &str) {
    if let Some(pause) = ARMED.get(name) {
        tracing::warn!(failpoint = name, ?pause, "failpoint: pausing");
        tokio::time::sleep(*pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_names_and_durations() {
        let armed = parse(" txn.before_markers=4s, other = 250ms ,bad, =1s,x=soon");
        assert_eq!(armed.len(), 2);
        assert_eq!(armed["txn.before_markers"], Duration::from_secs(4));
        assert_eq!(armed["other"], Duration::from_millis(250));
    }
}
