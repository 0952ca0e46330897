//! The WDS objects as the controller reads and keeps them: only what a
//! reconcile reads, in a compact form.
//!
//! A workload watch sees every object of its resource, and the cache holds
//! the latest copy of each object we track, so at 100,000 objects the cache
//! is most of the controller's memory. A `DynamicObject` would keep a whole
//! `ObjectMeta` and its status as a `serde_json::Value` tree, about 4.4 KiB
//! an object in 55 allocations (BENCHMARKS.md). Instead:
//!
//! - the watches, reads and patch responses are parsed as [`WorkloadObject`]:
//!   the metadata a reconcile reads, and the status as raw JSON text; the
//!   spec, the managedFields and all else are skipped by the parser without
//!   being built (serde_json skips unknown fields iteratively, at any depth);
//! - the cache keeps a [`CachedObject`]: the resourceVersion, the uid (for
//!   Events), the labels and annotations as boxed pairs, and the status text,
//!   parsed again when a reconcile reads it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{ApiResource, DynamicResourceScope};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::kubestellar::{StatusText, UnreadableStatus};

/// A workload object as read from the WDS: its metadata without
/// managedFields and its status as the JSON text the server sent.
#[derive(Clone, Debug, Deserialize)]
pub struct WorkloadObject {
    #[serde(default, deserialize_with = "lean_metadata")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub status: Option<Box<RawValue>>,
}

/// The metadata fields the controller reads; the others (managedFields
/// above all) are skipped unparsed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

fn lean_metadata<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = LeanMeta::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        labels: m.labels,
        annotations: m.annotations,
        ..ObjectMeta::default()
    })
}

impl kube::Resource for WorkloadObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }
    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }
    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }
    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }
    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Labels or annotations, as boxed pairs sorted by key (a `BTreeMap` of
/// three labels takes a node of eleven slots).
type Pairs = Box<[(Box<str>, Box<str>)]>;

fn pairs(map: Option<BTreeMap<String, String>>) -> Pairs {
    map.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
        .collect()
}

fn map_of(pairs: &Pairs) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The cached copy of a workload object.
#[derive(Debug, PartialEq, Eq)]
pub struct CachedObject {
    pub resource_version: Option<Box<str>>,
    pub uid: Option<Box<str>>,
    labels: Pairs,
    annotations: Pairs,
    /// `.status` as JSON text; `None` when absent or null.
    status: Option<StatusText>,
}

impl From<WorkloadObject> for CachedObject {
    fn from(o: WorkloadObject) -> Self {
        let meta = o.metadata;
        Self {
            resource_version: meta.resource_version.map(String::into_boxed_str),
            uid: meta.uid.map(String::into_boxed_str),
            labels: pairs(meta.labels),
            annotations: pairs(meta.annotations),
            status: o
                .status
                .filter(|s| s.get() != "null")
                .map(|s| StatusText::from(s.get())),
        }
    }
}

impl CachedObject {
    pub fn labels(&self) -> BTreeMap<String, String> {
        map_of(&self.labels)
    }

    pub fn annotations(&self) -> BTreeMap<String, String> {
        map_of(&self.annotations)
    }

    /// `.status`, absent or null read as `{}`.
    pub fn status(&self) -> Result<Value, UnreadableStatus> {
        match &self.status {
            None => Ok(Value::Object(Default::default())),
            Some(text) => text.parse(),
        }
    }
}

/// A status from a WDS answer, absent or null read as `{}`.
pub fn status_of(object: &WorkloadObject) -> Result<Value, UnreadableStatus> {
    match object.status.as_deref().map(RawValue::get) {
        None | Some("null") => Ok(Value::Object(Default::default())),
        Some(text) => StatusText::from(text).parse(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEPLOYMENT: &str = r#"{"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns", "uid": "u-1", "resourceVersion": "42",
                     "generation": 3, "labels": {"app": "web", "b": "2"},
                     "annotations": {"note": "x"},
                     "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web"}]}}},
        "status": {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]}}"#;

    #[test]
    fn keeps_what_a_reconcile_reads_and_skips_the_rest() {
        let object: WorkloadObject = serde_json::from_str(DEPLOYMENT).unwrap();
        assert!(object.metadata.managed_fields.is_none());
        assert_eq!(object.metadata.name.as_deref(), Some("web"));
        let cached = CachedObject::from(object.clone());
        assert_eq!(cached.resource_version.as_deref(), Some("42"));
        assert_eq!(cached.uid.as_deref(), Some("u-1"));
        assert_eq!(
            cached.labels(),
            BTreeMap::from([("app".into(), "web".into()), ("b".into(), "2".into())])
        );
        assert_eq!(cached.annotations()["note"], "x");
        let status =
            json!({"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]});
        assert_eq!(cached.status().unwrap(), status);
        assert_eq!(status_of(&object).unwrap(), status);
    }

    #[test]
    fn an_absent_or_null_status_reads_as_empty_and_a_deep_one_is_refused() {
        for text in [
            r#"{"metadata": {"name": "a"}}"#,
            r#"{"metadata": {"name": "a"}, "status": null}"#,
        ] {
            let object: WorkloadObject = serde_json::from_str(text).unwrap();
            assert_eq!(status_of(&object).unwrap(), json!({}));
            assert_eq!(CachedObject::from(object).status().unwrap(), json!({}));
        }
        let deep = format!(
            r#"{{"metadata": {{"name": "a"}}, "spec": {spec}, "status": {spec}}}"#,
            spec = "[".repeat(5000) + &"]".repeat(5000)
        );
        let object: WorkloadObject = serde_json::from_str(&deep).expect("any depth reads");
        assert!(matches!(
            CachedObject::from(object).status(),
            Err(UnreadableStatus::TooDeep { depth: 5000 })
        ));
    }
}
