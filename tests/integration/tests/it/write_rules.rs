//! The controller against a real local control plane (a WDS and an ITS
//! kube-apiserver): Bindings, WorkStatuses and workload objects made the way
//! KubeStellar's binding controller and status agent make them, and the
//! controller running in-process. No mocks.
//!
//! This file: what the controller writes and what it must never write:
//! duplicate reports and reports without a status, WorkStatuses of another
//! WDS, Namespaces and CRDs, objects that were never ours, and a policy that
//! traps.
//!
//! Tests that run a controller on the shared control plane run one at a time
//! (see `common`): a controller decides for every Binding of its WDS.

use kube::api::{Api, DeleteParams, DynamicObject};
use serde_json::json;
use status_router::kubestellar::{SourceRef, WorkStatus};

use integration_tests::*;

/// Two WorkStatuses for one object in one WEC: cleared (and written again
/// when one goes). A WorkStatus that has no status yet: nothing changes.
#[async_test]
async fn duplicate_reports_clear_and_a_report_without_status_changes_nothing() {
    let Scene {
        env,
        wds_name,
        ns,
        binding,
    } = Scene::new("singleton").await;
    let wec = env.wec().await;
    let web = create_deployment(&env.wds, &ns, "web").await;
    let pending = create_deployment(&env.wds, &ns, "pending").await;
    let held = deployment_status(3, 3);
    pending.set_status(&held, true).await;
    let before = pending.observe().await;
    let status = deployment_status(2, 2);
    env.report(&wds_name, &wec, &binding, (&ns, "web"), Some(&status))
        .await;
    env.report(&wds_name, &wec, &binding, (&ns, "pending"), None)
        .await;
    env.put_binding(
        &binding,
        binding_spec(
            &[&wec],
            vec![
                deployment_clause(&ns, "web", SINGLETON),
                deployment_clause(&ns, "pending", SINGLETON),
            ],
            vec![],
        ),
    )
    .await;
    let controller = Running::start(&env, &wds_name, default_policy(), 2);

    // Both objects are queued by the same Binding event; once `web` is
    // written, `pending` has been (or is being) reconciled too.
    web.wait_singleton(&status).await;
    settle(&controller, 0).await;
    let after = pending.observe().await;
    assert_eq!(
        after, before,
        "a WorkStatus without status must change nothing"
    );

    // The agent copies the status: now it is written.
    let reported = deployment_status(2, 1);
    set_report_status(
        &env.its,
        &wec,
        &format!("appsv1-deployment-{ns}-pending"),
        Some(&reported),
    )
    .await;
    pending.wait_singleton(&reported).await;

    // A second WorkStatus for `web` in the same WEC (another Binding sent it
    // there too): singleton over one WEC with two reports clears.
    let duplicate = Report {
        wec: &wec,
        name: "appsv1-deployment-web-duplicate",
        wds_name: Some(&wds_name),
        binding: "another-binding",
        source: deployment_ref(&ns, "web"),
    };
    duplicate
        .create(&env.its, Some(&deployment_status(2, 1)))
        .await;
    web.wait_cleared().await;

    // The duplicate goes: written again.
    Api::<WorkStatus>::namespaced(env.its.clone(), &wec)
        .delete(duplicate.name, &DeleteParams::default())
        .await
        .expect("delete the duplicate WorkStatus");
    web.wait_singleton(&status).await;

    controller.stop().await;
}

