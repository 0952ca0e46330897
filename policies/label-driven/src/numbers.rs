//! Choosing how numbers combine in a multi-WEC aggregate, with the
//! `status-router.kubestellar.io/aggregate-numbers` annotation.
//!
//! `min` (the default, KubeStellar's rule) reports what every WEC can vouch
//! for; `max` the largest value of any WEC; `sum` the total across WECs, such
//! as all the `readyReplicas` of a Deployment spread over several WECs. The
//! rule applies to every number of the status, `observedGeneration`
//! included. Everything else aggregates as in the default policy.
//!
//! Only an annotation is read, not a label: this is configuration of one
//! object, not something to select objects by. An unknown value is an error
//! rather than a silent `min`: the host then writes nothing and records an
//! Event on the object, so the owner sees the typo instead of wrong numbers.

use default_policy::aggregate::{NumberRule, aggregate_json_with};

use crate::lookup;

/// The annotation key that chooses the rule for numbers.
pub const NUMBERS_KEY: &str = "status-router.kubestellar.io/aggregate-numbers";

/// The rule an object's annotations ask for; an error names the annotation
/// and the value it does not understand.
pub fn number_rule(annotations: &[(String, String)]) -> Result<NumberRule, String> {
    match lookup(annotations, NUMBERS_KEY) {
        None | Some("min") => Ok(NumberRule::Min),
        Some("max") => Ok(NumberRule::Max),
        Some("sum") => Ok(NumberRule::Sum),
        Some(other) => Err(format!(
            "annotation {NUMBERS_KEY} has the unknown value {other:?}; expected min, max or sum"
        )),
    }
}

/// Aggregates (WEC, status JSON) reports with the rule the annotations ask for.
pub fn aggregate<'a>(
    annotations: &[(String, String)],
    reported: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String, String> {
    aggregate_json_with(reported, number_rule(annotations)?)
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
        aggregate(&annotations(value), reported).map(|s| serde_json::from_str(&s).unwrap())
    }

    #[test]
    fn min_is_the_default() {
        let want = json!({"readyReplicas": 2, "replicas": 0, "paused": false});
        assert_eq!(agg(None), Ok(want.clone()));
        assert_eq!(agg(Some("min")), Ok(want));
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
        let err = aggregate(&annotations(Some("sum")), [("wec1", "[1]")]).unwrap_err();
        assert!(
            err.contains("wec1") && err.contains("not a JSON object"),
            "{err}"
        );
    }
}
