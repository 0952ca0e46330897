//! The only allowed sources of difference: the rows of `docs/kubestellar-differences.md`, each
//! with a rule here that recognises exactly the differences its cause produces. A rule names its
//! row by id; the table is read at run time, so a rule without a row (or a renamed row) fails
//! the run, and a row's count shows in every report.

use serde_json::Value;
use status_router::kubestellar::{
    EXECUTING_COUNT_LABEL, MULTI_WEC_STATUS_LABEL, SINGLETON_STATUS_LABEL,
};

use super::combined::CombinedFacts;
use super::compare::{Decision, Difference, Facts};
use super::scenario::Kind;

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Row {
    pub id: String,
}

/// A rule: the row it belongs to, and whether it explains a difference.
struct Rule {
    id: &'static str,
    explains: fn(&Facts, &Difference, &[String]) -> bool,
}

const RULES: &[Rule] = &[
    Rule {
        id: "executing-count",
        explains: executing_count,
    },
    Rule {
        id: "unaggregated-kinds",
        explains: unaggregated_kinds,
    },
    Rule {
        id: "omitted-counters",
        explains: omitted_counters,
    },
    Rule {
        id: "job-counters",
        explains: job_counters,
    },
    Rule {
        id: "status-merge-patch",
        explains: status_merge_patch,
    },
];

/// A rule of the CombinedStatus half.
struct CombinedRule {
    id: &'static str,
    explains: fn(&CombinedFacts, &Difference) -> bool,
}

const COMBINED_RULES: &[CombinedRule] = &[
    CombinedRule {
        id: "blank-rows",
        explains: blank_rows,
    },
    CombinedRule {
        id: "limit",
        explains: limit,
    },
    CombinedRule {
        id: "shared-wec-row",
        explains: super::shared_rows::shared_wec_row,
    },
];

/// The rows of `docs/kubestellar-differences.md` (first cell of each table row, in backticks).
/// Panics if a rule has no row.
pub fn table() -> Vec<Row> {
    let path = integration_tests::workspace_file("docs/kubestellar-differences.md");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let rows: Vec<Row> = text
        .lines()
        .filter_map(|line| {
            let cell = line.strip_prefix("| `")?;
            let (id, _) = cell.split_once('`')?;
            Some(Row { id: id.to_string() })
        })
        .collect();
    let ids = RULES
        .iter()
        .map(|r| r.id)
        .chain(COMBINED_RULES.iter().map(|r| r.id));
    for id in ids {
        assert!(
            rows.iter().any(|r| r.id == id),
            "the rule {id:?} has no row in {}: every allowed difference is documented there",
            path.display()
        );
    }
    rows
}

/// The row that explains `d`, if any. `all` names every field that differs on the object.
pub fn classify(facts: &Facts, d: &Difference, all: &[String]) -> Option<&'static str> {
    RULES
        .iter()
        .find(|rule| (rule.explains)(facts, d, all))
        .map(|rule| rule.id)
}

/// KubeStellar documents `kubestellar.io/executing-count` but never writes it; we write the
/// size of the qualified WEC set while singleton return is requested.
/// While the one qualified WEC's one WorkStatus has no status yet, nothing is written (the
/// project's rule, as upstream), so the count of an earlier write stays until the status comes.
fn executing_count(facts: &Facts, d: &Difference, _: &[String]) -> bool {
    let qualified = facts.s.union(&facts.m).count();
    let waiting = facts.decision == Decision::Singleton
        && qualified == 1
        && facts.reports.values().map(Vec::len).sum::<usize>() == 1
        && facts.reported().is_empty();
    d.field == EXECUTING_COUNT_LABEL
        && d.kubestellar.is_none()
        && facts.singleton
        && (waiting || d.status_router == Some(Value::String(qualified.to_string())))
}

