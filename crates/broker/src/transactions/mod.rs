//! Producer ids and the transaction coordinator (Kafka's exactly-once machinery on the broker).
//!
//! - [`producer_ids`]: the broker's block of producer ids, refilled through the controller.
//! - [`records`]: the `__transaction_state` records.
//! - [`state`]: the transaction state machine, as pure decisions.
//! - [`coordinator`]: the `__transaction_state` shards this broker leads and the calls on them,
//!   timeouts and recovery of unfinished commits and aborts.
//! - [`markers`]: COMMIT/ABORT markers, written locally (WriteTxnMarkers) or sent to the leaders.
//! - One file per RPC: [`init_producer_id`], [`find_coordinator`], [`add_partitions`] (with
//!   AddOffsetsToTxn), [`end_txn`], [`txn_offset_commit`], [`describe`].

pub mod add_partitions;
pub mod coordinator;
pub mod describe;
pub mod end_txn;
pub mod find_coordinator;
pub mod init_producer_id;
pub mod markers;
pub mod producer_ids;
pub mod records;
pub mod state;
pub mod txn_offset_commit;
