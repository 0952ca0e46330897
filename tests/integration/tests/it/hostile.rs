//! Hostile and broken inputs (issue #12): each is either handled as the
//! rules say or refused with a clear log line, never a crash, a stuck worker
//! or a wrong status on another object. Every test ends with a canary, an
//! ordinary object whose status must still arrive, and one restarts the
//! controller so that its first list (not only a watch event) meets the
//! hostile objects.

use std::collections::BTreeMap;

use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};
use status_router::kubestellar::{SourceRef, WorkStatus};

use integration_tests::*;

const CLUSTER_GADGETS_CRD: &str =
    include_str!("../../fixtures/clustergadgets.statusrouter.example.com.yaml");
const GADGETS: (&str, &str, &str) = ("statusrouter.example.com", "v1alpha1", "gadgets");
const CLUSTER_GADGETS: (&str, &str, &str) =
    ("statusrouter.example.com", "v1alpha1", "clustergadgets");

fn gadgets(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &api_resource(GADGETS.0, GADGETS.1, "Gadget", GADGETS.2),
    )
}

/// Creates a Gadget (a custom resource whose status keeps any field).
async fn create_gadget(client: &Client, ns: &str, name: &str, labels: Value) -> Target {
    let api = gadgets(client, ns);
    let gadget = serde_json::from_value(json!({
        "apiVersion": "statusrouter.example.com/v1alpha1", "kind": "Gadget",
        "metadata": {"name": name, "labels": labels}, "spec": {}
    }))
    .unwrap();
    api.create(&PostParams::default(), &gadget)
        .await
        .unwrap_or_else(|e| panic!("create Gadget {ns}/{name}: {e}"));
    Target {
        api,
        name: name.into(),
    }
}

fn gadget_ref(ns: &str, name: &str) -> SourceRef {
    SourceRef {
        group: GADGETS.0.into(),
        version: GADGETS.1.into(),
        resource: GADGETS.2.into(),
        kind: "Gadget".into(),
        name: name.into(),
        namespace: ns.into(),
    }
}

