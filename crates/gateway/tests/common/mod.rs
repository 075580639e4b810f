//! The in-process broker-and-gateway harness of `vltava-testkit`, as the gateway's tests use it.
#![allow(unused_imports)]

pub use vltava_testkit::inprocess::{Cluster, Running, WAIT, batch, bounded, code, values};
