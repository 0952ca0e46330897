//! The WDS side of Kubernetes I/O: reading workload objects of any resource
//! through the dynamic API, and writing their status and our labels.
//!
//! Writes are patches without a resourceVersion, so a stale cache never makes
//! them fail with a conflict (KubeStellar's first write after a label change
//! usually does). The status is replaced whole with a JSON patch, through the
//! `status` subresource where the resource has one. A label we add goes on
//! before the status, and a label we drop comes off after it, so that a crash
//! between the two writes never leaves a status of ours without our label
//! (which would make it look like someone else's and never be cleared).
//! `kubestellar.io/executing-count` follows the same order: set or changed
//! before the status, removed after it.
//!
//! A status is written only when the server does not store it already, in
//! its own normal form (see `normalise`): an object at rest costs no write.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersion;
use kube::discovery::{ApiResource, Scope, oneshot};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource as _};
use serde_json::{Value, json};

use super::index::ObjectKey;
use super::metrics::Metrics;
use super::normalise::{ServerForms, equal_but_for_zero_values};
use super::object_cache::{CachedObject, WorkloadObject, status_of};
use super::own_writes::OwnWrites;
use super::workload::{Desired, StatusLabel, Workload, WorkloadObjects};
use crate::kubestellar::{EXECUTING_COUNT_LABEL, MULTI_WEC_STATUS_LABEL, SINGLETON_STATUS_LABEL};

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "status-router";

/// How long one read, write or discovery may take. kube's client has no read
/// timeout, so a request to an API server that is stopped (SIGSTOP, a hung
/// node) would hold its worker until the server resumes; a timed-out call is
/// a transient failure, retried soon (a patch without resourceVersion is safe
/// to repeat).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A failed read or write in the WDS.
#[derive(Debug, thiserror::Error)]
pub enum WdsError {
    #[error("discovery of {group_version} failed: {source}")]
    Discovery {
        group_version: String,
        source: kube::Error,
    },
    #[error("the WDS serves no resource {resource} in {group_version}")]
    UnknownResource {
        group_version: String,
        resource: String,
    },
    #[error("{action} {key}: {source}")]
    Api {
        action: &'static str,
        key: String,
        source: kube::Error,
    },
    #[error("{action} {key}: no answer from the WDS within {REQUEST_TIMEOUT:?}")]
    Timeout { action: &'static str, key: String },
    #[error("the status stored on {key} cannot be read: {source}")]
    UnreadableStatus {
        key: String,
        source: crate::kubestellar::UnreadableStatus,
    },
}

impl WdsError {
    /// Whether the failure is the WDS being down, slow or overloaded (retried
    /// soon) rather than a refusal that only a change of inputs can fix.
    pub fn is_transient(&self) -> bool {
        match self {
            WdsError::Timeout { .. } => true,
            WdsError::UnknownResource { .. } | WdsError::UnreadableStatus { .. } => false,
            WdsError::Discovery { source, .. } | WdsError::Api { source, .. } => transient(source),
        }
    }
}

/// Whether `error` may go away by itself: the server is down, restarting or
/// overloaded.
pub(super) fn transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code >= 500 || matches!(status.code, 408 | 429),
        // Connection refused or reset, TLS, a body cut short: the server went away.
        _ => true,
    }
}

/// Runs one API call under [`REQUEST_TIMEOUT`].
async fn bounded<T>(
    action: &'static str,
    key: &ObjectKey,
    call: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, WdsError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(WdsError::Api {
            action,
            key: key.to_string(),
            source,
        }),
        Err(_) => Err(WdsError::Timeout {
            action,
            key: key.to_string(),
        }),
    }
}

/// What discovery says about a resource.
#[derive(Clone, Debug)]
pub struct ResourceInfo {
    pub api: ApiResource,
    pub namespaced: bool,
    pub has_status: bool,
}

