//! Property test of the index: after any sequence of Binding and WorkStatus
//! events, every object's facts equal those of an index built from scratch
//! from the final Bindings and WorkStatuses, and every event returned (to be
//! queued) every object whose routing or reports it changed.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::kubestellar::{
    ClusterScopeDownsyncClause, Destination, NamespaceScopeDownsyncClause, WorkloadClauses,
};

const OBJECTS: usize = 4;
const WECS: [&str; 3] = ["wec1", "wec2", "wec3"];

/// Object `i`: two namespaced Deployments, a cluster-scoped one, and one
/// whose name collides with a Deployment's in another resource.
fn object(i: usize) -> ObjectKey {
    let (group, resource, namespace) = match i {
        0 | 1 => ("apps", "deployments", "ns"),
        2 => ("", "namespaces", ""),
        _ => ("apps", "statefulsets", "ns"),
    };
    ObjectKey::new(
        group.into(),
        resource.into(),
        namespace.into(),
        format!("o{}", i % 2),
    )
}

fn reference(key: &ObjectKey, version: &str) -> ObjectReference {
    ObjectReference {
        group: key.group.clone(),
        version: version.into(),
        resource: key.resource.clone(),
        name: key.name.clone(),
        resource_version: "1".into(),
    }
}

#[derive(Clone, Debug)]
enum Event {
    ApplyBinding {
        name: usize,
        wecs: Vec<usize>,
        clauses: Vec<(usize, bool, bool, bool)>,
    },
    DeleteBinding(usize),
    ApplyReport {
        wec: usize,
        name: usize,
        object: usize,
        version: bool,
        status: Option<u8>,
    },
    DeleteReport {
        wec: usize,
        name: usize,
    },
}

fn event() -> impl Strategy<Value = Event> {
    let clause = (0..OBJECTS, any::<bool>(), any::<bool>(), any::<bool>());
    prop_oneof![
        (
            0..3usize,
            prop::collection::vec(0..WECS.len(), 0..4),
            prop::collection::vec(clause, 0..5)
        )
            .prop_map(|(name, wecs, clauses)| Event::ApplyBinding {
                name,
                wecs,
                clauses
            }),
        (0..3usize).prop_map(Event::DeleteBinding),
        (
            0..WECS.len(),
            0..3usize,
            0..OBJECTS,
            any::<bool>(),
            prop::option::of(0..3u8)
        )
            .prop_map(|(wec, name, object, version, status)| Event::ApplyReport {
                wec,
                name,
                object,
                version,
                status
            }),
        (0..WECS.len(), 0..3usize).prop_map(|(wec, name)| Event::DeleteReport { wec, name }),
    ]
}

fn spec(wecs: &[usize], clauses: &[(usize, bool, bool, bool)]) -> BindingSpec {
    let mut workload = WorkloadClauses::default();
    for &(i, singleton, multi_wec, v2) in clauses {
        let key = object(i);
        let modulation = DownsyncModulation {
            want_singleton_reported_state: singleton,
            want_multi_wec_reported_state: multi_wec,
            ..Default::default()
        };
        let object = reference(&key, if v2 { "v2" } else { "v1" });
        if key.namespace.is_empty() {
            workload
                .cluster_scope
                .push(ClusterScopeDownsyncClause { object, modulation });
        } else {
            workload.namespace_scope.push(NamespaceScopeDownsyncClause {
                object,
                namespace: key.namespace.clone(),
                modulation,
            });
        }
    }
    BindingSpec {
        destinations: wecs
            .iter()
            .map(|&w| Destination {
                cluster_id: WECS[w].into(),
            })
            .collect(),
        workload,
    }
}

fn work_status(wec: usize, name: usize, object: usize, v2: bool, status: Option<u8>) -> WorkStatus {
    let key = self::object(object);
    let mut ws = WorkStatus::default();
    ws.metadata.namespace = Some(WECS[wec].into());
    ws.metadata.name = Some(format!("ws{name}"));
    let source = &mut ws.spec.source_ref;
    source.group = key.group.clone();
    source.version = if v2 { "v2" } else { "v1" }.into();
    source.resource = key.resource.clone();
    source.namespace = key.namespace.clone();
    source.name = key.name.clone();
    ws.status = status.map(|n| json!({"n": n}));
    ws
}

fn all_facts(index: &Index) -> Vec<ObjectFacts> {
    (0..OBJECTS).map(|i| index.facts(&object(i))).collect()
}

/// What a reconcile decides on: the facts without the API version, which
/// names the same object whichever Binding or WorkStatus gives it (and a
/// new resource's watch queues all its objects anyway).
fn decisive(facts: &[ObjectFacts]) -> Vec<ObjectFacts> {
    facts
        .iter()
        .cloned()
        .map(|mut f| {
            f.routing.version = None;
            f
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_sequence_of_events_routes_as_recomputing_from_scratch(
        events in prop::collection::vec(event(), 0..40)
    ) {
        let mut index = Index::default();
        let mut bindings: BTreeMap<String, BindingSpec> = BTreeMap::new();
        let mut reports: BTreeMap<(usize, usize), WorkStatus> = BTreeMap::new();
        for event in &events {
            let before = decisive(&all_facts(&index));
            let affected: BTreeSet<ObjectKey> = match event {
                Event::ApplyBinding { name, wecs, clauses } => {
                    let spec = spec(wecs, clauses);
                    bindings.insert(format!("b{name}"), spec.clone());
                    index.apply_binding(&format!("b{name}"), &spec)
                }
                Event::DeleteBinding(name) => {
                    bindings.remove(&format!("b{name}"));
                    index.delete_binding(&format!("b{name}"))
                }
                Event::ApplyReport { wec, name, object, version, status } => {
                    let ws = work_status(*wec, *name, *object, *version, *status);
                    reports.insert((*wec, *name), ws.clone());
                    index.apply_report(&ws)
                }
                Event::DeleteReport { wec, name } => {
                    reports.remove(&(*wec, *name));
                    index.delete_report(&ReportId::new(WECS[*wec].into(), format!("ws{name}")))
                }
            };
            let after = decisive(&all_facts(&index));
            for i in 0..OBJECTS {
                if before[i] != after[i] {
                    prop_assert!(
                        affected.contains(&object(i)),
                        "{event:?} changed {} without queueing it", object(i)
                    );
                }
            }
        }
        let mut fresh = Index::default();
        for (name, spec) in &bindings {
            fresh.apply_binding(name, spec);
        }
        for ws in reports.values() {
            fresh.apply_report(ws);
        }
        prop_assert_eq!(all_facts(&index), all_facts(&fresh));
        prop_assert_eq!(index.objects(), fresh.objects());
        prop_assert_eq!(index.resources(), fresh.resources());
        for i in 0..OBJECTS {
            prop_assert_eq!(index.tracks(&object(i)), fresh.tracks(&object(i)));
        }
    }
}
