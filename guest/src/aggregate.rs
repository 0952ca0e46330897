//! Generic multi-WEC aggregation, from KubeStellar's design proposal for kinds
//! that have no kind-specific rule.
//!
//! The statuses reported by the WECs are merged field by field:
//! - numbers take the minimum (the capacity every WEC can vouch for);
//! - booleans are AND-ed (true only where true everywhere);
//! - strings are kept where every WEC reports the same value;
//! - `conditions` lists combine by `type` with three-valued logic (see `conditions`);
//! - maps merge key by key; other lists merge element by element when every WEC
//!   reports a list of the same length. Whatever does not agree in shape is left out.
//!
//! Policies that want another rule for numbers (the largest, or the total
//! across WECs) pass a [`NumberRule`] to [`aggregate_json_with`]; everything
//! else is merged as above whatever the rule.
//!
//! Kubernetes omits zero values from statuses (`omitempty`), so a field that one
//! WEC leaves out while others report a number or a boolean counts as `0` or
//! `false` there, not as a disagreement: a WEC without `availableReplicas` has
//! none available.

use serde_json::{Map, Number, Value};

use crate::conditions::merge_conditions;

/// How numbers combine across WECs. A WEC that omits a number field counts as
/// reporting `0` for it under every rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NumberRule {
    /// The smallest value: what every WEC can vouch for (KubeStellar's rule).
    #[default]
    Min,
    /// The largest value, e.g. the worst `unavailableReplicas` of any WEC.
    Max,
    /// The total over the WECs, e.g. all `readyReplicas` everywhere. Integers
    /// stay integers; a total that overflows `i64` is computed as a float, and
    /// one that is not a finite float is left out.
    Sum,
}

/// Aggregates the reported statuses into the JSON text of the status to write,
/// with numbers taking the minimum.
///
/// Fails, naming the WEC, when a report is not a JSON object.
pub fn aggregate_json<'a>(
    reported: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String, String> {
    aggregate_json_with(reported, NumberRule::Min)
}

/// [`aggregate_json`] with the given rule for numbers.
pub fn aggregate_json_with<'a>(
    reported: impl IntoIterator<Item = (&'a str, &'a str)>,
    rule: NumberRule,
) -> Result<String, String> {
    let parsed = crate::reports::parse(reported)?;
    let maps: Vec<&Map<String, Value>> = parsed.iter().map(|r| &r.status).collect();
    Ok(Value::Object(merge_maps_with(&maps, rule)).to_string())
}

/// Merges maps key by key; a key absent from some maps counts as that map's zero value.
pub fn merge_maps(maps: &[&Map<String, Value>]) -> Map<String, Value> {
    merge_maps_with(maps, NumberRule::Min)
}