/// Workload objects in the WDS.
pub struct Wds {
    client: Client,
    resources: tokio::sync::Mutex<HashMap<(String, String, String), ResourceInfo>>,
    /// The latest copy of each watched object, fed by the workload watches.
    cache: RwLock<HashMap<ObjectKey, Arc<CachedObject>>>,
    /// What the server stored for the last status written to each object.
    forms: ServerForms,
    /// The resourceVersions our writes produced, to ignore stale echoes.
    own_writes: OwnWrites,
    recorder: Recorder,
    metrics: Arc<Metrics>,
}

impl Wds {
    pub fn new(client: Client, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            resources: Default::default(),
            cache: Default::default(),
            forms: Default::default(),
            own_writes: Default::default(),
            metrics,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Discovers a resource (cached per group, version and resource).
    pub async fn resource(
        &self,
        group: &str,
        version: &str,
        resource: &str,
    ) -> Result<ResourceInfo, WdsError> {
        let id = (group.to_string(), version.to_string(), resource.to_string());
        let mut known = self.resources.lock().await;
        if let Some(info) = known.get(&id) {
            return Ok(info.clone());
        }
        let gv = GroupVersion::gv(group, version);
        let group_version = gv.api_version();
        let api_group =
            match tokio::time::timeout(REQUEST_TIMEOUT, oneshot::pinned_group(&self.client, &gv))
                .await
            {
                Ok(Ok(group)) => group,
                Ok(Err(source)) => {
                    return Err(WdsError::Discovery {
                        group_version,
                        source,
                    });
                }
                Err(_) => {
                    return Err(WdsError::Timeout {
                        action: "discover",
                        key: group_version,
                    });
                }
            };
        let (api, caps) = api_group
            .versioned_resources(version)
            .into_iter()
            .find(|(ar, _)| ar.plural == resource)
            .ok_or_else(|| WdsError::UnknownResource {
                group_version,
                resource: resource.to_string(),
            })?;
        let info = ResourceInfo {
            namespaced: caps.scope == Scope::Namespaced,
            has_status: caps
                .subresources
                .iter()
                .any(|(sub, _)| sub.plural == "status"),
            api,
        };
        known.insert(id, info.clone());
        Ok(info)
    }

    /// Records the latest copy of an object (from a watch or a write), keeping
    /// only what a reconcile reads (see `object_cache`). The watch event of a
    /// state that a later write of ours has replaced is ignored (see
    /// `own_writes`).
    pub fn cache_object(&self, key: ObjectKey, object: WorkloadObject) {
        if let Some(version) = object.metadata.resource_version.as_deref()
            && self.own_writes.is_superseded(&key, version)
        {
            return;
        }
        self.cache
            .write()
            .expect("cache lock")
            .insert(key, Arc::new(object.into()));
    }

    /// The resourceVersion of the cached copy of an object.
    pub fn cached_resource_version(&self, key: &ObjectKey) -> Option<String> {
        let cache = self.cache.read().expect("cache lock");
        cache
            .get(key)
            .and_then(|o| o.resource_version.as_deref().map(String::from))
    }

    /// Forgets an object, from a watch.
    pub fn forget_object(&self, key: &ObjectKey) {
        self.cache.write().expect("cache lock").remove(key);
        self.forms.retain(|k| k != key);
        self.own_writes.retain(|k| k != key);
    }

    /// Forgets every cached object of a resource, when its watch stops.
    pub fn forget_resource(&self, group: &str, resource: &str) {
        self.retain_resource(group, resource, |_| false);
    }

    /// Keeps only the cached objects of a resource that `keep` accepts (after a relist).
    pub fn retain_resource(&self, group: &str, resource: &str, keep: impl Fn(&ObjectKey) -> bool) {
        let kept = |k: &ObjectKey| !(k.group == group && k.resource == resource) || keep(k);
        self.cache
            .write()
            .expect("cache lock")
            .retain(|k, _| kept(k));
        self.forms.retain(kept);
        self.own_writes.retain(kept);
    }

    fn api(&self, info: &ResourceInfo, key: &ObjectKey) -> Api<WorkloadObject> {
        if info.namespaced {
            Api::namespaced_with(self.client.clone(), &key.namespace, &info.api)
        } else {
            Api::all_with(self.client.clone(), &info.api)
        }
    }

    /// Patches the object (its status when `status`), and returns the status
    /// the server stored. A `dry_run` changes nothing, is not counted as a
    /// write, and returns the status the server would store.
    async fn patch(
        &self,
        info: &ResourceInfo,
        object: &Workload,
        status: bool,
        dry_run: bool,
        patch: Patch<Value>,
    ) -> Result<Value, WdsError> {
        let api = self.api(info, &object.key);
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            dry_run,
            ..PatchParams::default()
        };
        let action = if status {
            "write the status of"
        } else {
            "label"
        };
        let result = if status && info.has_status {
            bounded(
                action,
                &object.key,
                api.patch_status(&object.key.name, &params, &patch),
            )
            .await
        } else {
            bounded(
                action,
                &object.key,
                api.patch(&object.key.name, &params, &patch),
            )
            .await
        };
        let updated = match result {
            Ok(updated) => updated,
            Err(error) => {
                if let WdsError::Api {
                    source: kube::Error::Api(refusal),
                    ..
                } = &error
                    && (refusal.is_invalid() || refusal.code == 400 || refusal.is_forbidden())
                {
                    // Retrying will not help until the reports, the policy or
                    // the permissions change, and a log line is not where the
                    // owner of the object looks: say it on the object.
                    let note = format!(
                        "the WDS API server refused to {action} this object ({} {}): {}; retrying with backoff",
                        refusal.code, refusal.reason, refusal.message
                    );
                    self.warn(object, "StatusWriteRejected", note).await;
                }
                return Err(error);
            }
        };
        let stored = status_of(&updated).map_err(|source| WdsError::UnreadableStatus {
            key: object.key.to_string(),
            source,
        })?;
        if !dry_run {
            self.metrics.count_write(status);
            if let Some(version) = updated.metadata.resource_version.as_deref() {
                self.own_writes.record(&object.key, version);
            }
            self.cache_object(object.key.clone(), updated);
        }
        Ok(stored)
    }