/// Upstream aggregates only Deployments, ReplicaSets and DaemonSets: for any other kind with two
/// or more reported statuses it writes nothing (the old status and labels stay); we write the
/// generic aggregate with the multi-WEC label.
fn unaggregated_kinds(facts: &Facts, d: &Difference, _: &[String]) -> bool {
    !facts.kind.upstream_aggregates()
        && facts.decision == Decision::Multi
        && facts.reported().len() >= 2
        && (d.field == "status"
            || d.field == MULTI_WEC_STATUS_LABEL
            || d.field == SINGLETON_STATUS_LABEL)
        && (d.field != MULTI_WEC_STATUS_LABEL || d.status_router.is_some())
}

/// The API server omits zero counters; upstream skips a WEC that omits a field when it takes
/// the minimum (or maximum), we count it as 0. Two ways this shows:
/// - only counters some reported status omits differ, and ours is then 0 (or absent, the API
///   server's way of writing 0);
/// - upstream's aggregate breaks the kind's status validation (more ready than replicas, ...),
///   so the API server refuses its write and the object keeps what it had: the status before
///   any write (`Facts::untouched`) or one WEC's status, written while it was the only one
///   reported; ours is valid and written.
fn omitted_counters(facts: &Facts, d: &Difference, _: &[String]) -> bool {
    if d.field != "status" || !facts.kind.upstream_aggregates() {
        return false;
    }
    let reported = facts.reported();
    if facts.decision != Decision::Multi || reported.len() < 2 {
        return false;
    }
    let omits = |k: &str| {
        reported
            .iter()
            .any(|r| r.as_object().is_none_or(|o| !o.contains_key(k)))
    };
    let obj = |v: &Option<Value>| v.as_ref().and_then(Value::as_object).cloned();
    let (Some(ks), Some(sr)) = (obj(&d.kubestellar), obj(&d.status_router)) else {
        return false;
    };
    let keys: std::collections::BTreeSet<&String> = ks.keys().chain(sr.keys()).collect();
    let only_omitted = keys
        .into_iter()
        .filter(|k| ks.get(*k) != sr.get(*k))
        .all(|k| omits(k) && sr.get(k).is_none_or(|v| v == &Value::from(0)));
    // Refused, the object keeps what was there: the status before any write, or one WEC's
    // status written while it was the only one reported.
    let kept = d.kubestellar == facts.untouched
        || reported.iter().any(|r| d.kubestellar.as_ref() == Some(*r));
    let refused = kept && upstream_aggregate_is_invalid(facts.kind, &reported);
    only_omitted || refused
}

/// Upstream's minimum and maximum over the WECs that report each counter, checked against
/// the orderings the API server validates (ready and available at most replicas, available at
/// most ready, fully labeled at most replicas).
fn upstream_aggregate_is_invalid(kind: Kind, reported: &[&Value]) -> bool {
    let over = |k: &str, max: bool| -> i64 {
        let values = reported.iter().filter_map(|r| r.get(k)?.as_i64());
        let v = if max { values.max() } else { values.min() };
        v.unwrap_or(0)
    };
    let replicas = over("replicas", false);
    let ready = over("readyReplicas", false);
    let available = over("availableReplicas", false);
    match kind {
        Kind::Deployment => ready > replicas || available > replicas || available > ready,
        Kind::ReplicaSet => {
            ready > replicas || available > ready || over("fullyLabeledReplicas", false) > replicas
        }
        _ => false,
    }
}

/// Kubernetes 1.32 refuses a Job status that lowers `succeeded` or `failed` (JobManagedBy is on
/// by default). A side that once wrote higher counters than it wants now is refused from then
/// on: it keeps that status, and the labels of that moment (both controllers add a label before
/// the status and remove the old one after it). Which intermediate statuses a side wrote depends
/// on its timing, so on a Job either side may end so stuck.
fn job_counters(facts: &Facts, d: &Difference, _: &[String]) -> bool {
    let fields = [
        "status",
        SINGLETON_STATUS_LABEL,
        MULTI_WEC_STATUS_LABEL,
        EXECUTING_COUNT_LABEL,
    ];
    if facts.kind != Kind::Job || !fields.contains(&d.field.as_str()) {
        return false;
    }
    let wanted = wanted_job_counters(facts);
    facts.shown.iter().any(|shown| {
        let (succeeded, failed) = job_counters_of(shown.as_ref());
        succeeded > wanted.0 || failed > wanted.1
    })
}

