//! The shape of a kind-aware aggregation rule, and how one is applied.
//!
//! KubeStellar's kind rules (`pkg/status/aggregation/` upstream) all have the
//! same shape: some counters take the minimum over the WECs, some the
//! maximum, a few strings are kept where every WEC agrees, `conditions` is
//! built one of three ways, and every other field is left out. A kind here is
//! that shape written down as a [`Rules`] value, so that the five kinds differ
//! only in data and share one tested implementation.
//!
//! Two deliberate differences from upstream, the same for every kind:
//! - a counter that a WEC omits (or reports as anything but an integer)
//!   counts as 0 there. The API server omits zero counters, so upstream's
//!   skipping of omitted fields lets a WEC with no available replicas leave
//!   the minimum of `availableReplicas` untouched, overstating availability;
//! - where one condition is kept, it is chosen deterministically (the newest
//!   `lastTransitionTime`, then the newest `lastUpdateTime`, then the first
//!   WEC by name) instead of by Go's map order.

use serde_json::{Map, Value};

use crate::conditions::merge_valid_conditions;
use crate::reports::Reported;

/// How one kind's status aggregates over two or more WECs.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// Counters that take the smallest value over the WECs.
    pub min: &'static [&'static str],
    /// Counters that take the largest value over the WECs.
    pub max: &'static [&'static str],
    /// Strings kept only where every WEC reports the same non-empty value.
    pub agreed: &'static [&'static str],
    /// What becomes of `conditions`.
    pub conditions: Conditions,
}

/// What a kind's aggregate says in `conditions`.
#[derive(Clone, Copy, Debug)]
pub enum Conditions {
    /// No `conditions` field at all.
    Omit,
    /// `[c]`, where `c` is one condition of this `type` (and `reason`, when
    /// given) reported by some WEC, chosen as the module says; `[]` when no
    /// WEC reports one. Its status is not looked at, as upstream.
    KeepOne {
        type_: &'static str,
        reason: Option<&'static str>,
    },
    /// The generic rule of `crate::conditions` (three-valued by `type`, a
    /// WEC without the condition counting as Unknown), sorted by `type` as
    /// upstream sorts them; `[]` when no WEC reports any.
    ByType,
}

impl Rules {
    /// The aggregate of `reports` (two or more, in `crate::reports` order).
    pub fn apply(&self, reports: &[Reported]) -> Map<String, Value> {
        let mut out = Map::new();
        for field in self.min {
            let min = reports.iter().map(|r| count(&r.status, field)).min();
            out.insert((*field).into(), Value::from(min.unwrap_or(0)));
        }
        for field in self.max {
            let max = reports.iter().map(|r| count(&r.status, field)).max();
            out.insert((*field).into(), Value::from(max.unwrap_or(0)));
        }
        for field in self.agreed {
            if let Some(value) = agreed(reports, field) {
                out.insert((*field).into(), Value::from(value));
            }
        }
        let conditions = match self.conditions {
            Conditions::Omit => return out,
            Conditions::KeepOne { type_, reason } => keep_one(reports, type_, reason)
                .into_iter()
                .cloned()
                .collect(),
            Conditions::ByType => {
                let lists: Vec<Option<&Value>> =
                    reports.iter().map(|r| r.status.get("conditions")).collect();
                let mut merged = merge_valid_conditions(&lists);
                merged.sort_by(|a, b| a["type"].as_str().cmp(&b["type"].as_str()));
                merged
            }
        };
        out.insert("conditions".into(), Value::Array(conditions));
        out
    }
}

/// A WEC's counter: its integer value, 0 when omitted or not an integer.
fn count(status: &Map<String, Value>, field: &str) -> i64 {
    status.get(field).and_then(Value::as_i64).unwrap_or(0)
}

/// The string every WEC reports for `field`, if they all report the same
/// non-empty one.
fn agreed<'r>(reports: &'r [Reported], field: &str) -> Option<&'r str> {
    let mut values = reports
        .iter()
        .map(|r| r.status.get(field).and_then(Value::as_str));
    let first = values.next()??;
    (!first.is_empty() && values.all(|v| v == Some(first))).then_some(first)
}