    /// Whether `wanted` must be written over the object's stored status: not
    /// when they are equal, nor when the server is known to store `wanted`
    /// as it is stored now, nor when a dry run says so (asked only when they
    /// differ by zero values alone, which the server may drop).
    async fn status_differs(
        &self,
        info: &ResourceInfo,
        object: &Workload,
        wanted: &Value,
    ) -> Result<bool, WdsError> {
        let stored = &object.status;
        if stored == wanted || self.forms.is_stored(&object.key, wanted, stored) {
            return Ok(false);
        }
        if !equal_but_for_zero_values(wanted, stored) {
            return Ok(true);
        }
        let patch = replace_status(wanted.clone());
        let would_store = self.patch(info, object, true, true, patch).await?;
        let differs = would_store != *stored;
        tracing::debug!(object = %object.key, differs, "dry run of a status that differs by zero values");
        self.forms.record(&object.key, wanted.clone(), would_store);
        Ok(differs)
    }
}

impl WorkloadObjects for Wds {
    type Error = WdsError;

    async fn get(&self, key: &ObjectKey, version: &str) -> Result<Option<Workload>, WdsError> {
        let info = self.resource(&key.group, version, &key.resource).await?;
        if info.namespaced == key.namespace.is_empty() {
            // A WorkStatus or Binding that names a cluster-scoped object with
            // a namespace (or a namespaced one without): no such object
            // exists, and reading it by name alone would write, or clear,
            // the status of another one.
            tracing::warn!(
                object = %key,
                namespaced = info.namespaced,
                "ignoring a reference whose namespace does not fit the resource's scope"
            );
            return Ok(None);
        }
        let cached = self.cache.read().expect("cache lock").get(key).cloned();
        let object = match cached {
            Some(object) => object,
            // Not (yet) seen by a watch: read it once.
            None => match bounded("read", key, self.api(&info, key).get_opt(&key.name)).await? {
                Some(object) => Arc::new(CachedObject::from(object)),
                None => return Ok(None),
            },
        };
        let status = object
            .status()
            .map_err(|source| WdsError::UnreadableStatus {
                key: key.to_string(),
                source,
            })?;
        Ok(Some(Workload {
            key: key.clone(),
            version: version.to_string(),
            kind: info.api.kind.clone(),
            labels: object.labels(),
            annotations: object.annotations(),
            status,
        }))
    }

