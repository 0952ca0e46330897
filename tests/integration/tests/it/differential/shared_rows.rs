//! The rule of the `shared-wec-row` row: KubeStellar notes every WorkStatus event of an object in
//! every Binding's resolution of that object (`NoteWorkStatus` walks all Bindings), so when one
//! Binding's WorkStatus for a WEC goes, the row of that WEC turns blank (`returned.status` null)
//! in the CombinedStatuses of every other Binding that still delivers the object there; the next
//! WorkStatus event for that object and WEC repairs it. We keep each Binding's rows from its own
//! WorkStatuses.

use std::collections::BTreeSet;

use serde_json::Value;

use super::combined::CombinedFacts;
use super::compare::Difference;
use super::differences::{is_blank, wec_of};

/// Whether `d` is what blanked rows of `facts.shared` WECs make, possibly with the other causes
/// of select and aggregate differences (blank rows of WECs without a status, `limit`).
pub fn shared_wec_row(facts: &CombinedFacts, d: &Difference) -> bool {
    if facts.shared.is_empty() {
        return false;
    }
    let (Some(ks), Some(sr)) = (d.kubestellar.as_ref(), d.status_router.as_ref()) else {
        return false;
    };
    match ks["columnNames"].as_array().map(Vec::len) {
        Some(_) if ks["columnNames"][0] == "wec" => select(facts, ks, sr),
        Some(_) if ks["columnNames"][0] == "count" => aggregate(facts, ks, sr),
        _ => false,
    }
}

fn rows(result: &Value) -> Vec<&Value> {
    result["rows"]
        .as_array()
        .map(|r| r.iter().collect())
        .unwrap_or_default()
}

fn without(result: &Value, keys: &[&str]) -> Value {
    let mut rest = result.clone();
    if let Some(map) = rest.as_object_mut() {
        for k in keys {
            map.remove(*k);
        }
    }
    rest
}

/// A select: our rows are KubeStellar's, but for WECs it blanked; its extra rows are blank
/// (shared WECs, or WECs without a status) or beyond our `limit`.
fn select(facts: &CombinedFacts, ks: &Value, sr: &Value) -> bool {
    if without(ks, &["rows"]) != without(sr, &["rows"]) {
        return false;
    }
    let (ks_rows, sr_rows) = (rows(ks), rows(sr));
    let returned = facts.returned();
    let ours_fit = sr_rows.iter().all(|row| {
        let Some(w) = wec_of(row) else { return false };
        let theirs: Vec<&&Value> = ks_rows.iter().filter(|r| wec_of(r) == Some(w)).collect();
        theirs.iter().any(|t| **t == *row)
            || (facts.shared.contains(w) && theirs.iter().all(|t| is_blank(t)))
    });
    let at_limit = facts.limit.is_some_and(|l| sr_rows.len() >= l);
    let ours: BTreeSet<&str> = sr_rows.iter().filter_map(|r| wec_of(r)).collect();
    let theirs_fit = ks_rows.iter().all(|row| {
        let Some(w) = wec_of(row) else { return false };
        ours.contains(w)
            || at_limit
            || (is_blank(row) && (facts.shared.contains(w) || !returned.contains(w)))
    });
    ours_fit && theirs_fit
}

/// An aggregate over `has(returned.status.availableReplicas)`: ours is the aggregate over every
/// destination WEC that returned a status, KubeStellar's the same without some shared WECs.
fn aggregate(facts: &CombinedFacts, ks: &Value, sr: &Value) -> bool {
    let errors = ["rows", "aggregationErrors"];
    if without(ks, &errors) != without(sr, &errors) {
        return false;
    }
    let values = |skip: &BTreeSet<&str>| -> Vec<f64> {
        facts
            .reports
            .iter()
            .filter(|(w, _)| facts.destinations.contains(*w) && !skip.contains(w.as_str()))
            .filter_map(|(_, statuses)| {
                statuses
                    .iter()
                    .flatten()
                    .find_map(|s| s.get("availableReplicas")?.as_f64())
            })
            .collect()
    };
    let all = values(&BTreeSet::new());
    if !matches(sr, &all) {
        return false;
    }
    let shared: Vec<&str> = facts.shared.iter().map(String::as_str).collect();
    (1..1u32 << shared.len()).any(|mask| {
        let skip: BTreeSet<&str> = shared
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, w)| *w)
            .collect();
        matches(ks, &values(&skip))
    })
}

