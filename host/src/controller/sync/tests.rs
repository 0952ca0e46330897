//! The decision logic against an in-memory WDS and the real default policy.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::json;

use super::*;
use crate::controller::index::Index;
use crate::kubestellar::{
    BindingSpec, Destination, DownsyncModulation, EXECUTING_COUNT_LABEL, MULTI_WEC_STATUS_LABEL,
    NamespaceScopeDownsyncClause, ObjectReference, SINGLETON_STATUS_LABEL, WorkStatus,
    WorkloadClauses,
};
use crate::policy::{DEFAULT_POLICY, PolicyEngine};

#[derive(Default)]
struct FakeWds {
    objects: Mutex<BTreeMap<ObjectKey, Workload>>,
    writes: Mutex<usize>,
    warnings: Mutex<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
#[error("fake")]
struct Never;

impl WorkloadObjects for FakeWds {
    type Error = Never;

    async fn get(&self, key: &ObjectKey, _version: &str) -> Result<Option<Workload>, Never> {
        Ok(self.objects.lock().unwrap().get(key).cloned())
    }

    async fn write(&self, object: &Workload, desired: &Desired) -> Result<bool, Never> {
        let mut objects = self.objects.lock().unwrap();
        let stored = objects.get_mut(&object.key).unwrap();
        let mut labels = stored.labels.clone();
        labels.remove(SINGLETON_STATUS_LABEL);
        labels.remove(MULTI_WEC_STATUS_LABEL);
        labels.remove(EXECUTING_COUNT_LABEL);
        if let Some(n) = desired.executing_count {
            labels.insert(EXECUTING_COUNT_LABEL.into(), n.to_string());
        }
        match desired.label {
            Some(StatusLabel::Singleton) => {
                labels.insert(SINGLETON_STATUS_LABEL.into(), "true".into())
            }
            Some(StatusLabel::MultiWec) => {
                labels.insert(MULTI_WEC_STATUS_LABEL.into(), "true".into())
            }
            None => None,
        };
        if stored.status == desired.status && stored.labels == labels {
            return Ok(false);
        }
        stored.status = desired.status.clone();
        stored.labels = labels;
        *self.writes.lock().unwrap() += 1;
        Ok(true)
    }

    async fn known_version(&self, group: &str, resource: &str) -> Option<String> {
        let objects = self.objects.lock().unwrap();
        objects
            .values()
            .find(|o| o.key.group == group && o.key.resource == resource)
            .map(|o| o.version.clone())
    }

    async fn warn(&self, _object: &Workload, reason: &str, note: String) {
        self.warnings
            .lock()
            .unwrap()
            .push(format!("{reason}: {note}"));
    }
}

fn key(group: &str, resource: &str, name: &str) -> ObjectKey {
    ObjectKey::new(
        group.into(),
        resource.into(),
        if resource == "namespaces" {
            "".into()
        } else {
            "default".into()
        },
        name.into(),
    )
}

fn web() -> ObjectKey {
    key("apps", "deployments", "web")
}

struct World {
    wds: FakeWds,
    index: Index,
    policy: PolicyInstance,
}

impl World {
    fn new() -> Self {
        let engine = PolicyEngine::new().unwrap();
        let wds = FakeWds::default();
        for k in [web(), key("", "namespaces", "ns1")] {
            wds.objects.lock().unwrap().insert(
                k.clone(),
                Workload {
                    key: k,
                    version: "v1".into(),
                    kind: "Deployment".into(),
                    labels: BTreeMap::new(),
                    annotations: BTreeMap::new(),
                    status: json!({}),
                },
            );
        }
        Self {
            wds,
            index: Index::default(),
            policy: PolicyInstance::new(engine.load(DEFAULT_POLICY).unwrap()),
        }
    }

    fn bind(
        &mut self,
        name: &str,
        object: &ObjectKey,
        wecs: &[&str],
        singleton: bool,
        multi: bool,
    ) {
        let spec = BindingSpec {
            destinations: wecs
                .iter()
                .map(|w| Destination {
                    cluster_id: w.to_string(),
                })
                .collect(),
            workload: WorkloadClauses {
                cluster_scope: vec![],
                namespace_scope: vec![NamespaceScopeDownsyncClause {
                    object: ObjectReference {
                        group: object.group.clone(),
                        version: "v1".into(),
                        resource: object.resource.clone(),
                        name: object.name.clone(),
                        resource_version: "1".into(),
                    },
                    namespace: object.namespace.clone(),
                    modulation: DownsyncModulation {
                        want_singleton_reported_state: singleton,
                        want_multi_wec_reported_state: multi,
                        ..Default::default()
                    },
                }],
            },
        };
        self.index.apply_binding(name, &spec);
    }

