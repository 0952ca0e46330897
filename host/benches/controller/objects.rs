//! The workload objects the bench creates and updates: N Deployments in the
//! WDS, Bindings asking for their singleton status, the WorkStatuses a WEC's
//! agent would write in the ITS; and the bounded-concurrency driver for them.

use std::time::Instant;

use anyhow::Context as _;
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use status_router::kubestellar::{Binding, ORIGIN_BINDING_LABEL, ORIGIN_WDS_LABEL, WorkStatus};

use crate::{NAMESPACE, PER_BINDING, WDS_NAME, WEC};

pub fn name(i: usize) -> String {
    format!("d-{i:05}")
}

pub fn index_of(name: &str) -> Option<usize> {
    name.strip_prefix("d-")?.parse().ok()
}

pub fn deployment(i: usize) -> Deployment {
    let name = name(i);
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    }))
    .expect("a valid Deployment")
}

pub fn binding(b: usize, objects: std::ops::Range<usize>) -> Binding {
    let entries: Vec<Value> = objects
        .map(|i| {
            json!({"group": "apps", "version": "v1", "resource": "deployments",
                   "namespace": NAMESPACE, "name": name(i), "resourceVersion": "1",
                   "wantSingletonReportedState": true})
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "control.kubestellar.io/v1alpha1", "kind": "Binding",
        "metadata": {"name": format!("bench-{b}")},
        "spec": {"destinations": [{"clusterId": WEC}],
                 "workload": {"namespaceScope": entries}}
    }))
    .expect("a valid Binding")
}

pub fn work_status(i: usize) -> WorkStatus {
    serde_json::from_value(json!({
        "apiVersion": "control.kubestellar.io/v1alpha1", "kind": "WorkStatus",
        "metadata": {"name": format!("appsv1-deployment-{NAMESPACE}-{}", name(i)), "labels": {
            ORIGIN_WDS_LABEL: WDS_NAME,
            ORIGIN_BINDING_LABEL: format!("bench-{}", i / PER_BINDING)}},
        "spec": {"sourceRef": {"group": "apps", "version": "v1", "resource": "deployments",
                               "kind": "Deployment", "namespace": NAMESPACE, "name": name(i)}}
    }))
    .expect("a valid WorkStatus")
}

/// A Deployment's status as a WEC reports it; `available` marks the phase.
pub fn deployment_status(available: i64) -> Value {
    let t = "2025-01-01T00:00:00Z";
    json!({
        // The API server validates a Deployment's status: available <= ready <= replicas.
        "observedGeneration": 1, "replicas": available, "updatedReplicas": available,
        "readyReplicas": available, "availableReplicas": available,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
             "message": "Deployment has minimum availability.",
             "lastTransitionTime": t, "lastUpdateTime": t},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "message": "ReplicaSet has successfully progressed.",
             "lastTransitionTime": t, "lastUpdateTime": t}
        ]
    })
}

/// The WEC's agent reports object `i` with `availableReplicas: value`.
pub async fn report(api: &Api<WorkStatus>, i: usize, value: i64) -> anyhow::Result<()> {
    let patch = Patch::Merge(json!({"status": deployment_status(value)}));
    api.patch_status(
        &format!("appsv1-deployment-{NAMESPACE}-{}", name(i)),
        &PatchParams::default(),
        &patch,
    )
    .await
    .with_context(|| format!("report status of {}", name(i)))?;
    Ok(())
}

pub async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}}))?,
    )
    .await?;
    Ok(())
}

/// Runs `f(0..n)` with at most `limit` in flight; fails on the first error.
pub async fn run_bounded<F, Fut>(n: usize, limit: usize, what: &str, f: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let t = Instant::now();
    stream::iter((0..n).map(|i| {
        let fut = f(i);
        async move { fut.await.with_context(|| format!("{what}: object {i}")) }
    }))
    .buffer_unordered(limit)
    .try_collect::<()>()
    .await?;
    eprintln!(
        "  {what}: {n} in {:.1?} ({:.0}/s, {limit} in flight)",
        t.elapsed(),
        n as f64 / t.elapsed().as_secs_f64()
    );
    Ok(())
}
