//! Proves the local control plane behaves like a real Kubernetes API server in the ways
//! status-router depends on: CRDs with a status subresource, empty strings in CR fields, watches,
//! resourceVersion conflicts, server-side apply with field managers, WDS/ITS separation, and
//! KubeStellar's own CRDs. Real servers only; tests share one control plane and each works in its
//! own namespace or with unique names.

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, ObjectMeta, Patch, PatchParams,
    PostParams, WatchEvent, WatchParams,
};
use serde_json::json;
use xtask::kubestellar_crd;

const WIDGETS_CRD: &str = include_str!("fixtures/widgets.testenv.example.com.yaml");

fn resource(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1alpha1", kind), plural)
}

/// The next non-bookmark watch event, or a panic after 30 s.
async fn next_event<S>(stream: &mut S) -> WatchEvent<DynamicObject>
where
    S: Stream<Item = kube::Result<WatchEvent<DynamicObject>>> + Unpin,
{
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("no watch event within 30 s")
            .expect("watch stream ended")
            .expect("watch error");
        if !matches!(event, WatchEvent::Bookmark(_)) {
            return event;
        }
    }
}

#[tokio::test]
async fn custom_resource_status_watch_conflict_and_apply() {
    let client = testenv::wds_client().await;
    // Installing is idempotent and safe to race (create, or replace with conflict retries).
    let (first, second) = tokio::join!(
        testenv::install_crds(&client, WIDGETS_CRD),
        testenv::install_crds(&client, WIDGETS_CRD),
    );
    let names = first.expect("install the Widget CRD");
    second.expect("install the Widget CRD concurrently");
    assert_eq!(names, ["widgets.testenv.example.com"]);
    let ns = testenv::create_namespace(&client, "widgets").await;
    let ar = resource("testenv.example.com", "Widget", "widgets");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);

    let list = api
        .list(&ListParams::default())
        .await
        .expect("list widgets");
    let rv = list
        .metadata
        .resource_version
        .expect("list resourceVersion");
    let mut events = api
        .watch(&WatchParams::default().timeout(60), &rv)
        .await
        .expect("watch")
        .boxed();

    // Empty strings must be accepted (Go 1.19 build fix) and kept.
    let widget = DynamicObject::new("w1", &ar)
        .within(&ns)
        .data(json!({"spec": {"text": "", "group": "", "size": 3}}));
    let created = api
        .create(&PostParams::default(), &widget)
        .await
        .expect("create a Widget with empty strings");
    assert_eq!(created.data["spec"]["text"], "");
    assert_eq!(created.data["spec"]["group"], "");

    // The status subresource writes status only.
    let mut with_status = created.clone();
    with_status.data["status"] = json!({"phase": "Ready", "observedSize": 3, "message": ""});
    with_status.data["spec"]["text"] = json!("ignored by the status endpoint");
    let updated = api
        .replace_status("w1", &PostParams::default(), &with_status)
        .await
        .expect("replace status");
    assert_eq!(updated.data["status"]["phase"], "Ready");
    assert_eq!(updated.data["status"]["message"], "");
    assert_eq!(
        updated.data["spec"]["text"], "",
        "the status endpoint must not change spec"
    );

    match next_event(&mut events).await {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("w1")),
        other => panic!("expected ADDED, got {other:?}"),
    }
    match next_event(&mut events).await {
        WatchEvent::Modified(o) => assert_eq!(o.data["status"]["phase"], "Ready"),
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    // A write with a stale resourceVersion is a 409 Conflict.
    let mut stale = created.clone();
    stale.data["spec"]["size"] = json!(4);
    match api.replace("w1", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 409, "{status:?}"),
        other => panic!("expected a 409 Conflict, got {other:?}"),
    }

    // Server-side apply of status records the field manager.
    let patch = json!({
        "apiVersion": "testenv.example.com/v1alpha1",
        "kind": "Widget",
        "status": {"phase": "Applied", "observedSize": 5},
    });
    let params = PatchParams::apply("testenv-status-writer").force();
    let applied = api
        .patch_status("w1", &params, &Patch::Apply(&patch))
        .await
        .expect("apply status");
    assert_eq!(applied.data["status"]["phase"], "Applied");
    assert_eq!(applied.data["status"]["observedSize"], 5);
    let managers: Vec<String> = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.iter().any(|m| m == "testenv-status-writer"),
        "managers: {managers:?}"
    );
}

