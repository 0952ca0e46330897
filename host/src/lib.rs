//! status-router: returns the status that KubeStellar's WECs report onto the
//! workload objects of a WDS, with the routing decided by a Wasm policy.
//!
//! Layers, each importing only those below it (`docs/architecture.md`; a test
//! in `layers.rs` enforces it):
//! - [`controller`], [`hotswap`], [`ops`]: the status controller (watches,
//!   index, workers, the split of KubeStellar's `syncWorkloadObject`, the WDS
//!   writer, CombinedStatus), swapping the policy while it runs, and running
//!   as replicas (leader election, the HTTP endpoints);
//! - [`runtime`]: bounded API calls, watch restarts, the workqueue, metrics,
//!   health and the leadership role;
//! - [`harness`]: table-driven policy and collector tests, for the CLI and
//!   for policy authors;
//! - [`policy`] (the policy engine, which loads and sandboxes policy
//!   components, and the active policy) and [`collector`] (StatusCollectors
//!   and their CEL engine, pure);
//! - [`kubestellar`]: KubeStellar's types, labels and CRDs.

pub mod collector;
pub mod controller;
pub mod harness;
pub mod hotswap;
pub mod kubestellar;
pub mod ops;
pub mod policy;
pub mod runtime;

#[cfg(test)]
mod layers;
