//! The controller against a real local control plane (a WDS and an ITS
//! kube-apiserver): Bindings, WorkStatuses and workload objects made the way
//! KubeStellar's binding controller and status agent make them, and the
//! controller running in-process. No mocks.
//!
//! Tests that run a controller on the shared control plane run one at a time
//! (see `common`): a controller decides for every Binding of its WDS.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use serde_json::json;
use status_router::kubestellar::{Binding, ORIGIN_WDS_LABEL, SourceRef, WorkStatus};

use common::*;

const GADGETS_CRD: &str = include_str!("fixtures/gadgets.statusrouter.example.com.yaml");

/// KubeStellar scenario 1: a singleton Binding selects one WEC: the WDS
/// Deployment gets that WEC's status; the Binding then matches no WEC: cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn singleton_status_follows_one_wec_and_is_cleared_when_the_binding_matches_none() {
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let wec = env.wec().await;
    let binding = testenv::unique_name("singleton");
    let web = create_deployment(&env.wds, &ns, "web").await;
    let status = deployment_status(2, 2);
    env.report(&wds_name, &wec, &binding, (&ns, "web"), Some(&status))
        .await;
    let controller = Running::start(&env, &wds_name, default_policy(), 2);

    let clauses = || vec![deployment_clause(&ns, "web", SINGLETON)];
    env.put_binding(&binding, binding_spec(&[&wec], clauses(), vec![]))
        .await;
    let o = web.wait_singleton(&status).await;
    assert_eq!(o.status["availableReplicas"], 2);

    env.put_binding(&binding, binding_spec(&[], clauses(), vec![]))
        .await;
    web.wait_cleared().await;

    controller.stop().await;
    env.cleanup().await;
}

/// KubeStellar scenario 2: only qualified WECs count. The object goes to two
/// WECs through a Binding without flags; a singleton Binding names one of
/// them: its status is written. That Binding then names no WEC: cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_wecs_of_flagged_bindings_count() {
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let (wec1, wec2) = (env.wec().await, env.wec().await);
    let plain = testenv::unique_name("plain");
    let singleton = testenv::unique_name("singleton");
    let web = create_deployment(&env.wds, &ns, "web").await;
    let (status1, status2) = (deployment_status(2, 2), deployment_status(2, 1));
    env.report(&wds_name, &wec1, &plain, (&ns, "web"), Some(&status1))
        .await;
    env.report(&wds_name, &wec2, &plain, (&ns, "web"), Some(&status2))
        .await;
    let controller = Running::start(&env, &wds_name, default_policy(), 2);

    let plain_clauses = vec![deployment_clause(&ns, "web", NO_FLAGS)];
    env.put_binding(&plain, binding_spec(&[&wec1, &wec2], plain_clauses, vec![]))
        .await;
    let clauses = || vec![deployment_clause(&ns, "web", SINGLETON)];
    env.put_binding(&singleton, binding_spec(&[&wec2], clauses(), vec![]))
        .await;
    web.wait_singleton(&status2).await;

    env.put_binding(&singleton, binding_spec(&[], clauses(), vec![]))
        .await;
    web.wait_cleared().await;

    controller.stop().await;
    env.cleanup().await;
}

/// KubeStellar scenario 3 (eventual consistency): the controller is down
/// while the Binding changes; a new controller clears the stale status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_changed_while_the_controller_was_down_is_caught_up() {
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let wec = env.wec().await;
    let binding = testenv::unique_name("singleton");
    let web = create_deployment(&env.wds, &ns, "web").await;
    let status = deployment_status(3, 3);
    env.report(&wds_name, &wec, &binding, (&ns, "web"), Some(&status))
        .await;
    env.put_binding(
        &binding,
        binding_spec(
            &[&wec],
            vec![deployment_clause(&ns, "web", SINGLETON)],
            vec![],
        ),
    )
    .await;

    let first = Running::start(&env, &wds_name, default_policy(), 2);
    web.wait_singleton(&status).await;
    first.stop().await;

    // The flag is dropped while no controller runs.
    env.put_binding(
        &binding,
        binding_spec(
            &[&wec],
            vec![deployment_clause(&ns, "web", NO_FLAGS)],
            vec![],
        ),
    )
    .await;
    let stale = web.observe().await;
    assert!(stale.is_singleton(&status), "{stale:?}");

    let second = Running::start(&env, &wds_name, default_policy(), 2);
    web.wait_cleared().await;
    second.stop().await;
    env.cleanup().await;
}

