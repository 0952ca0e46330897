//! The WorkStatus (ITS, namespaced by WEC): KubeStellar's status add-on writes
//! one per workload object per WEC, holding a copy of the object's `.status`
//! there.
//!
//! Unlike most CRDs, a WorkStatus carries `status` and `statusDetails` at the
//! top level next to `spec`, so the `CustomResource` derive (spec and status
//! only) does not fit; the type implements `kube::Resource` itself and its CRD
//! is assembled here from schemas generated for its parts.
//!
//! The controller reads WorkStatuses as [`RawWorkStatus`]: the `status` stays
//! the JSON text the ITS sent ([`StatusText`]), never parsed into a tree by
//! the watch. serde_json parses at most 127 levels, so one WorkStatus nested
//! deeper would fail the whole list (and a restarted controller would never
//! sync); capturing raw text is iterative and has no depth limit. The text
//! is also about a fifth of the memory of a `serde_json::Value` tree, and the
//! policy receives statuses as text anyway. Only where the host itself needs
//! the tree (a singleton copy, a StatusCollector) is it parsed, and a status
//! too deep for that is refused for that report alone ([`UnreadableStatus`]).

use std::sync::Arc;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A WEC's report of one workload object; `S` is what its `status` is read
/// as: a JSON tree ([`WorkStatus`], for writing one) or the text the ITS
/// sent ([`RawWorkStatus`], what the controller's watch reads).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkStatus<S = serde_json::Value> {
    /// Always `control.kubestellar.io/v1alpha1`; the API server needs it on writes.
    #[serde(default = "api_version")]
    pub api_version: String,
    /// Always `WorkStatus`.
    #[serde(default = "kind")]
    pub kind: String,
    /// Read without `managedFields` (see `metadata_without_managed_fields`).
    #[serde(deserialize_with = "metadata_without_managed_fields")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: WorkStatusSpec,
    /// The object's `.status` in the WEC; absent until the agent has copied it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_details: Option<StatusDetails>,
}

/// A WorkStatus whose `status` is kept as the JSON text the ITS sent: any
/// depth reads (see the module docs).
pub type RawWorkStatus = WorkStatus<Box<serde_json::value::RawValue>>;

impl<S> Default for WorkStatus<S> {
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

/// A WorkStatus's `metadata` with its `managedFields` left unparsed.
///
/// The API server records in `managedFields` which fields each writer owns, as a tree of the
/// same shape as the written status: a status nested too deep for serde_json has a
/// `managedFields` entry just as deep (Kubernetes 1.32 records it for a status patched through
/// the subresource), and parsing it would fail the whole list again. The controller never
/// reads `managedFields`; the other fields are captured as raw text and parsed. WorkStatuses
/// are read from JSON, as the API server serves them (this does not read YAML).
fn metadata_without_managed_fields<'de, D>(deserializer: D) -> Result<ObjectMeta, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error as _;
    let mut fields =
        std::collections::BTreeMap::<String, Box<serde_json::value::RawValue>>::deserialize(
            deserializer,
        )?;
    fields.remove("managedFields");
    let text = serde_json::to_string(&fields).map_err(D::Error::custom)?;
    serde_json::from_str(&text).map_err(D::Error::custom)
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

kubestellar_resource!(WorkStatus<S>, kind: "WorkStatus", plural: "workstatuses", scope: NamespaceResourceScope);

/// The deepest status, in levels of objects and arrays, that the controller
/// reads into a tree and copies. serde_json reads at most 127 levels, and a
/// status copied onto a workload object must still read in the WDS's list of
/// that resource, `{"items": [{"status": ...}]}`, three levels more: a deeper
/// copy would stall the controller's own watch of every object of the kind.
pub const MAX_STATUS_DEPTH: usize = 124;

/// A reported status as JSON text, shared by the index and every reconcile
/// that reads it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StatusText(Arc<str>);

/// Why the controller cannot read a reported status into a tree.
#[derive(Debug, thiserror::Error)]
pub enum UnreadableStatus {
    #[error(
        "the status is nested {depth} levels deep; the controller copies statuses of at most {MAX_STATUS_DEPTH} levels"
    )]
    TooDeep { depth: usize },
    #[error("the status is not JSON the controller can read: {0}")]
    Invalid(#[source] serde_json::Error),
}

impl StatusText {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The status as a tree; a status nested deeper than
    /// [`MAX_STATUS_DEPTH`] is refused before any parsing.
    pub fn parse(&self) -> Result<serde_json::Value, UnreadableStatus> {
        let depth = nesting_depth(&self.0);
        if depth > MAX_STATUS_DEPTH {
            return Err(UnreadableStatus::TooDeep { depth });
        }
        serde_json::from_str(&self.0).map_err(UnreadableStatus::Invalid)
    }
}

impl From<&str> for StatusText {
    fn from(text: &str) -> Self {
        Self(text.into())
    }
}

impl std::fmt::Display for StatusText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a WorkStatus's `status` can be read as, turned into [`StatusText`].
pub trait ReportedJson {
    fn status_text(&self) -> StatusText;
}

impl ReportedJson for serde_json::Value {
    fn status_text(&self) -> StatusText {
        StatusText(self.to_string().into())
    }
}

impl ReportedJson for Box<serde_json::value::RawValue> {
    fn status_text(&self) -> StatusText {
        StatusText(self.get().into())
    }
}

