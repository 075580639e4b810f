//! Producer ids (and, to come, the transaction coordinator).
//!
//! - [`producer_ids`]: the broker's block of producer ids, refilled through the controller.
//! - [`init_producer_id`]: the InitProducerId handler.

pub mod init_producer_id;
pub mod producer_ids;