/// Both flags: one WEC gives a singleton copy; two WECs with different
/// reports give the aggregate (minimum) with the multi-WEC label; back to one
/// WEC gives a singleton again, labels switched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_flags_switch_between_singleton_and_aggregate() {
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let (wec1, wec2) = (env.wec().await, env.wec().await);
    let binding = testenv::unique_name("both");
    let web = create_deployment(&env.wds, &ns, "web").await;
    let (status1, status2) = (deployment_status(2, 2), deployment_status(2, 1));
    env.report(&wds_name, &wec1, &binding, (&ns, "web"), Some(&status1))
        .await;
    env.report(&wds_name, &wec2, &binding, (&ns, "web"), Some(&status2))
        .await;
    let controller = Running::start(&env, &wds_name, default_policy(), 2);
    let clauses = || vec![deployment_clause(&ns, "web", BOTH)];

    env.put_binding(&binding, binding_spec(&[&wec1], clauses(), vec![]))
        .await;
    web.wait_singleton(&status1).await;

    env.put_binding(&binding, binding_spec(&[&wec1, &wec2], clauses(), vec![]))
        .await;
    // The minimum of every counter: replicas 2, ready and available 1.
    let aggregate = deployment_status(2, 1);
    let o = web.wait_multi_wec(&aggregate).await;
    assert_eq!(o.status["readyReplicas"], 1);

    env.put_binding(&binding, binding_spec(&[&wec1], clauses(), vec![]))
        .await;
    web.wait_singleton(&status1).await;

    controller.stop().await;
    env.cleanup().await;
}

/// A change of destinations alone (same objects, same flags) moves the status
/// to the new WEC's report (KubeStellar misses this one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_change_alone_is_followed() {
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let (wec1, wec2) = (env.wec().await, env.wec().await);
    let binding = testenv::unique_name("singleton");
    let web = create_deployment(&env.wds, &ns, "web").await;
    let (status1, status2) = (deployment_status(2, 2), deployment_status(4, 3));
    env.report(&wds_name, &wec1, &binding, (&ns, "web"), Some(&status1))
        .await;
    env.report(&wds_name, &wec2, &binding, (&ns, "web"), Some(&status2))
        .await;
    let controller = Running::start(&env, &wds_name, default_policy(), 2);
    let clauses = || vec![deployment_clause(&ns, "web", SINGLETON)];

    env.put_binding(&binding, binding_spec(&[&wec1], clauses(), vec![]))
        .await;
    web.wait_singleton(&status1).await;
    env.put_binding(&binding, binding_spec(&[&wec2], clauses(), vec![]))
        .await;
    web.wait_singleton(&status2).await;

    controller.stop().await;
    env.cleanup().await;
}

/// Two WorkStatuses for one object in one WEC: cleared (and written again
/// when one goes). A WorkStatus that has no status yet: nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_reports_clear_and_a_report_without_status_changes_nothing() {
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let wec = env.wec().await;
    let binding = testenv::unique_name("singleton");
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
    env.cleanup().await;
}

/// A WorkStatus labelled with another WDS's name is not ours: it neither
/// counts as a second report nor is ever written. One without the label is
/// processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workstatuses_of_another_wds_are_ignored() {
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let other_wds = testenv::unique_name("other-wds");
    let ns = env.namespace().await;
    let (wec1, wec2) = (env.wec().await, env.wec().await);
    let binding = testenv::unique_name("singleton");
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
    // The foreign report alone is never copied.
    settle(&controller, 0).await;
    assert_eq!(foreign_only.observe().await, foreign_only_before);

    controller.stop().await;
    env.cleanup().await;
}

