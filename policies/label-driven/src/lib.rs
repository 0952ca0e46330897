//! The `label-driven` routing policy: each workload object chooses its status
//! handler with a label or annotation, and how numbers aggregate with an
//! annotation.
//!
//! For operators whose objects need different treatment under one set of
//! Bindings: a Deployment spread over several WECs may want the total of its
//! `readyReplicas` rather than the minimum, a ConfigMap may want no status at
//! all, and a singleton copy may be wanted from one WEC of several. The owner
//! of the object says so on the object; objects that say nothing get the
//! default policy's behaviour, so the policy is a drop-in replacement.
//!
//! - [`handler`]: `status-router.kubestellar.io/handler` picks the handler.
//! - [`numbers`]: `status-router.kubestellar.io/aggregate-numbers` picks how
//!   numbers combine in a multi-WEC aggregate.
//!
//! Labels and annotations arrive from the host with the object, so the
//! decision stays a pure function of the request, as the contract requires.

pub mod handler;
pub mod numbers;

/// The value of `key` among (key, value) pairs.
pub fn lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

// Only in the Wasm build: natively, a test run that also selects
// `default-policy` unifies its `component` feature on, and its exported
// `decide`/`aggregate` symbols would clash with these at link time.
#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "status-policy",
    });

    use exports::kubestellar::status_policy::policy::{
        Decision, Guest, ReportedStatus, Request, WorkloadRef,
    };

    use default_policy::table::Route;

    use crate::handler::{Handler, route};

    // Small-block free lists: see `default_policy::pool`.
    #[global_allocator]
    static ALLOC: default_policy::pool::Pool = default_policy::pool::Pool::new();

    struct LabelDriven;

    impl Guest for LabelDriven {
        fn decide(req: Request) -> Decision {
            let handler = Handler::of(&req.object.labels, &req.object.annotations);
            match route(
                handler,
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
            crate::numbers::aggregate(
                &object.group,
                &object.kind,
                &object.annotations,
                reported.iter().map(|r| (r.wec.as_str(), r.status.as_str())),
            )
        }
    }

    export!(LabelDriven);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_key_or_nothing() {
        let pairs = vec![
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), String::new()),
        ];
        assert_eq!(lookup(&pairs, "a"), Some("1"));
        assert_eq!(lookup(&pairs, "b"), Some(""));
        assert_eq!(lookup(&pairs, "c"), None);
    }
}
