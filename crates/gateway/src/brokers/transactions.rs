//! `TransactionService` calls: `InitProducerId` without a transactional id to any broker
//! (bootstrap brokers first), each of which hands out cluster-unique producer ids.

use tonic::Status;
use vltava_proto::v1::transaction_service_client::TransactionServiceClient;
use vltava_proto::v1::{InitProducerIdRequest, InitProducerIdResponse};

use super::Brokers;

impl Brokers {
    /// `TransactionService.InitProducerId`, on any broker.
    pub async fn init_producer_id(&self, request: InitProducerIdRequest) -> Result<InitProducerIdResponse, Status> {
        self.router
            .call_any(|channel| {
                let request = request.clone();
                async move { TransactionServiceClient::new(channel).init_producer_id(request).await.map(|r| r.into_inner()) }
            })
            .await
    }
}
