//! Writing a workload object: its status and our labels, in the order the
//! module above describes, each write skipped when the server already stores
//! what it would write.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::Resource as _;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use serde_json::{Value, json};

use super::normalise::equal_but_for_zero_values;
use super::object_cache::{CachedObject, WorkloadObject, status_of};
use super::{ResourceInfo, Wds, WdsError, bounded};
use crate::controller::index::ObjectKey;
use crate::controller::sync::workload::{Desired, StatusLabel, Workload, WorkloadObjects};
use crate::kubestellar::{EXECUTING_COUNT_LABEL, MULTI_WEC_STATUS_LABEL, SINGLETON_STATUS_LABEL};
use crate::runtime::api::{self, FIELD_MANAGER};

impl Wds {
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
        let api: Api<WorkloadObject> = self.api(info, &object.key);
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
            None => match bounded(
                "read",
                key,
                self.api::<WorkloadObject>(&info, key).get_opt(&key.name),
            )
            .await?
            {
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
        let reference = reference.object_ref(&info.api);
        if let Err(e) = api::bounded(self.recorder.publish(&event, &reference)).await {
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
