//! Comparing the other half of a status controller: every CombinedStatus (by the object and
//! BindingPolicy its labels name, result by result) and every Binding's
//! `StatusCollectorsAvailable` condition. What the rules may look at ([`CombinedFacts`]) comes
//! from the scenario's final inputs.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::compare::Difference;
use super::scenario::{Scenario, State};
use super::side::Snapshot;

/// What the rules may know of one (object, BindingPolicy, collector) at the end.
#[derive(Debug)]
pub struct CombinedFacts {
    /// The `limit` of the collector (`None`: not one the scenario creates).
    pub limit: Option<usize>,
    /// The policy's destinations, by WEC name.
    pub destinations: BTreeSet<String>,
    /// WECs where, during the timeline, a WorkStatus of the object from another Binding went
    /// (see `shared_rows`).
    pub shared: BTreeSet<String>,
    /// Per destination WEC: the statuses of the object's WorkStatuses there (one per Binding
    /// that delivers it, of any policy), as the model has them at the end.
    pub reports: BTreeMap<String, Vec<Option<Value>>>,
}

impl CombinedFacts {
    fn of(scenario: &Scenario, state: &State, object: &str, policy: &str, collector: &str) -> Self {
        let o = scenario.objects.iter().position(|x| x.name == object);
        let p = state
            .policies
            .iter()
            .position(|x| x.as_ref().is_some_and(|x| x.name == policy));
        let destinations: BTreeSet<usize> = p
            .map(|p| state.destinations(p).into_iter().collect())
            .unwrap_or_default();
        let mut reports: BTreeMap<String, Vec<Option<Value>>> = BTreeMap::new();
        if let Some(o) = o {
            for (_, ro, w) in state.delivered(&scenario.objects) {
                if ro == o && destinations.contains(&w) {
                    let status = state.statuses.get(&(o, w)).cloned().flatten();
                    reports
                        .entry(super::scenario::wec_name(w))
                        .or_default()
                        .push(status);
                }
            }
        }
        let limit = super::scenario::COLLECTORS
            .contains(&collector)
            .then(|| super::scenario::collector_spec(collector)["limit"].as_u64())
            .flatten()
            .map(|l| l as usize);
        CombinedFacts {
            shared: o.map(|o| shared(scenario, o, p)).unwrap_or_default(),
            limit,
            destinations: destinations
                .into_iter()
                .map(super::scenario::wec_name)
                .collect(),
            reports,
        }
    }
}

impl CombinedFacts {
    /// The WECs of the model where the object's WorkStatus carries a status.
    pub fn returned(&self) -> BTreeSet<&str> {
        self.reports
            .iter()
            .filter(|(_, statuses)| statuses.iter().any(Option::is_some))
            .map(|(w, _)| w.as_str())
            .collect()
    }
}

/// The WECs where a WorkStatus of object `o` from a Binding other than policy `p`'s was deleted
/// at some step of the timeline.
fn shared(scenario: &Scenario, o: usize, p: Option<usize>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut state = scenario.initial.clone();
    let mut before = state.delivered(&scenario.objects);
    for event in &scenario.timeline {
        state.apply(event);
        let after = state.delivered(&scenario.objects);
        for (q, ro, w) in before.difference(&after) {
            if *ro == o && Some(*q) != p {
                out.insert(super::scenario::wec_name(*w));
            }
        }
        before = after;
    }
    out
}

/// A CombinedStatus's results by collector name (`None`: no CombinedStatus).
fn by_collector(results: Option<&Value>) -> Option<BTreeMap<String, Value>> {
    let results = results?.as_array()?;
    Some(
        results
            .iter()
            .map(|r| {
                let name = r["name"].as_str().unwrap_or_default().to_string();
                (name, r.clone())
            })
            .collect(),
    )
}

/// The differences of CombinedStatuses and conditions, each with the facts its rule reads.
pub fn differences(
    scenario: &Scenario,
    last: &State,
    kubestellar: &Snapshot,
    status_router: &Snapshot,
) -> (usize, Vec<(Difference, Option<CombinedFacts>)>) {
    let mut out = Vec::new();
    let keys: BTreeSet<&(String, String)> = kubestellar
        .combined
        .keys()
        .chain(status_router.combined.keys())
        .collect();
    for key in &keys {
        let (object, policy) = key;
        let ks = by_collector(kubestellar.combined.get(*key));
        let sr = by_collector(status_router.combined.get(*key));
        let names: BTreeSet<String> = [&ks, &sr]
            .into_iter()
            .flatten()
            .flat_map(|m| m.keys().cloned())
            .collect();
        for name in names {
            let a = ks.as_ref().and_then(|m| m.get(&name)).cloned();
            let b = sr.as_ref().and_then(|m| m.get(&name)).cloned();
            if a != b {
                out.push((
                    Difference {
                        object: object.clone(),
                        field: format!("CombinedStatus {policy} {name}"),
                        kubestellar: a,
                        status_router: b,
                    },
                    Some(CombinedFacts::of(scenario, last, object, policy, &name)),
                ));
            }
        }
    }
    let bindings: BTreeSet<&String> = kubestellar
        .conditions
        .keys()
        .chain(status_router.conditions.keys())
        .collect();
    for binding in bindings {
        let show = |s: &Snapshot| {
            s.conditions
                .get(binding)
                .cloned()
                .flatten()
                .map(|(status, reason, message)| json!([status, reason, message]))
        };
        let (a, b) = (show(kubestellar), show(status_router));
        if a != b {
            out.push((
                Difference {
                    object: format!("Binding {binding}"),
                    field: "StatusCollectorsAvailable".into(),
                    kubestellar: a,
                    status_router: b,
                },
                None,
            ));
        }
    }
    (keys.len(), out)
}
