//! The controller against a real local control plane (a WDS and an ITS
//! kube-apiserver): Bindings, WorkStatuses and workload objects made the way
//! KubeStellar's binding controller and status agent make them, and the
//! controller running in-process. No mocks.
//!
//! This file: scale (1,000 objects reaching and following their status),
//! custom resources (one without a status subresource, KubeStellar's
//! published CRDs on a private control plane, our checked-in CRDs not
//! drifting from the types), and objects created late or recreated.
//!
//! Tests that run a controller on the shared control plane run one at a time
//! (see `common`): a controller decides for every Binding of its WDS.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use serde_json::json;
use status_router::kubestellar::{Binding, ORIGIN_WDS_LABEL, SourceRef, WorkStatus};

use integration_tests::kubestellar_crd;
use integration_tests::*;

/// A custom resource without a status subresource gets its status through a
/// merge patch of the object itself.
#[async_test]
async fn a_custom_resource_without_status_subresource_is_written() {
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
}

/// 1,000 objects with singleton status reach their status, and follow a
/// change of every report.
#[async_test]
async fn a_thousand_objects_reach_and_follow_their_status() {
    const N: usize = 1000;
    let Scene {
        env,
        wds_name,
        ns,
        binding,
    } = Scene::new("many").await;
    let wec = env.wec().await;
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
        metrics.reconcile_errors(),
        metrics.policy_errors(),
        "only policy calls failed: {metrics:?}"
    );

    controller.stop().await;
}

/// An object created after its Binding and its report gets its status; one
/// deleted and created again gets it again.
#[async_test]
async fn an_object_created_late_or_recreated_gets_its_status() {
    let Scene {
        env,
        wds_name,
        ns,
        binding,
    } = Scene::new("singleton").await;
    let wec = env.wec().await;
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
    assert_eq!(metrics.reconcile_errors(), 0, "{metrics:?}");

    controller.stop().await;
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
#[async_test]
async fn works_with_kubestellars_published_crds() {
    let cp = tokio::task::spawn_blocking(testenv::ControlPlane::start)
        .await
        .expect("start task")
        .expect("start a private control plane");
    let wds = cp.wds_client().await.expect("WDS client");
    let its = cp.its_client().await.expect("ITS client");
    testenv::install_crd_files(&wds, &[kubestellar_crd("bindings")])
        .await
        .expect("install KubeStellar's Binding CRD");
    testenv::install_crd_files(&its, &[kubestellar_crd("workstatuses")])
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
