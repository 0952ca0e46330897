//! Choosing how numbers combine in a multi-WEC aggregate, with the
//! `status-router.kubestellar.io/aggregate-numbers` annotation.
//!
//! Without the annotation the object aggregates exactly as under the default
//! policy (KubeStellar's rules for Deployments, ReplicaSets, DaemonSets,
//! StatefulSets and Jobs, the generic rules for every other kind), so that
//! objects that say nothing see no difference. With it, the generic rules
//! apply to every kind and the annotation picks the rule for numbers: `min`
//! reports what every WEC can vouch for; `max` the largest value of any WEC;
//! `sum` the total across WECs, such as all the `readyReplicas` of a
//! Deployment spread over several WECs (KubeStellar issue #2809). The rule
//! applies to every number of the status, `observedGeneration` included.
//!
//! Only an annotation is read, not a label: this is configuration of one
//! object, not something to select objects by. An unknown value is an error
//! rather than a silent `min`: the host then writes nothing and records an
//! Event on the object, so the owner sees the typo instead of wrong numbers.

use default_policy::aggregate::{NumberRule, aggregate_json_with};

use crate::lookup;

/// The annotation key that chooses the rule for numbers.
pub const NUMBERS_KEY: &str = "status-router.kubestellar.io/aggregate-numbers";

/// The rule an object's annotations ask for, `None` without the annotation;
/// an error names the annotation and the value it does not understand.
pub fn number_rule(annotations: &[(String, String)]) -> Result<Option<NumberRule>, String> {
    match lookup(annotations, NUMBERS_KEY) {
        None => Ok(None),
        Some("min") => Ok(Some(NumberRule::Min)),
        Some("max") => Ok(Some(NumberRule::Max)),
        Some("sum") => Ok(Some(NumberRule::Sum)),
        Some(other) => Err(format!(
            "annotation {NUMBERS_KEY} has the unknown value {other:?}; expected min, max or sum"
        )),
    }
}

/// Aggregates (WEC, status JSON) reports of an object of `group` and `kind`
/// with the rule its annotations ask for (the default policy's without one).
pub fn aggregate<'a>(
    group: &str,
    kind: &str,
    annotations: &[(String, String)],
    reported: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String, String> {
    match number_rule(annotations)? {
        None => default_policy::kinds::aggregate_json(group, kind, reported),
        Some(rule) => aggregate_json_with(reported, rule),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn annotations(value: Option<&str>) -> Vec<(String, String)> {
        value
            .map(|v| vec![(NUMBERS_KEY.to_string(), v.to_string())])
            .unwrap_or_default()
    }

    fn agg(value: Option<&str>) -> Result<Value, String> {
        let reported = [
            (
                "wec1",
                r#"{"readyReplicas": 2, "replicas": 2, "paused": false}"#,
            ),
            ("wec2", r#"{"readyReplicas": 3, "paused": true}"#),
        ];
        aggregate("example.com", "Gadget", &annotations(value), reported)
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    #[test]
    fn min_is_the_default() {
        let want = json!({"readyReplicas": 2, "replicas": 0, "paused": false});
        assert_eq!(agg(None), Ok(want.clone()));
        assert_eq!(agg(Some("min")), Ok(want));
    }

    #[test]
    fn without_the_annotation_a_deployment_aggregates_as_under_the_default_policy() {
        let reported = [
            (
                "wec1",
                r#"{"readyReplicas": 2, "unavailableReplicas": 1, "paused": true}"#,
            ),
            ("wec2", r#"{"readyReplicas": 3, "unavailableReplicas": 2}"#),
        ];
        let ours = aggregate("apps", "Deployment", &[], reported).unwrap();
        let default =
            default_policy::kinds::aggregate_json("apps", "Deployment", reported).unwrap();
        assert_eq!(ours, default);
        let ours: serde_json::Value = serde_json::from_str(&ours).unwrap();
        assert_eq!(ours["unavailableReplicas"], 2, "{ours}");
        // With the annotation, the generic rules: `min` takes the minimum everywhere.
        let min = aggregate("apps", "Deployment", &annotations(Some("min")), reported).unwrap();
        let min: serde_json::Value = serde_json::from_str(&min).unwrap();
        assert_eq!(min["unavailableReplicas"], 1, "{min}");
    }

    #[test]
    fn max_and_sum_change_only_numbers() {
        let max = json!({"readyReplicas": 3, "replicas": 2, "paused": false});
        assert_eq!(agg(Some("max")), Ok(max));
        let sum = json!({"readyReplicas": 5, "replicas": 2, "paused": false});
        assert_eq!(agg(Some("sum")), Ok(sum));
    }

    #[test]
    fn an_unknown_value_is_an_error_naming_the_annotation_and_the_value() {
        for bad in ["average", "Sum", ""] {
            let err = agg(Some(bad)).unwrap_err();
            assert!(
                err.contains(NUMBERS_KEY) && err.contains(&format!("{bad:?}")),
                "{err}"
            );
        }
    }

    #[test]
    fn a_bad_report_is_still_an_error() {
        let err = aggregate(
            "apps",
            "Deployment",
            &annotations(Some("sum")),
            [("wec1", "[1]")],
        )
        .unwrap_err();
        assert!(
            err.contains("wec1") && err.contains("not a JSON object"),
            "{err}"
        );
    }
}