    fn report(&mut self, wec: &str, name: &str, object: &ObjectKey, status: Option<Value>) {
        let mut ws = WorkStatus::default();
        ws.metadata.namespace = Some(wec.into());
        ws.metadata.name = Some(name.into());
        let s = &mut ws.spec.source_ref;
        (s.group, s.version, s.resource) =
            (object.group.clone(), "v1".into(), object.resource.clone());
        (s.namespace, s.name) = (object.namespace.clone(), object.name.clone());
        ws.status = status;
        self.index.apply_report(&ws);
    }

    async fn sync(&mut self, key: &ObjectKey) -> Outcome {
        let facts = self.index.facts(key);
        sync_workload_object(&self.wds, &facts, &mut self.policy, key)
            .await
            .unwrap()
    }

    fn object(&self, key: &ObjectKey) -> Workload {
        self.wds.objects.lock().unwrap()[key].clone()
    }

    fn writes(&self) -> usize {
        *self.wds.writes.lock().unwrap()
    }
}

fn labels(w: &Workload) -> Vec<&str> {
    w.labels.keys().map(String::as_str).collect()
}

#[tokio::test]
async fn singleton_copies_the_one_report_then_writes_nothing_more() {
    let mut world = World::new();
    world.bind("b", &web(), &["wec1"], true, false);
    world.report("wec1", "ws", &web(), Some(json!({"availableReplicas": 1})));
    assert_eq!(world.sync(&web()).await, Outcome::Written);
    let object = world.object(&web());
    assert_eq!(object.status, json!({"availableReplicas": 1}));
    assert_eq!(
        labels(&object),
        [EXECUTING_COUNT_LABEL, SINGLETON_STATUS_LABEL]
    );
    assert_eq!(object.labels[EXECUTING_COUNT_LABEL], "1");
    assert_eq!(world.sync(&web()).await, Outcome::Unchanged);
    assert_eq!(world.writes(), 1);
}

#[tokio::test]
async fn a_report_too_deep_to_copy_is_refused_with_an_event_and_changes_nothing() {
    let mut world = World::new();
    world.bind("b", &web(), &["wec1"], true, false);
    world.report("wec1", "ws", &web(), Some(json!({"ready": 1})));
    assert_eq!(world.sync(&web()).await, Outcome::Written);
    let mut deep = json!({"leaf": 1});
    for _ in 0..200 {
        deep = json!({ "a": deep });
    }
    world.report("wec1", "ws", &web(), Some(deep));
    assert_eq!(world.sync(&web()).await, Outcome::ReportRefused);
    assert_eq!(world.object(&web()).status, json!({"ready": 1}));
    assert_eq!(world.writes(), 1);
    let warnings = world.wds.warnings.lock().unwrap().clone();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("ReportUnreadable: the status reported by WEC wec1 was not copied: the status is nested 201 levels deep"),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn singleton_clears_with_two_reports_in_one_wec_and_waits_for_a_status() {
    let mut world = World::new();
    world.bind("b", &web(), &["wec1"], true, false);
    world.report("wec1", "ws", &web(), None);
    assert_eq!(world.sync(&web()).await, Outcome::Unchanged);
    world.report("wec1", "ws", &web(), Some(json!({"a": 1})));
    world.sync(&web()).await;
    world.report("wec1", "ws2", &web(), Some(json!({"a": 2})));
    assert_eq!(world.sync(&web()).await, Outcome::Written);
    let object = world.object(&web());
    assert_eq!(object.status, json!({}));
    assert_eq!(labels(&object), [EXECUTING_COUNT_LABEL]);
}

#[tokio::test]
async fn executing_count_follows_the_qualified_wecs_while_singleton_is_requested() {
    let mut world = World::new();
    world.bind("b", &web(), &["wec1", "wec2"], true, false);
    world.report("wec1", "ws", &web(), Some(json!({"a": 1})));
    world.sync(&web()).await;
    let object = world.object(&web());
    assert_eq!(object.status, json!({}), "two WECs: singleton clears");
    assert_eq!(object.labels[EXECUTING_COUNT_LABEL], "2");
    // A multi-WEC-only Binding's WEC qualifies too.
    world.bind("m", &web(), &["wec3"], false, true);
    world.sync(&web()).await;
    assert_eq!(world.object(&web()).labels[EXECUTING_COUNT_LABEL], "3");
    world.bind("m", &web(), &[], false, true);
    world.bind("b", &web(), &["wec1"], true, false);
    world.sync(&web()).await;
    let object = world.object(&web());
    assert_eq!(object.status, json!({"a": 1}));
    assert_eq!(object.labels[EXECUTING_COUNT_LABEL], "1");
    world.bind("b", &web(), &["wec1"], false, true);
    world.sync(&web()).await;
    let object = world.object(&web());
    assert_eq!(labels(&object), [SINGLETON_STATUS_LABEL], "the flag went");
}

#[tokio::test]
async fn two_wecs_aggregate_with_the_multi_wec_label_and_one_falls_back_to_singleton() {
    let mut world = World::new();
    world.bind("b", &web(), &["wec1", "wec2"], true, true);
    world.report("wec1", "ws", &web(), Some(json!({"readyReplicas": 2})));
    world.report("wec2", "ws", &web(), Some(json!({"readyReplicas": 1})));
    world.sync(&web()).await;
    let object = world.object(&web());
    // An apps/Deployment: KubeStellar's rule, every counter of it present.
    let aggregate = json!({"replicas": 0, "updatedReplicas": 0, "availableReplicas": 0,
        "readyReplicas": 1, "unavailableReplicas": 0, "observedGeneration": 0, "conditions": []});
    assert_eq!(object.status, aggregate);
    assert_eq!(
        labels(&object),
        [EXECUTING_COUNT_LABEL, MULTI_WEC_STATUS_LABEL]
    );

    world.bind("b", &web(), &["wec1"], true, true);
    world.sync(&web()).await;
    let object = world.object(&web());
    assert_eq!(object.status, json!({"readyReplicas": 2}));
    assert_eq!(
        labels(&object),
        [EXECUTING_COUNT_LABEL, SINGLETON_STATUS_LABEL]
    );
}

#[tokio::test]
async fn multi_wec_with_one_report_is_written_as_a_singleton_and_none_clears() {
    let mut world = World::new();
    world.bind("b", &web(), &["wec1", "wec2"], false, true);
    world.report("wec2", "ws", &web(), Some(json!({"x": true})));
    world.report("wec1", "ws", &web(), None);
    world.sync(&web()).await;
    assert_eq!(labels(&world.object(&web())), [SINGLETON_STATUS_LABEL]);
    world.report("wec2", "ws", &web(), None);
    world.sync(&web()).await;
    assert_eq!(world.object(&web()).status, json!({}));
}

#[tokio::test]
async fn none_clears_only_what_is_ours() {
    let mut world = World::new();
    world.bind("b", &web(), &["wec1"], false, false);
    world.report("wec1", "ws", &web(), Some(json!({"a": 1})));
    world
        .wds
        .objects
        .lock()
        .unwrap()
        .get_mut(&web())
        .unwrap()
        .status = json!({"own": 1});
    assert_eq!(world.sync(&web()).await, Outcome::Unchanged);
    assert_eq!(world.writes(), 0);
    assert_eq!(world.object(&web()).status, json!({"own": 1}));

    world.bind("b", &web(), &["wec1"], true, false);
    world.sync(&web()).await;
    world.bind("b", &web(), &["wec1"], false, false);
    assert_eq!(world.sync(&web()).await, Outcome::Written);
    let object = world.object(&web());
    assert_eq!(object.status, json!({}));
    assert!(object.labels.is_empty());
}

#[tokio::test]
async fn an_object_named_by_nothing_any_more_is_cleared() {
    let mut world = World::new();
    world.bind("b", &web(), &["wec1"], true, false);
    world.report("wec1", "ws", &web(), Some(json!({"a": 1})));
    world.sync(&web()).await;
    assert_eq!(labels(&world.object(&web())).len(), 2);
    // The Binding and its WorkStatus go before the next reconcile runs.
    world.index.delete_binding("b");
    world.index.delete_report(&world.index.report_ids()[0]);
    assert_eq!(world.index.facts(&web()).routing.version, None);
    assert_eq!(world.sync(&web()).await, Outcome::Written);
    let object = world.object(&web());
    assert_eq!(object.status, json!({}));
    assert!(object.labels.is_empty(), "{:?}", object.labels);
}

#[tokio::test]
async fn namespaces_and_missing_objects_are_never_written() {
    let mut world = World::new();
    let ns = key("", "namespaces", "ns1");
    world.bind("b", &ns, &["wec1"], true, false);
    world.report("wec1", "ws", &ns, Some(json!({"phase": "Active"})));
    assert_eq!(world.sync(&ns).await, Outcome::Skipped);
    let gone = key("apps", "deployments", "gone");
    world.bind("c", &gone, &["wec1"], true, false);
    assert_eq!(world.sync(&gone).await, Outcome::Skipped);
    assert_eq!(world.writes(), 0);
}