/// The condition of `type_` (and `reason`) to keep: the newest by
/// (`lastTransitionTime`, `lastUpdateTime`), the first in report order among
/// equals. Kubernetes writes both times in one fixed RFC 3339 UTC format, so
/// they order as strings; a missing time is the oldest.
fn keep_one<'r>(reports: &'r [Reported], type_: &str, reason: Option<&str>) -> Option<&'r Value> {
    let text = |c: &'r Map<String, Value>, key: &str| c.get(key).and_then(Value::as_str);
    let stamp = |c: &'r Map<String, Value>| {
        (
            text(c, "lastTransitionTime").unwrap_or_default(),
            text(c, "lastUpdateTime").unwrap_or_default(),
        )
    };
    let mut best: Option<(&'r Value, (&'r str, &'r str))> = None;
    for report in reports {
        let Some(list) = report.status.get("conditions").and_then(Value::as_array) else {
            continue;
        };
        for condition in list {
            let Some(c) = condition.as_object() else {
                continue;
            };
            if text(c, "type") != Some(type_)
                || reason.is_some_and(|r| text(c, "reason") != Some(r))
            {
                continue;
            }
            let this = stamp(c);
            if best.is_none_or(|(_, newest)| this > newest) {
                best = Some((condition, this));
            }
        }
    }
    best.map(|(condition, _)| condition)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RULES: Rules = Rules {
        min: &["ready"],
        max: &["bad"],
        agreed: &["rev"],
        conditions: Conditions::KeepOne {
            type_: "Stuck",
            reason: Some("Deadline"),
        },
    };

    fn reports(statuses: &[(&'static str, Value)]) -> Vec<Reported<'static>> {
        statuses
            .iter()
            .map(|(wec, s)| Reported {
                wec,
                status: s.as_object().unwrap().clone(),
            })
            .collect()
    }

    #[test]
    fn omitted_and_non_integer_counters_count_as_zero() {
        let out = RULES.apply(&reports(&[
            ("a", json!({"ready": 3, "bad": 2})),
            ("b", json!({"ready": "3", "bad": 1.5})),
        ]));
        assert_eq!(out["ready"], 0);
        assert_eq!(out["bad"], 2);
        let out = RULES.apply(&reports(&[("a", json!({})), ("b", json!({}))]));
        assert_eq!(
            Value::Object(out),
            json!({"ready": 0, "bad": 0, "conditions": []})
        );
    }

    #[test]
    fn strings_are_kept_only_where_every_wec_agrees() {
        let agree = reports(&[("a", json!({"rev": "r1"})), ("b", json!({"rev": "r1"}))]);
        assert_eq!(RULES.apply(&agree)["rev"], "r1");
        for other in [json!({"rev": "r2"}), json!({}), json!({"rev": 1})] {
            let r = reports(&[("a", json!({"rev": "r1"})), ("b", other)]);
            assert!(!RULES.apply(&r).contains_key("rev"));
        }
        let empty = reports(&[("a", json!({"rev": ""})), ("b", json!({"rev": ""}))]);
        assert!(!RULES.apply(&empty).contains_key("rev"));
    }

    #[test]
    fn the_kept_condition_is_the_newest_and_the_first_wec_among_equals() {
        let c = |reason: &str, t: &str, u: &str| json!({"type": "Stuck", "reason": reason, "lastTransitionTime": t, "lastUpdateTime": u});
        let r = reports(&[
            (
                "a",
                json!({"conditions": [c("Deadline", "2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z")]}),
            ),
            (
                "b",
                json!({"conditions": [c("Deadline", "2024-01-02T00:00:00Z", "2024-01-02T00:00:00Z"), c("Other", "2024-01-09T00:00:00Z", "")]}),
            ),
            (
                "c",
                json!({"conditions": [c("Deadline", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z")]}),
            ),
            (
                "d",
                json!({"conditions": ["junk", {"message": "from d", "type": "Stuck", "reason": "Deadline",
                "lastTransitionTime": "2024-01-02T00:00:00Z", "lastUpdateTime": "2024-01-03T00:00:00Z"}]}),
            ),
        ]);
        let out = RULES.apply(&r);
        assert_eq!(
            out["conditions"],
            json!([c(
                "Deadline",
                "2024-01-02T00:00:00Z",
                "2024-01-03T00:00:00Z"
            )])
        );
    }
}
