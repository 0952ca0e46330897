//! The `kubestellar.io/executing-count` label and the rule "no needless
//! writes", on a real control plane.
//!
//! - The label holds the size of the qualified WEC set while singleton status
//!   return is requested: `2` for a singleton Binding over two WECs (whose
//!   status is cleared), `1` when one WEC is dropped (the status is copied),
//!   gone with the flag; never on an object that was never ours nor on a
//!   Namespace.
//! - An object at rest costs no write: a multi-WEC Deployment whose aggregate
//!   has zero counters (which the API server drops) is written once over 100
//!   reconciles, and not at all by a restarted controller; a copied status
//!   with a field the WDS's API server does not know (and drops) is written
//!   once; a custom resource whose schema keeps zero values still gets them
//!   written.
//!
//! Tests that run a controller on the shared control plane run one at a time
//! (see `common`).

use integration_tests::*;
use kube::api::{Api, DynamicObject};
use serde_json::{Value, json};
use status_router::kubestellar::{BindingSpec, SourceRef};

#[async_test]
async fn executing_count_is_two_then_one_then_gone() {
    let Scene {
        env,
        wds_name,
        ns,
        binding,
    } = Scene::new("singleton").await;
    let (wec1, wec2) = (env.wec().await, env.wec().await);
    let plain = testenv::unique_name("plain");
    let web = create_deployment(&env.wds, &ns, "web").await;
    let other = create_deployment(&env.wds, &ns, "other").await;
    let (status1, status2) = (deployment_status(2, 2), deployment_status(2, 1));
    for name in ["web", "other"] {
        env.report(&wds_name, &wec1, &binding, (&ns, name), Some(&status1))
            .await;
        env.report(&wds_name, &wec2, &binding, (&ns, name), Some(&status2))
            .await;
    }
    // A Namespace with the singleton flag over the same two WECs.
    let namespaces = namespaces(&env.wds);
    let ns_before = namespaces.get(&ns).await.expect("get the namespace");
    let controller = Running::start(&env, &wds_name, default_policy(), 2);

    let spec = |wecs: &[&str], flags: Flags| {
        let namespace = cluster_clause(("", "v1", "namespaces"), &ns, flags);
        binding_spec(
            wecs,
            vec![deployment_clause(&ns, "web", flags)],
            vec![namespace],
        )
    };
    // `other` goes to both WECs without a flag: it was never ours.
    let plain_clauses = vec![deployment_clause(&ns, "other", NO_FLAGS)];
    env.put_binding(&plain, binding_spec(&[&wec1, &wec2], plain_clauses, vec![]))
        .await;
    env.put_binding(&binding, spec(&[&wec1, &wec2], SINGLETON))
        .await;
    let o = web
        .wait("executing-count 2 and a cleared status", |o| {
            o.executing_count.as_deref() == Some("2") && o.is_cleared()
        })
        .await;
    assert!(!o.singleton && !o.multi_wec, "{o:?}");
    // The count goes up once the API server has answered, which can be
    // after the watch has already shown the write.
    wait_for("a label write counted", TIMEOUT, || async {
        let writes = writes(&controller);
        if writes.1 >= 1 {
            Ok(())
        } else {
            Err(format!("{writes:?}"))
        }
    })
    .await;

    env.put_binding(&binding, spec(&[&wec1], SINGLETON)).await;
    web.wait("executing-count 1 and the copied status", |o| {
        o.executing_count.as_deref() == Some("1") && o.is_singleton(&status1)
    })
    .await;

    env.put_binding(&binding, spec(&[&wec1], NO_FLAGS)).await;
    web.wait("no executing-count once the flag is gone", |o| {
        o.executing_count.is_none() && o.is_cleared()
    })
    .await;

    settle(&controller, 0).await;
    let untouched = other.observe().await;
    assert_eq!(untouched.executing_count, None, "{untouched:?}");
    assert_eq!(untouched.status, json!({}), "{untouched:?}");
    let ns_after = namespaces.get(&ns).await.expect("get the namespace");
    assert_eq!(
        rv(&ns_after),
        rv(&ns_before),
        "a Namespace is never written"
    );
    controller.assert_no_errors();
    controller.stop().await;
}

