//! WorkStatuses made the way KubeStellar's status agent makes them: created
//! with their labels and sourceRef, then their status written through the
//! status subresource.

use std::collections::BTreeMap;

use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use status_router::kubestellar::{
    ORIGIN_BINDING_LABEL, ORIGIN_WDS_LABEL, SourceRef, WorkStatus, WorkStatusSpec,
};

/// The sourceRef of a Deployment.
pub fn deployment_ref(ns: &str, name: &str) -> SourceRef {
    SourceRef {
        group: "apps".into(),
        version: "v1".into(),
        resource: "deployments".into(),
        kind: "Deployment".into(),
        name: name.into(),
        namespace: ns.into(),
    }
}

/// A WorkStatus as the status agent writes it.
pub struct Report<'a> {
    pub wec: &'a str,
    pub name: &'a str,
    /// `None`: no `originWdsName` label.
    pub wds_name: Option<&'a str>,
    pub binding: &'a str,
    pub source: SourceRef,
}

impl Report<'_> {
    /// Creates the WorkStatus, then writes its status (if any) through the
    /// status subresource.
    pub async fn create(&self, its: &Client, status: Option<&Value>) {
        let mut labels = BTreeMap::from([(ORIGIN_BINDING_LABEL.to_string(), self.binding.into())]);
        if let Some(wds) = self.wds_name {
            labels.insert(ORIGIN_WDS_LABEL.to_string(), wds.into());
        }
        let ws = WorkStatus {
            metadata: ObjectMeta {
                name: Some(self.name.into()),
                namespace: Some(self.wec.into()),
                labels: Some(labels),
                ..Default::default()
            },
            spec: WorkStatusSpec {
                source_ref: self.source.clone(),
            },
            ..Default::default()
        };
        Api::<WorkStatus>::namespaced(its.clone(), self.wec)
            .create(&PostParams::default(), &ws)
            .await
            .unwrap_or_else(|e| panic!("create WorkStatus {}/{}: {e}", self.wec, self.name));
        if let Some(status) = status {
            set_report_status(its, self.wec, self.name, Some(status)).await;
        }
    }
}

/// Writes (or, with `None`, removes) a WorkStatus's status, as the agent does.
pub async fn set_report_status(its: &Client, wec: &str, name: &str, status: Option<&Value>) {
    let patch = Patch::Merge(json!({ "status": status }));
    let ws = Api::<WorkStatus>::namespaced(its.clone(), wec)
        .patch_status(name, &PatchParams::default(), &patch)
        .await
        .unwrap_or_else(|e| panic!("write the status of WorkStatus {wec}/{name}: {e}"));
    assert_eq!(
        ws.status.as_ref(),
        status,
        "the WorkStatus status subresource kept the status"
    );
}

/// Creates a singleton-flagged Deployment report in a WEC for our WDS.
pub async fn report_deployment(
    its: &Client,
    wec: &str,
    wds_name: &str,
    binding: &str,
    (ns, name): (&str, &str),
    status: Option<&Value>,
) {
    Report {
        wec,
        name: &format!("appsv1-deployment-{ns}-{name}"),
        wds_name: Some(wds_name),
        binding,
        source: deployment_ref(ns, name),
    }
    .create(its, status)
    .await;
}
