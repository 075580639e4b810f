//! Raft messages between controllers over gRPC (`ControllerRaftService.Step`).
//!
//! Each peer has its own task and bounded queue, so a slow or dead peer never delays the Raft loop
//! or the other peers: when its queue is full messages are dropped (Raft resends what matters).
//! Failures are reported back to the node so it can probe the peer and retry snapshots.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use protobuf::Message as _;
use raft::prelude::{Message, MessageType};
use tokio::sync::mpsc;
use vltava_common::grpc::TracedChannel;
use vltava_proto::v1::RaftBatch;
use vltava_proto::v1::controller_raft_service_client::ControllerRaftServiceClient;

/// What the transport tells the node.
#[derive(Debug)]
pub enum Feedback {
    /// A message to this peer could not be delivered.
    Unreachable(u64),
    /// A snapshot was sent to this peer (true) or failed (false).
    SnapshotSent(u64, bool),
}

struct Peer {
    address: String,
    queue: mpsc::Sender<Message>,
}

/// Sends Raft messages to peer controllers.
#[derive(Clone)]
pub struct Transport {
    cluster_id: String,
    peers: Arc<Mutex<HashMap<u64, Peer>>>,
    feedback: mpsc::Sender<Feedback>,
}

const QUEUE: usize = 4096;

impl Transport {
    /// A transport for `cluster_id`, and the channel on which it reports failures.
    pub fn new(cluster_id: String) -> (Self, mpsc::Receiver<Feedback>) {
        let (tx, rx) = mpsc::channel(1024);
        (Self { cluster_id, peers: Arc::new(Mutex::new(HashMap::new())), feedback: tx }, rx)
    }

    /// Sets the peers (every controller but `me`), starting and stopping their tasks as needed.
    pub fn set_peers(&self, controllers: &BTreeMap<u64, String>, me: u64) {
        let mut peers = self.peers.lock();
        peers.retain(|id, p| controllers.get(id) == Some(&p.address));
        for (id, address) in controllers {
            if *id == me || peers.contains_key(id) {
                continue;
            }
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(peer_task(*id, me, address.clone(), self.cluster_id.clone(), rx, self.feedback.clone()));
            peers.insert(*id, Peer { address: address.clone(), queue: tx });
        }
    }

    /// Queues messages for their peers; never blocks.
    pub fn send(&self, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        let peers = self.peers.lock();
        for m in messages {
            match peers.get(&m.to) {
                Some(p) => {
                    if p.queue.try_send(m).is_err() {
                        tracing::debug!("raft queue full; message dropped");
                    }
                }
                None => {
                    let _ = self.feedback.try_send(Feedback::Unreachable(m.to));
                }
            }
        }
    }
}

async fn peer_task(
    to: u64,
    me: u64,
    address: String,
    cluster_id: String,
    mut rx: mpsc::Receiver<Message>,
    feedback: mpsc::Sender<Feedback>,
) {
    let mut client: Option<ControllerRaftServiceClient<TracedChannel>> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let snapshots: Vec<u64> =
            batch.iter().filter(|m| m.get_msg_type() == MessageType::MsgSnapshot).map(|m| m.to).collect();
        if client.is_none() {
            client = connect(&address).await;
        }
        let delivered = match client.as_mut() {
            Some(c) => {
                let req = RaftBatch {
                    cluster_id: cluster_id.clone(),
                    from: me,
                    messages: batch.iter().map(|m| m.write_to_bytes().expect("raft messages encode").into()).collect(),
                };
                let mut request = tonic::Request::new(req);
                request.set_timeout(Duration::from_secs(5));
                c.step(request).await.is_ok()
            }
            None => false,
        };
        for id in snapshots {
            let _ = feedback.try_send(Feedback::SnapshotSent(id, delivered));
        }
        if !delivered {
            client = None;
            let _ = feedback.try_send(Feedback::Unreachable(to));
            // Drain what queued up meanwhile: Raft will resend after its next probe.
            while rx.try_recv().is_ok() {}
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn connect(address: &str) -> Option<ControllerRaftServiceClient<TracedChannel>> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .ok()?
        .connect_timeout(Duration::from_millis(500))
        .tcp_nodelay(true);
    let channel = endpoint.connect().await.ok()?;
    Some(
        ControllerRaftServiceClient::new(vltava_common::grpc::traced(channel))
            .max_decoding_message_size(256 * 1024 * 1024)
            .max_encoding_message_size(256 * 1024 * 1024),
    )
}
