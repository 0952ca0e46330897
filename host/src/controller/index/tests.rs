use super::*;
use crate::kubestellar::{Destination, NamespaceScopeDownsyncClause, WorkloadClauses};
use serde_json::Value;

fn key(name: &str) -> ObjectKey {
    ObjectKey::new(
        "apps".into(),
        "deployments".into(),
        "default".into(),
        name.into(),
    )
}

fn binding(wecs: &[&str], objects: &[(&str, bool, bool)]) -> BindingSpec {
    BindingSpec {
        destinations: wecs
            .iter()
            .map(|w| Destination {
                cluster_id: w.to_string(),
            })
            .collect(),
        workload: WorkloadClauses {
            cluster_scope: vec![],
            namespace_scope: objects
                .iter()
                .map(|(name, singleton, multi)| NamespaceScopeDownsyncClause {
                    object: ObjectReference {
                        group: "apps".into(),
                        version: "v1".into(),
                        resource: "deployments".into(),
                        name: name.to_string(),
                        resource_version: "1".into(),
                    },
                    namespace: "default".into(),
                    modulation: DownsyncModulation {
                        want_singleton_reported_state: *singleton,
                        want_multi_wec_reported_state: *multi,
                        ..Default::default()
                    },
                })
                .collect(),
        },
    }
}

fn work_status(wec: &str, name: &str, object: &str, status: Option<Value>) -> WorkStatus {
    let mut ws = WorkStatus::default();
    ws.metadata.namespace = Some(wec.into());
    ws.metadata.name = Some(name.into());
    ws.spec.source_ref.group = "apps".into();
    ws.spec.source_ref.version = "v1".into();
    ws.spec.source_ref.resource = "deployments".into();
    ws.spec.source_ref.namespace = "default".into();
    ws.spec.source_ref.name = object.into();
    ws.status = status;
    ws
}

fn keys(names: &[&str]) -> BTreeSet<ObjectKey> {
    names.iter().map(|n| key(n)).collect()
}

fn wecs(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn flags_are_ored_and_wecs_unioned_only_over_flagged_bindings() {
    let mut index = Index::default();
    index.apply_binding("a", &binding(&["wec1"], &[("web", true, false)]));
    index.apply_binding("b", &binding(&["wec2", "wec3"], &[("web", false, true)]));
    index.apply_binding("c", &binding(&["wec4"], &[("web", false, false)]));
    let routing = index.routing(&key("web"));
    assert!(routing.want_singleton && routing.want_multi_wec);
    assert_eq!(routing.singleton_wecs, wecs(&["wec1"]));
    assert_eq!(routing.multi_wec_wecs, wecs(&["wec2", "wec3"]));
    assert_eq!(routing.version.as_deref(), Some("v1"));
}

#[test]
fn a_destination_change_alone_requeues_the_flagged_objects() {
    let mut index = Index::default();
    let objects = [
        ("web", true, false),
        ("db", false, true),
        ("cfg", false, false),
    ];
    assert_eq!(
        index.apply_binding("a", &binding(&["wec1"], &objects)),
        keys(&["web", "db"])
    );
    assert_eq!(
        index.apply_binding("a", &binding(&["wec2"], &objects)),
        keys(&["web", "db"])
    );
    assert_eq!(index.routing(&key("web")).singleton_wecs, wecs(&["wec2"]));
}

#[test]
fn an_unchanged_binding_requeues_nothing_and_a_flag_change_only_its_object() {
    let mut index = Index::default();
    let spec = binding(&["wec1"], &[("web", true, false), ("db", true, false)]);
    index.apply_binding("a", &spec);
    assert!(index.apply_binding("a", &spec).is_empty());
    let changed = binding(&["wec1"], &[("web", true, false), ("db", false, false)]);
    assert_eq!(index.apply_binding("a", &changed), keys(&["db"]));
    assert!(!index.routing(&key("db")).want_singleton);
}

#[test]
fn deleting_a_binding_requeues_its_flagged_objects_and_forgets_them() {
    let mut index = Index::default();
    index.apply_binding(
        "a",
        &binding(&["wec1"], &[("web", true, false), ("cfg", false, false)]),
    );
    assert_eq!(index.delete_binding("a"), keys(&["web"]));
    assert!(!index.tracks(&key("web")) && !index.tracks(&key("cfg")));
    assert_eq!(index.routing(&key("web")), Routing::default());
    assert!(index.resources().is_empty());
}

#[test]
fn reports_requeue_their_objects_when_they_change_or_move() {
    let mut index = Index::default();
    let ws = work_status("wec1", "w", "web", Some(serde_json::json!({"ready": 1})));
    assert_eq!(index.apply_report(&ws), keys(&["web"]));
    assert!(index.apply_report(&ws).is_empty());
    let moved = work_status("wec1", "w", "db", Some(serde_json::json!({"ready": 1})));
    assert_eq!(index.apply_report(&moved), keys(&["web", "db"]));
    assert!(
        index
            .reports(&key("web"), Some(&["wec1".into()]))
            .is_empty()
    );
    let reports = index.reports(&key("db"), Some(&["wec1".into(), "wec2".into()]));
    assert_eq!(reports.len(), 1);
    assert_eq!(
        reports[0].status.as_ref().map(|s| s.parse().unwrap()),
        Some(serde_json::json!({"ready": 1}))
    );
    assert!(index.reports(&key("db"), Some(&["wec2".into()])).is_empty());
    assert_eq!(
        index.delete_report(&ReportId::new("wec1".into(), "w".into())),
        keys(&["db"])
    );
    assert!(!index.tracks(&key("db")));
}

#[test]
fn the_version_falls_back_to_the_reports() {
    let mut index = Index::default();
    let mut ws = work_status("wec1", "w", "web", None);
    ws.spec.source_ref.version = "v1beta1".into();
    index.apply_report(&ws);
    assert_eq!(
        index.routing(&key("web")).version.as_deref(),
        Some("v1beta1")
    );
}

#[test]
fn duplicate_entries_of_one_binding_or_their_flags() {
    let mut index = Index::default();
    // The same object twice: singleton first, then no flag; then multi-WEC.
    let spec = binding(
        &["wec1", "wec2"],
        &[
            ("web", true, false),
            ("web", false, false),
            ("web", false, true),
        ],
    );
    assert_eq!(index.apply_binding("b", &spec), keys(&["web"]));
    let routing = index.routing(&key("web"));
    assert!(
        routing.want_singleton && routing.want_multi_wec,
        "{routing:?}"
    );
    assert_eq!(routing.singleton_wecs.len(), 2);
    assert_eq!(routing.multi_wec_wecs.len(), 2);
}
