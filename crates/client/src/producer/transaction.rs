//! The transactional producer (Kafka's `TransactionManager`): `init_transactions`,
//! `begin_transaction`, `send_offsets_to_transaction`, `commit_transaction` and
//! `abort_transaction` on [`Producer`].
//!
//! The first record sent to a partition in a transaction adds the partition to it
//! (AddPartitionsToTxn, on the coordinator) before the record is queued, so the coordinator
//! knows every partition it must write a marker to. Commit flushes, then asks the coordinator to
//! commit (EndTxn); a send that failed in the transaction makes it abortable only.
//!
//! Errors follow Kafka's classes: [`ClientError::TransactionFatal`] (fenced by a newer producer
//! of the same `transactional.id`: close the producer), [`ClientError::TransactionAbortable`]
//! (abort, then go on), [`ClientError::IllegalState`] (a call out of order).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use vltava_proto::v1::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, ErrorCode, InitProducerIdRequest, TxnOffset,
    TxnOffsetCommitRequest, TxnPartitionResult, TxnTopic,
};

use super::Producer;
use crate::error::ClientError;
use crate::offsets::{CoordinatorKey, on_coordinator_of, timed};
use crate::types::{OffsetAndMetadata, TopicPartition};

/// Pause between retries of a transactional call the coordinator asked to retry.
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// Where the producer is in its transactions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum TxnState {
    /// `init_transactions` not called yet.
    #[default]
    Uninitialized,
    /// Between transactions.
    Ready,
    /// A transaction is open.
    InTransaction,
    /// The open transaction can only be aborted.
    Abortable(String),
    /// Nothing transactional works any more.
    Fatal(String),
}

/// The transactional part of a producer.
#[derive(Debug, Default)]
pub(crate) struct Transactions {
    pub state: parking_lot::Mutex<TxnState>,
    /// Partitions already added to the open transaction.
    pub partitions: parking_lot::Mutex<HashSet<TopicPartition>>,
    /// Serialises adding partitions, so each is added once.
    pub adding: tokio::sync::Mutex<()>,
    /// The coordinator knows the open transaction (a partition or offsets were added): ending it
    /// needs EndTxn.
    pub registered: std::sync::atomic::AtomicBool,
}

/// A consumer group member's identity for `send_offsets_to_transaction` (Kafka's
/// `ConsumerGroupMetadata`): the coordinator checks it as it checks a plain commit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerGroupMetadata {
    /// The group id.
    pub group_id: String,
    /// The member id (empty: not checked).
    pub member_id: String,
    /// The member epoch (-1 with an empty member id).
    pub member_epoch: i32,
}

impl ConsumerGroupMetadata {
    /// A group's metadata without a member check.
    pub fn new(group_id: impl Into<String>) -> Self {
        ConsumerGroupMetadata { group_id: group_id.into(), member_id: String::new(), member_epoch: -1 }
    }
}

impl Producer {
    fn transactional_id(&self) -> Result<&str, ClientError> {
        self.inner.ctx.config.transactional_id.as_deref().ok_or_else(|| {
            ClientError::IllegalState("this producer has no transactional.id: set one to use transactions".into())
        })
    }

    fn txn(&self) -> &Transactions {
        &self.inner.txn
    }

    fn identity(&self) -> Result<(i64, i16), ClientError> {
        self.inner
            .ctx
            .identity
            .current()
            .ok_or_else(|| ClientError::IllegalState("call init_transactions first".into()))
    }

    /// Registers the producer's `transactional.id` with its coordinator (Kafka's
    /// `initTransactions`): gets the producer id and a new epoch, which fences every older
    /// producer of the same id, and has an unfinished transaction of theirs aborted. Call it once,
    /// before the first transaction.
    ///
    /// # Errors
    ///
    /// [`ClientError::IllegalState`] without a `transactional.id`; the coordinator's errors
    /// (retriable ones are retried until `delivery.timeout.ms`).
    pub async fn init_transactions(&self) -> Result<(), ClientError> {
        let id = self.transactional_id()?.to_string();
        let config = &self.inner.ctx.config;
        let timeout_ms = i32::try_from(config.transaction_timeout.as_millis()).unwrap_or(i32::MAX);
        let request = InitProducerIdRequest { transactional_id: id.clone(), transaction_timeout_ms: timeout_ms };
        let response = self
            .on_txn_coordinator(&id, |node, timeout| {
                let request = timed(request.clone(), timeout);
                async move { node.transactions().init_producer_id(request).await }
            })
            .await?;
        let epoch = i16::try_from(response.producer_epoch).unwrap_or(0);
        self.inner.ctx.identity.set((response.producer_id, epoch));
        *self.txn().state.lock() = TxnState::Ready;
        tracing::debug!(transactional_id = id, producer_id = response.producer_id, epoch, "transactions initialised");
        Ok(())
    }