/// [`merge_maps`] with the given rule for numbers.
pub fn merge_maps_with(maps: &[&Map<String, Value>], rule: NumberRule) -> Map<String, Value> {
    let mut keys: Vec<&String> = Vec::new();
    for m in maps {
        for k in m.keys() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let mut out = Map::new();
    for key in keys {
        let values: Vec<Option<&Value>> = maps
            .iter()
            .map(|m| m.get(key).filter(|v| !v.is_null()))
            .collect();
        let merged = if key == "conditions" {
            merge_conditions(&values)
        } else {
            merge_values_with(&values, rule)
        };
        if let Some(v) = merged {
            out.insert(key.clone(), v);
        }
    }
    out
}

/// Merges the values one key has across WECs (`None`: the WEC omits it).
/// Returns `None` when they do not agree in shape.
pub fn merge_values(values: &[Option<&Value>]) -> Option<Value> {
    merge_values_with(values, NumberRule::Min)
}

/// [`merge_values`] with the given rule for numbers.
pub fn merge_values_with(values: &[Option<&Value>], rule: NumberRule) -> Option<Value> {
    let present: Vec<&Value> = values.iter().flatten().copied().collect();
    let first = *present.first()?;
    let all_present = present.len() == values.len();
    match first {
        Value::Number(_) => {
            let numbers: Vec<&Number> = present.iter().filter_map(|v| v.as_number()).collect();
            if numbers.len() != present.len() {
                return None;
            }
            combine_numbers(&numbers, !all_present, rule).map(Value::Number)
        }
        Value::Bool(_) => {
            let bools: Vec<bool> = present.iter().filter_map(|v| v.as_bool()).collect();
            (bools.len() == present.len())
                .then(|| Value::Bool(all_present && bools.iter().all(|b| *b)))
        }
        Value::String(s) => {
            (all_present && present.iter().all(|v| v.as_str() == Some(s))).then(|| first.clone())
        }
        Value::Object(_) => {
            let maps: Vec<&Map<String, Value>> =
                present.iter().filter_map(|v| v.as_object()).collect();
            (all_present && maps.len() == present.len())
                .then(|| Value::Object(merge_maps_with(&maps, rule)))
        }
        Value::Array(first_list) => {
            let lists: Vec<&Vec<Value>> = present.iter().filter_map(|v| v.as_array()).collect();
            if !all_present
                || lists.len() != present.len()
                || lists.iter().any(|l| l.len() != first_list.len())
            {
                return None;
            }
            (0..first_list.len())
                .map(|i| {
                    let column: Vec<Option<&Value>> = lists.iter().map(|l| Some(&l[i])).collect();
                    merge_values_with(&column, rule)
                })
                .collect::<Option<Vec<Value>>>()
                .map(Value::Array)
        }
        Value::Null => None,
    }
}

/// Combines the numbers the WECs reported for one field; `omitted`: some WEC
/// left the field out, which counts as a `0` from that WEC.
fn combine_numbers(numbers: &[&Number], omitted: bool, rule: NumberRule) -> Option<Number> {
    let zero = Number::from(0);
    match rule {
        NumberRule::Min => {
            let min = extreme(numbers, less);
            // An omitted counter is zero, below any non-negative count.
            Some(if omitted && !less(&min, &zero) {
                zero
            } else {
                min
            })
        }
        NumberRule::Max => {
            let max = extreme(numbers, |a, b| less(b, a));
            Some(if omitted && less(&max, &zero) {
                zero
            } else {
                max
            })
        }
        // An omitted field adds nothing to a total.
        NumberRule::Sum => sum(numbers),
    }
}

/// The number that `before` puts first, keeping the representation (integer
/// or float) it was reported in; the first of equals wins.
fn extreme(numbers: &[&Number], before: fn(&Number, &Number) -> bool) -> Number {
    let mut best = numbers[0];
    for n in &numbers[1..] {
        if before(n, best) {
            best = n;
        }
    }
    best.clone()
}

/// The total: exact while every number is an integer and the total fits `i64`
/// (replica counts always do), otherwise a float; `None` if not finite.
fn sum(numbers: &[&Number]) -> Option<Number> {
    numbers
        .iter()
        .try_fold(0i64, |total, n| {
            n.as_i64().and_then(|n| total.checked_add(n))
        })
        .map(Number::from)
        .or_else(|| Number::from_f64(numbers.iter().filter_map(|n| n.as_f64()).sum()))
}

fn less(a: &Number, b: &Number) -> bool {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x < y,
        _ => a.as_f64().unwrap_or(f64::NAN) < b.as_f64().unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn agg(statuses: &[Value]) -> Result<Value, String> {
        let reported: Vec<(String, String)> = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("wec{}", i + 1), s.to_string()))
            .collect();
        aggregate_json(reported.iter().map(|(w, s)| (w.as_str(), s.as_str())))
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    #[test]
    fn numbers_take_the_minimum_and_booleans_and() {
        let out = agg(&[
            json!({"readyReplicas": 2, "paused": true, "ratio": 0.5}),
            json!({"readyReplicas": 1, "paused": false, "ratio": 0.25}),
        ]);
        assert_eq!(
            out,
            Ok(json!({"readyReplicas": 1, "paused": false, "ratio": 0.25}))
        );
    }

    #[test]
    fn an_omitted_counter_counts_as_zero() {
        let out = agg(&[json!({"availableReplicas": 3}), json!({"replicas": 3})]);
        assert_eq!(out, Ok(json!({"availableReplicas": 0, "replicas": 0})));
    }

    #[test]
    fn strings_stay_only_where_all_agree() {
        let out = agg(&[
            json!({"phase": "Running", "hostIP": "10.0.0.1"}),
            json!({"phase": "Running", "hostIP": "10.0.0.2"}),
        ]);
        assert_eq!(out, Ok(json!({"phase": "Running"})));
    }

    #[test]
    fn maps_merge_and_lists_need_the_same_shape() {
        let out = agg(&[
            json!({"load": {"cpu": 3, "ok": true}, "ports": [80, 443], "ips": ["a"]}),
            json!({"load": {"cpu": 2, "ok": true}, "ports": [81, 442], "ips": ["a", "b"]}),
        ]);
        assert_eq!(
            out,
            Ok(json!({"load": {"cpu": 2, "ok": true}, "ports": [80, 442]}))
        );
    }

    #[test]
    fn mismatched_types_are_left_out() {
        let out = agg(&[
            json!({"x": 1, "y": {"a": 1}}),
            json!({"x": "one", "y": [1]}),
        ]);
        assert_eq!(out, Ok(json!({})));
    }

    #[test]
    fn result_does_not_depend_on_report_order() {
        let a =
            json!({"observedGeneration": 4, "conditions": [{"type": "Ready", "status": "True"}]});
        let b = json!({"observedGeneration": 3});
        assert_eq!(agg(&[a.clone(), b.clone()]), agg(&[b, a]));
    }

    #[test]
    fn a_report_that_is_not_an_object_is_an_error_naming_the_wec() {
        let err = agg(&[json!({"a": 1}), json!([1, 2])]).unwrap_err();
        assert!(err.contains("wec2") && err.contains("a list"), "{err}");
        let err = aggregate_json([("edge", "{not json")]).unwrap_err();
        assert!(
            err.contains("edge") && err.contains("not valid JSON"),
            "{err}"
        );
    }

    fn agg_with(rule: NumberRule, statuses: &[Value]) -> Result<Value, String> {
        let reported: Vec<(String, String)> = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("wec{}", i + 1), s.to_string()))
            .collect();
        aggregate_json_with(reported.iter().map(|(w, s)| (w.as_str(), s.as_str())), rule)
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    #[test]
    fn max_takes_the_largest_number_everywhere_in_the_status() {
        let out = agg_with(
            NumberRule::Max,
            &[
                json!({"readyReplicas": 2, "ratio": 0.5, "load": {"cpu": 1}, "ports": [80], "ok": true}),
                json!({"readyReplicas": 5, "ratio": 0.75, "load": {"cpu": 3}, "ports": [81], "ok": false}),
            ],
        );
        // Only numbers change rule: booleans still AND.
        let want = json!({"readyReplicas": 5, "ratio": 0.75, "load": {"cpu": 3}, "ports": [81], "ok": false});
        assert_eq!(out, Ok(want));
    }

    #[test]
    fn max_counts_an_omitted_number_as_zero() {
        let out = agg_with(
            NumberRule::Max,
            &[json!({"a": 3, "delta": -2}), json!({"b": 1})],
        );
        assert_eq!(out, Ok(json!({"a": 3, "b": 1, "delta": 0})));
    }

    #[test]
    fn sum_totals_the_wecs_and_an_omitted_number_adds_nothing() {
        let out = agg_with(
            NumberRule::Sum,
            &[
                json!({"readyReplicas": 2, "replicas": 3, "phase": "Running"}),
                json!({"readyReplicas": 1, "phase": "Running"}),
                json!({"readyReplicas": 4, "replicas": 3, "phase": "Running"}),
            ],
        );
        assert_eq!(
            out,
            Ok(json!({"readyReplicas": 7, "replicas": 6, "phase": "Running"}))
        );
    }

    #[test]
    fn sum_keeps_integers_exact_and_falls_back_to_floats() {
        let out = agg_with(
            NumberRule::Sum,
            &[json!({"a": 0.5, "b": i64::MAX}), json!({"a": 1, "b": 1})],
        );
        assert_eq!(out, Ok(json!({"a": 1.5, "b": i64::MAX as f64 + 1.0})));
        let out = agg_with(
            NumberRule::Sum,
            &[json!({"a": 1.0e308}), json!({"a": 1.0e308})],
        );
        assert_eq!(out, Ok(json!({})), "an infinite total is left out");
    }

    #[test]
    fn one_report_is_copied_under_every_rule() {
        let one = json!({"readyReplicas": 2, "skew": -1, "ratio": 0.5});
        for rule in [NumberRule::Min, NumberRule::Max, NumberRule::Sum] {
            assert_eq!(
                agg_with(rule, std::slice::from_ref(&one)),
                Ok(one.clone()),
                "{rule:?}"
            );
        }
    }

    #[test]
    fn no_report_is_an_empty_status_and_one_report_is_copied() {
        assert_eq!(agg(&[]), Ok(json!({})));
        let one = json!({"readyReplicas": 2, "phase": "Running"});
        assert_eq!(agg(std::slice::from_ref(&one)), Ok(one));
    }
}
