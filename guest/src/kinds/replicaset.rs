//! apps/ReplicaSet, as KubeStellar v0.30 aggregates it
//! (`pkg/status/aggregation/replicaset.go`).
//!
//! Every counter takes the minimum; `conditions` keeps only a
//! `ReplicaFailure` condition (the one a ReplicaSet has when it cannot create
//! pods), whatever its status, if some WEC reports one. Every other field is
//! left out.

use super::rules::{Conditions, Rules};

pub const RULES: Rules = Rules {
    min: &[
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ],
    max: &[],
    agreed: &[],
    conditions: Conditions::KeepOne {
        type_: "ReplicaFailure",
        reason: None,
    },
};

#[cfg(test)]
mod tests {
    use super::super::tests::agg;
    use serde_json::{Value, json};

    fn status(r: i64, labeled: i64, ready: i64, avail: i64, gen_: i64) -> Value {
        json!({"replicas": r, "fullyLabeledReplicas": labeled, "readyReplicas": ready,
               "availableReplicas": avail, "observedGeneration": gen_})
    }

    #[test]
    fn upstream_vectors() {
        // KubeStellar's test PR #3739.
        let mut want = status(4, 3, 2, 2, 3);
        want["conditions"] = json!([]);
        assert_eq!(
            agg(
                "apps",
                "ReplicaSet",
                &[status(6, 6, 5, 5, 4), status(4, 3, 2, 2, 3)]
            ),
            want
        );
        // aggregation_test.go upstream: the ReplicaFailure condition is kept.
        let failure = json!({"type": "ReplicaFailure", "status": "True"});
        let mut a = status(4, 4, 3, 3, 2);
        a["conditions"] = json!([failure]);
        let mut b = status(3, 3, 2, 2, 3);
        b["conditions"] = json!([{"type": "Progressing", "status": "True"}]);
        let mut want = status(3, 3, 2, 2, 2);
        want["conditions"] = json!([failure]);
        assert_eq!(agg("apps", "ReplicaSet", &[a, b]), want);
    }
}
