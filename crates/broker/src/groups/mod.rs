//! Consumer groups, coordinated by the leaders of the `__consumer_offsets` partitions.
//!
//! [`records`] holds the versioned records of the `__consumer_offsets` topic;
//! [`consumer_group`] a group's state, rebuilt by replaying those records; [`heartbeat`] the
//! coordinator's decisions (KIP-848 membership, incremental reconciliation, commit fencing);
//! [`assignor`] the server-side partition assignors (`uniform`, `range`); [`shard_state`] the
//! groups and committed offsets of one `__consumer_offsets` partition as a coordinator shard
//! holds them; [`coordinator`] the shards this broker leads and the operations routed to them.
//! The RPC handlers: [`find_coordinator`], [`heartbeat_rpc`], [`describe`], [`alter_offsets`]
//! and [`service`] (offsets, listing and deleting groups).
//!
//! Kafka clients' classic protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, client-side
//! assignors) runs on the same coordinator: [`classic`] is one group's state machine,
//! [`classic_groups`] the groups of the shards this broker leads, [`classic_rpc`] the handlers.
//! A group id is either classic or KIP-848 while it has members; both commit offsets the same way.
//!
//! Durability: every commit and group change is appended to `__consumer_offsets` with
//! `acks=all` before it is answered, so it survives the loss of any broker the partition's
//! `min.insync.replicas` allows.

pub mod alter_offsets;
pub mod assignor;
pub mod classic;
pub mod classic_groups;
pub mod classic_rpc;
pub mod consumer_group;
pub mod consumer_protocol;
pub mod coordinator;
pub mod describe;
pub mod find_coordinator;
pub mod heartbeat;
pub mod heartbeat_rpc;
pub mod partition_offsets;
pub mod records;
pub mod service;
pub mod shard_state;