/// A custom resource without a status subresource gets its status through a
/// merge patch of the object itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_resource_without_status_subresource_is_written() {
    let env = Env::new().await;
    testenv::install_crds(&env.wds, GADGETS_CRD)
        .await
        .expect("install the Gadget CRD");
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let wec = env.wec().await;
    let binding = testenv::unique_name("singleton");
    let ar = api_resource("statusrouter.example.com", "v1alpha1", "Gadget", "gadgets");
    let gadgets: Api<DynamicObject> = Api::namespaced_with(env.wds.clone(), &ns, &ar);
    gadgets
        .create(
            &PostParams::default(),
            &DynamicObject::new("g1", &ar)
                .within(&ns)
                .data(json!({"spec": {"size": 3}})),
        )
        .await
        .expect("create a Gadget");
    let gadget = Target {
        api: gadgets.clone(),
        name: "g1".into(),
    };
    let status =
        json!({"phase": "Ready", "count": 3, "conditions": [{"type": "Ready", "status": "True"}]});
    Report {
        wec: &wec,
        name: "g1",
        wds_name: Some(&wds_name),
        binding: &binding,
        source: SourceRef {
            group: "statusrouter.example.com".into(),
            version: "v1alpha1".into(),
            resource: "gadgets".into(),
            kind: "Gadget".into(),
            name: "g1".into(),
            namespace: ns.clone(),
        },
    }
    .create(&env.its, Some(&status))
    .await;
    let controller = Running::start(&env, &wds_name, default_policy(), 2);
    let gvr = ("statusrouter.example.com", "v1alpha1", "gadgets");
    let clauses = || vec![clause(gvr, &ns, "g1", SINGLETON)];

    env.put_binding(&binding, binding_spec(&[&wec], clauses(), vec![]))
        .await;
    gadget.wait_singleton(&status).await;
    let written = gadgets.get("g1").await.expect("get the Gadget");
    assert_eq!(written.data["spec"], json!({"size": 3}), "spec untouched");

    env.put_binding(&binding, binding_spec(&[], clauses(), vec![]))
        .await;
    gadget.wait_cleared().await;

    controller.stop().await;
    let _ = gadgets.delete("g1", &DeleteParams::default()).await;
    env.cleanup().await;
}

/// Namespaces and CRDs selected with the singleton flag are never written,
/// whatever their WECs report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_and_crds_are_never_written() {
    let env = Env::new().await;
    testenv::install_crds(&env.wds, GADGETS_CRD)
        .await
        .expect("install the Gadget CRD");
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let wec = env.wec().await;
    let binding = testenv::unique_name("singleton");
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
    env.cleanup().await;
}

/// An object that was never ours, with no flag (or not even a Binding), is
/// never touched, even with WorkStatuses reporting for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_that_was_never_ours_is_never_touched() {
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let wec = env.wec().await;
    let binding = testenv::unique_name("mixed");
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
    env.cleanup().await;
}

/// A policy that traps: an error (counted, retried), never a decision: the
/// status already held, with our label, stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_policy_changes_no_status() {
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let wec = env.wec().await;
    let binding = testenv::unique_name("singleton");
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
        match metrics.policy_errors.load(Relaxed) {
            0 => Err(format!("metrics: {metrics:?}")),
            n => Ok(n),
        }
    })
    .await;
    settle(&controller, controller.reconciles()).await;
    assert_eq!(trap.observe().await, before);
    assert!(metrics.reconcile_errors.load(Relaxed) >= metrics.policy_errors.load(Relaxed));

    controller.stop().await;
    env.cleanup().await;
}

