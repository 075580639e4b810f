//! `vltava-chaos`: proof of safety by fault injection.
//!
//! A run starts a real cluster (3 controllers, 3 to 5 brokers, a gateway), every process in its
//! own network namespace with its own address, runs a recorded workload against it while a
//! seeded schedule injects faults (kill -9, SIGSTOP, network partitions of several shapes, lossy
//! links, a full disk), heals everything, reads every partition back and checks the history:
//! lost, duplicated, reordered or inconsistent records, aborted reads, committed offsets going
//! back and consumption that skips records.
//!
//! # Layout
//! - [`run`]: one run, start to report ([`run::RunConfig`], [`run::RunReport`]).
//! - [`net`]: network namespaces, the bridge, and nftables rules for partitions and loss.
//! - [`cluster`]: the `vltava` processes in their namespaces; kill, restart, pause, tmpfs.
//! - [`schedule`]: the seeded fault schedule; [`faults`]: applying and healing a fault.
//! - [`workload`]: producers, transactional producers, group members, a reader, admin calls.
//! - [`history`]: the recorded events; [`observer`]: who leads what, once a second.
//! - [`final_read`]: the read of the healed cluster; [`checker`]: the history checker.
//! - [`svg`]: the picture of a run.
//! - [`error`]: the harness's error type, [`error::ChaosError`].

pub mod checker;
pub mod cluster;
pub mod error;
pub mod faults;
pub mod final_read;
pub mod history;
pub mod net;
pub mod observer;
pub mod run;
pub mod schedule;
pub mod svg;
pub mod workload;

#[cfg(test)]
mod checker_tests;
