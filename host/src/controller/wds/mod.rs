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

pub mod normalise;
pub mod object_cache;
pub mod own_writes;
mod write;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kube::Client;
use kube::api::Api;
use kube::core::GroupVersion;
use kube::discovery::{ApiResource, Scope, oneshot};
use kube::runtime::events::{Recorder, Reporter};

use self::normalise::ServerForms;
use self::object_cache::{CachedObject, WorkloadObject};
use self::own_writes::OwnWrites;
pub use self::write::replace_status;
use super::index::ObjectKey;
use crate::runtime::api::{self, CallError, FIELD_MANAGER};
use crate::runtime::metrics::Metrics;

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
    #[error(
        "{action} {key}: no answer from the WDS within {:?}",
        api::REQUEST_TIMEOUT
    )]
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
            WdsError::Discovery { source, .. } | WdsError::Api { source, .. } => {
                api::transient(source)
            }
        }
    }
}

/// Runs one API call under the [`api::REQUEST_TIMEOUT`], naming what it did.
pub(crate) async fn bounded<T>(
    action: &'static str,
    key: &ObjectKey,
    call: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, WdsError> {
    api::bounded(call).await.map_err(|e| match e {
        CallError::Api(source) => WdsError::Api {
            action,
            key: key.to_string(),
            source,
        },
        CallError::Timeout => WdsError::Timeout {
            action,
            key: key.to_string(),
        },
    })
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
        let api_group = match api::bounded(oneshot::pinned_group(&self.client, &gv)).await {
            Ok(group) => group,
            Err(CallError::Api(source)) => {
                return Err(WdsError::Discovery {
                    group_version,
                    source,
                });
            }
            Err(CallError::Timeout) => {
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

    /// The API of the object `key` names, as `K` (a typed view of any resource).
    pub(crate) fn api<K>(&self, info: &ResourceInfo, key: &ObjectKey) -> Api<K>
    where
        K: kube::Resource<DynamicType = ApiResource, Scope = kube::core::DynamicResourceScope>,
    {
        if info.namespaced {
            Api::namespaced_with(self.client.clone(), &key.namespace, &info.api)
        } else {
            Api::all_with(self.client.clone(), &info.api)
        }
    }
}