#[tokio::test]
async fn wds_and_its_are_separate_servers() {
    let wds = testenv::wds_client().await;
    let its = testenv::its_client().await;

    let wds_ns = testenv::create_namespace(&wds, "only-in-wds").await;
    let its_ns = testenv::create_namespace(&its, "only-in-its").await;
    let on_its: Api<Namespace> = Api::all(its.clone());
    let on_wds: Api<Namespace> = Api::all(wds.clone());
    assert!(on_its.get_opt(&wds_ns).await.expect("get on ITS").is_none());
    assert!(on_wds.get_opt(&its_ns).await.expect("get on WDS").is_none());
    assert!(on_wds.get_opt(&wds_ns).await.expect("get on WDS").is_some());

    let name = testenv::unique_name("cm");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(wds.clone(), "default")
        .create(&PostParams::default(), &cm)
        .await
        .expect("create a ConfigMap in the WDS");
    let its_cms: Api<ConfigMap> = Api::namespaced(its.clone(), "default");
    assert!(its_cms.get_opt(&name).await.expect("get on ITS").is_none());
}

#[tokio::test]
async fn kubestellar_published_crds_are_accepted() {
    let wds = testenv::wds_client().await;
    let its = testenv::its_client().await;
    let wds_crds = [
        kubestellar_crd("bindings"),
        kubestellar_crd("bindingpolicies"),
    ];
    testenv::install_crd_files(&wds, &wds_crds)
        .await
        .expect("install Binding CRDs in the WDS");
    testenv::install_crd_files(&its, &[kubestellar_crd("workstatuses")])
        .await
        .expect("install the WorkStatus CRD in the ITS");

    // A Binding naming a core-group object (`group: ""`), with its status written.
    let ar = resource("control.kubestellar.io", "Binding", "bindings");
    let bindings: Api<DynamicObject> = Api::all_with(wds.clone(), &ar);
    let name = testenv::unique_name("binding");
    let binding = DynamicObject::new(&name, &ar).data(json!({"spec": {
        "destinations": [{"clusterId": "wec1"}],
        "workload": {"namespaceScope": [{
            "group": "", "version": "v1", "resource": "configmaps",
            "namespace": "default", "name": "cm", "resourceVersion": "1",
        }]},
    }}));
    let mut created = bindings
        .create(&PostParams::default(), &binding)
        .await
        .expect("create a Binding");
    assert_eq!(
        created.data["spec"]["workload"]["namespaceScope"][0]["group"],
        ""
    );
    created.data["status"] = json!({"observedGeneration": 1, "conditions": [], "errors": []});
    bindings
        .replace_status(&name, &PostParams::default(), &created)
        .await
        .expect("Binding status");

    // A WorkStatus whose status is arbitrary JSON.
    let ar = resource("control.kubestellar.io", "WorkStatus", "workstatuses");
    let ns = testenv::create_namespace(&its, "wec1").await;
    let workstatuses: Api<DynamicObject> = Api::namespaced_with(its.clone(), &ns, &ar);
    let ws = DynamicObject::new("cm-status", &ar)
        .within(&ns)
        .data(json!({"spec": {"sourceRef": {
            "group": "", "version": "v1", "resource": "configmaps", "kind": "ConfigMap",
            "name": "cm", "namespace": "default",
        }}}));
    let mut created = workstatuses
        .create(&PostParams::default(), &ws)
        .await
        .expect("create a WorkStatus");
    created.data["status"] =
        json!({"readyReplicas": 2, "note": "", "nested": {"list": [1, "two"]}});
    let updated = workstatuses
        .replace_status("cm-status", &PostParams::default(), &created)
        .await
        .expect("WorkStatus status");
    assert_eq!(updated.data["status"]["nested"]["list"][1], "two");
    assert_eq!(updated.data["status"]["note"], "");
}