/// A WorkStatus labelled with another WDS's name is not ours: it neither
/// counts as a second report nor is ever written. One without the label is
/// processed.
#[async_test]
async fn workstatuses_of_another_wds_are_ignored() {
    let Scene {
        env,
        wds_name,
        ns,
        binding,
    } = Scene::new("singleton").await;
    let other_wds = testenv::unique_name("other-wds");
    let (wec1, wec2) = (env.wec().await, env.wec().await);
    let web = create_deployment(&env.wds, &ns, "web").await;
    let foreign_only = create_deployment(&env.wds, &ns, "foreign-only").await;
    let unlabelled = create_deployment(&env.wds, &ns, "unlabelled").await;
    let status = deployment_status(2, 2);
    let foreign = deployment_status(5, 5);
    env.report(&wds_name, &wec1, &binding, (&ns, "web"), Some(&status))
        .await;
    for (wec, object) in [(&wec1, "web"), (&wec2, "foreign-only")] {
        Report {
            wec,
            name: &format!("{object}-from-the-other-wds"),
            wds_name: Some(&other_wds),
            binding: &binding,
            source: deployment_ref(&ns, object),
        }
        .create(&env.its, Some(&foreign))
        .await;
    }
    let without_label = deployment_status(1, 1);
    Report {
        wec: &wec2,
        name: "unlabelled",
        wds_name: None,
        binding: &binding,
        source: deployment_ref(&ns, "unlabelled"),
    }
    .create(&env.its, Some(&without_label))
    .await;
    let foreign_only_before = foreign_only.observe().await;
    let controller = Running::start(&env, &wds_name, default_policy(), 2);
    env.put_binding(
        &binding,
        binding_spec(
            &[&wec1],
            vec![deployment_clause(&ns, "web", SINGLETON)],
            vec![],
        ),
    )
    .await;
    let other = testenv::unique_name("singleton");
    env.put_binding(
        &other,
        binding_spec(
            &[&wec2],
            vec![
                deployment_clause(&ns, "foreign-only", SINGLETON),
                deployment_clause(&ns, "unlabelled", SINGLETON),
            ],
            vec![],
        ),
    )
    .await;

    // The foreign report does not count as a second one in wec1 ...
    web.wait_singleton(&status).await;
    // ... and a later change of ours is still written as a singleton.
    let updated = deployment_status(2, 1);
    set_report_status(
        &env.its,
        &wec1,
        &format!("appsv1-deployment-{ns}-web"),
        Some(&updated),
    )
    .await;
    web.wait_singleton(&updated).await;
    // A report without the label is ours.
    unlabelled.wait_singleton(&without_label).await;
    // The foreign report alone is never copied; the object does get the
    // executing-count of its singleton Binding (one qualified WEC).
    settle(&controller, 0).await;
    let after = foreign_only.observe().await;
    assert_eq!(after.status, foreign_only_before.status, "{after:?}");
    assert!(!after.singleton && !after.multi_wec, "{after:?}");
    assert_eq!(after.executing_count.as_deref(), Some("1"), "{after:?}");

    controller.stop().await;
}

/// Namespaces and CRDs selected with the singleton flag are never written,
/// whatever their WECs report.
#[async_test]
async fn namespaces_and_crds_are_never_written() {
    let Scene {
        env,
        wds_name,
        ns,
        binding,
    } = Scene::new("singleton").await;
    testenv::install_crds(&env.wds, GADGETS_CRD)
        .await
        .expect("install the Gadget CRD");
    let wec = env.wec().await;
    let web = create_deployment(&env.wds, &ns, "web").await;
    let status = deployment_status(1, 1);
    env.report(&wds_name, &wec, &binding, (&ns, "web"), Some(&status))
        .await;
    let crd_name = "gadgets.statusrouter.example.com";
    let cluster_scoped = [
        ("", "v1", "namespaces", "Namespace", ns.as_str()),
        (
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            crd_name,
        ),
    ];
    for (group, version, resource, kind, name) in cluster_scoped {
        Report {
            wec: &wec,
            name: &format!("{resource}-{name}"),
            wds_name: Some(&wds_name),
            binding: &binding,
            source: SourceRef {
                group: group.into(),
                version: version.into(),
                resource: resource.into(),
                kind: kind.into(),
                name: name.into(),
                namespace: String::new(),
            },
        }
        .create(
            &env.its,
            Some(&json!({"phase": "FromTheWec", "conditions": []})),
        )
        .await;
    }
    let namespaces = namespaces(&env.wds);
    let crds: Api<DynamicObject> = Api::all_with(
        env.wds.clone(),
        &api_resource(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
        ),
    );
    let ns_before = namespaces.get(&ns).await.expect("get the namespace");
    let crd_before = crds.get(crd_name).await.expect("get the CRD");
    let controller = Running::start(&env, &wds_name, default_policy(), 2);
    env.put_binding(
        &binding,
        binding_spec(
            &[&wec],
            vec![deployment_clause(&ns, "web", SINGLETON)],
            cluster_scoped
                .iter()
                .map(|(g, v, r, _, n)| cluster_clause((g, v, r), n, SINGLETON))
                .collect(),
        ),
    )
    .await;

    web.wait_singleton(&status).await;
    settle(&controller, 0).await;
    let ns_after = namespaces.get(&ns).await.expect("get the namespace");
    assert_eq!(rv(&ns_after), rv(&ns_before), "{ns_after:?}");
    let crd_after = crds.get(crd_name).await.expect("get the CRD");
    assert_eq!(rv(&crd_after), rv(&crd_before), "{crd_after:?}");
    assert!(
        !observed(&crd_after).singleton,
        "the CRD got our label: {crd_after:?}"
    );

    controller.stop().await;
}

