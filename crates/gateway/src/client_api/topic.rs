//! What the gateway's metadata says about a topic: how many partitions it has.

use tonic::Status;

use crate::routing::{CachedView, Router};

/// Number of partitions of `topic` in `view` (0 when the topic is unknown). Partitions are
/// numbered from 0 without gaps.
pub(super) fn partitions_in(view: &CachedView, topic: &str) -> i32 {
    view.cluster.partition_count(topic)
}

/// Number of partitions of `topic` (0 when it does not exist). A topic the cached metadata does
/// not know is looked up again first, since it may have just been created. Fails only when no
/// broker answers the lookup.
pub(super) async fn partition_count(router: &Router, topic: &str) -> Result<i32, Status> {
    let view = router.view().await;
    let known = partitions_in(&view, topic);
    if known > 0 {
        return Ok(known);
    }
    let view = router.refresh().await?;
    Ok(partitions_in(&view, topic))
}
