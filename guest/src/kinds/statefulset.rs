//! apps/StatefulSet, by the rule KubeStellar proposes (open PR #3594,
//! `pkg/status/aggregation/statefulset.go` there).
//!
//! Every counter takes the minimum; `currentRevision` and `updateRevision`
//! stay only where every WEC reports the same one (a rollout that has reached
//! every WEC); `conditions` by the generic rule, sorted by `type`. Every other
//! field (`collisionCount`, ...) is left out, as the proposal leaves it out.
//!
//! One departure from the proposal: `availableReplicas` takes the minimum
//! too. The proposal leaves it out, but since Kubernetes 1.22 the API server
//! serializes a StatefulSet's `availableReplicas` even when it is 0, so a
//! status without it reads as "0 available" on the WDS, and is never equal to
//! what was written.

use super::rules::{Conditions, Rules};

pub const RULES: Rules = Rules {
    min: &[
        "replicas",
        "readyReplicas",
        "currentReplicas",
        "updatedReplicas",
        "availableReplicas",
        "observedGeneration",
    ],
    max: &[],
    agreed: &["currentRevision", "updateRevision"],
    conditions: Conditions::ByType,
};

#[cfg(test)]
mod tests {
    use super::super::tests::agg;
    use serde_json::json;

    #[test]
    fn counters_take_the_minimum_and_revisions_need_agreement() {
        let a = json!({"replicas": 3, "readyReplicas": 3, "currentReplicas": 3, "updatedReplicas": 3,
                       "observedGeneration": 4, "currentRevision": "web-1", "updateRevision": "web-2",
                       "availableReplicas": 3, "collisionCount": 0});
        let b = json!({"replicas": 3, "readyReplicas": 1, "currentReplicas": 2, "updatedReplicas": 1,
                       "observedGeneration": 4, "currentRevision": "web-1", "updateRevision": "web-3"});
        assert_eq!(
            agg("apps", "StatefulSet", &[a, b]),
            json!({"replicas": 3, "readyReplicas": 1, "currentReplicas": 2, "updatedReplicas": 1,
                   "availableReplicas": 0, "observedGeneration": 4, "currentRevision": "web-1",
                   "conditions": []})
        );
    }

    #[test]
    fn conditions_are_three_valued_by_type_and_sorted() {
        let t1 = "2024-01-01T00:00:00Z";
        let t2 = "2024-01-02T00:00:00Z";
        let a = json!({"conditions": [{"type": "Zeta", "status": "True", "lastTransitionTime": t1},
                                      {"type": "Alpha", "status": "True", "lastTransitionTime": t2, "reason": "A"}]});
        let b = json!({"conditions": [{"type": "Alpha", "status": "False", "lastTransitionTime": t1, "reason": "B"}]});
        let out = agg("apps", "StatefulSet", &[a, b]);
        assert_eq!(
            out["conditions"],
            json!([{"type": "Alpha", "status": "False", "lastTransitionTime": t2, "reason": "A"},
                   {"type": "Zeta", "status": "Unknown", "lastTransitionTime": t1}])
        );
    }
}
