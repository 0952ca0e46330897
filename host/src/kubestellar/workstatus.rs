//! The WorkStatus (ITS, namespaced by WEC): KubeStellar's status add-on writes
//! one per workload object per WEC, holding a copy of the object's `.status`
//! there.
//!
//! Unlike most CRDs, a WorkStatus carries `status` and `statusDetails` at the
//! top level next to `spec`, so the `CustomResource` derive (spec and status
//! only) does not fit; the type implements `kube::Resource` itself and its CRD
//! is assembled here from schemas generated for its parts.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A WEC's report of one workload object.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkStatus {
    /// Always `control.kubestellar.io/v1alpha1`; the API server needs it on writes.
    #[serde(default = "api_version")]
    pub api_version: String,
    /// Always `WorkStatus`.
    #[serde(default = "kind")]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: WorkStatusSpec,
    /// The object's `.status` in the WEC; absent until the agent has copied it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_details: Option<StatusDetails>,
}

impl Default for WorkStatus {
    fn default() -> Self {
        Self {
            api_version: api_version(),
            kind: kind(),
            metadata: ObjectMeta::default(),
            spec: WorkStatusSpec::default(),
            status: None,
            status_details: None,
        }
    }
}

fn api_version() -> String {
    format!("{}/v1alpha1", super::GROUP)
}

fn kind() -> String {
    "WorkStatus".into()
}

/// `spec` of a WorkStatus.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkStatusSpec {
    #[serde(default)]
    pub source_ref: SourceRef,
}

/// The workload object a WorkStatus reports on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    /// Empty for a cluster-scoped object.
    pub namespace: String,
}

/// How current the report is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    pub last_generation: i64,
    pub last_generation_is_applied: bool,
    pub last_currency_update_time: String,
}

kubestellar_resource!(WorkStatus, kind: "WorkStatus", plural: "workstatuses", scope: NamespaceResourceScope);

/// The WorkStatus CRD, with the same structure as the status add-on's.
pub fn crd() -> CustomResourceDefinition {
    let spec = schema_of::<WorkStatusSpec>();
    let details = schema_of::<StatusDetails>();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "workstatuses.control.kubestellar.io"},
        "spec": {
            "group": super::GROUP,
            "names": {
                "kind": "WorkStatus", "listKind": "WorkStatusList", "plural": "workstatuses",
                "singular": "workstatus", "shortNames": ["ws", "wss"]
            },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1alpha1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec,
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "statusDetails": details,
                    }
                }}
            }]
        }
    }))
    .expect("the WorkStatus CRD is well-formed")
}

/// A structural schema for `T`, generated as `#[derive(CustomResource)]` does.
pub(super) fn schema_of<T: JsonSchema>() -> JSONSchemaProps {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    let mut props: JSONSchemaProps =
        serde_json::from_value(schema.to_value()).expect("schemars emits a JSON schema");
    // Only the root carries these; they have no place inside a CRD.
    props.schema = None;
    props.title = None;
    props
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_workstatus_as_the_status_agent_writes_it() {
        let ws: WorkStatus = serde_json::from_value(serde_json::json!({
            "apiVersion": "control.kubestellar.io/v1alpha1",
            "kind": "WorkStatus",
            "metadata": {"name": "appsv1-deployment-nginx-web", "namespace": "cluster1",
                         "labels": {"transport.kubestellar.io/originWdsName": "wds1"}},
            "spec": {"sourceRef": {"group": "apps", "version": "v1", "resource": "deployments",
                                    "kind": "Deployment", "name": "web", "namespace": "nginx"}},
            "status": {"availableReplicas": 1},
            "statusDetails": {"lastGeneration": 2, "lastGenerationIsApplied": true,
                              "lastCurrencyUpdateTime": "2024-01-01T00:00:00Z"}
        }))
        .unwrap();
        assert_eq!(ws.spec.source_ref.resource, "deployments");
        assert_eq!(ws.status, Some(serde_json::json!({"availableReplicas": 1})));
        assert_eq!(ws.status_details.unwrap().last_generation, 2);
        let written = serde_json::to_value(WorkStatus::default()).unwrap();
        assert_eq!(written["apiVersion"], "control.kubestellar.io/v1alpha1");
        assert_eq!(written["kind"], "WorkStatus");
    }

    #[test]
    fn the_crd_keeps_status_open_and_requires_what_kubestellar_requires() {
        let crd = crd();
        let schema = crd.spec.versions[0].schema.as_ref().unwrap();
        let root = schema.open_api_v3_schema.as_ref().unwrap();
        let props = root.properties.as_ref().unwrap();
        assert_eq!(
            props["status"].x_kubernetes_preserve_unknown_fields,
            Some(true)
        );
        let source_ref = &props["spec"].properties.as_ref().unwrap()["sourceRef"];
        let required = source_ref.required.clone().unwrap();
        assert!(
            required.contains(&"group".to_string()) && required.contains(&"namespace".to_string())
        );
    }
}
