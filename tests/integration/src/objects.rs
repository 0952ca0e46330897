//! Workload objects in the WDS: Deployments made as a user makes them, and
//! what a test observes on them (status and our labels).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use status_router::controller::wds::object_cache::WorkloadObject;
use status_router::kubestellar::{
    EXECUTING_COUNT_LABEL, MULTI_WEC_STATUS_LABEL, SINGLETON_STATUS_LABEL,
};

use crate::{TIMEOUT, wait_for};

/// A CRD without a status subresource, for the custom-resource tests.
pub const GADGETS_CRD: &str = include_str!("../fixtures/gadgets.statusrouter.example.com.yaml");

/// A workload object in the WDS, read through the dynamic API.
#[derive(Clone)]
pub struct Target {
    pub api: Api<DynamicObject>,
    pub name: String,
}

/// What a test looks at on a workload object.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub status: Value,
    pub singleton: bool,
    pub multi_wec: bool,
    /// The `kubestellar.io/executing-count` label.
    pub executing_count: Option<String>,
    pub resource_version: String,
}

impl Observed {
    /// Holds `status` with the singleton label only.
    pub fn is_singleton(&self, status: &Value) -> bool {
        self.status == *status && self.singleton && !self.multi_wec
    }

    /// Holds `status` with the multi-WEC label only.
    pub fn is_multi_wec(&self, status: &Value) -> bool {
        self.status == *status && !self.singleton && self.multi_wec
    }

    /// Status `{}` and neither label.
    pub fn is_cleared(&self) -> bool {
        self.status == json!({}) && !self.singleton && !self.multi_wec
    }
}

impl Target {
    pub fn deployment(client: &Client, ns: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<Deployment>(&())),
            name: name.to_string(),
        }
    }

    /// Read as the controller reads it (without managedFields, which are as
    /// deep as the status written and would not parse for the deepest ones).
    pub async fn observe(&self) -> Observed {
        let request = http::Request::get(format!("{}/{}", self.api.resource_url(), self.name))
            .body(Vec::new())
            .expect("a GET request");
        let o: WorkloadObject = self
            .api
            .clone()
            .into_client()
            .request(request)
            .await
            .unwrap_or_else(|e| panic!("get {}: {e}", self.name));
        let status = o.status.map(|raw| {
            serde_json::from_str(raw.get()).unwrap_or_else(|e| panic!("{}: {e}", self.name))
        });
        let mut dynamic = DynamicObject {
            types: None,
            metadata: o.metadata,
            data: json!({}),
        };
        if let Some(status) = status {
            dynamic.data["status"] = status;
        }
        observed(&dynamic)
    }

    /// Waits until the object satisfies `want`.
    pub async fn wait(&self, what: &str, want: impl Fn(&Observed) -> bool) -> Observed {
        let what = format!("{}: {what}", self.name);
        wait_for(&what, TIMEOUT, || async {
            let o = self.observe().await;
            if want(&o) {
                Ok(o)
            } else {
                Err(format!("{o:?}"))
            }
        })
        .await
    }

    pub async fn wait_singleton(&self, status: &Value) -> Observed {
        let what = format!("singleton status {status}");
        self.wait(&what, |o| o.is_singleton(status)).await
    }

    pub async fn wait_multi_wec(&self, status: &Value) -> Observed {
        let what = format!("multi-WEC status {status}");
        self.wait(&what, |o| o.is_multi_wec(status)).await
    }

    pub async fn wait_cleared(&self) -> Observed {
        self.wait("a cleared status", Observed::is_cleared).await
    }

    /// Writes the object's status through the subresource (as a user or
    /// another controller would), and optionally our singleton label.
    pub async fn set_status(&self, status: &Value, singleton_label: bool) {
        if singleton_label {
            let labels = json!({"metadata": {"labels": {SINGLETON_STATUS_LABEL: "true"}}});
            self.api
                .patch(&self.name, &PatchParams::default(), &Patch::Merge(labels))
                .await
                .expect("label the object");
        }
        self.api
            .patch_status(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .expect("write the object's status");
    }
}

pub fn observed(o: &DynamicObject) -> Observed {
    let labels = o.metadata.labels.clone().unwrap_or_default();
    Observed {
        status: match o.data.get("status") {
            None | Some(Value::Null) => json!({}),
            Some(s) => s.clone(),
        },
        singleton: labels.get(SINGLETON_STATUS_LABEL).map(String::as_str) == Some("true"),
        multi_wec: labels.get(MULTI_WEC_STATUS_LABEL).map(String::as_str) == Some("true"),
        executing_count: labels.get(EXECUTING_COUNT_LABEL).cloned(),
        resource_version: o.metadata.resource_version.clone().unwrap_or_default(),
    }
}

/// A minimal Deployment (a WDS has no deployment controller: its status
/// stays as written).
pub fn deployment(ns: &str, name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}
            }
        }
    }))
    .expect("a valid Deployment")
}

/// Creates a workload object of any kind in the WDS from its JSON (without
/// `apiVersion`, `kind` and `metadata`, which come from `ar`, `ns`, `name`).
pub async fn create_object(
    client: &Client,
    ar: &ApiResource,
    ns: &str,
    name: &str,
    body: Value,
) -> Target {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
    api.create(
        &PostParams::default(),
        &DynamicObject::new(name, ar).within(ns).data(body),
    )
    .await
    .unwrap_or_else(|e| panic!("create {} {ns}/{name}: {e}", ar.kind));
    Target {
        api,
        name: name.to_string(),
    }
}

/// Creates a Deployment in the WDS.
pub async fn create_deployment(client: &Client, ns: &str, name: &str) -> Target {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &deployment(ns, name))
        .await
        .unwrap_or_else(|e| panic!("create Deployment {ns}/{name}: {e}"));
    Target::deployment(client, ns, name)
}

/// A Deployment status that the API server's validation accepts
/// (ready <= replicas, available <= ready, ...).
pub fn deployment_status(replicas: i64, ready: i64) -> Value {
    json!({
        "observedGeneration": 1,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
    })
}

/// The Namespace API of a client, for the never-written test.
pub fn namespaces(client: &Client) -> Api<Namespace> {
    Api::all(client.clone())
}

/// `kind`'s ApiResource of a DynamicObject-typed resource.
pub fn api_resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(group, version, kind),
        plural,
    )
}

/// The resourceVersion of any object.
pub fn rv<K: kube::Resource>(o: &K) -> String {
    o.meta().resource_version.clone().unwrap_or_default()
}
