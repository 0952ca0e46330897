//! The default routing policy of status-router, compiled to a WebAssembly component.
//!
//! `decide` implements KubeStellar's routing table (see [`table`]), and `aggregate`
//! KubeStellar v0.30's rules for the kinds it knows (see [`kinds`]) and the
//! generic multi-WEC rules of its design proposal for every other kind (see
//! [`aggregate`]).
//! The crate doubles as the template for new policies: copy it, change `decide`
//! or `aggregate`, and build it with `cargo xtask build-policies`.
//!
//! The logic is plain Rust over plain types, so it is unit-tested natively and
//! other policies reuse it with the `component` feature off (which leaves out
//! this policy's bindings and exports).

pub mod aggregate;
pub mod conditions;
pub mod kinds;
pub mod pool;
pub mod reports;
pub mod table;

#[cfg(all(feature = "component", target_arch = "wasm32"))]
mod component {
    wit_bindgen::generate!({
        path: "../wit",
        world: "status-policy",
    });

    use exports::kubestellar::status_policy::policy::{
        Decision, Guest, ReportedStatus, Request, WorkloadRef,
    };

    use crate::table::Route;

    // Small-block free lists: see `crate::pool`. Copy these two lines into a
    // new policy: on a typical request they save about 15 % of a call.
    #[global_allocator]
    static ALLOC: crate::pool::Pool = crate::pool::Pool::new();

    struct DefaultPolicy;

    impl Guest for DefaultPolicy {
        fn decide(req: Request) -> Decision {
            match crate::table::route(
                req.want_singleton_reported_state,
                req.want_multi_wec_reported_state,
                req.singleton_wecs,
                req.multi_wec_wecs,
            ) {
                Route::Singleton(wecs) => Decision::Singleton(wecs),
                Route::MultiWec(wecs) => Decision::MultiWec(wecs),
                Route::None => Decision::None,
            }
        }

        fn aggregate(object: WorkloadRef, reported: Vec<ReportedStatus>) -> Result<String, String> {
            crate::kinds::aggregate_json(
                &object.group,
                &object.kind,
                reported.iter().map(|r| (r.wec.as_str(), r.status.as_str())),
            )
        }
    }

    export!(DefaultPolicy);

    /// The policy's self-test: the conformance cases of the routing table and
    /// the case file of every kind, joined by `build.rs`. A host checks them
    /// before it hot-swaps this module in.
    #[used]
    #[unsafe(link_section = "status-router-self-test")]
    static SELF_TEST: [u8; include_bytes!(concat!(env!("OUT_DIR"), "/self-test.yaml")).len()] =
        *include_bytes!(concat!(env!("OUT_DIR"), "/self-test.yaml"));
}