/// Without a status subresource (the scenario's Gadget CR) upstream falls back to a JSON merge
/// patch of the status, which cannot remove keys, and returns right after it, before removing
/// labels: a status it should clear or shrink keeps its old keys, and the old label stays.
fn status_merge_patch(facts: &Facts, d: &Difference, _: &[String]) -> bool {
    if facts.kind != Kind::Gadget {
        return false;
    }
    let object = |v: Option<&Value>| v.and_then(Value::as_object).cloned().unwrap_or_default();
    let (ks, sr) = (
        object(facts.shown[0].as_ref()),
        object(facts.shown[1].as_ref()),
    );
    let kept_old_keys = ks.len() > sr.len() && sr.iter().all(|(k, v)| ks.get(k) == Some(v));
    let label = d.field == SINGLETON_STATUS_LABEL || d.field == MULTI_WEC_STATUS_LABEL;
    kept_old_keys && (d.field == "status" || (label && d.status_router.is_none()))
}

/// `succeeded` and `failed` of a Job status (absent: 0).
fn job_counters_of(status: Option<&Value>) -> (i64, i64) {
    let counter = |k: &str| status.and_then(|s| s.get(k)?.as_i64()).unwrap_or(0);
    (counter("succeeded"), counter("failed"))
}

/// The lowest counters either side may want to write at the end: the one report a singleton
/// copies, the minimum over the reports of a multi-WEC aggregate (KubeStellar writes none),
/// otherwise a cleared status (also when the one report has no status yet and nothing is
/// written: what the side holds then comes from an earlier write).
fn wanted_job_counters(facts: &Facts) -> (i64, i64) {
    let reported = facts.reported();
    let qualified = if facts.singleton {
        facts.s.union(&facts.m).count()
    } else {
        facts.m.len()
    };
    let one_workstatus = facts.reports.values().map(Vec::len).sum::<usize>() == 1;
    match facts.decision {
        Decision::Singleton if qualified == 1 && one_workstatus && reported.len() == 1 => {
            job_counters_of(reported.first().copied())
        }
        Decision::Multi if !reported.is_empty() => reported
            .iter()
            .map(|r| job_counters_of(Some(r)))
            .fold((i64::MAX, i64::MAX), |(a, b), (c, d)| (a.min(c), b.min(d))),
        _ => (0, 0),
    }
}

/// The row that explains a difference of a CombinedStatus or condition, if any.
pub fn classify_combined(facts: Option<&CombinedFacts>, d: &Difference) -> Option<&'static str> {
    let facts = facts?;
    COMBINED_RULES
        .iter()
        .find(|rule| (rule.explains)(facts, d))
        .map(|rule| rule.id)
}

/// A result's rows, each as its JSON text, and the rest of the result without them.
fn rows_and_rest(result: &Option<Value>) -> Option<(Vec<Value>, Value)> {
    let mut rest = result.clone()?;
    let rows = rest.as_object_mut()?.remove("rows");
    let rows = match rows {
        Some(Value::Array(rows)) => rows,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return None,
    };
    Some((rows, rest))
}

/// Whether every row of `small` is in `big` (as a multiset).
fn contained(small: &[Value], big: &[Value]) -> bool {
    let mut big: Vec<&Value> = big.iter().collect();
    small
        .iter()
        .all(|row| match big.iter().position(|b| *b == row) {
            Some(i) => {
                big.swap_remove(i);
                true
            }
            None => false,
        })
}

/// The `wec` column (the first; every select of the scenario starts with it) of a row.
pub fn wec_of(row: &Value) -> Option<&str> {
    row["columns"][0]["string"].as_str()
}

/// Whether a row's status column (the second, where the collector has one) holds nothing.
pub fn is_blank(row: &Value) -> bool {
    match row["columns"].get(1) {
        Some(status) => status["type"] == "Null" || status["object"] == Value::Null,
        None => true,
    }
}