    /// Starts a transaction: records sent from now on commit or abort together.
    ///
    /// # Errors
    ///
    /// [`ClientError::IllegalState`] before `init_transactions` or while a transaction is open;
    /// [`ClientError::TransactionFatal`] after a fatal error.
    pub fn begin_transaction(&self) -> Result<(), ClientError> {
        self.transactional_id()?;
        let mut state = self.txn().state.lock();
        match &*state {
            TxnState::Ready => {
                *state = TxnState::InTransaction;
                self.txn().partitions.lock().clear();
                *self.inner.ctx.txn_failure.lock() = None;
                Ok(())
            }
            other => Err(state_error(other, "begin_transaction")),
        }
    }

    /// Fails unless a transaction is open (`send` in a transactional producer), and adds
    /// `topic`-`partition` to it first if it is new to the transaction.
    pub(crate) async fn join_transaction(&self, topic: &str, partition: i32) -> Result<(), ClientError> {
        match &*self.txn().state.lock() {
            TxnState::InTransaction => {}
            other => return Err(state_error(other, "send")),
        }
        let tp = TopicPartition::new(topic, partition);
        if self.txn().partitions.lock().contains(&tp) {
            return Ok(());
        }
        let _adding = self.txn().adding.lock().await;
        if self.txn().partitions.lock().contains(&tp) {
            return Ok(());
        }
        let id = self.transactional_id()?.to_string();
        let (producer_id, epoch) = self.identity()?;
        let request = AddPartitionsToTxnRequest {
            transactional_id: id.clone(),
            producer_id,
            producer_epoch: i32::from(epoch),
            topics: vec![TxnTopic { topic: topic.to_string(), partitions: vec![partition] }],
        };
        let response = self
            .on_txn_coordinator(&id, |node, timeout| {
                let request = timed(request.clone(), timeout);
                async move { node.transactions().add_partitions_to_txn(request).await }
            })
            .await
            .map_err(|e| self.classify(e))?;
        if let Some(e) = first_failure(&response.results) {
            return Err(self.classify(e));
        }
        self.txn().partitions.lock().insert(tp);
        self.txn().registered.store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Commits consumed offsets as part of the open transaction (Kafka's
    /// `sendOffsetsToTransaction`): they become the group's committed offsets if and only if
    /// the transaction commits. `offsets` are the next offsets to read.
    ///
    /// # Errors
    ///
    /// [`ClientError::IllegalState`] without an open transaction; the coordinators' errors,
    /// classified as fatal or abortable.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &HashMap<TopicPartition, OffsetAndMetadata>,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), ClientError> {
        match &*self.txn().state.lock() {
            TxnState::InTransaction => {}
            other => return Err(state_error(other, "send_offsets_to_transaction")),
        }
        let id = self.transactional_id()?.to_string();
        let (producer_id, epoch) = self.identity()?;
        let add = AddOffsetsToTxnRequest {
            transactional_id: id.clone(),
            producer_id,
            producer_epoch: i32::from(epoch),
            group_id: group.group_id.clone(),
        };
        self.on_txn_coordinator(&id, |node, timeout| {
            let request = timed(add.clone(), timeout);
            async move { node.transactions().add_offsets_to_txn(request).await }
        })
        .await
        .map_err(|e| self.classify(e))?;
        self.txn().registered.store(true, std::sync::atomic::Ordering::Release);
        let sorted: BTreeMap<&TopicPartition, &OffsetAndMetadata> = offsets.iter().collect();
        let commit = TxnOffsetCommitRequest {
            transactional_id: id,
            group_id: group.group_id.clone(),
            producer_id,
            producer_epoch: i32::from(epoch),
            offsets: sorted
                .into_iter()
                .map(|(tp, o)| TxnOffset {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset: o.offset,
                    metadata: o.metadata.clone(),
                })
                .collect(),
            member_id: group.member_id.clone(),
            member_epoch: group.member_epoch,
        };
        let cluster = &self.inner.ctx.cluster;
        let timeout = cluster.request_timeout();
        let response = on_coordinator_of(cluster, CoordinatorKey::Group(&group.group_id), |node| {
            let request = timed(commit.clone(), timeout);
            async move { node.transactions().txn_offset_commit(request).await }
        })
        .await
        .map_err(|e| self.classify(e))?
        .into_inner();
        match first_failure(&response.results) {
            Some(e) => Err(self.classify(e)),
            None => Ok(()),
        }
    }

    /// Commits the open transaction: flushes every record sent in it, then has the coordinator
    /// write COMMIT markers to every partition of the transaction. Returns once the records are
    /// visible to read_committed consumers (or, if markers take long, once the commit is
    /// decided: they are then completed by the coordinator).
    ///
    /// # Errors
    ///
    /// [`ClientError::TransactionAbortable`] when a send in the transaction failed (call
    /// `abort_transaction`); [`ClientError::TransactionFatal`] when fenced; the coordinator's
    /// errors.
    pub async fn commit_transaction(&self) -> Result<(), ClientError> {
        match &*self.txn().state.lock() {
            TxnState::InTransaction => {}
            other => return Err(state_error(other, "commit_transaction")),
        }
        self.flush().await?;
        if let Some(failure) = self.inner.ctx.txn_failure.lock().clone() {
            let message = format!("a record of the transaction was not delivered: {failure}");
            *self.txn().state.lock() = TxnState::Abortable(message.clone());
            return Err(ClientError::TransactionAbortable(message));
        }
        self.end_transaction(true).await
    }

    /// Aborts the open transaction: records sent in it are never shown to read_committed
    /// consumers, and offsets sent with it are not committed. Waits for records still in flight
    /// first (their outcome does not matter).
    ///
    /// # Errors
    ///
    /// [`ClientError::IllegalState`] without an open transaction; [`ClientError::TransactionFatal`]
    /// when fenced; the coordinator's errors.
    pub async fn abort_transaction(&self) -> Result<(), ClientError> {
        match &*self.txn().state.lock() {
            TxnState::InTransaction | TxnState::Abortable(_) => {}
            other => return Err(state_error(other, "abort_transaction")),
        }
        let _ = self.flush().await;
        self.end_transaction(false).await
    }

    async fn end_transaction(&self, commit: bool) -> Result<(), ClientError> {
        // A transaction the coordinator never heard of ends here.
        if self.txn().registered.swap(false, std::sync::atomic::Ordering::AcqRel) {
            let id = self.transactional_id()?.to_string();
            let (producer_id, epoch) = self.identity()?;
            let request =
                EndTxnRequest { transactional_id: id.clone(), producer_id, producer_epoch: i32::from(epoch), commit };
            let ended = self
                .on_txn_coordinator(&id, |node, timeout| {
                    let request = timed(request.clone(), timeout);
                    async move { node.transactions().end_txn(request).await }
                })
                .await;
            if let Err(e) = ended {
                // Still registered: a retried commit or abort ends it.
                self.txn().registered.store(true, std::sync::atomic::Ordering::Release);
                return Err(self.classify(e));
            }
        }
        self.txn().partitions.lock().clear();
        *self.txn().state.lock() = TxnState::Ready;
        Ok(())
    }

    /// Runs a call on the coordinator of `id`, retrying what the coordinator says to retry
    /// (`CONCURRENT_TRANSACTIONS`, a moved or loading coordinator) until `delivery.timeout.ms`.
    async fn on_txn_coordinator<T, F, Fut>(&self, id: &str, mut call: F) -> Result<T, ClientError>
    where
        F: FnMut(crate::cluster::Node, Duration) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let cluster = &self.inner.ctx.cluster;
        let timeout = cluster.request_timeout();
        let deadline = Instant::now() + self.inner.ctx.config.delivery_timeout;
        loop {
            let result = on_coordinator_of(cluster, CoordinatorKey::Transaction(id), |node| call(node, timeout)).await;
            match result {
                Ok(r) => return Ok(r.into_inner()),
                Err(e) if e.code() == Some(ErrorCode::ConcurrentTransactions) && Instant::now() < deadline => {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Kafka's error classes: a fenced producer is fatal (and stays so), anything else that
    /// fails inside a transaction makes it abortable.
    fn classify(&self, e: ClientError) -> ClientError {
        let fatal = matches!(
            e.code(),
            Some(ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch | ErrorCode::InvalidProducerIdMapping)
        );
        let mut state = self.txn().state.lock();
        if fatal {
            *state = TxnState::Fatal(e.to_string());
            return ClientError::TransactionFatal(e.to_string());
        }
        if e.code() == Some(ErrorCode::InvalidTxnState) {
            return ClientError::IllegalState(e.to_string());
        }
        if *state == TxnState::InTransaction {
            *state = TxnState::Abortable(e.to_string());
        }
        ClientError::TransactionAbortable(e.to_string())
    }
}

/// The error for a call made in the wrong state.
fn state_error(state: &TxnState, call: &str) -> ClientError {
    match state {
        TxnState::Uninitialized => ClientError::IllegalState(format!("call init_transactions before {call}")),
        TxnState::Ready => ClientError::IllegalState(format!("call begin_transaction before {call}")),
        TxnState::InTransaction => ClientError::IllegalState(format!("a transaction is already open ({call})")),
        TxnState::Abortable(why) => {
            ClientError::TransactionAbortable(format!("{why}: call abort_transaction before {call}"))
        }
        TxnState::Fatal(why) => ClientError::TransactionFatal(why.clone()),
    }
}

/// The first partition that failed, as an error.
fn first_failure(results: &[TxnPartitionResult]) -> Option<ClientError> {
    results.iter().find(|r| r.error_code != ErrorCode::None as i32).and_then(|r| {
        ClientError::from_partition_code(r.error_code, &format!("{}-{}: {}", r.topic, r.partition, r.error_message))
    })
}
