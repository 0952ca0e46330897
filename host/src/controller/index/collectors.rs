//! What the index knows for StatusCollectors: which Binding clauses name
//! collectors for an object, over which destinations, and what each WEC
//! returned with its time. A change of a clause's collector list, or of the
//! destinations of a Binding whose clause names collectors, re-queues the
//! object ([`Index::apply_binding`] compares these contributions too).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use super::{BindingFacts, Index, ObjectKey, ReportId};

/// A Binding's clause for an object that names StatusCollectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorClause {
    /// The Binding's name, which is its BindingPolicy's.
    pub binding: String,
    pub destinations: BTreeSet<String>,
    pub collectors: Vec<String>,
}

/// One WorkStatus's report, with the time the WEC last returned it. A status
/// too deep for the host to read (see [`crate::kubestellar::StatusText`])
/// counts as not returned: a StatusCollector evaluates a tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Returned {
    pub id: ReportId,
    pub status: Option<Arc<Value>>,
    pub updated: Option<String>,
}

impl BindingFacts {
    /// What this Binding contributes to an object's collected status.
    pub(super) fn collector_contribution(
        &self,
        key: &ObjectKey,
    ) -> Option<(&[String], &BTreeSet<String>)> {
        self.clauses
            .get(key)
            .filter(|c| !c.collectors.is_empty())
            .map(|c| (c.collectors.as_slice(), &self.destinations))
    }
}

impl Index {
    /// The clauses naming collectors for an object, by Binding name.
    pub fn collector_clauses(&self, key: &ObjectKey) -> Vec<CollectorClause> {
        let mut clauses: Vec<CollectorClause> = self
            .bindings_by_object
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|name| {
                let (collectors, destinations) = self.bindings[name].collector_contribution(key)?;
                Some(CollectorClause {
                    binding: name.to_string(),
                    destinations: destinations.clone(),
                    collectors: collectors.to_vec(),
                })
            })
            .collect();
        clauses.sort_by(|a, b| a.binding.cmp(&b.binding));
        clauses
    }

    /// The objects whose clauses name the collector (any collector for `None`).
    pub fn objects_naming(&self, collector: Option<&str>) -> BTreeSet<ObjectKey> {
        self.bindings
            .values()
            .flat_map(|b| b.clauses.iter())
            .filter(|(_, c)| match collector {
                Some(name) => c.collectors.iter().any(|n| n == name),
                None => !c.collectors.is_empty(),
            })
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// The objects of one Binding whose clauses name collectors.
    pub fn collecting_objects_of(&self, binding: &str) -> BTreeSet<ObjectKey> {
        self.bindings
            .get(binding)
            .into_iter()
            .flat_map(|b| b.clauses.iter())
            .filter(|(_, c)| !c.collectors.is_empty())
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Every WorkStatus on an object with its time, sorted by WEC and name.
    pub fn returned(&self, key: &ObjectKey) -> Vec<Returned> {
        self.reports_by_object
            .get(key)
            .into_iter()
            .flatten()
            .map(|id| {
                let facts = &self.reports[id];
                Returned {
                    id: id.clone(),
                    status: facts
                        .status
                        .as_ref()
                        .and_then(|text| text.parse().ok())
                        .map(Arc::new),
                    updated: facts.updated.as_deref().map(String::from),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubestellar::BindingSpec;

    fn spec(destinations: &[&str], collectors: &[&str]) -> BindingSpec {
        serde_json::from_value(serde_json::json!({
            "destinations": destinations.iter().map(|d| serde_json::json!({"clusterId": d})).collect::<Vec<_>>(),
            "workload": {"namespaceScope": [{
                "group": "apps", "version": "v1", "resource": "deployments",
                "namespace": "ns", "name": "web", "resourceVersion": "1",
                "statusCollectors": collectors,
            }]}
        }))
        .unwrap()
    }

    fn web() -> ObjectKey {
        ObjectKey::new(
            "apps".into(),
            "deployments".into(),
            "ns".into(),
            "web".into(),
        )
    }

    #[test]
    fn collector_lists_and_their_destinations_re_queue_the_object() {
        let mut index = Index::default();
        assert_eq!(
            index.apply_binding("b", &spec(&["c1"], &["sum"])),
            [web()].into()
        );
        assert_eq!(
            index.apply_binding("b", &spec(&["c1"], &["sum"])),
            BTreeSet::new()
        );
        assert_eq!(
            index.apply_binding("b", &spec(&["c1", "c2"], &["sum"])),
            [web()].into()
        );
        assert_eq!(
            index.apply_binding("b", &spec(&["c1", "c2"], &["sum", "x"])),
            [web()].into()
        );
        assert_eq!(index.objects_naming(Some("x")), [web()].into());
        assert_eq!(index.objects_naming(Some("y")), BTreeSet::new());
        let clauses = index.collector_clauses(&web());
        assert_eq!(clauses[0].collectors, ["sum", "x"]);
        assert_eq!(clauses[0].destinations.len(), 2);
        assert_eq!(
            index.apply_binding("b", &spec(&["c1", "c2"], &[])),
            [web()].into()
        );
        assert!(index.collector_clauses(&web()).is_empty());
    }
}
