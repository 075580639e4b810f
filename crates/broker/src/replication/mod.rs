//! Partition replication, Kafka's way: followers pull from leaders.
//!
//! - [`serve`]: the leader's side: `ReplicaFetch` (records from a follower's log end offset, the
//!   follower's position recorded, the high watermark moved) and `OffsetForLeaderEpoch`.
//! - [`fetcher`]: the follower's side: one task per leader broker fetching every partition this
//!   broker follows from it, truncating to the leader's epoch end offsets first (KIP-101/279).
//! - [`manager`]: keeps the fetchers in step with the cluster image.
//! - [`isr`]: the leader's ISR management: drops lagging members and adds caught-up replicas
//!   through the controller's `AlterPartition`, guarded by the partition epoch.
//! - [`followers`]: the leader's bookkeeping of follower positions.
//! - [`wait`]: `acks=all`: waiting until the high watermark covers appended records.

pub mod fetcher;
pub mod followers;
pub mod isr;
pub mod manager;
pub mod serve;
pub mod wait;
