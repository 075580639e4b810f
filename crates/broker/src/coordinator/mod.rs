//! The coordinator machinery shared by consumer groups and (later) transactions, as in Kafka: an
//! internal replicated topic holds the state, and the coordinator of a key is the leader of the
//! topic's partition for that key.
//!
//! - [`codec`]: the binary encoding of coordinator records.
//! - [`placement`]: which partition (and so which coordinator) a key belongs to.
//! - [`shard`]: one partition of the internal topic materialised in memory on its leader:
//!   loaded from the log, written with `acks=all` before anything is answered.
//! - [`shards`]: the shards of one internal topic this broker leads, opened and closed as
//!   leadership moves, looked up by key.

pub mod codec;
pub mod placement;
pub mod shard;
pub mod shards;
