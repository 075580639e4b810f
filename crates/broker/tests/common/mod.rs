//! The in-process broker harness of `vltava-testkit`, as the broker's API tests use it.
#![allow(unused_imports)]

pub use vltava_testkit::inprocess::{StoppedBroker, TestBroker, batch, code, values};