/// KubeStellar keeps a row of a select for every destination WEC, evaluated with a null
/// `returned.status` where no status is returned there (no WorkStatus yet, a deleted one, or
/// one without a status); we list the WECs that returned a status, as the API text says.
fn blank_rows(facts: &CombinedFacts, d: &Difference) -> bool {
    let (Some((ks, ks_rest)), Some((sr, sr_rest))) = (
        rows_and_rest(&d.kubestellar),
        rows_and_rest(&d.status_router),
    ) else {
        return false;
    };
    if ks_rest != sr_rest || ks.len() <= sr.len() || !contained(&sr, &ks) {
        return false;
    }
    let returned = facts.returned();
    let mut extra = ks.clone();
    for row in &sr {
        if let Some(i) = extra.iter().position(|r| r == row) {
            extra.swap_remove(i);
        }
    }
    extra.iter().all(|row| {
        let Some(wec) = wec_of(row) else { return false };
        facts.destinations.contains(wec) && !returned.contains(wec) && is_blank(row)
    })
}

/// KubeStellar never enforces a collector's `limit`; we return at most `limit` rows.
fn limit(facts: &CombinedFacts, d: &Difference) -> bool {
    let Some(limit) = facts.limit else {
        return false;
    };
    let (Some((ks, ks_rest)), Some((sr, sr_rest))) = (
        rows_and_rest(&d.kubestellar),
        rows_and_rest(&d.status_router),
    ) else {
        return false;
    };
    let returned = facts.returned();
    ks_rest == sr_rest
        && ks.len() > limit
        && sr.len() == limit.min(returned.len())
        && contained(&sr, &ks)
        && sr
            .iter()
            .all(|row| wec_of(row).is_some_and(|w| returned.contains(w)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use serde_json::json;

    fn facts(kind: Kind, decision: Decision, shown: [Option<Value>; 2]) -> Facts {
        Facts {
            kind,
            singleton: false,
            s: BTreeSet::new(),
            m: BTreeSet::new(),
            decision,
            reports: Default::default(),
            untouched: None,
            shown,
        }
    }

    fn label_difference(field: &str) -> Difference {
        Difference {
            object: "x".into(),
            field: field.into(),
            kubestellar: None,
            status_router: Some(json!("true")),
        }
    }

    #[test]
    fn a_job_is_stuck_only_above_the_counters_it_wants() {
        let d = label_difference(SINGLETON_STATUS_LABEL);
        let stuck = facts(
            Kind::Job,
            Decision::None,
            [None, Some(json!({"succeeded": 2}))],
        );
        assert!(job_counters(&stuck, &d, &[]));
        let active_only = facts(
            Kind::Job,
            Decision::None,
            [None, Some(json!({"active": 2}))],
        );
        assert!(!job_counters(&active_only, &d, &[]));
        let deployment = facts(Kind::Deployment, Decision::None, stuck.shown.clone());
        assert!(!job_counters(&deployment, &d, &[]));
    }

    #[test]
    fn a_merge_patched_status_keeps_old_keys_and_its_label() {
        let shown = [
            Some(json!({"phase": "Ready", "count": 2})),
            Some(json!({"phase": "Ready"})),
        ];
        let kept = facts(Kind::Gadget, Decision::Singleton, shown);
        let status = Difference {
            field: "status".into(),
            ..label_difference("status")
        };
        assert!(status_merge_patch(&kept, &status, &[]));
        let label = Difference {
            kubestellar: Some(json!("true")),
            status_router: None,
            ..label_difference(SINGLETON_STATUS_LABEL)
        };
        assert!(status_merge_patch(&kept, &label, &[]));
        let changed = [
            Some(json!({"phase": "Pending", "count": 2})),
            Some(json!({"phase": "Ready"})),
        ];
        let changed = facts(Kind::Gadget, Decision::Singleton, changed);
        assert!(!status_merge_patch(&changed, &status, &[]));
    }
}
