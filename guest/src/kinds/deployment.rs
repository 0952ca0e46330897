//! apps/Deployment, as KubeStellar v0.30 aggregates it
//! (`pkg/status/aggregation/deployment.go`).
//!
//! The counters show what every WEC can vouch for, except
//! `unavailableReplicas`, the worst of any WEC. `conditions` keeps only a
//! `Progressing` condition with reason `ProgressDeadlineExceeded`, the one
//! Argo CD's health check looks at, so that one stuck WEC marks the whole
//! Deployment degraded. Every other field (`collisionCount`, the `Available`
//! condition, ...) is left out, as upstream leaves it out.

use super::rules::{Conditions, Rules};

pub const RULES: Rules = Rules {
    min: &[
        "replicas",
        "updatedReplicas",
        "availableReplicas",
        "readyReplicas",
        "observedGeneration",
    ],
    max: &["unavailableReplicas"],
    agreed: &[],
    conditions: Conditions::KeepOne {
        type_: "Progressing",
        reason: Some("ProgressDeadlineExceeded"),
    },
};

#[cfg(test)]
mod tests {
    use super::super::tests::agg;
    use serde_json::json;

    fn status(
        r: i64,
        avail: i64,
        ready: i64,
        upd: i64,
        unavail: i64,
        gen_: i64,
    ) -> serde_json::Value {
        json!({"replicas": r, "availableReplicas": avail, "readyReplicas": ready,
               "updatedReplicas": upd, "unavailableReplicas": unavail, "observedGeneration": gen_})
    }

    #[test]
    fn upstream_vector_unavailable_is_the_maximum() {
        // KubeStellar's test PR #3739.
        let mut want = status(3, 2, 2, 3, 3, 1);
        want["conditions"] = json!([]);
        let out = agg(
            "apps",
            "Deployment",
            &[status(5, 4, 3, 5, 1, 2), status(3, 2, 2, 3, 3, 1)],
        );
        assert_eq!(out, want);
    }

    #[test]
    fn only_a_progress_deadline_condition_is_kept_and_other_fields_go() {
        let stuck =
            json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"});
        let mut a = status(3, 3, 3, 3, 0, 2);
        a["conditions"] = json!([stuck]);
        a["collisionCount"] = json!(1);
        let mut b = status(3, 3, 3, 3, 0, 2);
        b["conditions"] = json!([{"type": "Available", "status": "True"}]);
        let mut want = status(3, 3, 3, 3, 0, 2);
        want["conditions"] = json!([stuck]);
        assert_eq!(agg("apps", "Deployment", &[a, b]), want);
    }

    #[test]
    fn a_wec_that_omits_available_replicas_has_none_available() {
        let out = agg(
            "apps",
            "Deployment",
            &[
                json!({"replicas": 2, "availableReplicas": 2}),
                json!({"replicas": 2, "unavailableReplicas": 2}),
            ],
        );
        assert_eq!(out["availableReplicas"], 0);
        assert_eq!(out["unavailableReplicas"], 2);
    }
}