/// Creates a WorkStatus; `Err` with the ITS's refusal.
async fn try_report(
    env: &Env,
    wec: &str,
    name: &str,
    (wds_name, binding): (&str, &str),
    source: SourceRef,
    status: &Value,
) -> Result<(), String> {
    let ws: WorkStatus = serde_json::from_value(json!({
        "apiVersion": "control.kubestellar.io/v1alpha1", "kind": "WorkStatus",
        "metadata": {"name": name, "namespace": wec, "labels": {
            "transport.kubestellar.io/originWdsName": wds_name,
            "transport.kubestellar.io/originOwnerReferenceBindingKey": binding}},
        "spec": {"sourceRef": source},
    }))
    .unwrap();
    let api: Api<WorkStatus> = Api::namespaced(env.its.clone(), wec);
    api.create(&PostParams::default(), &ws)
        .await
        .map_err(|e| e.to_string())?;
    let patch = kube::api::Patch::Merge(json!({"status": status}));
    api.patch_status(name, &Default::default(), &patch)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// What the ITS holds as the report's status (it may have normalised numbers).
async fn stored_status(env: &Env, wec: &str, name: &str) -> Value {
    let api: Api<WorkStatus> = Api::namespaced(env.its.clone(), wec);
    api.get(name)
        .await
        .expect("read the report")
        .status
        .unwrap_or_default()
}

/// `{"a": {"a": ... {"leaf": 1}}}`, `depth` levels, as text: serde_json
/// neither parses nor builds values deeper than 128 levels.
fn nested(depth: usize) -> String {
    let mut text = String::with_capacity(depth * 6 + 16);
    for _ in 0..depth {
        text.push_str("{\"a\":");
    }
    text.push_str("{\"leaf\":1}");
    for _ in 0..depth {
        text.push('}');
    }
    text
}

/// A raw request to an API server; the body of the answer, or its error.
async fn raw(client: &Client, method: &str, path: &str, body: String) -> Result<String, String> {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", "application/merge-patch+json")
        .body(body.into_bytes())
        .unwrap();
    client
        .request_text(request)
        .await
        .map_err(|e| e.to_string())
}

/// Creates a WorkStatus whose status is the raw JSON `status`.
async fn try_raw_report(
    env: &Env,
    wec: &str,
    name: &str,
    pair: (&str, &str),
    source: SourceRef,
    status: &str,
) -> Result<(), String> {
    try_report(env, wec, name, pair, source, &json!({})).await?;
    let path = format!(
        "/apis/control.kubestellar.io/v1alpha1/namespaces/{wec}/workstatuses/{name}/status"
    );
    raw(
        &env.its.clone(),
        "PATCH",
        &path,
        format!("{{\"status\":{status}}}"),
    )
    .await
    .map(drop)
}

/// 1 MiB, deeply nested, non-ASCII and huge numbers, not an object: each
/// either copied exactly (as the ITS stores it) or refused by the ITS, and
/// the controller serves the other objects throughout, also after a restart.
#[async_test]
async fn huge_deep_odd_and_non_object_statuses() {
    let Scene {
        env,
        wds_name,
        ns,
        binding,
    } = Scene::new("hostile").await;
    testenv::install_crds(&env.wds, GADGETS_CRD).await.unwrap();
    let wec = env.wec().await;
    let cases: Vec<(&str, Value)> = vec![
        ("huge", json!({"blob": "x".repeat(1 << 20)})),
        (
            "odd",
            json!({"msg": "日本語 🦀 ñ é \u{202e}rtl", "u64": u64::MAX, "i64": i64::MIN,
                   "huge": 1e308, "tiny": 5e-324, "big": 1.2345678901234568e29,
                   "keys": {"ключ": "значение", "": "empty key"}}),
        ),
        ("string", json!("not an object")),
        ("array", json!([1, 2, 3])),
        ("number", json!(42)),
    ];
    let deep = [("deep", 10_000), ("deep100", 100)];
    let mut names: Vec<&str> = cases.iter().map(|c| c.0).collect();
    names.extend(deep.iter().map(|d| d.0));
    names.extend(["canary1", "canary2"]);
    let mut targets = BTreeMap::new();
    for name in &names {
        targets.insert(*name, create_gadget(&env.wds, &ns, name, json!({})).await);
    }
    let clauses = names
        .iter()
        .map(|n| clause(GADGETS, &ns, n, SINGLETON))
        .collect();
    env.put_binding(&binding, binding_spec(&[&wec], clauses, vec![]))
        .await;
    let controller = Running::start(&env, &wds_name, default_policy(), 4);

    let mut accepted = Vec::new();
    for (name, status) in &cases {
        let report = format!("gadget-{name}");
        let outcome = try_report(
            &env,
            &wec,
            &report,
            (&wds_name, &binding),
            gadget_ref(&ns, name),
            status,
        )
        .await;
        println!(
            "{name}: the ITS {}",
            match &outcome {
                Ok(()) => "accepted it".to_string(),
                Err(e) => format!("refused it: {}", e.chars().take(200).collect::<String>()),
            }
        );
        match (*name, outcome) {
            // The WorkStatus CRD's status is an object: the ITS says so.
            ("string" | "array" | "number", result) => assert!(result.is_err(), "{name} accepted"),
            (_, Ok(())) => accepted.push(*name),
            (_, Err(_)) => {}
        }
    }
    assert!(
        accepted.contains(&"huge") && accepted.contains(&"odd"),
        "{accepted:?}"
    );
    let mut deep_accepted = Vec::new();
    for (name, depth) in deep {
        let pair = (wds_name.as_str(), binding.as_str());
        let report = format!("gadget-{name}");
        let source = gadget_ref(&ns, name);
        let outcome = try_raw_report(&env, &wec, &report, pair, source, &nested(depth)).await;
        println!(
            "{name} (depth {depth}): the ITS {}",
            match &outcome {
                Ok(()) => "accepted it".to_string(),
                Err(e) => format!("refused it: {}", e.chars().take(200).collect::<String>()),
            }
        );
        if outcome.is_ok() {
            deep_accepted.push((name, depth));
        }
    }
    let canary = json!({"phase": "Ready"});
    let report = |n: &str| format!("gadget-{n}");
    try_report(
        &env,
        &wec,
        &report("canary1"),
        (&wds_name, &binding),
        gadget_ref(&ns, "canary1"),
        &canary,
    )
    .await
    .unwrap();
    targets["canary1"].wait_singleton(&canary).await;
    for name in &accepted {
        let stored = stored_status(&env, &wec, &report(name)).await;
        targets[name].wait_singleton(&stored).await;
    }

    // Too deep for the controller to read: never a partial or wrong status.
    for (name, depth) in &deep_accepted {
        let path =
            format!("/apis/statusrouter.example.com/v1alpha1/namespaces/{ns}/gadgets/{name}");
        let text = raw(&env.wds, "GET", &path, String::new()).await.unwrap();
        let levels = text.matches("{\"a\":").count();
        assert!(
            levels == 0 || levels == *depth,
            "{name}: {levels} levels of {depth}"
        );
        println!(
            "{name}: {}",
            if levels == 0 {
                "not copied"
            } else {
                "copied whole"
            }
        );
    }

    // A new controller lists them all at its start.
    controller.stop().await;
    let controller = Running::start(&env, &wds_name, default_policy(), 4);
    try_report(
        &env,
        &wec,
        &report("canary2"),
        (&wds_name, &binding),
        gadget_ref(&ns, "canary2"),
        &canary,
    )
    .await
    .unwrap();
    targets["canary2"].wait_singleton(&canary).await;
    controller.stop().await;
    delete_reports(&env, &wec).await;
}

/// Deletes a WEC's WorkStatuses, so that later tests' controllers do not list them.
/// A raw request: kube's `delete_collection` reads its answer, the deleted
/// objects, as one JSON tree first, which fails on a deep status.
async fn delete_reports(env: &Env, wec: &str) {
    let path = format!("/apis/control.kubestellar.io/v1alpha1/namespaces/{wec}/workstatuses");
    raw(&env.its, "DELETE", &path, String::new())
        .await
        .expect("delete the WorkStatuses");
}

/// A Binding with 10,000 entries, duplicate entries (their flags OR-ed, as
/// across Bindings), an unknown resource and a version that is not served:
/// the objects that exist get their status.
#[async_test]
async fn huge_and_duplicate_bindings_and_unknown_resources() {
    let Scene {
        env,
        wds_name,
        ns,
        binding,
    } = Scene::new("hostile").await;
    let wec = env.wec().await;
    let web = create_deployment(&env.wds, &ns, "web").await;
    let dup = create_deployment(&env.wds, &ns, "dup").await;
    let mut clauses: Vec<_> = (0..10_000)
        .map(|i| deployment_clause(&ns, &format!("d{i}"), SINGLETON))
        .collect();
    clauses.push(deployment_clause(&ns, "web", SINGLETON));
    // Twice: without a flag, then with one.
    clauses.push(deployment_clause(&ns, "dup", NO_FLAGS));
    clauses.push(deployment_clause(&ns, "dup", SINGLETON));
    clauses.push(clause(
        ("example.com", "v1", "nosuchthings"),
        &ns,
        "x",
        SINGLETON,
    ));
    clauses.push(clause(
        ("apps", "v1beta1", "deployments"),
        &ns,
        "web",
        SINGLETON,
    ));
    let controller = Running::start(&env, &wds_name, default_policy(), 4);
    env.put_binding(&binding, binding_spec(&[&wec], clauses, vec![]))
        .await;
    let status = deployment_status(2, 1);
    env.report(&wds_name, &wec, &binding, (&ns, "web"), Some(&status))
        .await;
    env.report(&wds_name, &wec, &binding, (&ns, "dup"), Some(&status))
        .await;
    web.wait_singleton(&status).await;
    dup.wait_singleton(&status).await;
    // Still serving: an update arrives.
    let update = deployment_status(2, 2);
    set_report_status(
        &env.its,
        &wec,
        &format!("appsv1-deployment-{ns}-web"),
        Some(&update),
    )
    .await;
    web.wait_singleton(&update).await;
    controller.stop().await;
    delete_reports(&env, &wec).await;
}

/// An object with 1,000 labels, and a namespace and a name of the maximum
/// length (63 and 253 characters): written as any other, the labels kept.
#[async_test]
async fn a_thousand_labels_and_names_at_the_maximum_length() {
    let Scene {
        env,
        wds_name,
        ns,
        binding,
    } = Scene::new("hostile").await;
    testenv::install_crds(&env.wds, GADGETS_CRD).await.unwrap();
    let long_ns = format!("n{}", "x".repeat(62));
    testenv::create_namespace_named(&env.wds, &long_ns).await;
    let wec = env.wec().await;
    let labels: serde_json::Map<String, Value> = (0..1000)
        .map(|i| {
            (
                format!("example.com/label-{i}"),
                Value::from(format!("v{i}")),
            )
        })
        .collect();
    let labelled = create_gadget(&env.wds, &ns, "labelled", Value::Object(labels)).await;
    let long_name = format!("g{}", "y".repeat(252));
    let long = create_gadget(&env.wds, &long_ns, &long_name, json!({})).await;
    env.put_binding(
        &binding,
        binding_spec(
            &[&wec],
            vec![
                clause(GADGETS, &ns, "labelled", SINGLETON),
                clause(GADGETS, &long_ns, &long_name, SINGLETON),
            ],
            vec![],
        ),
    )
    .await;
    let controller = Running::start(&env, &wds_name, default_policy(), 4);
    let status = json!({"phase": "Ready"});
    let pair = (wds_name.as_str(), binding.as_str());
    try_report(
        &env,
        &wec,
        "labelled",
        pair,
        gadget_ref(&ns, "labelled"),
        &status,
    )
    .await
    .unwrap();
    // The WorkStatus's own name cannot hold the long name: the agent's names are its own.
    try_report(
        &env,
        &wec,
        "long",
        pair,
        gadget_ref(&long_ns, &long_name),
        &status,
    )
    .await
    .unwrap();
    labelled.wait_singleton(&status).await;
    long.wait_singleton(&status).await;
    let kept = labelled
        .api
        .get("labelled")
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap();
    // Ours: the singleton label and `kubestellar.io/executing-count` (one WEC).
    assert_eq!(kept.len(), 1002, "the 1,000 labels and our two");
    assert_eq!(
        kept.get(status_router::kubestellar::EXECUTING_COUNT_LABEL)
            .map(String::as_str),
        Some("1")
    );
    controller.stop().await;
    delete_reports(&env, &wec).await;
}

/// A WorkStatus that names a cluster-scoped object with a namespace (and a
/// clause that names a namespaced object without one) is ignored: it never
/// clears, or writes, the status of the object that has that name.
#[async_test]
async fn a_cluster_scoped_object_named_with_a_namespace_is_not_that_object() {
    let Scene {
        env,
        wds_name,
        ns,
        binding,
    } = Scene::new("hostile").await;
    testenv::install_crds(&env.wds, CLUSTER_GADGETS_CRD)
        .await
        .unwrap();
    testenv::install_crds(&env.wds, GADGETS_CRD).await.unwrap();
    let (wec1, wec2) = (env.wec().await, env.wec().await);
    let name = testenv::unique_name("cg");
    let api: Api<DynamicObject> = Api::all_with(
        env.wds.clone(),
        &api_resource(
            CLUSTER_GADGETS.0,
            CLUSTER_GADGETS.1,
            "ClusterGadget",
            CLUSTER_GADGETS.2,
        ),
    );
    let object = serde_json::from_value(json!({
        "apiVersion": "statusrouter.example.com/v1alpha1", "kind": "ClusterGadget",
        "metadata": {"name": name}, "spec": {}
    }))
    .unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
    let target = Target {
        api,
        name: name.clone(),
    };
    let gadget = create_gadget(&env.wds, &ns, "g", json!({})).await;
    env.put_binding(
        &binding,
        binding_spec(
            &[&wec1],
            vec![clause(GADGETS, &ns, "g", SINGLETON)],
            vec![
                cluster_clause(CLUSTER_GADGETS, &name, SINGLETON),
                // A namespaced Gadget named without its namespace.
                cluster_clause(GADGETS, "g", SINGLETON),
            ],
        ),
    )
    .await;
    let controller = Running::start(&env, &wds_name, default_policy(), 4);
    let source = |namespace: &str| SourceRef {
        group: CLUSTER_GADGETS.0.into(),
        version: CLUSTER_GADGETS.1.into(),
        resource: CLUSTER_GADGETS.2.into(),
        kind: "ClusterGadget".into(),
        name: name.clone(),
        namespace: namespace.into(),
    };
    let pair = (wds_name.as_str(), binding.as_str());
    let right = json!({"phase": "FromWec1"});
    try_report(&env, &wec1, "cg", pair, source(""), &right)
        .await
        .unwrap();
    target.wait_singleton(&right).await;
    let gadget_status = json!({"phase": "G"});
    try_report(&env, &wec1, "g", pair, gadget_ref(&ns, "g"), &gadget_status)
        .await
        .unwrap();
    gadget.wait_singleton(&gadget_status).await;

    // The same name with a namespace, from another WEC: not this object.
    let since = controller.reconciles();
    let wrong = json!({"phase": "Bogus"});
    try_report(&env, &wec2, "cg", pair, source(&ns), &wrong)
        .await
        .unwrap();
    settle(&controller, since).await;
    assert!(
        target.observe().await.is_singleton(&right),
        "{:?}",
        target.observe().await
    );
    assert!(gadget.observe().await.is_singleton(&gadget_status));
    controller.stop().await;
    delete_reports(&env, &wec1).await;
    delete_reports(&env, &wec2).await;
}

/// Creates a WorkStatus for Gadget `name` whose status is `levels` levels deep.
async fn deep_report(
    env: &Env,
    wec: &str,
    ns: &str,
    pair: (&str, &str),
    name: &str,
    levels: usize,
) -> Result<(), String> {
    // `nested(n)` is n + 1 levels of objects.
    let status = nested(levels - 1);
    try_raw_report(env, wec, name, pair, gadget_ref(ns, name), &status).await
}

/// Statuses nested deeper than serde_json's recursion limit (127 levels).
/// The controller reads every WorkStatus's status as raw text, so one such
/// report no longer fails the whole WorkStatus list (before: a controller
/// that started after it was written never finished its first list, and a
/// watch event of it was dropped). A status deeper than the controller
/// copies (`MAX_STATUS_DEPTH`) is refused for that report alone: the
/// object's status is left as it is, with a `ReportUnreadable` Event, and
/// the other objects are served. Depths 200 and 1,000 are written before
/// the controller starts (its first list meets them), 300 while it runs (a
/// watch event); 10,000 is asserted as the ITS really answers it.
#[async_test]
async fn statuses_nested_deeper_than_serde_json_reads_are_refused_alone() {
    let Scene {
        env,
        wds_name,
        ns,
        binding,
    } = Scene::new("hostile").await;
    testenv::install_crds(&env.wds, GADGETS_CRD).await.unwrap();
    let wec = env.wec().await;
    let names = [
        "canary",
        "deep200",
        "deep300",
        "deep1000",
        "deep9000",
        "deep10000",
        "ok124",
    ];
    let mut targets = BTreeMap::new();
    for name in names {
        targets.insert(name, create_gadget(&env.wds, &ns, name, json!({})).await);
    }
    let clauses = names
        .iter()
        .map(|n| clause(GADGETS, &ns, n, SINGLETON))
        .collect();
    env.put_binding(&binding, binding_spec(&[&wec], clauses, vec![]))
        .await;
    let pair = (wds_name.as_str(), binding.as_str());
    for (name, levels) in [("deep200", 200), ("deep1000", 1000), ("deep9000", 9000)] {
        deep_report(&env, &wec, &ns, pair, name, levels)
            .await
            .unwrap_or_else(|e| panic!("the ITS refused {levels} levels: {e}"));
    }
    // Go's JSON decoders stop at 10,000 levels: the ITS refuses the merge
    // patch, whose body wraps the status in one more level, with `400 error
    // decoding patch: ... exceeded max depth` (9,000 levels pass, above).
    let refused = deep_report(&env, &wec, &ns, pair, "deep10000", 10_000)
        .await
        .expect_err("the ITS accepted a status of 10,000 levels");
    println!(
        "10,000 levels: the ITS refused it: {}",
        &refused[..refused.len().min(300)]
    );
    assert!(
        refused.contains("exceeded max depth") && refused.contains("code: 400"),
        "the ITS's refusal: {refused}"
    );
    // The deepest status the controller copies.
    let max = status_router::kubestellar::MAX_STATUS_DEPTH;
    deep_report(&env, &wec, &ns, pair, "ok124", max)
        .await
        .expect("the ITS takes 124 levels");

    let controller = Running::start(&env, &wds_name, default_policy(), 4);
    let ready = json!({"phase": "Ready"});
    try_report(
        &env,
        &wec,
        "canary",
        pair,
        gadget_ref(&ns, "canary"),
        &ready,
    )
    .await
    .unwrap();
    let canary = tokio::time::timeout(TIMEOUT, targets["canary"].wait_singleton(&ready)).await;
    assert!(
        canary.is_ok(),
        "the canary's status never arrived: the first list stalled"
    );
    let stored = stored_status(&env, &wec, "ok124").await;
    targets["ok124"].wait_singleton(&stored).await;
    for (name, levels) in [("deep200", 200), ("deep1000", 1000), ("deep9000", 9000)] {
        let event = wait_event(
            &env.wds,
            ("Gadget", &ns, name),
            "ReportUnreadable",
            "Warning",
        )
        .await;
        let note = event.note.unwrap_or_default();
        assert!(
            note.contains(&format!("nested {levels} levels deep")) && note.contains(&wec),
            "{name}: {note}"
        );
    }
    // A watch event of one, while the controller runs: the object keeps the
    // status copied before.
    let before = json!({"phase": "Before"});
    try_report(
        &env,
        &wec,
        "deep300",
        pair,
        gadget_ref(&ns, "deep300"),
        &before,
    )
    .await
    .unwrap();
    targets["deep300"].wait_singleton(&before).await;
    let path = format!(
        "/apis/control.kubestellar.io/v1alpha1/namespaces/{wec}/workstatuses/deep300/status"
    );
    raw(
        &env.its,
        "PATCH",
        &path,
        format!("{{\"status\":{}}}", nested(299)),
    )
    .await
    .expect("the ITS takes 300 levels");
    let event = wait_event(
        &env.wds,
        ("Gadget", &ns, "deep300"),
        "ReportUnreadable",
        "Warning",
    )
    .await;
    let note = event.note.unwrap_or_default();
    assert!(note.contains("nested 300 levels deep"), "{note}");
    // Never a partial or wrong status: the refused ones are left as they were.
    assert!(targets["deep300"].observe().await.is_singleton(&before));
    for name in ["deep200", "deep1000", "deep9000"] {
        let o = targets[name].observe().await;
        assert!(o.status == json!({}) && !o.singleton, "{name}: {o:?}");
    }
    // The ITS kept what it had before the refused patch; that is copied.
    let kept = stored_status(&env, &wec, "deep10000").await;
    targets["deep10000"].wait_singleton(&kept).await;
    // And the objects after them are served still.
    let later = json!({"phase": "Later"});
    set_report_status(&env.its, &wec, "canary", Some(&later)).await;
    targets["canary"].wait_singleton(&later).await;
    controller.stop().await;
    delete_reports(&env, &wec).await;
}
