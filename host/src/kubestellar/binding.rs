//! The Binding (WDS, cluster-scoped): KubeStellar's binding controller resolves
//! each BindingPolicy into a Binding of the same name that lists the exact
//! workload objects selected and the WECs they go to.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `spec` of a Binding.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "control.kubestellar.io",
    version = "v1alpha1",
    kind = "Binding",
    plural = "bindings",
    shortname = "bdg",
    status = "BindingStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct BindingSpec {
    /// The WECs every object of this Binding goes to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Destination>,
    /// The objects, cluster-scoped and namespaced, with how each is handled.
    #[serde(default)]
    pub workload: WorkloadClauses,
}

/// One WEC.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    pub cluster_id: String,
}

/// The objects of a Binding.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadClauses {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_scope: Vec<ClusterScopeDownsyncClause>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_scope: Vec<NamespaceScopeDownsyncClause>,
}

/// A cluster-scoped object of a Binding.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterScopeDownsyncClause {
    #[serde(flatten)]
    pub object: ObjectReference,
    #[serde(flatten)]
    pub modulation: DownsyncModulation,
}

/// A namespaced object of a Binding.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceScopeDownsyncClause {
    #[serde(flatten)]
    pub object: ObjectReference,
    pub namespace: String,
    #[serde(flatten)]
    pub modulation: DownsyncModulation,
}

/// Which object a clause is about.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub name: String,
    pub resource_version: String,
}

/// How an object is handled; every flag is omitted when false, as KubeStellar writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownsyncModulation {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_only: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_collectors: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub want_singleton_reported_state: bool,
    #[serde(
        default,
        rename = "wantMultiWECReportedState",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub want_multi_wec_reported_state: bool,
}

/// `status` of a Binding (written by KubeStellar's binding controller, not by us).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingStatus {
    #[serde(default)]
    pub observed_generation: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<BindingCondition>,
}

/// A condition of a Binding's status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub last_transition_time: String,
    pub reason: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_binding_as_kubestellar_writes_it() {
        let b: Binding = serde_json::from_value(serde_json::json!({
            "apiVersion": "control.kubestellar.io/v1alpha1",
            "kind": "Binding",
            "metadata": {"name": "nginx"},
            "spec": {
                "destinations": [{"clusterId": "cluster1"}],
                "workload": {
                    "clusterScope": [{"group": "", "version": "v1", "resource": "namespaces",
                                      "name": "nginx", "resourceVersion": "5"}],
                    "namespaceScope": [{"group": "apps", "version": "v1", "resource": "deployments",
                                        "namespace": "nginx", "name": "web", "resourceVersion": "7",
                                        "wantSingletonReportedState": true,
                                        "statusCollectors": ["replicas"]}]
                }
            }
        }))
        .unwrap();
        assert_eq!(b.spec.destinations[0].cluster_id, "cluster1");
        let ns = &b.spec.workload.namespace_scope[0];
        assert_eq!(
            (ns.object.name.as_str(), ns.namespace.as_str()),
            ("web", "nginx")
        );
        assert!(ns.modulation.want_singleton_reported_state);
        assert!(!ns.modulation.want_multi_wec_reported_state);
        assert_eq!(b.spec.workload.cluster_scope[0].object.group, "");
    }

    #[test]
    fn omits_false_flags_when_written() {
        let clause = NamespaceScopeDownsyncClause {
            namespace: "ns".into(),
            modulation: DownsyncModulation {
                want_multi_wec_reported_state: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let json = serde_json::to_value(&clause).unwrap();
        assert_eq!(json["wantMultiWECReportedState"], true);
        assert!(json.get("wantSingletonReportedState").is_none());
        assert!(json.get("createOnly").is_none());
    }
}
