//! The idempotent producer's identity: its producer id and epoch, asked for from the cluster
//! (InitProducerId) before the first numbered batch, and again after a batch failed for good.
//!
//! A batch that fails for good leaves a gap in its partition's sequence numbers, which the
//! broker would refuse (`OUT_OF_ORDER_SEQUENCE_NUMBER`) for every later batch. As Kafka's
//! producer resets its epoch then, this one takes a new producer id: every partition starts
//! again at sequence 0, while batches already numbered (retries) keep their old id and are still
//! recognised if they were stored.

use parking_lot::Mutex;
use vltava_proto::v1::InitProducerIdRequest;

use crate::cluster::Cluster;
use crate::error::ClientError;
use crate::offsets::{on_any_node, timed};

/// A producer id and epoch.
pub(crate) type ProducerIdentity = (i64, i16);

#[derive(Debug, Default)]
struct State {
    current: Option<ProducerIdentity>,
    /// An InitProducerId call is outstanding.
    fetching: bool,
}

/// The identity in use, and whether a new one is being fetched.
#[derive(Debug, Default)]
pub(crate) struct Identity {
    state: Mutex<State>,
}

impl Identity {
    /// The identity to number new batches with, if there is one.
    pub fn current(&self) -> Option<ProducerIdentity> {
        self.state.lock().current
    }

    /// Whether the caller should start fetching an identity (none is held or being fetched);
    /// marks the fetch as started when so.
    pub fn start_fetch(&self) -> bool {
        let mut state = self.state.lock();
        if state.current.is_some() || state.fetching {
            return false;
        }
        state.fetching = true;
        true
    }

    /// Records the outcome of a fetch.
    pub fn fetched(&self, result: Option<ProducerIdentity>) {
        let mut state = self.state.lock();
        state.fetching = false;
        if result.is_some() {
            state.current = result;
        }
    }

    /// Installs an identity obtained elsewhere (a transactional producer's `init_transactions`).
    pub fn set(&self, identity: ProducerIdentity) {
        let mut state = self.state.lock();
        state.current = Some(identity);
        state.fetching = false;
    }

    /// Drops the identity `used` (a batch numbered with it failed for good), so the next batches
    /// get a new one. A newer identity is kept.
    pub fn reset(&self, used: i64) {
        let mut state = self.state.lock();
        if state.current.is_some_and(|(id, _)| id == used) {
            tracing::info!(producer_id = used, "a numbered batch failed: asking for a new producer id");
            state.current = None;
        }
    }
}

/// Asks any node for a producer id (InitProducerId without a transactional id).
pub(crate) async fn init_producer_id(cluster: &Cluster) -> Result<ProducerIdentity, ClientError> {
    let timeout = cluster.request_timeout();
    let response = on_any_node(cluster, |node| async move {
        let request = timed(InitProducerIdRequest::default(), timeout);
        node.transactions().init_producer_id(request).await.map(tonic::Response::into_inner)
    })
    .await?;
    let epoch = i16::try_from(response.producer_epoch).unwrap_or(0);
    Ok((response.producer_id, epoch))
}
