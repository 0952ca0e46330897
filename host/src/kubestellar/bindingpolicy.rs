//! The BindingPolicy (WDS, cluster-scoped), read only for its UID: a
//! CombinedStatus is named `<object UID>.<BindingPolicy UID>`. Its Binding has
//! the same name. The spec is KubeStellar's business, kept opaque here.

use k8s_openapi::ClusterResourceScope;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// A BindingPolicy, of which only the metadata is read.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingPolicy {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<serde_json::Value>,
}

impl Default for BindingPolicy {
    fn default() -> Self {
        Self {
            api_version: api_version(),
            kind: kind(),
            metadata: ObjectMeta::default(),
            spec: None,
        }
    }
}

fn api_version() -> String {
    format!("{}/v1alpha1", super::GROUP)
}

fn kind() -> String {
    "BindingPolicy".into()
}

kubestellar_resource!(BindingPolicy, kind: "BindingPolicy", plural: "bindingpolicies", scope: ClusterResourceScope);

/// A BindingPolicy CRD that accepts KubeStellar's objects (spec and status kept as written).
pub fn crd() -> CustomResourceDefinition {
    let opaque =
        serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    super::crd_of(
        serde_json::json!({
            "kind": "BindingPolicy", "listKind": "BindingPolicyList",
            "plural": "bindingpolicies", "singular": "bindingpolicy", "shortNames": ["bp"]
        }),
        "Cluster",
        serde_json::json!({"subresources": {"status": {}}}),
        serde_json::json!({"spec": opaque.clone(), "status": opaque}),
    )
}
