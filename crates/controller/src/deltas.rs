//! Recent metadata deltas, so a watcher that is a little behind gets only what it missed.
//!
//! Each delta is stored with the version it applies to. A watcher at version `v` gets the chain of
//! deltas starting at `v`; when that chain is no longer here (too far behind, or a snapshot was
//! installed in between) it gets the full image instead.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

use vltava_metadata::state::Delta;

/// How many deltas are kept.
pub const KEPT_DELTAS: usize = 4096;

/// A bounded log of recent deltas.
#[derive(Default)]
pub struct DeltaLog {
    inner: Mutex<VecDeque<(u64, Arc<Delta>)>>,
}

impl DeltaLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `delta`, which moved the image from version `prev`.
    pub fn push(&self, prev: u64, delta: Delta) {
        let mut inner = self.inner.lock();
        if inner.len() == KEPT_DELTAS {
            inner.pop_front();
        }
        inner.push_back((prev, Arc::new(delta)));
    }

    /// Forgets every delta (after a snapshot replaced the state).
    pub fn reset(&self) {
        self.inner.lock().clear();
    }

    /// The deltas that take an image from `version` to the newest one this log knows, or `None`
    /// when the chain from `version` is not here (the watcher needs the full image).
    pub fn since(&self, version: u64) -> Option<Vec<Arc<Delta>>> {
        let inner = self.inner.lock();
        match inner.back() {
            None => return None,
            Some((_, last)) if last.version == version => return Some(Vec::new()),
            _ => {}
        }
        let start = inner.iter().position(|(prev, _)| *prev == version)?;
        Some(inner.iter().skip(start).map(|(_, d)| d.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(version: u64) -> Delta {
        Delta { version, ..Delta::default() }
    }

    #[test]
    fn chains_are_found_and_gaps_need_a_full_image() {
        let log = DeltaLog::new();
        assert!(log.since(0).is_none());
        log.push(0, delta(3));
        log.push(3, delta(7));
        log.push(7, delta(8));
        let versions = |v: Option<Vec<Arc<Delta>>>| v.map(|d| d.iter().map(|d| d.version).collect::<Vec<_>>());
        assert_eq!(versions(log.since(3)), Some(vec![7, 8]));
        assert_eq!(versions(log.since(8)), Some(vec![]));
        assert_eq!(versions(log.since(5)), None);
        log.reset();
        assert_eq!(versions(log.since(3)), None);
    }
}
