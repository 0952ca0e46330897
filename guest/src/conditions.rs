//! Combining `conditions` lists across WECs.
//!
//! Conditions are matched by `type`. The combined `status` uses three-valued
//! logic: `True` only if the condition is `True` in every WEC, `False` if it is
//! `False` in any WEC, otherwise `Unknown` (a WEC that does not report the
//! condition at all counts as not knowing it). `lastTransitionTime` is the
//! newest one, and the other fields (`reason`, `message`, ...) come from the
//! newest condition. Kubernetes writes these times as RFC 3339 UTC strings of
//! one fixed format, so they order as strings.

use serde_json::{Map, Value};

/// Merges the `conditions` value of each WEC (`None`: the WEC has none).
/// Returns `None` when some WEC's value is not a list of objects with a `type`.
pub fn merge_conditions(values: &[Option<&Value>]) -> Option<Value> {
    let mut lists: Vec<Vec<&Map<String, Value>>> = Vec::with_capacity(values.len());
    for v in values {
        let list = match v {
            None => Vec::new(),
            Some(v) => v
                .as_array()?
                .iter()
                .map(typed)
                .collect::<Option<Vec<_>>>()?,
        };
        lists.push(list);
    }
    Some(Value::Array(merge_lists(&lists)))
}

/// [`merge_conditions`] for the kind-aware rules, which follow KubeStellar in
/// skipping what is malformed rather than dropping the whole list: an entry
/// that is not an object with a string `type`, or a `conditions` value that
/// is not a list, counts as absent.
pub fn merge_valid_conditions(values: &[Option<&Value>]) -> Vec<Value> {
    let lists: Vec<Vec<&Map<String, Value>>> = values
        .iter()
        .map(|v| {
            v.and_then(Value::as_array)
                .map(|l| l.iter().filter_map(typed).collect())
                .unwrap_or_default()
        })
        .collect();
    merge_lists(&lists)
}

fn typed(c: &Value) -> Option<&Map<String, Value>> {
    c.as_object()
        .filter(|c| c.get("type").is_some_and(Value::is_string))
}

fn merge_lists(lists: &[Vec<&Map<String, Value>>]) -> Vec<Value> {
    // Condition types in order of first appearance, WEC by WEC.
    let mut types: Vec<&str> = Vec::new();
    for list in lists {
        for c in list {
            let t = c["type"].as_str().unwrap_or_default();
            if !types.contains(&t) {
                types.push(t);
            }
        }
    }

    types
        .into_iter()
        .map(|t| {
            let per_wec: Vec<Option<&Map<String, Value>>> = lists
                .iter()
                .map(|l| l.iter().copied().find(|c| c["type"].as_str() == Some(t)))
                .collect();
            Value::Object(merge_one(&per_wec))
        })
        .collect()
}

/// Merges one condition type across WECs; at least one WEC reports it.
fn merge_one(per_wec: &[Option<&Map<String, Value>>]) -> Map<String, Value> {
    let reported: Vec<&Map<String, Value>> = per_wec.iter().flatten().copied().collect();
    let newest = reported
        .iter()
        .copied()
        .reduce(|best, c| if time(c) > time(best) { c } else { best })
        .expect("a condition type comes from at least one WEC");

    fn status<'a>(c: &Option<&'a Map<String, Value>>) -> Option<&'a str> {
        c.and_then(|c| c.get("status")).and_then(Value::as_str)
    }
    let combined = if per_wec.iter().any(|c| status(c) == Some("False")) {
        "False"
    } else if per_wec.iter().all(|c| status(c) == Some("True")) {
        "True"
    } else {
        "Unknown"
    };

    let mut out = newest.clone();
    out.insert("status".into(), Value::String(combined.into()));
    out
}

fn time(c: &Map<String, Value>) -> &str {
    c.get("lastTransitionTime")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merge(values: &[Option<Value>]) -> Option<Value> {
        let refs: Vec<Option<&Value>> = values.iter().map(Option::as_ref).collect();
        merge_conditions(&refs)
    }

    fn cond(t: &str, status: &str, time: &str, reason: &str) -> Value {
        json!({"type": t, "status": status, "lastTransitionTime": time, "reason": reason})
    }

    #[test]
    fn true_only_when_true_everywhere() {
        let out = merge(&[
            Some(json!([cond("Ready", "True", "2024-01-01T00:00:00Z", "A")])),
            Some(json!([cond("Ready", "True", "2024-01-02T00:00:00Z", "B")])),
        ]);
        assert_eq!(
            out,
            Some(json!([cond("Ready", "True", "2024-01-02T00:00:00Z", "B")]))
        );
    }

    #[test]
    fn false_anywhere_wins_and_newest_gives_reason() {
        let out = merge(&[
            Some(json!([cond(
                "Ready",
                "False",
                "2024-01-01T00:00:00Z",
                "Old"
            )])),
            Some(json!([cond(
                "Ready",
                "Unknown",
                "2024-01-03T00:00:00Z",
                "New"
            )])),
            Some(json!([cond(
                "Ready",
                "True",
                "2024-01-02T00:00:00Z",
                "Mid"
            )])),
        ]);
        assert_eq!(
            out,
            Some(json!([cond(
                "Ready",
                "False",
                "2024-01-03T00:00:00Z",
                "New"
            )]))
        );
    }

    #[test]
    fn missing_in_a_wec_is_unknown() {
        let out = merge(&[
            Some(json!([
                cond("Available", "True", "2024-01-01T00:00:00Z", "A"),
                cond("Progressing", "True", "2024-01-01T00:00:00Z", "P")
            ])),
            None,
        ]);
        assert_eq!(
            out,
            Some(json!([
                cond("Available", "Unknown", "2024-01-01T00:00:00Z", "A"),
                cond("Progressing", "Unknown", "2024-01-01T00:00:00Z", "P")
            ]))
        );
    }

    #[test]
    fn a_malformed_list_is_left_out() {
        assert_eq!(merge(&[Some(json!({"Ready": true})), None]), None);
        assert_eq!(merge(&[Some(json!([{"status": "True"}]))]), None);
    }
}
