//! KubeStellar's singleton scenario, as its binding controller and status agent make it: a
//! workload object in the WDS, a Binding that wants its singleton reported state from one WEC,
//! and that WEC's WorkStatus in the ITS. The object is a Gadget (a CRD of the tests), so no real
//! controller of the node writes its status: every status on it is status-router's.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use status_router::kubestellar::{ORIGIN_BINDING_LABEL, ORIGIN_WDS_LABEL, SINGLETON_STATUS_LABEL};

use crate::cluster::{Node, WDS_NAME, poll};

const GADGET_CRD: &str =
    include_str!("../../integration/fixtures/gadgets.statusrouter.example.com.yaml");
pub const NS: &str = "demo";
pub const WEC: &str = "wec1";
const OBJECT: &str = "g1";
const BINDING: &str = "node-test";
const WORK_STATUS: &str = "statusrouter.example.com-v1alpha1-gadget-demo-g1";

fn gadgets() -> ApiResource {
    ApiResource {
        group: "statusrouter.example.com".into(),
        version: "v1alpha1".into(),
        api_version: "statusrouter.example.com/v1alpha1".into(),
        kind: "Gadget".into(),
        plural: "gadgets".into(),
    }
}

fn work_statuses() -> ApiResource {
    ApiResource {
        group: "control.kubestellar.io".into(),
        version: "v1alpha1".into(),
        api_version: "control.kubestellar.io/v1alpha1".into(),
        kind: "WorkStatus".into(),
        plural: "workstatuses".into(),
    }
}

/// The CRDs (KubeStellar's in both spaces, the Gadget in the WDS) and the namespaces.
pub fn install(node: &Node) -> anyhow::Result<()> {
    let crds = status_router::kubestellar::crds_yaml();
    node.apply(&node.wds_kubeconfig, &crds)?;
    node.apply(&node.its_kubeconfig, &crds)?;
    node.apply(&node.wds_kubeconfig, GADGET_CRD)?;
    for crd in [
        "bindings.control.kubestellar.io",
        "gadgets.statusrouter.example.com",
    ] {
        node.kubectl(&["wait", "--for=condition=Established", "crd", crd])?;
    }
    node.kubectl_its(&[
        "wait",
        "--for=condition=Established",
        "crd",
        "workstatuses.control.kubestellar.io",
    ])?;
    node.apply(
        &node.wds_kubeconfig,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}).to_string(),
    )?;
    node.apply(
        &node.its_kubeconfig,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": WEC}}).to_string(),
    )?;
    Ok(())
}

/// Creates the object, the WEC's report (with `status`), and the Binding.
pub async fn create(node: &Node, status: &Value) -> anyhow::Result<()> {
    node.apply(
        &node.wds_kubeconfig,
        &json!({"apiVersion": "statusrouter.example.com/v1alpha1", "kind": "Gadget",
                "metadata": {"name": OBJECT, "namespace": NS}, "spec": {"size": 1}})
        .to_string(),
    )?;
    node.apply(
        &node.its_kubeconfig,
        &json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "WorkStatus",
            "metadata": {"name": WORK_STATUS, "namespace": WEC, "labels": {
                ORIGIN_BINDING_LABEL: BINDING, ORIGIN_WDS_LABEL: WDS_NAME}},
            "spec": {"sourceRef": {"group": "statusrouter.example.com", "version": "v1alpha1",
                "resource": "gadgets", "kind": "Gadget", "name": OBJECT, "namespace": NS}}})
        .to_string(),
    )?;
    report(node, status).await?;
    bind(node, true)
}

/// Writes the Binding, with or without the singleton flag.
pub fn bind(node: &Node, singleton: bool) -> anyhow::Result<()> {
    let mut clause = json!({"group": "statusrouter.example.com", "version": "v1alpha1",
        "resource": "gadgets", "name": OBJECT, "namespace": NS, "resourceVersion": "1"});
    if singleton {
        clause["wantSingletonReportedState"] = json!(true);
    }
    node.apply(
        &node.wds_kubeconfig,
        &json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "Binding",
            "metadata": {"name": BINDING},
            "spec": {"destinations": [{"clusterId": WEC}],
                     "workload": {"namespaceScope": [clause]}}})
        .to_string(),
    )?;
    Ok(())
}

/// The WEC reports `status` (the status agent writes the status subresource).
pub async fn report(node: &Node, status: &Value) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(node.its.clone(), WEC, &work_statuses());
    api.patch_status(
        WORK_STATUS,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .context("write the WorkStatus's status")?;
    Ok(())
}

/// The object in the WDS: its status (`{}`-less: `None` when absent) and whether it carries the
/// singleton label.
pub async fn observed(node: &Node) -> anyhow::Result<(Option<Value>, bool)> {
    let api: Api<DynamicObject> = Api::namespaced_with(node.wds.clone(), NS, &gadgets());
    let object = api.get(OBJECT).await?;
    let labelled = object
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.get(SINGLETON_STATUS_LABEL).is_some_and(|v| v == "true"));
    let status = object
        .data
        .get("status")
        .cloned()
        .filter(|s| s.as_object().is_none_or(|o| !o.is_empty()));
    Ok((status, labelled))
}

/// Polls until the object's status is `want` (`None`: cleared); the time it took.
pub async fn wait_status(
    node: &Node,
    want: Option<&Value>,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    loop {
        let (status, labelled) = observed(node).await?;
        if status.as_ref() == want && labelled == want.is_some() {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > timeout {
            bail!(
                "the WDS Gadget {NS}/{OBJECT} has status {status:?} (singleton label: {labelled}), \
                 not {want:?}, after {timeout:?}\n{}",
                node.describe()
            );
        }
        poll().await;
    }
}

/// A status as a WEC would report it, numbered.
pub fn status(n: u64) -> Value {
    json!({"observedGeneration": n, "phase": format!("step-{n}")})
}