/// 1,000 objects with singleton status reach their status, and follow a
/// change of every report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_objects_reach_and_follow_their_status() {
    const N: usize = 1000;
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let wec = env.wec().await;
    let binding = testenv::unique_name("many");
    let name = |i: usize| format!("d{i:04}");
    let status = |i: usize, generation: usize| {
        let mut s = deployment_status(1 + (i % 3) as i64, 1);
        s["observedGeneration"] = json!(generation);
        s
    };
    let start = Instant::now();
    let controller = Running::start(&env, &wds_name, default_policy(), 8);

    let deployments: Api<Deployment> = Api::namespaced(env.wds.clone(), &ns);
    stream::iter(0..N)
        .map(|i| {
            let (deployments, ns, its) = (&deployments, &ns, &env.its);
            let (wec, wds_name, binding) = (&wec, &wds_name, &binding);
            async move {
                deployments
                    .create(&PostParams::default(), &deployment(ns, &name(i)))
                    .await?;
                let source = (ns.as_str(), name(i));
                report_deployment(
                    its,
                    wec,
                    wds_name,
                    binding,
                    (source.0, &source.1),
                    Some(&status(i, 1)),
                )
                .await;
                Ok::<_, kube::Error>(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<()>()
        .await
        .expect("create the Deployments and WorkStatuses");
    let clauses = (0..N)
        .map(|i| deployment_clause(&ns, &name(i), SINGLETON))
        .collect();
    env.put_binding(&binding, binding_spec(&[&wec], clauses, vec![]))
        .await;
    let created = start.elapsed();

    let all_follow = |generation: usize| {
        let deployments = Api::<DynamicObject>::namespaced_with(
            env.wds.clone(),
            &ns,
            &kube::api::ApiResource::erase::<Deployment>(&()),
        );
        async move {
            let list = deployments
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            let wrong: Vec<String> = list
                .items
                .iter()
                .filter(|o| {
                    let i: usize = o.metadata.name.as_deref().unwrap_or("d")[1..]
                        .parse()
                        .unwrap_or(usize::MAX);
                    i >= N || !observed(o).is_singleton(&status(i, generation))
                })
                .map(|o| o.metadata.name.clone().unwrap_or_default())
                .collect();
            if list.items.len() == N && wrong.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} objects, {} not yet right (first: {:?})",
                    list.items.len(),
                    wrong.len(),
                    &wrong[..wrong.len().min(5)]
                ))
            }
        }
    };
    wait_for("every object's status", Duration::from_secs(60), || {
        all_follow(1)
    })
    .await;
    let reached = start.elapsed();

    stream::iter(0..N)
        .map(|i| {
            let (its, wec, ns) = (&env.its, &wec, &ns);
            async move {
                let ws = format!("appsv1-deployment-{ns}-{}", name(i));
                set_report_status(its, wec, &ws, Some(&status(i, 2))).await;
            }
        })
        .buffer_unordered(32)
        .collect::<()>()
        .await;
    let updated = start.elapsed();
    wait_for(
        "every object to follow its report",
        Duration::from_secs(60),
        || all_follow(2),
    )
    .await;
    let followed = start.elapsed();
    eprintln!(
        "{N} objects: created in {created:?}, statuses written by {reached:?}, reports updated by \
         {updated:?}, followed by {followed:?}; metrics: {:?}",
        controller.metrics()
    );
    // Policy calls may miss their 10 ms wall-clock deadline on a loaded
    // machine (they are retried); no write to the WDS may fail.
    let metrics = controller.metrics();
    assert_eq!(
        metrics.reconcile_errors.load(Relaxed),
        metrics.policy_errors.load(Relaxed),
        "only policy calls failed: {metrics:?}"
    );

    controller.stop().await;
    env.cleanup().await;
}

