//! The routing table in native Rust.
//!
//! Never used by the controller, which always runs the Wasm policy. It is the
//! baseline of the `decide` benchmark and the differential oracle that tests
//! compare the default policy against, so it is written independently of the
//! guest's code, straight from the table in KubeStellar's design note.

use std::collections::BTreeSet;

use super::{Decision, Request};

/// Decides as the default policy must.
pub fn decide(req: &Request) -> Decision {
    let singleton: BTreeSet<&String> = req.singleton_wecs.iter().collect();
    let multi: BTreeSet<&String> = req.multi_wec_wecs.iter().collect();
    let sorted = |set: BTreeSet<&String>| set.into_iter().cloned().collect::<Vec<_>>();
    let by_count = |set: BTreeSet<&String>| {
        if set.len() == 1 {
            Decision::Singleton(sorted(set))
        } else {
            Decision::MultiWec(sorted(set))
        }
    };
    match (
        req.want_singleton_reported_state,
        req.want_multi_wec_reported_state,
    ) {
        (true, true) => by_count(&singleton | &multi),
        (true, false) => Decision::Singleton(sorted(singleton)),
        (false, true) => by_count(multi),
        (false, false) => Decision::None,
    }
}