/// The deepest nesting of objects and arrays in JSON text, counted in one
/// pass without recursion (brackets inside strings do not count).
pub fn nesting_depth(json: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The WorkStatus CRD, with the same structure as the status add-on's.
pub fn crd() -> CustomResourceDefinition {
    let spec = schema_of::<WorkStatusSpec>();
    let details = schema_of::<StatusDetails>();
    super::crd_of(
        serde_json::json!({
            "kind": "WorkStatus", "listKind": "WorkStatusList", "plural": "workstatuses",
            "singular": "workstatus", "shortNames": ["ws", "wss"]
        }),
        "Namespaced",
        serde_json::json!({"subresources": {"status": {}}}),
        serde_json::json!({
            "spec": spec,
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "statusDetails": details,
        }),
    )
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
        let written = serde_json::to_value(WorkStatus::<serde_json::Value>::default()).unwrap();
        assert_eq!(written["apiVersion"], "control.kubestellar.io/v1alpha1");
        assert_eq!(written["kind"], "WorkStatus");
    }

    /// `{"a": {"a": ... {"leaf": 1}}}`: `levels` levels of objects.
    fn nested(levels: usize) -> String {
        let mut text = "{\"a\":".repeat(levels - 1);
        text.push_str("{\"leaf\":1}");
        text.push_str(&"}".repeat(levels - 1));
        text
    }

    fn raw_list(status: &str) -> String {
        format!(
            r#"{{"apiVersion": "v1", "kind": "List", "metadata": {{}}, "items": [
                {{"metadata": {{"name": "ok", "namespace": "wec1"}}, "spec": {{"sourceRef":
                    {{"group": "", "namespace": "ns", "name": "a"}}}}, "status": {{"n": 1}}}},
                {{"metadata": {{"name": "deep", "namespace": "wec1", "managedFields": [
                    {{"manager": "agent", "operation": "Update", "subresource": "status",
                      "fieldsType": "FieldsV1", "fieldsV1": {{"f:status": {status}}}}}]}},
                  "spec": {{"sourceRef": {{"group": "", "namespace": "ns", "name": "b"}}}},
                  "status": {status}}}]}}"#
        )
    }

    #[test]
    fn a_list_with_a_status_of_any_depth_reads_and_the_deep_one_alone_is_refused() {
        for levels in [
            1,
            MAX_STATUS_DEPTH,
            MAX_STATUS_DEPTH + 1,
            200,
            10_000,
            100_000,
        ] {
            let list: kube::core::ObjectList<RawWorkStatus> =
                serde_json::from_str(&raw_list(&nested(levels)))
                    .unwrap_or_else(|e| panic!("{levels} levels: {e}"));
            let [ok, deep] = &list.items[..] else {
                panic!("two items")
            };
            // Its managedFields, as deep as its status, are not read.
            assert_eq!(deep.metadata.name.as_deref(), Some("deep"));
            assert!(deep.metadata.managed_fields.is_none());
            let ok = ok.status.as_ref().unwrap().status_text();
            assert_eq!(ok.parse().unwrap(), serde_json::json!({"n": 1}));
            let deep = deep.status.as_ref().unwrap().status_text();
            assert_eq!(nesting_depth(deep.as_str()), levels);
            match deep.parse() {
                Ok(value) => {
                    assert!(levels <= MAX_STATUS_DEPTH, "{levels} levels read");
                    assert_eq!(value.to_string(), nested(levels));
                }
                Err(UnreadableStatus::TooDeep { depth }) => {
                    assert!(levels > MAX_STATUS_DEPTH, "{levels} levels refused");
                    assert_eq!(depth, levels);
                }
                Err(e) => panic!("{levels} levels: {e}"),
            }
        }
        // The old way, for the record: one deep item fails the whole list.
        let list: Result<kube::core::ObjectList<WorkStatus>, _> =
            serde_json::from_str(&raw_list(&nested(200)));
        assert!(list.unwrap_err().to_string().contains("recursion limit"));
    }

    #[test]
    fn the_deepest_status_copied_still_reads_back_in_a_list_of_workload_objects() {
        type Objects = kube::core::ObjectList<kube::api::DynamicObject>;
        let list = |status: &str| {
            format!(
                r#"{{"apiVersion": "v1", "kind": "List", "metadata": {{}}, "items": [{{
                    "apiVersion": "example.com/v1", "kind": "Gadget",
                    "metadata": {{"name": "g"}}, "status": {status}}}]}}"#
            )
        };
        let deepest = StatusText(nested(MAX_STATUS_DEPTH).into()).parse().unwrap();
        let read: Objects = serde_json::from_str(&list(&deepest.to_string()))
            .expect("the WDS's list of the kind still reads");
        assert_eq!(read.items[0].data["status"], deepest);
        let too_deep = serde_json::from_str::<Objects>(&list(&nested(MAX_STATUS_DEPTH + 1)));
        assert!(
            too_deep
                .unwrap_err()
                .to_string()
                .contains("recursion limit"),
            "one level more would stall the WDS's list"
        );
    }

    #[test]
    fn nesting_depth_skips_brackets_in_strings() {
        assert_eq!(nesting_depth(r#"{"a": "{[{[", "b": [1, {"c": "\"}"}]}"#), 3);
        assert_eq!(nesting_depth("1"), 0);
        assert_eq!(nesting_depth("[]"), 1);
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