/// An object created after its Binding and its report gets its status; one
/// deleted and created again gets it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_created_late_or_recreated_gets_its_status() {
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let wec = env.wec().await;
    let binding = testenv::unique_name("singleton");
    let status = deployment_status(2, 2);
    env.report(&wds_name, &wec, &binding, (&ns, "late"), Some(&status))
        .await;
    env.put_binding(
        &binding,
        binding_spec(
            &[&wec],
            vec![deployment_clause(&ns, "late", SINGLETON)],
            vec![],
        ),
    )
    .await;
    let controller = Running::start(&env, &wds_name, default_policy(), 2);
    // Give the controller the chance to (wrongly) fail on the missing object.
    tokio::time::sleep(GRACE).await;

    let late = create_deployment(&env.wds, &ns, "late").await;
    late.wait_singleton(&status).await;

    Api::<Deployment>::namespaced(env.wds.clone(), &ns)
        .delete("late", &DeleteParams::default())
        .await
        .expect("delete the Deployment");
    wait_for("the Deployment to be gone", TIMEOUT, || async {
        match late.api.get_opt("late").await {
            Ok(None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let again = create_deployment(&env.wds, &ns, "late").await;
    again.wait_singleton(&status).await;
    let metrics = controller.metrics();
    assert_eq!(metrics.reconcile_errors.load(Relaxed), 0, "{metrics:?}");

    controller.stop().await;
    env.cleanup().await;
}

/// The checked-in CRDs are what the types generate.
#[test]
fn the_checked_in_crds_do_not_drift() {
    let path = integration_tests::workspace_file("config/crds/kubestellar.yaml");
    let generated = status_router::kubestellar::crds_yaml();
    if !path.exists() {
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create config/crds");
        std::fs::write(&path, &generated).expect("write config/crds/kubestellar.yaml");
    }
    let checked_in = std::fs::read_to_string(&path).expect("read config/crds/kubestellar.yaml");
    assert!(
        checked_in == generated,
        "config/crds/kubestellar.yaml differs from the CRDs the types generate: run \
         `cargo run -p status-router -- crds > config/crds/kubestellar.yaml`"
    );
}

/// The controller works with KubeStellar's published CRDs too: our typed
/// Bindings and WorkStatuses are accepted and read back unchanged, and the
/// status is returned. On a private control plane: those CRDs have the same
/// names as ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_with_kubestellars_published_crds() {
    let dir = integration_tests::workspace_file("../shared/kubestellar-crds");
    assert!(
        dir.is_dir(),
        "KubeStellar's reference CRDs are missing at {} (expected the shared \
         `kubestellar-crds` directory next to the repository clone)",
        dir.display()
    );
    let cp = tokio::task::spawn_blocking(testenv::ControlPlane::start)
        .await
        .expect("start task")
        .expect("start a private control plane");
    let wds = cp.wds_client().await.expect("WDS client");
    let its = cp.its_client().await.expect("ITS client");
    testenv::install_crd_files(&wds, &[dir.join("control.kubestellar.io_bindings.yaml")])
        .await
        .expect("install KubeStellar's Binding CRD");
    testenv::install_crd_files(
        &its,
        &[dir.join("control.kubestellar.io_workstatuses.yaml")],
    )
    .await
    .expect("install KubeStellar's WorkStatus CRD");

    let wds_name = "wds1";
    let ns = testenv::create_namespace(&wds, "wl").await;
    let wec1 = testenv::create_namespace(&its, "wec").await;
    let wec2 = testenv::create_namespace(&its, "wec").await;
    let web = create_deployment(&wds, &ns, "web").await;
    let (status1, status2) = (deployment_status(2, 2), deployment_status(2, 1));
    report_deployment(&its, &wec1, wds_name, "b1", (&ns, "web"), Some(&status1)).await;
    report_deployment(&its, &wec2, wds_name, "b1", (&ns, "web"), Some(&status2)).await;
    let ws: WorkStatus = Api::namespaced(its.clone(), &wec1)
        .get(&format!("appsv1-deployment-{ns}-web"))
        .await
        .expect("read the WorkStatus back");
    assert_eq!(ws.spec.source_ref, deployment_ref(&ns, "web"));
    assert_eq!(ws.status.as_ref(), Some(&status1));
    assert_eq!(
        ws.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(ORIGIN_WDS_LABEL)),
        Some(&wds_name.to_string())
    );

    let controller = Running::start_with(wds.clone(), its.clone(), wds_name, default_policy(), 2);
    let spec = binding_spec(
        &[&wec1],
        vec![deployment_clause(&ns, "web", SINGLETON)],
        vec![cluster_clause(("", "v1", "namespaces"), &ns, NO_FLAGS)],
    );
    put_binding(&wds, "b1", spec.clone()).await;
    let b: Binding = Api::all(wds.clone())
        .get("b1")
        .await
        .expect("read the Binding back");
    assert_eq!(b.spec, spec, "the Binding reads back as written");
    web.wait_singleton(&status1).await;

    let both = binding_spec(
        &[&wec1, &wec2],
        vec![deployment_clause(&ns, "web", BOTH)],
        vec![],
    );
    put_binding(&wds, "b1", both).await;
    web.wait_multi_wec(&deployment_status(2, 1)).await;

    Api::<Binding>::all(wds.clone())
        .delete("b1", &DeleteParams::default())
        .await
        .expect("delete the Binding");
    web.wait_cleared().await;

    controller.stop().await;
    tokio::task::spawn_blocking(move || drop(cp))
        .await
        .expect("stop the private control plane");
}
