//! TransactionService.DescribeTransactions: the state of transactional ids this broker
//! coordinates.

use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::{DescribeTransactionsRequest, DescribeTransactionsResponse, TransactionState, TxnTopic};

use crate::broker::Broker;

/// Describes each id (per-id errors: `TRANSACTIONAL_ID_NOT_FOUND`, `NOT_COORDINATOR`, ...).
pub async fn handle(broker: &Broker, req: DescribeTransactionsRequest) -> DescribeTransactionsResponse {
    let mut out = Vec::with_capacity(req.transactional_ids.len());
    for id in req.transactional_ids {
        let mut t = TransactionState {
            transactional_id: id.clone(),
            error_code: ErrorCode::None as i32,
            error_message: String::new(),
            state: String::new(),
            producer_id: -1,
            producer_epoch: -1,
            transaction_timeout_ms: 0,
            transaction_start_ms: -1,
            topics: Vec::new(),
        };
        let found = broker.transactions.describe(&id).await.map_err(WireError::from).and_then(|m| {
            m.ok_or_else(|| {
                WireError::new(ErrorCode::TransactionalIdNotFound, format!("transactional id {id:?} is unknown"))
            })
        });
        match found {
            Ok(m) => {
                t.state = m.status.name().to_string();
                t.producer_id = m.producer_id;
                t.producer_epoch = i32::from(m.producer_epoch);
                t.transaction_timeout_ms = m.timeout_ms;
                t.transaction_start_ms = m.start_ms;
                t.topics = m
                    .partitions
                    .into_iter()
                    .map(|(topic, ps)| TxnTopic { topic, partitions: ps.into_iter().collect() })
                    .collect();
            }
            Err(e) => {
                t.error_code = e.code as i32;
                t.error_message = e.to_string();
            }
        }
        out.push(t);
    }
    DescribeTransactionsResponse { transactions: out }
}
