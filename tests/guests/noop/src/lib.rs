//! A policy that answers `none` and `{}` without looking at its input.
//!
//! It measures the contract, not a policy: what a `decide` call costs when the
//! host lowers the request into the guest, the bindings lift it into Rust
//! values and free them again, and nothing else happens. The benchmark
//! `contract_floor` (in `tests/integration`) sets the default policy against it.
//! It uses the same allocator as the shipped policies, so the difference is the
//! routing table alone.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "status-policy",
});

use exports::kubestellar::status_policy::policy::{
    Decision, Guest, ReportedStatus, Request, WorkloadRef,
};

#[global_allocator]
static ALLOC: default_policy::pool::Pool = default_policy::pool::Pool::new();

struct Noop;

impl Guest for Noop {
    fn decide(_req: Request) -> Decision {
        Decision::None
    }

    fn aggregate(_object: WorkloadRef, _reported: Vec<ReportedStatus>) -> Result<String, String> {
        Ok("{}".into())
    }
}

export!(Noop);
