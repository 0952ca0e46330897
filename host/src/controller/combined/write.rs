//! The CombinedStatus I/O: what exists (fed by a watch, updated by our own
//! writes), what is wanted, and the writes between them. A CombinedStatus is
//! written only when its content differs (rows compared in any order), by
//! server-side apply (one request creates or updates it, with no
//! resourceVersion to conflict on), and deleted when no collector applies.
//! The `kubestellar-report` namespace is created when a cluster-scoped object
//! first needs it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::Value as Json;

use crate::collector::compute::same_results;
use crate::controller::index::ObjectKey;
use crate::controller::wds::{Wds, WdsError, bounded};
use crate::kubestellar::{
    API_GROUP_LABEL, BINDING_POLICY_LABEL, CombinedStatus, NAME_LABEL, NAMESPACE_LABEL,
    NamedStatusCombination, REPORT_NAMESPACE, RESOURCE_LABEL,
};
use crate::runtime::api::{self, CallError, FIELD_MANAGER};

/// A failed CombinedStatus write.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{action} CombinedStatus {namespace}/{name}: {source}")]
    Api {
        action: &'static str,
        namespace: String,
        name: String,
        source: CallError,
    },
    #[error("create namespace {REPORT_NAMESPACE}: {0}")]
    Namespace(CallError),
}

impl WriteError {
    /// Whether the WDS was down, slow or overloaded (see [`CallError::is_transient`]).
    pub fn is_transient(&self) -> bool {
        match self {
            WriteError::Api { source, .. } | WriteError::Namespace(source) => source.is_transient(),
        }
    }
}

/// A workload object, read whole (the expressions may read any field of `obj`).
pub struct Object {
    pub json: Json,
    pub api_version: String,
    pub kind: String,
    pub uid: String,
}

/// Reads the whole object (the watch cache keeps only its metadata and status).
pub async fn read_object(
    wds: &Wds,
    key: &ObjectKey,
    version: &str,
) -> Result<Option<Object>, WdsError> {
    let info = wds.resource(&key.group, version, &key.resource).await?;
    let api: Api<DynamicObject> = wds.api(&info, key);
    let object = bounded("read", key, api.get_opt(&key.name)).await?;
    Ok(object.map(|o| Object {
        uid: o.metadata.uid.clone().unwrap_or_default(),
        api_version: info.api.api_version.clone(),
        kind: info.api.kind.clone(),
        json: serde_json::to_value(&o).expect("an object serializes"),
    }))
}

/// The namespace of an object's CombinedStatuses.
pub fn namespace_of(key: &ObjectKey) -> &str {
    if key.namespace.is_empty() {
        REPORT_NAMESPACE
    } else {
        &key.namespace
    }
}

