//! Kind-aware multi-WEC aggregation: a drop-in for what KubeStellar v0.30
//! writes for the kinds it knows, with the generic rules of
//! `crate::aggregate` for every other kind.
//!
//! KubeStellar aggregates apps/Deployment, apps/ReplicaSet and apps/DaemonSet
//! with rules of their own, and proposes rules for apps/StatefulSet and
//! batch/Job (open PR #3594); an operator who swaps its status controller for
//! status-router must see the same WDS statuses for them. Each kind's rule is
//! a [`Rules`] value in a module named after the kind; [`rules`] says where
//! and why they differ from upstream (an omitted counter is 0, the kept
//! condition is chosen deterministically). Upstream writes nothing at all for
//! other kinds; here they get the generic rules.
//!
//! Nothing here depends on the order of the reports: `crate::reports` puts
//! them in one canonical order before any rule sees them.

pub mod daemonset;
pub mod deployment;
pub mod job;
pub mod replicaset;
pub mod rules;
pub mod statefulset;

use serde_json::{Map, Value};

pub use rules::{Conditions, Rules};

use crate::aggregate::merge_maps;
use crate::reports::{self, Reported};

/// The kinds with a rule of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Deployment,
    ReplicaSet,
    DaemonSet,
    StatefulSet,
    Job,
}

impl Kind {
    /// The kind of an object of API `group` and `kind`, if it has a rule.
    /// The version does not matter, as upstream matches group and kind.
    pub fn of(group: &str, kind: &str) -> Option<Kind> {
        match (group, kind) {
            ("apps", "Deployment") => Some(Kind::Deployment),
            ("apps", "ReplicaSet") => Some(Kind::ReplicaSet),
            ("apps", "DaemonSet") => Some(Kind::DaemonSet),
            ("apps", "StatefulSet") => Some(Kind::StatefulSet),
            ("batch", "Job") => Some(Kind::Job),
            _ => None,
        }
    }

    /// The kind's rule.
    pub fn rules(self) -> &'static Rules {
        match self {
            Kind::Deployment => &deployment::RULES,
            Kind::ReplicaSet => &replicaset::RULES,
            Kind::DaemonSet => &daemonset::RULES,
            Kind::StatefulSet => &statefulset::RULES,
            Kind::Job => &job::RULES,
        }
    }
}

/// The default policy's `aggregate`: the JSON text of the status to write for
/// an object of `group` and `kind` from the (WEC, status JSON) reports.
///
/// Two or more reports of a kind with a rule aggregate by that rule; anything
/// else by the generic rules (which copy a single report as it is, as the
/// host does). Fails, naming the WEC, when a report is not a JSON object.
pub fn aggregate_json<'a>(
    group: &str,
    kind: &str,
    reported: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String, String> {
    let reports = reports::parse(reported)?;
    Ok(Value::Object(aggregate(group, kind, &reports)).to_string())
}

