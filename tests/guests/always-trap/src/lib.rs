//! A policy that traps in every call, for the hot-swap tests.
//!
//! It is a well-formed component of the right world and version, so only its
//! embedded self-test (the default policy's conformance cases, in the custom
//! section `status-router-self-test`, exactly as `guest/src/lib.rs` embeds
//! them) can tell that it must not serve: a host that validates modules
//! before swapping them in rejects it.

// Only in the Wasm build: the exported symbols are meaningless natively.
#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "status-policy",
    });

    use exports::kubestellar::status_policy::policy::{
        Decision, Guest, ReportedStatus, Request, WorkloadRef,
    };

    struct AlwaysTrap;

    impl Guest for AlwaysTrap {
        fn decide(_req: Request) -> Decision {
            core::arch::wasm32::unreachable()
        }

        fn aggregate(
            _object: WorkloadRef,
            _reported: Vec<ReportedStatus>,
        ) -> Result<String, String> {
            core::arch::wasm32::unreachable()
        }
    }

    export!(AlwaysTrap);

    /// The self-test a host runs before it swaps this module in: every case
    /// traps, so the module is rejected.
    #[used]
    #[unsafe(link_section = "status-router-self-test")]
    static SELF_TEST: [u8; include_bytes!("../../../policies/conformance.yaml").len()] =
        *include_bytes!("../../../policies/conformance.yaml");
}