/// The CombinedStatus a BindingPolicy's collectors give for an object.
pub fn desired(
    key: &ObjectKey,
    object: &Object,
    policy: &str,
    policy_uid: &str,
    results: Vec<NamedStatusCombination>,
) -> CombinedStatus {
    let labels = [
        (API_GROUP_LABEL, key.group.as_str()),
        (RESOURCE_LABEL, key.resource.as_str()),
        (NAMESPACE_LABEL, key.namespace.as_str()),
        (NAME_LABEL, key.name.as_str()),
        (BINDING_POLICY_LABEL, policy),
    ];
    CombinedStatus {
        metadata: ObjectMeta {
            name: Some(format!("{}.{policy_uid}", object.uid)),
            namespace: Some(namespace_of(key).to_string()),
            labels: Some(
                labels
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            owner_references: Some(vec![OwnerReference {
                api_version: object.api_version.clone(),
                kind: object.kind.clone(),
                name: key.name.clone(),
                uid: object.uid.clone(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        results,
        ..Default::default()
    }
}

/// Whether two CombinedStatuses say the same: labels, owner, and results with
/// rows and errors in any order.
pub fn same_content(a: &CombinedStatus, b: &CombinedStatus) -> bool {
    let owners = |c: &CombinedStatus| {
        c.metadata
            .owner_references
            .iter()
            .flatten()
            .map(|o| {
                (
                    o.api_version.clone(),
                    o.kind.clone(),
                    o.name.clone(),
                    o.uid.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    a.metadata.labels == b.metadata.labels
        && owners(a) == owners(b)
        && same_results(&a.results, &b.results)
}

/// The CombinedStatuses in the WDS, by namespace and name.
#[derive(Default)]
pub struct CombinedStatuses {
    known: RwLock<HashMap<(String, String), Arc<CombinedStatus>>>,
    report_namespace: AtomicBool,
}

fn id_of(cs: &CombinedStatus) -> (String, String) {
    (
        cs.metadata.namespace.clone().unwrap_or_default(),
        cs.metadata.name.clone().unwrap_or_default(),
    )
}

/// The object a CombinedStatus is about, from its labels.
pub fn subject_of(cs: &CombinedStatus) -> Option<ObjectKey> {
    let labels = cs.metadata.labels.as_ref()?;
    Some(ObjectKey::new(
        labels.get(API_GROUP_LABEL)?.clone(),
        labels.get(RESOURCE_LABEL)?.clone(),
        labels.get(NAMESPACE_LABEL)?.clone(),
        labels.get(NAME_LABEL)?.clone(),
    ))
}

impl CombinedStatuses {
    /// Records one (from the watch); returns whether it differs from what was known.
    pub fn saw(&self, cs: CombinedStatus) -> bool {
        let id = id_of(&cs);
        let mut known = self.known.write().expect("lock");
        let changed = known.get(&id).map(|k| &k.metadata.resource_version)
            != Some(&cs.metadata.resource_version);
        known.insert(id, Arc::new(cs));
        changed
    }

    /// Forgets one (deleted); returns whether it was known.
    pub fn forget(&self, cs: &CombinedStatus) -> bool {
        self.known
            .write()
            .expect("lock")
            .remove(&id_of(cs))
            .is_some()
    }

    /// Keeps only those `keep` accepts (after a relist).
    pub fn retain(&self, keep: impl Fn(&(String, String)) -> bool) {
        self.known.write().expect("lock").retain(|id, _| keep(id));
    }

    /// Those about an object.
    fn of(&self, key: &ObjectKey) -> Vec<Arc<CombinedStatus>> {
        let namespace = namespace_of(key);
        self.known
            .read()
            .expect("lock")
            .iter()
            .filter(|((ns, _), cs)| ns == namespace && subject_of(cs).as_ref() == Some(key))
            .map(|(_, cs)| cs.clone())
            .collect()
    }

    /// Makes the object's CombinedStatuses `wanted` (by name): applies those
    /// that differ, deletes those not wanted.
    pub async fn converge(
        &self,
        client: &Client,
        key: &ObjectKey,
        wanted: BTreeMap<String, CombinedStatus>,
    ) -> Result<(), WriteError> {
        let existing = self.of(key);
        let namespace = namespace_of(key);
        let api: Api<CombinedStatus> = Api::namespaced(client.clone(), namespace);
        let error = |action, name: &str| {
            let (namespace, name) = (namespace.to_string(), name.to_string());
            move |source| WriteError::Api {
                action,
                namespace,
                name,
                source,
            }
        };
        for cs in &existing {
            let name = cs.metadata.name.clone().unwrap_or_default();
            if !wanted.contains_key(&name) {
                match api::bounded(api.delete(&name, &DeleteParams::default())).await {
                    Ok(_) => {}
                    Err(CallError::Api(kube::Error::Api(e))) if e.code == 404 => {}
                    Err(e) => return Err(error("delete", &name)(e)),
                }
                self.forget(cs);
            }
        }
        for (name, cs) in wanted {
            let current = existing
                .iter()
                .find(|e| e.metadata.name.as_deref() == Some(name.as_str()));
            if current.is_some_and(|c| same_content(c, &cs)) {
                continue;
            }
            if key.namespace.is_empty() {
                self.ensure_report_namespace(client).await?;
            }
            let params = PatchParams::apply(FIELD_MANAGER).force();
            let written = api::bounded(api.patch(&name, &params, &Patch::Apply(&cs)))
                .await
                .map_err(error("apply", &name))?;
            self.saw(written);
        }
        Ok(())
    }

    async fn ensure_report_namespace(&self, client: &Client) -> Result<(), WriteError> {
        if self.report_namespace.load(Relaxed) {
            return Ok(());
        }
        let api: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(REPORT_NAMESPACE.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api::bounded(api.create(&PostParams::default(), &ns)).await {
            Ok(_) => {}
            Err(CallError::Api(kube::Error::Api(e))) if e.code == 409 => {}
            Err(e) => return Err(WriteError::Namespace(e)),
        }
        self.report_namespace.store(true, Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubestellar::{ColumnValue, StatusCombinationRow};

    fn row(s: &str) -> StatusCombinationRow {
        StatusCombinationRow {
            columns: vec![ColumnValue {
                type_: "String".into(),
                string: Some(s.into()),
                ..Default::default()
            }],
        }
    }

    fn cs(rows: Vec<StatusCombinationRow>) -> CombinedStatus {
        let key = ObjectKey::new(
            "apps".into(),
            "deployments".into(),
            "ns".into(),
            "web".into(),
        );
        let object = Object {
            json: Json::Null,
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            uid: "u1".into(),
        };
        let result = NamedStatusCombination {
            name: "c".into(),
            column_names: vec!["wec".into()],
            rows,
            ..Default::default()
        };
        desired(&key, &object, "bp", "p1", vec![result])
    }

    #[test]
    fn names_labels_and_owner_as_kubestellar() {
        let c = cs(vec![]);
        assert_eq!(c.metadata.name.as_deref(), Some("u1.p1"));
        assert_eq!(c.metadata.namespace.as_deref(), Some("ns"));
        let labels = c.metadata.labels.as_ref().unwrap();
        assert_eq!(labels.len(), 5);
        assert_eq!(labels[BINDING_POLICY_LABEL], "bp");
        assert_eq!(labels[API_GROUP_LABEL], "apps");
        let owner = &c.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Deployment", "u1")
        );
        assert_eq!(subject_of(&c).unwrap().name, "web");
    }

    #[test]
    fn rows_compare_in_any_order() {
        let a = cs(vec![row("x"), row("y")]);
        let b = cs(vec![row("y"), row("x")]);
        assert!(same_content(&a, &b));
        assert!(!same_content(&a, &cs(vec![row("x")])));
    }

    #[test]
    fn cluster_scoped_objects_report_in_kubestellar_report() {
        let key = ObjectKey::new("".into(), "namespaces".into(), "".into(), "n".into());
        assert_eq!(namespace_of(&key), REPORT_NAMESPACE);
    }
}
