//! Helpers of the CombinedStatus tests: a private control plane with
//! KubeStellar's own published CRDs, a Deployment with 1 replica sent to two
//! WECs, StatusCollectors, BindingPolicies and Bindings naming collectors,
//! and waiting for a CombinedStatus.

use std::path::PathBuf;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use status_router::kubestellar::{
    BindingPolicy, CombinedStatus, NamedStatusCombination, StatusCollector,
};

use integration_tests::kubestellar_crd;
use integration_tests::*;

pub const WDS_NAME: &str = "wds1";

/// A private control plane with KubeStellar's CRDs, a namespace, two WECs and
/// a Deployment `web` with 1 replica; the controller running.
pub struct World {
    pub _cp: testenv::ControlPlane,
    pub wds: Client,
    pub its: Client,
    pub ns: String,
    pub wecs: [String; 2],
    pub controller: Running,
}

impl World {
    pub async fn new() -> Self {
        init_logs();
        let cp = tokio::task::spawn_blocking(testenv::ControlPlane::start)
            .await
            .expect("start task")
            .expect("start a private control plane");
        let wds = cp.wds_client().await.expect("WDS client");
        let its = cp.its_client().await.expect("ITS client");
        let wds_crds: Vec<PathBuf> = [
            "bindings",
            "bindingpolicies",
            "statuscollectors",
            "combinedstatuses",
        ]
        .map(kubestellar_crd)
        .into();
        testenv::install_crd_files(&wds, &wds_crds)
            .await
            .expect("install KubeStellar's WDS CRDs");
        testenv::install_crd_files(&its, &[kubestellar_crd("workstatuses")])
            .await
            .expect("install KubeStellar's WorkStatus CRD");
        let ns = testenv::create_namespace(&wds, "wl").await;
        let wecs = [
            testenv::create_namespace(&its, "cluster").await,
            testenv::create_namespace(&its, "cluster").await,
        ];
        let mut web = deployment(&ns, "web");
        web.spec.as_mut().expect("a spec").replicas = Some(1);
        Api::<Deployment>::namespaced(wds.clone(), &ns)
            .create(&PostParams::default(), &web)
            .await
            .expect("create the Deployment");
        let controller =
            Running::start_with(wds.clone(), its.clone(), WDS_NAME, default_policy(), 2);
        Self {
            _cp: cp,
            wds,
            its,
            ns,
            wecs,
            controller,
        }
    }

    /// Both WECs report `{replicas: 1, availableReplicas: 1}` (through Binding `binding`).
    pub async fn report_both(&self, binding: &str) {
        for wec in &self.wecs {
            self.report(
                wec,
                binding,
                &json!({"replicas": 1, "availableReplicas": 1}),
            )
            .await;
        }
    }

    pub async fn report(&self, wec: &str, binding: &str, status: &Value) {
        report_deployment(
            &self.its,
            wec,
            WDS_NAME,
            binding,
            (&self.ns, "web"),
            Some(status),
        )
        .await;
    }

    pub fn report_name(&self) -> String {
        format!("appsv1-deployment-{}-web", self.ns)
    }

    /// Creates a StatusCollector from its spec (JSON).
    pub async fn collector(&self, name: &str, spec: Value) {
        let sc: StatusCollector = serde_json::from_value(json!({
            "apiVersion": "control.kubestellar.io/v1alpha1",
            "kind": "StatusCollector",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .expect("a StatusCollector");
        Api::<StatusCollector>::all(self.wds.clone())
            .create(&PostParams::default(), &sc)
            .await
            .unwrap_or_else(|e| panic!("create StatusCollector {name}: {e}"));
    }

    /// Creates a BindingPolicy and its Binding (same name) sending `web` to
    /// `wecs` with these collectors; returns the BindingPolicy's UID.
    pub async fn policy(&self, name: &str, wecs: &[&str], collectors: &[&str]) -> String {
        let bp: BindingPolicy = serde_json::from_value(json!({
            "apiVersion": "control.kubestellar.io/v1alpha1",
            "kind": "BindingPolicy",
            "metadata": {"name": name},
            "spec": {},
        }))
        .expect("a BindingPolicy");
        let bp = Api::<BindingPolicy>::all(self.wds.clone())
            .create(&PostParams::default(), &bp)
            .await
            .unwrap_or_else(|e| panic!("create BindingPolicy {name}: {e}"));
        self.bind(name, wecs, collectors).await;
        bp.metadata.uid.expect("a UID")
    }

    /// Writes the Binding `name`.
    pub async fn bind(&self, name: &str, wecs: &[&str], collectors: &[&str]) {
        let mut clause = deployment_clause(&self.ns, "web", NO_FLAGS);
        clause.modulation.status_collectors = collectors.iter().map(|c| c.to_string()).collect();
        put_binding(&self.wds, name, binding_spec(wecs, vec![clause], vec![])).await;
    }

    pub async fn web_uid(&self) -> String {
        Api::<Deployment>::namespaced(self.wds.clone(), &self.ns)
            .get("web")
            .await
            .expect("read the Deployment")
            .metadata
            .uid
            .expect("a UID")
    }

    /// Waits until the CombinedStatus of `web` for the policy satisfies `want`.
    pub async fn wait_combined(
        &self,
        policy_uid: &str,
        what: &str,
        want: impl Fn(&CombinedStatus) -> Result<(), String>,
    ) -> CombinedStatus {
        let name = format!("{}.{policy_uid}", self.web_uid().await);
        let api: Api<CombinedStatus> = Api::namespaced(self.wds.clone(), &self.ns);
        wait_for(what, TIMEOUT, || async {
            match api.get_opt(&name).await {
                Ok(Some(cs)) => want(&cs).map(|()| cs),
                Ok(None) => Err(format!("no CombinedStatus {name}")),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
    }
}

/// The result of one collector in a CombinedStatus, as JSON.
pub fn result<'a>(cs: &'a CombinedStatus, collector: &str) -> Option<&'a NamedStatusCombination> {
    cs.results.iter().find(|r| r.name == collector)
}

/// The rows of a result, as JSON.
pub fn rows(result: &NamedStatusCombination) -> Value {
    serde_json::to_value(&result.rows).expect("rows serialize")
}

/// The String values of the first column, sorted.
pub fn first_strings(result: &NamedStatusCombination) -> Vec<String> {
    let mut names: Vec<String> = result
        .rows
        .iter()
        .filter_map(|r| r.columns.first()?.string.clone())
        .collect();
    names.sort();
    names
}

/// Checks a result against a JSON expectation of its rows.
pub fn rows_are(cs: &CombinedStatus, collector: &str, want: &Value) -> Result<(), String> {
    match result(cs, collector) {
        Some(r) if &rows(r) == want => Ok(()),
        other => Err(format!("{collector}: {other:?}")),
    }
}
