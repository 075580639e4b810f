//! Produce: one partition, sent to its leader, retried on retriable errors.

use tonic::Status;
use vltava_proto::v1::{ProduceRequest, ProduceResponse};

use crate::routing::Router;

/// Appends the request's batches on the partition leader. Leadership changes, unreachable
/// brokers and a topic not yet known to its leader are retried (see [`Router::call_leader`]);
/// any other broker error is returned unchanged, code, detail and `vltava-error-code` included.
pub async fn handle(router: &Router, request: ProduceRequest) -> Result<ProduceResponse, Status> {
    let (topic, partition) = (request.topic.clone(), request.partition);
    router
        .call_leader(&topic, partition, |channel| {
            let mut client = router.records(channel);
            let request = request.clone(); // `records` is `Bytes`: cloning shares the payload
            async move { client.produce(request).await.map(|r| r.into_inner()) }
        })
        .await
}