/// Puts the Binding `n` times, alternating between `specs`, waiting each
/// time for at least one more reconcile.
async fn reconcile_times(
    env: &Env,
    controller: &Running,
    binding: &str,
    specs: &[BindingSpec; 2],
    n: usize,
) {
    for round in 0..n {
        let before = controller.reconciles();
        env.put_binding(binding, specs[round % 2].clone()).await;
        wait_for("the reconcile of a Binding change", TIMEOUT, || async {
            let now = controller.reconciles();
            if now > before {
                Ok(())
            } else {
                Err(format!("reconciles = {now}"))
            }
        })
        .await;
    }
}

/// What the controller wrote, from its metrics.
fn writes(controller: &Running) -> (u64, u64) {
    let m = controller.metrics();
    (m.status_writes(), m.label_writes())
}

#[async_test]
async fn an_aggregate_with_zero_counters_is_written_once_in_a_hundred_reconciles() {
    let Scene {
        env,
        wds_name,
        ns,
        binding,
    } = Scene::new("multi").await;
    let (wec1, wec2, wec3) = (env.wec().await, env.wec().await, env.wec().await);
    let web = create_deployment(&env.wds, &ns, "web").await;
    // No pod ready in wec1, all in wec2: the aggregate has readyReplicas 0,
    // availableReplicas 0 and conditions [], which the server drops.
    let none_ready = json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "unavailableReplicas": 2});
    let all_ready = json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
                           "readyReplicas": 2, "availableReplicas": 2});
    env.report(&wds_name, &wec1, &binding, (&ns, "web"), Some(&none_ready))
        .await;
    env.report(&wds_name, &wec2, &binding, (&ns, "web"), Some(&all_ready))
        .await;
    let controller = Running::start(&env, &wds_name, default_policy(), 2);
    let spec =
        |wecs: &[&str]| binding_spec(wecs, vec![deployment_clause(&ns, "web", MULTI_WEC)], vec![]);
    env.put_binding(&binding, spec(&[&wec1, &wec2])).await;
    let stored = none_ready.clone();
    let first = web.wait_multi_wec(&stored).await;
    settle(&controller, 0).await;
    assert_eq!(
        writes(&controller),
        (1, 1),
        "one status write, one label write"
    );

    // Each change of destinations re-queues the object; wec3 reports
    // nothing, so the aggregate stays the same.
    let start = controller.reconciles();
    let specs = [spec(&[&wec1, &wec2, &wec3]), spec(&[&wec1, &wec2])];
    reconcile_times(&env, &controller, &binding, &specs, 100).await;
    settle(&controller, 0).await;
    assert!(controller.reconciles() - start >= 100);
    let after = web.observe().await;
    assert!(after.is_multi_wec(&stored), "{after:?}");
    assert_eq!(
        after.resource_version, first.resource_version,
        "no write: {after:?}"
    );
    assert_eq!(
        writes(&controller),
        (1, 1),
        "still one status and one label write"
    );
    controller.assert_no_errors();
    controller.stop().await;

    // A restarted controller has no memory of its writes: it asks the
    // server (a dry run) instead of writing.
    let restarted = Running::start(&env, &wds_name, default_policy(), 2);
    settle(&restarted, 0).await;
    let again = web.observe().await;
    assert_eq!(
        again.resource_version, first.resource_version,
        "no write: {again:?}"
    );
    assert_eq!(writes(&restarted), (0, 0));
    restarted.assert_no_errors();
    restarted.stop().await;
}