    async fn write(&self, object: &Workload, desired: &Desired) -> Result<bool, WdsError> {
        let info = self
            .resource(&object.key.group, &object.version, &object.key.resource)
            .await?;
        let wanted = |label: StatusLabel| desired.label == Some(label);
        let mut add = BTreeMap::new();
        let mut remove = BTreeMap::new();
        let count = desired.executing_count.map(|n| n.to_string());
        for (name, value) in [
            (
                SINGLETON_STATUS_LABEL,
                wanted(StatusLabel::Singleton).then_some("true"),
            ),
            (
                MULTI_WEC_STATUS_LABEL,
                wanted(StatusLabel::MultiWec).then_some("true"),
            ),
            (EXECUTING_COUNT_LABEL, count.as_deref()),
        ] {
            match (value, object.labels.get(name)) {
                (Some(v), current) if current.map(String::as_str) != Some(v) => {
                    add.insert(name, Value::from(v))
                }
                (None, Some(_)) => remove.insert(name, Value::Null),
                _ => None,
            };
        }
        let status_differs = self.status_differs(&info, object, &desired.status).await?;
        if !add.is_empty() {
            let patch = Patch::Merge(json!({"metadata": {"labels": add}}));
            self.patch(&info, object, false, false, patch).await?;
        }
        if status_differs {
            let patch = replace_status(desired.status.clone());
            let stored = self.patch(&info, object, true, false, patch).await?;
            self.forms
                .record(&object.key, desired.status.clone(), stored);
        }
        if !remove.is_empty() {
            let patch = Patch::Merge(json!({"metadata": {"labels": remove}}));
            self.patch(&info, object, false, false, patch).await?;
        }
        Ok(status_differs || !add.is_empty() || !remove.is_empty())
    }

    async fn known_version(&self, group: &str, resource: &str) -> Option<String> {
        let known = self.resources.lock().await;
        known
            .keys()
            .find(|(g, _, r)| g == group && r == resource)
            .map(|(_, v, _)| v.clone())
    }

    async fn warn(&self, object: &Workload, reason: &str, note: String) {
        let Ok(info) = self
            .resource(&object.key.group, &object.version, &object.key.resource)
            .await
        else {
            return;
        };
        let mut reference = DynamicObject::new(&object.key.name, &info.api);
        if info.namespaced {
            reference.metadata.namespace = Some(object.key.namespace.clone());
        }
        if let Some(cached) = self.cache.read().expect("cache lock").get(&object.key) {
            reference.metadata.uid = cached.uid.as_deref().map(String::from);
        }
        let event = Event {
            type_: EventType::Warning,
            reason: reason.into(),
            note: Some(note),
            action: "ReturnStatus".into(),
            secondary: None,
        };
        if let Err(e) = self
            .recorder
            .publish(&event, &reference.object_ref(&info.api))
            .await
        {
            tracing::warn!(object = %object.key, error = %e, "cannot record an Event");
        }
    }
}

/// The JSON patch that replaces an object's whole `status` (`add` replaces an
/// existing member and creates a missing one); it names no resourceVersion, so
/// a stale cache never makes it conflict.
pub fn replace_status(status: Value) -> Patch<Value> {
    let ops = json!([{"op": "add", "path": "/status", "value": status}]);
    Patch::Json(serde_json::from_value(ops).expect("a valid JSON patch"))
}