/// [`aggregate_json`] on reports already parsed, in `crate::reports` order.
pub fn aggregate(group: &str, kind: &str, reports: &[Reported]) -> Map<String, Value> {
    match Kind::of(group, kind) {
        Some(kind) if reports.len() >= 2 => kind.rules().apply(reports),
        _ => {
            let maps: Vec<&Map<String, Value>> = reports.iter().map(|r| &r.status).collect();
            merge_maps(&maps)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// Aggregates statuses reported by `wec1`, `wec2`, ... for `group`/`kind`.
    pub(crate) fn agg(group: &str, kind: &str, statuses: &[Value]) -> Value {
        let reported: Vec<(String, String)> = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("wec{}", i + 1), s.to_string()))
            .collect();
        let out = aggregate_json(
            group,
            kind,
            reported.iter().map(|(w, s)| (w.as_str(), s.as_str())),
        )
        .unwrap();
        serde_json::from_str(&out).unwrap()
    }

    #[test]
    fn kinds_are_matched_by_group_and_kind() {
        assert_eq!(Kind::of("apps", "Deployment"), Some(Kind::Deployment));
        assert_eq!(Kind::of("batch", "Job"), Some(Kind::Job));
        assert_eq!(Kind::of("extensions", "Deployment"), None);
        assert_eq!(Kind::of("apps", "ControllerRevision"), None);
        assert_eq!(Kind::of("example.com", "Job"), None);
    }

    #[test]
    fn other_kinds_and_single_reports_take_the_generic_rules() {
        let a = json!({"readyReplicas": 2, "phase": "Running", "paused": true});
        let b = json!({"readyReplicas": 1, "phase": "Running", "paused": true});
        assert_eq!(
            agg("example.com", "Gadget", &[a.clone(), b]),
            json!({"readyReplicas": 1, "phase": "Running", "paused": true})
        );
        // One report is copied whatever the kind, every field kept.
        assert_eq!(agg("apps", "Deployment", std::slice::from_ref(&a)), a);
    }

    #[test]
    fn a_bad_report_is_an_error_for_every_kind() {
        for (group, kind) in [("apps", "Deployment"), ("example.com", "Gadget")] {
            let err = aggregate_json(group, kind, [("wec1", "{}"), ("wec2", "[1]")]).unwrap_err();
            assert!(err.contains("\"wec2\""), "{err}");
        }
    }

    /// A small deterministic generator (xorshift), so that the property test
    /// below needs no dependency and every failure can be replayed.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self, below: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % below
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.next(from.len() as u64) as usize]
        }

        /// A status with random counters (some omitted), strings and conditions
        /// drawn from small pools, so that ties and agreements happen often.
        fn status(&mut self) -> Value {
            let mut s = Map::new();
            for field in [
                "replicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
                "numberMisscheduled",
                "numberReady",
                "active",
                "succeeded",
                "observedGeneration",
            ] {
                if self.next(4) != 0 {
                    s.insert(field.into(), json!(self.next(4)));
                }
            }
            for field in ["currentRevision", "updateRevision", "phase"] {
                if self.next(3) != 0 {
                    s.insert(field.into(), json!(self.pick(&["r1", "r2"])));
                }
            }
            let times = ["", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"];
            let conditions: Vec<Value> = (0..self.next(4))
                .map(|i| {
                    json!({
                        "type": self.pick(&["Progressing", "ReplicaFailure", "Available", "Complete"]),
                        "status": self.pick(&["True", "False", "Unknown"]),
                        "reason": self.pick(&["ProgressDeadlineExceeded", "Other"]),
                        "lastTransitionTime": self.pick(&times),
                        "lastUpdateTime": self.pick(&times),
                        "message": format!("m{i}"),
                    })
                })
                .collect();
            if !conditions.is_empty() {
                s.insert("conditions".into(), Value::Array(conditions));
            }
            Value::Object(s)
        }
    }

    fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut tail in permutations(&rest) {
                tail.insert(0, first.clone());
                out.push(tail);
            }
        }
        out
    }

    #[test]
    fn aggregation_does_not_depend_on_the_order_of_the_reports() {
        let kinds = [
            ("apps", "Deployment"),
            ("apps", "ReplicaSet"),
            ("apps", "DaemonSet"),
            ("apps", "StatefulSet"),
            ("batch", "Job"),
            ("example.com", "Gadget"),
        ];
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        for round in 0..60 {
            let n = 2 + g.next(3) as usize;
            // WEC names repeat now and then: two WorkStatuses from one WEC.
            let reports: Vec<(String, String)> = (0..n)
                .map(|_| {
                    (
                        g.pick(&["wec1", "wec2", "wec3"]).to_string(),
                        g.status().to_string(),
                    )
                })
                .collect();
            for (group, kind) in kinds {
                let results: Vec<String> = permutations(&reports)
                    .iter()
                    .map(|p| {
                        aggregate_json(group, kind, p.iter().map(|(w, s)| (w.as_str(), s.as_str())))
                            .unwrap()
                    })
                    .collect();
                assert!(
                    results.iter().all(|r| *r == results[0]),
                    "round {round}, {kind}: {reports:?} gives {results:?}"
                );
            }
        }
    }
}