/// A WEC newer than the WDS reports a field the WDS's API server does not
/// know (`terminatingReplicas`, Kubernetes 1.33) and drops on every write:
/// the status is written once, then the controller remembers what the
/// server made of it.
#[async_test]
async fn a_field_the_server_drops_is_written_once() {
    let Scene {
        env,
        wds_name,
        ns,
        binding,
    } = Scene::new("multi").await;
    let (wec1, wec2, wec3) = (env.wec().await, env.wec().await, env.wec().await);
    let web = create_deployment(&env.wds, &ns, "web").await;
    let known = deployment_status(2, 2);
    let mut newer = known.clone();
    newer["terminatingReplicas"] = json!(1);
    env.report(&wds_name, &wec1, &binding, (&ns, "web"), Some(&newer))
        .await;
    let controller = Running::start(&env, &wds_name, default_policy(), 2);
    // Multi-WEC over wec1 and wec2 (or wec3), with one report: a singleton copy.
    let spec =
        |wecs: &[&str]| binding_spec(wecs, vec![deployment_clause(&ns, "web", MULTI_WEC)], vec![]);
    env.put_binding(&binding, spec(&[&wec1, &wec2])).await;
    let first = web.wait_singleton(&known).await;
    settle(&controller, 0).await;
    assert_eq!(writes(&controller), (1, 1));
    let specs = [spec(&[&wec1, &wec3]), spec(&[&wec1, &wec2])];
    reconcile_times(&env, &controller, &binding, &specs, 20).await;
    settle(&controller, 0).await;
    let after = web.observe().await;
    assert!(after.is_singleton(&known), "{after:?}");
    assert_eq!(after.resource_version, first.resource_version);
    assert_eq!(writes(&controller), (1, 1), "written once");
    controller.assert_no_errors();
    controller.stop().await;
}

/// The same comparison is no special case of the built-in kinds: a custom
/// resource whose schema keeps zero values gets an aggregate made only of
/// them written, because the server's dry run says it would store them.
#[async_test]
async fn a_custom_resource_gets_an_aggregate_of_zero_values_written() {
    let Scene {
        env,
        wds_name,
        ns,
        binding,
    } = Scene::new("multi").await;
    testenv::install_crds(&env.wds, GADGETS_CRD)
        .await
        .expect("install the Gadget CRD");
    let (wec1, wec2) = (env.wec().await, env.wec().await);
    let ar = api_resource("statusrouter.example.com", "v1alpha1", "Gadget", "gadgets");
    let gadget = create_object(&env.wds, &ar, &ns, "g1", json!({"spec": {"size": 1}})).await;
    let source = SourceRef {
        group: ar.group.clone(),
        version: ar.version.clone(),
        resource: ar.plural.clone(),
        kind: ar.kind.clone(),
        name: "g1".into(),
        namespace: ns.clone(),
    };
    let reports: [Value; 2] = [
        json!({"count": 0, "ready": false, "items": []}),
        json!({"count": 1, "ready": true, "items": []}),
    ];
    for (wec, status) in [(&wec1, &reports[0]), (&wec2, &reports[1])] {
        Report {
            wec,
            name: "g1",
            wds_name: Some(&wds_name),
            binding: &binding,
            source: source.clone(),
        }
        .create(&env.its, Some(status))
        .await;
    }
    let controller = Running::start(&env, &wds_name, default_policy(), 2);
    let gvr = ("statusrouter.example.com", "v1alpha1", "gadgets");
    let clauses = vec![clause(gvr, &ns, "g1", MULTI_WEC)];
    env.put_binding(&binding, binding_spec(&[&wec1, &wec2], clauses, vec![]))
        .await;
    gadget
        .wait_multi_wec(&json!({"count": 0, "ready": false, "items": []}))
        .await;
    settle(&controller, 0).await;
    assert_eq!(writes(&controller), (1, 1));
    controller.assert_no_errors();
    controller.stop().await;
    let gadgets: Api<DynamicObject> = Api::namespaced_with(env.wds.clone(), &ns, &ar);
    let _ = gadgets.delete("g1", &Default::default()).await;
}
