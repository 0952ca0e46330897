//! KubeStellar's API objects, field-compatible with KubeStellar's own CRDs,
//! and the labels that tie them together.
//!
//! The project generates its CRDs from these types (`status-router crds`,
//! checked in under `config/crds/`), and a controller built on them must also
//! work with the CRDs of a real KubeStellar install.

/// `kube::Resource` for a KubeStellar type that `#[derive(CustomResource)]`
/// cannot describe (its top-level fields are not a `spec`/`status` pair, or
/// only the metadata is read): the group and version are KubeStellar's, the
/// rest is given.
macro_rules! kubestellar_resource {
    ($ty:ident, kind: $kind:literal, plural: $plural:literal, scope: $scope:ty) => {
        kubestellar_resource!(@impl [] $ty, $kind, $plural, $scope);
    };
    ($ty:ident<$param:ident>, kind: $kind:literal, plural: $plural:literal, scope: $scope:ty) => {
        kubestellar_resource!(@impl [$param] $ty<$param>, $kind, $plural, $scope);
    };
    (@impl [$($param:ident)?] $ty:ty, $kind:literal, $plural:literal, $scope:ty) => {
        impl<$($param)?> kube::Resource for $ty {
            type DynamicType = ();
            type Scope = $scope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                super::GROUP.into()
            }
            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                "v1alpha1".into()
            }
            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(
                &mut self,
            ) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

mod binding;
mod bindingpolicy;
mod combinedstatus;
mod statuscollector;
mod workstatus;

pub use binding::{
    Binding, BindingCondition, BindingSpec, BindingStatus, ClusterScopeDownsyncClause, Destination,
    DownsyncModulation, NamespaceScopeDownsyncClause, ObjectReference, WorkloadClauses,
};
pub use bindingpolicy::BindingPolicy;
pub use combinedstatus::{
    API_GROUP_LABEL, BINDING_POLICY_LABEL, ColumnValue, CombinedStatus, ErrorInColumn, NAME_LABEL,
    NAMESPACE_LABEL, NamedStatusCombination, REPORT_NAMESPACE, RESOURCE_LABEL, RowEvaluationError,
    StatusCombinationRow,
};
pub use statuscollector::{
    DEFAULT_LIMIT, NamedAggregator, NamedExpression, StatusCollector, StatusCollectorSpec,
    StatusCollectorStatus,
};
pub use workstatus::{
    MAX_STATUS_DEPTH, RawWorkStatus, ReportedJson, SourceRef, StatusDetails, StatusText,
    UnreadableStatus, WorkStatus, WorkStatusSpec,
};

/// The API group of KubeStellar's control objects.
pub const GROUP: &str = "control.kubestellar.io";

/// On a WorkStatus: the name of the Binding that sent the object to the WEC.
pub const ORIGIN_BINDING_LABEL: &str = "transport.kubestellar.io/originOwnerReferenceBindingKey";
/// On a WorkStatus: the WDS the object came from.
pub const ORIGIN_WDS_LABEL: &str = "transport.kubestellar.io/originWdsName";

/// On a workload object: set while it holds a singleton status.
pub const SINGLETON_STATUS_LABEL: &str = "managed-by.kubestellar.io/singletonstatus";
/// On a workload object: set while it holds a multi-WEC aggregate.
pub const MULTI_WEC_STATUS_LABEL: &str = "managed-by.kubestellar.io/multiwecstatus";
/// On a workload object: while singleton status return is requested, the
/// decimal size of its qualified WEC set (KubeStellar's API documents it on
/// `wantSingletonReportedState`; upstream never writes it).
pub const EXECUTING_COUNT_LABEL: &str = "kubestellar.io/executing-count";

/// Whether an object carries one of the labels we write: then it is ours, and
/// the `none` decision clears it.
pub fn carries_our_label(labels: &std::collections::BTreeMap<String, String>) -> bool {
    [
        SINGLETON_STATUS_LABEL,
        MULTI_WEC_STATUS_LABEL,
        EXECUTING_COUNT_LABEL,
    ]
    .iter()
    .any(|l| labels.contains_key(*l))
}

/// The CRD of a KubeStellar type that `#[derive(CustomResource)]` does not
/// describe, in its one version `v1alpha1`: `names` as the CRD spells them,
/// the scope, the version's own fields besides its name (subresources,
/// printer columns) and the top-level properties besides `apiVersion`, `kind`
/// and `metadata`.
fn crd_of(
    names: serde_json::Value,
    scope: &str,
    version: serde_json::Value,
    properties: serde_json::Value,
) -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use serde_json::{Value, json};
    let merge = |mut into: Value, from: Value| {
        if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
            into.extend(from);
        }
        into
    };
    let kind = names["kind"].as_str().unwrap_or_default().to_owned();
    let plural = names["plural"].as_str().unwrap_or_default();
    let properties = merge(
        json!({
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
        }),
        properties,
    );
    let version = merge(
        json!({
            "name": "v1alpha1", "served": true, "storage": true,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": properties}},
        }),
        version,
    );
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{GROUP}")},
        "spec": {"group": GROUP, "names": names, "scope": scope, "versions": [version]},
    }))
    .unwrap_or_else(|e| panic!("the {kind} CRD is well-formed: {e}"))
}

/// Every CRD the controller needs, as YAML documents (what `status-router crds` prints).
pub fn crds_yaml() -> String {
    use kube::CustomResourceExt;
    let docs = [
        Binding::crd(),
        workstatus::crd(),
        StatusCollector::crd(),
        combinedstatus::crd(),
        bindingpolicy::crd(),
    ];
    docs.iter()
        .map(|crd| serde_yaml::to_string(crd).expect("a CRD serializes"))
        .map(|doc| format!("---\n{doc}"))
        .collect()
}
