//! `TransactionService` calls: `InitProducerId` without a transactional id and `FindTransactionCoordinator`
//! to any broker (bootstrap brokers first); every call naming a transactional id to that id's
//! transaction coordinator; `TxnOffsetCommit` to the group's coordinator. `WriteTxnMarkers` is
//! between brokers only and is refused here.

use std::future::Future;

use tonic::Status;
use vltava_common::grpc::TracedChannel as Channel;
use vltava_proto::v1::group_service_client::GroupServiceClient;
use vltava_proto::v1::transaction_service_client::TransactionServiceClient;
use vltava_proto::v1::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    DescribeTransactionsRequest, DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse, FindCoordinatorRequest,
    FindTransactionCoordinatorRequest, FindTransactionCoordinatorResponse, InitProducerIdRequest,
    InitProducerIdResponse, TransactionState, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

use super::Brokers;

type Client = TransactionServiceClient<Channel>;

impl Brokers {
    /// `TransactionService.InitProducerId`: on any broker without a transactional id, on its
    /// coordinator with one.
    pub async fn init_producer_id(&self, request: InitProducerIdRequest) -> Result<InitProducerIdResponse, Status> {
        if request.transactional_id.is_empty() {
            return self
                .router
                .call_any(|channel| {
                    let request = request.clone();
                    async move { Client::new(channel).init_producer_id(request).await.map(|r| r.into_inner()) }
                })
                .await;
        }
        let id = request.transactional_id.clone();
        self.on_txn_coordinator(&id, |mut c| {
            let request = request.clone();
            async move { c.init_producer_id(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// `TransactionService.FindTransactionCoordinator`, on any broker.
    pub async fn find_txn_coordinator(
        &self,
        request: FindTransactionCoordinatorRequest,
    ) -> Result<FindTransactionCoordinatorResponse, Status> {
        self.router
            .call_any(|channel| {
                let request = request.clone();
                async move { Client::new(channel).find_transaction_coordinator(request).await.map(|r| r.into_inner()) }
            })
            .await
    }

    /// `TransactionService.AddPartitionsToTxn`, on the id's coordinator.
    pub async fn add_partitions_to_txn(
        &self,
        request: AddPartitionsToTxnRequest,
    ) -> Result<AddPartitionsToTxnResponse, Status> {
        let id = request.transactional_id.clone();
        self.on_txn_coordinator(&id, |mut c| {
            let request = request.clone();
            async move { c.add_partitions_to_txn(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// `TransactionService.AddOffsetsToTxn`, on the id's coordinator.
    pub async fn add_offsets_to_txn(&self, request: AddOffsetsToTxnRequest) -> Result<AddOffsetsToTxnResponse, Status> {
        let id = request.transactional_id.clone();
        self.on_txn_coordinator(&id, |mut c| {
            let request = request.clone();
            async move { c.add_offsets_to_txn(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// `TransactionService.EndTxn`, on the id's coordinator.
    pub async fn end_txn(&self, request: EndTxnRequest) -> Result<EndTxnResponse, Status> {
        let id = request.transactional_id.clone();
        self.on_txn_coordinator(&id, |mut c| {
            let request = request.clone();
            async move { c.end_txn(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// `TransactionService.TxnOffsetCommit`, on the group's coordinator.
    pub async fn txn_offset_commit(&self, request: TxnOffsetCommitRequest) -> Result<TxnOffsetCommitResponse, Status> {
        let group = request.group_id.clone();
        self.on_coordinator(
            &group,
            || async {
                let find = FindCoordinatorRequest { group_id: group.clone() };
                self.router
                    .call_any(|channel| {
                        let find = find.clone();
                        async move { GroupServiceClient::new(channel).find_coordinator(find).await.map(|r| r.into_inner()) }
                    })
                    .await
                    .map(|c| c.address)
            },
            |channel| {
                let request = request.clone();
                async move { Client::new(channel).txn_offset_commit(request).await.map(|r| r.into_inner()) }
            },
        )
        .await
    }

    /// `TransactionService.DescribeTransactions`, each id on its own coordinator, in order (an id
    /// whose coordinator cannot be reached gets that failure's code).
    pub async fn describe_transactions(
        &self,
        request: DescribeTransactionsRequest,
    ) -> Result<DescribeTransactionsResponse, Status> {
        let mut out = Vec::with_capacity(request.transactional_ids.len());
        for id in request.transactional_ids {
            let one = DescribeTransactionsRequest { transactional_ids: vec![id.clone()] };
            let answer = self
                .on_txn_coordinator(&id, |mut c| {
                    let one = one.clone();
                    async move { c.describe_transactions(one).await.map(|r| r.into_inner()) }
                })
                .await;
            match answer {
                Ok(r) if !r.transactions.is_empty() => out.extend(r.transactions),
                Ok(_) => return Err(Status::internal("the coordinator described nothing")),
                Err(status) => {
                    let e = vltava_common::WireError::from_status(&status);
                    out.push(TransactionState {
                        transactional_id: id,
                        error_code: e.code as i32,
                        error_message: e.message,
                        ..Default::default()
                    });
                }
            }
        }
        Ok(DescribeTransactionsResponse { transactions: out })
    }

    async fn on_txn_coordinator<T, F, Fut>(&self, id: &str, mut call: F) -> Result<T, Status>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        self.on_coordinator(
            id,
            || async {
                let find = FindTransactionCoordinatorRequest { transactional_id: id.to_string() };
                self.find_txn_coordinator(find).await.map(|c| c.address)
            },
            |channel| call(Client::new(channel)),
        )
        .await
    }
}