/// An object that was never ours, with no flag (or not even a Binding), is
/// never touched, even with WorkStatuses reporting for it.
#[async_test]
async fn an_object_that_was_never_ours_is_never_touched() {
    let Scene {
        env,
        wds_name,
        ns,
        binding,
    } = Scene::new("mixed").await;
    let wec = env.wec().await;
    let sentinel = create_deployment(&env.wds, &ns, "sentinel").await;
    let unflagged = create_deployment(&env.wds, &ns, "unflagged").await;
    let unbound = create_deployment(&env.wds, &ns, "unbound").await;
    let users = deployment_status(3, 3);
    unflagged.set_status(&users, false).await;
    unbound.set_status(&users, false).await;
    let status = deployment_status(1, 1);
    for name in ["sentinel", "unflagged", "unbound"] {
        env.report(&wds_name, &wec, &binding, (&ns, name), Some(&status))
            .await;
    }
    let unflagged_before = unflagged.observe().await;
    let unbound_before = unbound.observe().await;
    let controller = Running::start(&env, &wds_name, default_policy(), 2);
    env.put_binding(
        &binding,
        binding_spec(
            &[&wec],
            vec![
                deployment_clause(&ns, "sentinel", SINGLETON),
                deployment_clause(&ns, "unflagged", NO_FLAGS),
            ],
            vec![],
        ),
    )
    .await;

    sentinel.wait_singleton(&status).await;
    // A new report on both, after the Binding is known.
    let newer = deployment_status(2, 2);
    for name in ["sentinel", "unflagged", "unbound"] {
        let ws = format!("appsv1-deployment-{ns}-{name}");
        set_report_status(&env.its, &wec, &ws, Some(&newer)).await;
    }
    sentinel.wait_singleton(&newer).await;
    settle(&controller, 0).await;
    assert_eq!(unflagged.observe().await, unflagged_before);
    assert_eq!(unbound.observe().await, unbound_before);

    controller.stop().await;
}

/// A policy that traps: an error (counted, retried), never a decision: the
/// status already held, with our label, stays.
#[async_test]
async fn a_trapping_policy_changes_no_status() {
    let Scene {
        env,
        wds_name,
        ns,
        binding,
    } = Scene::new("singleton").await;
    let wec = env.wec().await;
    // The misbehaving policy traps on objects named `trap` and answers `none`
    // for any other: `fine`, which holds a status of ours, is cleared.
    let trap = create_deployment(&env.wds, &ns, "trap").await;
    let fine = create_deployment(&env.wds, &ns, "fine").await;
    let held = deployment_status(3, 3);
    trap.set_status(&held, true).await;
    fine.set_status(&held, true).await;
    let reported = deployment_status(2, 1);
    for name in ["trap", "fine"] {
        env.report(&wds_name, &wec, &binding, (&ns, name), Some(&reported))
            .await;
    }
    let before = trap.observe().await;
    assert!(before.is_singleton(&held), "{before:?}");
    let controller = Running::start(&env, &wds_name, policy("misbehaving"), 2);
    env.put_binding(
        &binding,
        binding_spec(
            &[&wec],
            vec![
                deployment_clause(&ns, "trap", SINGLETON),
                deployment_clause(&ns, "fine", SINGLETON),
            ],
            vec![],
        ),
    )
    .await;

    fine.wait_cleared().await;
    let metrics = controller.metrics();
    wait_for("a policy error", TIMEOUT, || async {
        match metrics.policy_errors() {
            0 => Err(format!("metrics: {metrics:?}")),
            n => Ok(n),
        }
    })
    .await;
    settle(&controller, controller.reconciles()).await;
    assert_eq!(trap.observe().await, before);
    assert!(metrics.reconcile_errors() >= metrics.policy_errors());

    controller.stop().await;
}
