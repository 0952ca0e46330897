//! The CombinedStatus (WDS, namespaced): the results of the StatusCollectors
//! that one BindingPolicy applies to one workload object, over its WECs.
//!
//! Like a WorkStatus it has no `spec`/`status` pair (`results` sits at the top
//! level and there is no status subresource), so it implements `kube::Resource`
//! itself and its CRD is assembled from schemas generated for its parts.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The namespace of the CombinedStatuses of cluster-scoped objects.
pub const REPORT_NAMESPACE: &str = "kubestellar-report";

/// The five labels of a CombinedStatus: the object's API group, resource,
/// namespace and name, and the BindingPolicy's name.
pub const API_GROUP_LABEL: &str = "status.kubestellar.io/api-group";
pub const RESOURCE_LABEL: &str = "status.kubestellar.io/resource";
pub const NAMESPACE_LABEL: &str = "status.kubestellar.io/namespace";
pub const NAME_LABEL: &str = "status.kubestellar.io/name";
pub const BINDING_POLICY_LABEL: &str = "status.kubestellar.io/binding-policy";

/// The combined status of one (workload object, BindingPolicy) pair.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CombinedStatus {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    pub metadata: ObjectMeta,
    /// One entry per applicable StatusCollector, sorted by its name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<NamedStatusCombination>,
}

impl Default for CombinedStatus {
    fn default() -> Self {
        Self {
            api_version: api_version(),
            kind: kind(),
            metadata: ObjectMeta::default(),
            results: Vec::new(),
        }
    }
}

fn api_version() -> String {
    format!("{}/v1alpha1", super::GROUP)
}

fn kind() -> String {
    "CombinedStatus".into()
}

/// The rows that come from evaluating one StatusCollector.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamedStatusCombination {
    pub name: String,
    #[serde(default)]
    pub column_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<StatusCombinationRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub row_errors: Vec<RowEvaluationError>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aggregation_errors: Vec<ErrorInColumn>,
}

/// One row.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct StatusCombinationRow {
    #[serde(default)]
    pub columns: Vec<ColumnValue>,
}

/// A JSON value, as KubeStellar encodes it: a union tagged by `type`; a
/// Number's value is a string under the key `float` (`"2"`, `"+Inf"`, `"NaN"`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct ColumnValue {
    /// `String`, `Number`, `Bool`, `Null`, `Object` or `Array`.
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub float: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bool: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown")]
    pub object: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown")]
    pub array: Option<serde_json::Value>,
}

fn preserve_unknown(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"x-kubernetes-preserve-unknown-fields": true})
}

/// An error evaluating an expression for one WEC; `columnName` is empty for the filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RowEvaluationError {
    pub column_name: String,
    pub error: String,
    pub wec: super::Destination,
}

/// An error in one aggregated column.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInColumn {
    pub column_name: String,
    pub error: String,
}

kubestellar_resource!(CombinedStatus, kind: "CombinedStatus", plural: "combinedstatuses", scope: NamespaceResourceScope);

/// The CombinedStatus CRD, with the structure and printer columns of KubeStellar's.
pub fn crd() -> CustomResourceDefinition {
    let result = super::workstatus::schema_of::<NamedStatusCombination>();
    let column = |name: &str, label: &str| {
        serde_json::json!({
            "name": name, "type": "string",
            "jsonPath": format!(".metadata.labels['{}']", label.replace('.', "\\."))
        })
    };
    super::crd_of(
        serde_json::json!({
            "kind": "CombinedStatus", "listKind": "CombinedStatusList",
            "plural": "combinedstatuses", "singular": "combinedstatus", "shortNames": ["cs"]
        }),
        "Namespaced",
        serde_json::json!({"additionalPrinterColumns": [
            column("SUBJECT_GROUP", API_GROUP_LABEL),
            column("SUBJECT_RSC", RESOURCE_LABEL),
            column("SUBJECT_NS", NAMESPACE_LABEL),
            column("SUBJECT_NAME", NAME_LABEL),
            column("BINDINGPOLICY", BINDING_POLICY_LABEL),
        ]}),
        serde_json::json!({"results": {"type": "array", "items": result}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_sits_under_float_and_absent_members_are_omitted() {
        let value = ColumnValue {
            type_: "Number".into(),
            float: Some("2".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&value).unwrap(),
            serde_json::json!({"type": "Number", "float": "2"})
        );
    }

    #[test]
    fn the_crd_keeps_object_and_array_values_as_written() {
        let crd = serde_json::to_value(crd()).unwrap();
        let columns = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["results"]
            ["items"]["properties"]["rows"]["items"]["properties"]["columns"]["items"]["properties"];
        assert_eq!(
            columns["object"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        assert_eq!(
            columns["array"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        assert_eq!(columns["float"]["type"], "string");
    }
}
