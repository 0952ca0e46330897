//! apps/DaemonSet, as KubeStellar v0.30 aggregates it
//! (`pkg/status/aggregation/daemonset.go`).
//!
//! Every counter takes the minimum except `numberMisscheduled`, the worst of
//! any WEC. There is no `conditions` field, and every other field
//! (`numberUnavailable`, `collisionCount`) is left out, as upstream.

use super::rules::{Conditions, Rules};

pub const RULES: Rules = Rules {
    min: &[
        "currentNumberScheduled",
        "desiredNumberScheduled",
        "numberReady",
        "observedGeneration",
        "updatedNumberScheduled",
        "numberAvailable",
    ],
    max: &["numberMisscheduled"],
    agreed: &[],
    conditions: Conditions::Omit,
};

#[cfg(test)]
mod tests {
    use super::super::tests::agg;
    use serde_json::{Value, json};

    fn status(cur: i64, mis: i64, des: i64, ready: i64, gen_: i64, upd: i64, avail: i64) -> Value {
        json!({"currentNumberScheduled": cur, "numberMisscheduled": mis, "desiredNumberScheduled": des,
               "numberReady": ready, "observedGeneration": gen_, "updatedNumberScheduled": upd,
               "numberAvailable": avail})
    }

    #[test]
    fn upstream_vector_misscheduled_is_the_maximum() {
        // KubeStellar's test PR #3739.
        let out = agg(
            "apps",
            "DaemonSet",
            &[status(10, 2, 10, 8, 3, 10, 8), status(5, 5, 5, 3, 2, 4, 3)],
        );
        assert_eq!(out, status(5, 5, 5, 3, 2, 4, 3));
    }

    #[test]
    fn no_conditions_and_no_other_fields() {
        let mut a = status(3, 0, 3, 2, 2, 2, 2);
        a["numberUnavailable"] = json!(1);
        a["conditions"] = json!([{"type": "X", "status": "True"}]);
        let b = status(2, 1, 2, 1, 3, 1, 1);
        assert_eq!(
            agg("apps", "DaemonSet", &[a, b]),
            status(2, 1, 2, 1, 2, 1, 1)
        );
    }
}