/// Whether a result's one row is COUNT, SUM, AVG, MAX of `values`, with the AVG error exactly
/// when there are none.
fn matches(result: &Value, values: &[f64]) -> bool {
    let rows = rows(result);
    let [row] = rows.as_slice() else { return false };
    let n = values.len() as f64;
    let sum: f64 = values.iter().fold(0.0, |a, b| a + b);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let want = [n, sum, sum / n, max];
    let got: Vec<Option<f64>> = row["columns"]
        .as_array()
        .map(|c| c.iter().map(|v| number(&v["float"])).collect())
        .unwrap_or_default();
    let same = got.len() == 4
        && got.iter().zip(want).all(|(g, w)| {
            g.is_some_and(|g| (g.is_nan() && w.is_nan()) || (g - w).abs() < 1e-9 || g == w)
        });
    let error = result.get("aggregationErrors").is_some();
    same && error == values.is_empty()
}

fn number(v: &Value) -> Option<f64> {
    match v.as_str()? {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        s => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts(shared: &[&str]) -> CombinedFacts {
        CombinedFacts {
            limit: Some(20),
            destinations: ["wec1".into(), "wec2".into()].into(),
            shared: shared.iter().map(|w| w.to_string()).collect(),
            reports: [
                ("wec1".into(), vec![Some(json!({"availableReplicas": 2}))]),
                ("wec2".into(), vec![Some(json!({"availableReplicas": 3}))]),
            ]
            .into(),
        }
    }

    fn difference(ks: Value, sr: Value) -> Difference {
        Difference {
            object: "deployment-1".into(),
            field: "CombinedStatus bp available".into(),
            kubestellar: Some(ks),
            status_router: Some(sr),
        }
    }

    fn aggregate(columns: [&str; 4]) -> Value {
        let columns: Vec<Value> = columns
            .iter()
            .map(|f| json!({"type": "Number", "float": f}))
            .collect();
        json!({"name": "available", "columnNames": ["count", "sum", "avg", "max"],
               "rows": [{"columns": columns}]})
    }

    #[test]
    fn an_aggregate_without_a_shared_wec_is_explained_only_if_that_wec_was_shared() {
        let d = difference(
            aggregate(["1", "2", "2", "2"]),
            aggregate(["2", "5", "2.5", "3"]),
        );
        assert!(shared_wec_row(&facts(&["wec2"]), &d));
        assert!(!shared_wec_row(&facts(&[]), &d));
        // Without wec1 is not what KubeStellar shows.
        assert!(!shared_wec_row(&facts(&["wec1"]), &d));
        // Our aggregate must be the one over every WEC.
        let wrong = difference(
            aggregate(["1", "2", "2", "2"]),
            aggregate(["2", "4", "2", "2"]),
        );
        assert!(!shared_wec_row(&facts(&["wec2"]), &wrong));
    }

    #[test]
    fn a_select_may_show_a_blank_row_for_a_shared_wec_but_no_other_value() {
        let row = |w: &str, status: Option<Value>| match status {
            Some(s) => {
                json!({"columns": [{"type": "String", "string": w}, {"type": "Object", "object": s}]})
            }
            None => json!({"columns": [{"type": "String", "string": w}, {"type": "Object"}]}),
        };
        let select = |rows: Vec<Value>| json!({"name": "wecs", "columnNames": ["wec", "status"], "rows": rows});
        let ours = select(vec![
            row("wec1", Some(json!({"availableReplicas": 2}))),
            row("wec2", Some(json!({"availableReplicas": 3}))),
        ]);
        let blanked = select(vec![
            row("wec1", Some(json!({"availableReplicas": 2}))),
            row("wec2", None),
        ]);
        assert!(shared_wec_row(
            &facts(&["wec2"]),
            &difference(blanked.clone(), ours.clone())
        ));
        assert!(!shared_wec_row(
            &facts(&["wec1"]),
            &difference(blanked, ours.clone())
        ));
        let other = select(vec![
            row("wec1", Some(json!({"availableReplicas": 2}))),
            row("wec2", Some(json!({"availableReplicas": 1}))),
        ]);
        assert!(!shared_wec_row(&facts(&["wec2"]), &difference(other, ours)));
    }
}
