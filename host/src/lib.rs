//! status-router: returns the status that KubeStellar's WECs report onto the
//! workload objects of a WDS, with the routing decided by a Wasm policy.
//!
//! The crate keeps three concerns apart, each behind a small interface:
//! - [`controller`]: the watches, the index, the workqueue and the split of
//!   KubeStellar's `syncWorkloadObject`, with the WDS reads and writes;
//! - [`kubestellar`]: KubeStellar's Binding and WorkStatus types and labels;
//! - [`policy`]: the policy engine, which loads and sandboxes policy components;
//! - [`harness`]: table-driven policy tests, for the CLI and for policy authors;
//! - [`leader`], [`health`], [`serve`]: running as replicas in a cluster
//!   (leader election, probes, the HTTP endpoints).

pub mod controller;
pub mod harness;
pub mod health;
pub mod hotswap;
pub mod kubestellar;
pub mod leader;
pub mod policy;
pub mod serve;
