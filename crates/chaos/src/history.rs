//! The recorded history of a run: every send, acknowledgement, read, commit, transaction outcome,
//! fault and leadership change, with the milliseconds since the run started.
//!
//! Values identify their send: `{client}:{n}` where `n` counts the client's sends from 0, so a
//! value says which producer wrote it and in which order. A transactional value is
//! `{client}:{n}` too; [`Event::TxnEnd`] lists the values of each transaction.

use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A producer handed a record to the SDK.
    Send {
        /// Milliseconds since the start.
        t: u64,
        /// The producer.
        client: String,
        /// The record's key.
        key: String,
        /// The record's value.
        value: String,
        /// The transaction it belongs to, if any.
        txn: Option<String>,
    },
    /// The cluster acknowledged a record (`acks=all`).
    Ack {
        /// Milliseconds since the start.
        t: u64,
        /// The producer.
        client: String,
        /// The record's value.
        value: String,
        /// Where it was stored.
        partition: i32,
        /// At which offset.
        offset: i64,
    },
    /// The SDK gave up on a record (it may or may not be stored).
    SendFailed {
        /// Milliseconds since the start.
        t: u64,
        /// The producer.
        client: String,
        /// The record's value.
        value: String,
        /// The error.
        error: String,
    },
    /// A transaction ended.
    TxnEnd {
        /// Milliseconds since the start.
        t: u64,
        /// The producer.
        client: String,
        /// The transaction's name (`{client}/{n}`).
        txn: String,
        /// `commit` or `abort` when the call succeeded; `unknown` when it failed (its fate is
        /// whatever the coordinator decided).
        outcome: TxnOutcome,
        /// The values sent in it.
        values: Vec<String>,
    },
    /// A consumer returned a record.
    Read {
        /// Milliseconds since the start.
        t: u64,
        /// The consumer.
        client: String,
        /// Whether it is a group member (its reads count for skip detection).
        group: bool,
        /// Whether it reads with `read_committed`.
        committed: bool,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
        /// The value.
        value: String,
    },
    /// A group member committed an offset (the next one to read) for a partition.
    Commit {
        /// When the commit was sent.
        t_start: u64,
        /// When it was answered.
        t: u64,
        /// The member.
        client: String,
        /// Partition.
        partition: i32,
        /// The committed offset.
        offset: i64,
        /// Whether the coordinator accepted it.
        ok: bool,
    },
    /// A group member learned the committed offset of a partition it was assigned.
    Fetched {
        /// Milliseconds since the start.
        t: u64,
        /// The member.
        client: String,
        /// Partition.
        partition: i32,
        /// The committed offset it found (-1: none).
        offset: i64,
    },
    /// A fault began or ended.
    Fault {
        /// Milliseconds since the start.
        t: u64,
        /// What it is ("kill broker-2", "partition ...").
        description: String,
        /// The fault's kind ("kill", "pause", "partition", ...).
        kind: String,
        /// True at its start, false once healed.
        start: bool,
    },
    /// The observer saw a partition's leader (or a coordinator) change.
    Leader {
        /// Milliseconds since the start.
        t: u64,
        /// What it leads: "p3", "group", "txn".
        of: String,
        /// The broker id (-1: none).
        broker: i32,
    },
    /// An admin operation of the workload.
    Admin {
        /// Milliseconds since the start.
        t: u64,
        /// What it did.
        op: String,
        /// Whether it succeeded.
        ok: bool,
    },
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxnOutcome {
    /// `commit_transaction` succeeded.
    Commit,
    /// `abort_transaction` succeeded.
    Abort,
    /// The end call failed: the coordinator decided, the producer does not know.
    Unknown,
}

impl Event {
    /// When it happened (ms since the start).
    pub fn t(&self) -> u64 {
        match self {
            Event::Send { t, .. }
            | Event::Ack { t, .. }
            | Event::SendFailed { t, .. }
            | Event::TxnEnd { t, .. }
            | Event::Read { t, .. }
            | Event::Commit { t, .. }
            | Event::Fetched { t, .. }
            | Event::Fault { t, .. }
            | Event::Leader { t, .. }
            | Event::Admin { t, .. } => *t,
        }
    }
}

/// The recorder every workload task appends to.
#[derive(Debug)]
pub struct History {
    start: Instant,
    events: Mutex<Vec<Event>>,
}

impl History {
    /// An empty history starting now.
    pub fn new() -> History {
        History { start: Instant::now(), events: Mutex::new(Vec::new()) }
    }

    /// Milliseconds since the start.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Appends an event.
    pub fn push(&self, event: Event) {
        self.events.lock().expect("history lock").push(event);
    }

    /// Everything recorded so far, in the order it was recorded.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("history lock").clone()
    }
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

/// Splits a value `{client}:{n}` into its client and send number.
pub fn parse_value(value: &str) -> Option<(&str, u64)> {
    let (client, n) = value.rsplit_once(':')?;
    Some((client, n.parse().ok()?))
}
