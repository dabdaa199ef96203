//! The fault-injection harness (issue 11): workloads run against a real cluster while a nemesis
//! injects faults, and checkers that read the recorded histories.
//!
//! * [`history`]: what a workload records — each operation's invocation and its completion
//!   (ok, failed for certain, or unknown);
//! * [`checker`]: one checker per workload, pure functions of a history, unit-tested on
//!   hand-made histories that must pass and must fail;
//! * [`workload`]: clients that drive the cluster through the official client and record
//!   histories;
//! * [`net`]: one network namespace per server on a bridge, and partitions as nftables rules;
//! * [`report`]: histories and the nemesis's schedule as text, and the shortest window of a
//!   history that shows an anomaly.
//!
//! The `chaos` binary (in `cmd`) puts these together with the servers and the nemesis.

pub mod checker;
pub mod history;
pub mod net;
pub mod report;
pub mod workload;
