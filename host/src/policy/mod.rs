//! The policy engine: loads routing policies compiled as WebAssembly components
//! and runs them in a sandbox.
//!
//! A policy decides which handler returns an object's status (singleton,
//! multi-WEC, or none) and aggregates multi-WEC statuses. Policies are
//! untrusted input that operators swap at run time, so every call runs under
//! a deadline and a memory cap, and every failure is an error value: a policy
//! can never crash the controller nor produce a decision by failing.
//!
//! Following wasmtime's component examples: one [`PolicyEngine`] (one
//! `wasmtime::Engine`) per process, each component compiled once into a
//! [`Policy`] holding an `InstancePre`, and one [`PolicyInstance`] per worker
//! reused across calls (re-instantiated after a trap).

pub mod active;
mod cache;
mod engine;
mod error;
mod instance;
mod json;
mod limits;
mod load;
pub mod native;
mod producers;

pub use cache::CompiledCache;
pub use engine::PolicyEngine;
pub use error::PolicyError;
pub use instance::PolicyInstance;
pub use json::{
    AggregateDoc, DecisionDoc, Handler, ObjectDoc, ReportedDoc, RequestDoc, from_json_or_yaml,
};
pub use limits::{INSTANTIATE_DEADLINE, Limits, RECYCLE_AT};
pub use load::{Policy, PolicyInfo};
pub use producers::producers;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "status-policy",
    additional_derives: [PartialEq, Eq],
});

/// The bindgen types of the WIT package, used as they are by the host.
pub use exports::kubestellar::status_policy::policy::{
    Decision, ReportedStatus, Request, WorkloadRef,
};

/// The WIT package and version this host speaks.
pub const WIT_PACKAGE: &str = "kubestellar:status-policy";
/// The version of [`WIT_PACKAGE`] this host speaks.
pub const WIT_VERSION: &str = "0.1.0";
/// The interface every policy exports, with its version.
pub const POLICY_INTERFACE: &str = "kubestellar:status-policy/policy@0.1.0";

/// The default policy's component, built from `guest/` by the build script.
pub const DEFAULT_POLICY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/default.wasm"));
