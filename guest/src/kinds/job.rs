//! batch/Job, by the rule KubeStellar proposes (open PR #3594,
//! `pkg/status/aggregation/job.go` there).
//!
//! `active`, `succeeded` and `failed` take the minimum; `conditions` by the
//! generic rule, sorted by `type`, so `Complete` is `True` only when the Job
//! completed in every WEC (a WEC that has not reported `Complete` makes it
//! `Unknown`). Every other field (`startTime`, `completionTime`, `ready`, ...)
//! is left out, as the proposal leaves it out.

use super::rules::{Conditions, Rules};

pub const RULES: Rules = Rules {
    min: &["active", "succeeded", "failed"],
    max: &[],
    agreed: &[],
    conditions: Conditions::ByType,
};

#[cfg(test)]
mod tests {
    use super::super::tests::agg;
    use serde_json::json;

    #[test]
    fn counters_take_the_minimum_and_complete_needs_every_wec() {
        let done = json!({"type": "Complete", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"});
        let a = json!({"succeeded": 2, "startTime": "2024-01-01T00:00:00Z", "conditions": [done]});
        let b = json!({"active": 1, "succeeded": 1});
        assert_eq!(
            agg("batch", "Job", &[a.clone(), b]),
            json!({"active": 0, "succeeded": 1, "failed": 0, "conditions": [
                {"type": "Complete", "status": "Unknown", "lastTransitionTime": "2024-01-01T00:00:00Z"}]})
        );
        assert_eq!(
            agg("batch", "Job", &[a.clone(), a])["conditions"],
            json!([done])
        );
    }
}
