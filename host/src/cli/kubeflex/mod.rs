//! The spaces found as KubeStellar finds them (`run --its-name`): the WDS and
//! the ITS are KubeFlex `ControlPlane` objects (`tenancy.kflex.kubestellar.org`,
//! `v1alpha1`, cluster-scoped) of the hosting cluster, named by `--wds-name` and
//! `--its-name`, and each one's `status.secretRef` names the Secret whose key
//! holds that space's kubeconfig (`inClusterKey` in a pod, `key` outside).
//!
//! Why: KubeStellar's controller-manager takes no kubeconfig of a space
//! (`pkg/ctrlutil/kubeconfig.go`); status-router, deployed beside it in
//! `<wds>-system` of the hosting cluster, reads the same objects, so it needs
//! the same inputs and nothing copied out of KubeFlex's Secrets.
//!
//! Where it differs from upstream, and why: upstream polls (every 2 s, up to
//! 5 minutes) only until the ControlPlane exists, then fails at once if its
//! `secretRef`, Secret or key is not there yet. KubeFlex writes `secretRef` and
//! the Secret after it creates the object, so this waits for each of them, on
//! the same poll and deadline (`--kubeflex-timeout`). A refusal (401, 403) or an
//! unusable kubeconfig fails at once; an API server that does not answer is
//! waited for. When the preferred key of `secretRef` is empty, the other one is
//! used: an `external` ControlPlane has no `key`, an `ocm` one no `inClusterKey`.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::Deserialize;
use tokio::time::Instant;

mod error;
pub use error::KubeflexError;

/// KubeFlex's API group of `ControlPlane`.
pub const GROUP: &str = "tenancy.kflex.kubestellar.org";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "ControlPlane";
pub const PLURAL: &str = "controlplanes";
/// How often the hosting cluster is asked again (as upstream).
pub const POLL: Duration = Duration::from_secs(2);
/// How often a wait that has not changed is logged again.
pub const LOG_EVERY: Duration = Duration::from_secs(30);
/// One request to the hosting cluster; past it, the request counts as unanswered.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The manifest that grants what this module reads in the hosting cluster.
pub const RBAC_FILE: &str = "config/samples/kubestellar/rbac.yaml";

/// `controlplanes.tenancy.kflex.kubestellar.org`, for a [`DynamicObject`] API.
pub fn control_planes() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, KIND), PLURAL)
}

/// A ControlPlane's `status.secretRef` (KubeFlex's `SecretReference`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    pub namespace: String,
    pub name: String,
    /// The kubeconfig for a client outside the hosting cluster.
    #[serde(default)]
    pub key: Option<String>,
    /// The kubeconfig for a client in a pod of the hosting cluster.
    #[serde(default)]
    pub in_cluster_key: Option<String>,
}

impl SecretRef {
    /// The `status.secretRef` of a ControlPlane; `None` while KubeFlex has
    /// not set it.
    pub fn of(control_plane: &DynamicObject) -> Result<Option<SecretRef>, String> {
        let value = match control_plane.data.pointer("/status/secretRef") {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(value) => value,
        };
        let secret_ref = SecretRef::deserialize(value).map_err(|e| e.to_string())?;
        if secret_ref.namespace.is_empty() || secret_ref.name.is_empty() {
            return Err("its namespace and name must not be empty".into());
        }
        Ok(Some(secret_ref))
    }

    /// The Secret's key to read, with the field of `secretRef` it comes from:
    /// `inClusterKey` in a pod, `key` outside, the other one where that is
    /// empty; `None` when both are.
    pub fn key(&self, in_pod: bool) -> Option<(KeyField, &str)> {
        let key = (KeyField::Key, self.key.as_deref());
        let in_cluster = (KeyField::InClusterKey, self.in_cluster_key.as_deref());
        let order = if in_pod {
            [in_cluster, key]
        } else {
            [key, in_cluster]
        };
        order
            .into_iter()
            .find_map(|(field, k)| k.filter(|k| !k.is_empty()).map(|k| (field, k)))
    }
}

/// The field of `secretRef` that names the key read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyField {
    Key,
    InClusterKey,
}

impl std::fmt::Display for KeyField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyField::Key => "key",
            KeyField::InClusterKey => "inClusterKey",
        })
    }
}

/// How to reach the hosting cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hosting {
    /// The pod's own cluster (its ServiceAccount).
    InCluster,
    /// A context of the shared kubeconfig; its current context when `None`.
    Kubeconfig(Option<String>),
}

impl Hosting {
    /// In a pod, with no kubeconfig named (`--kubeconfig`, `$KUBECONFIG`) and
    /// no `--hosting-context`, the pod's cluster; otherwise the kubeconfig.
    pub fn choose(context: Option<String>, kubeconfig_named: bool, in_pod: bool) -> Hosting {
        if context.is_none() && !kubeconfig_named && in_pod {
            Hosting::InCluster
        } else {
            Hosting::Kubeconfig(context)
        }
    }
}

/// What a search for a space still waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Waiting {
    ControlPlane,
    SecretRef,
    /// `namespace/name`.
    Secret(String),
    Key {
        /// `namespace/name`.
        secret: String,
        key: String,
        field: KeyField,
        present: Vec<String>,
    },
    /// The hosting cluster did not answer (the last error).
    Hosting(String),
}

impl Waiting {
    fn describe(&self, control_plane: &str) -> String {
        match self {
            Waiting::ControlPlane => format!("ControlPlane {control_plane} to exist"),
            Waiting::SecretRef => format!("ControlPlane {control_plane}'s status.secretRef"),
            Waiting::Secret(secret) => {
                format!("Secret {secret} (status.secretRef of ControlPlane {control_plane})")
            }
            Waiting::Key {
                secret, key, field, ..
            } => format!(
                "key {key:?} in Secret {secret} (status.secretRef.{field} of ControlPlane \
                 {control_plane})"
            ),
            Waiting::Hosting(last) => format!("the hosting cluster to answer ({last})"),
        }
    }

    /// Whether `self` and `other` are the same wait for the log (the error
    /// text of an unanswered request may change on every poll).
    fn same(&self, other: &Waiting) -> bool {
        match (self, other) {
            (Waiting::Hosting(_), Waiting::Hosting(_)) => true,
            (a, b) => a == b,
        }
    }

    fn into_error(self, control_plane: &str, timeout: Duration) -> KubeflexError {
        let control_plane = control_plane.to_string();
        match self {
            Waiting::ControlPlane => KubeflexError::NoControlPlane {
                control_plane,
                timeout,
            },
            Waiting::SecretRef => KubeflexError::NoSecretRef {
                control_plane,
                timeout,
            },
            Waiting::Secret(secret) => KubeflexError::NoSecret {
                control_plane,
                secret,
                timeout,
            },
            Waiting::Key {
                secret,
                key,
                field,
                present,
            } => KubeflexError::NoKey {
                control_plane,
                secret,
                key,
                field,
                present: present
                    .iter()
                    .map(|k| format!("{k:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                timeout,
            },
            Waiting::Hosting(last) => KubeflexError::Unreachable {
                control_plane,
                last,
                timeout,
            },
        }
    }
}

/// Whether a wait is logged now: the first time, when what it waits for
/// changed, and every [`LOG_EVERY`] otherwise.
fn log_due(last: Option<&(Waiting, Instant)>, waiting: &Waiting, now: Instant) -> bool {
    match last {
        None => true,
        Some((logged, at)) => !logged.same(waiting) || now.duration_since(*at) >= LOG_EVERY,
    }
}

enum Probe {
    Found(Box<kube::Config>),
    Waiting(Waiting),
}

/// Finds spaces through the ControlPlanes of one hosting cluster.
pub struct Finder {
    pub hosting: kube::Client,
    /// Whether this runs in a pod (then `inClusterKey` is read).
    pub in_pod: bool,
    /// How long to wait for a ControlPlane, its `secretRef`, Secret and key.
    pub timeout: Duration,
}

impl Finder {
    /// The client configuration of the space of ControlPlane `control_plane`
    /// (`space` names it in the logs): the current context of the kubeconfig
    /// its `status.secretRef` names, once all of it exists.
    pub async fn config(
        &self,
        space: &str,
        control_plane: &str,
    ) -> Result<kube::Config, KubeflexError> {
        let start = Instant::now();
        let mut logged: Option<(Waiting, Instant)> = None;
        loop {
            let waiting = match tokio::time::timeout(REQUEST_TIMEOUT, self.probe(control_plane))
                .await
            {
                Ok(Ok(Probe::Found(config))) => {
                    tracing::info!(space, control_plane, url = %config.cluster_url, "found through KubeFlex");
                    return Ok(*config);
                }
                Ok(Ok(Probe::Waiting(waiting))) => waiting,
                Ok(Err(e)) => return Err(e),
                Err(_) => Waiting::Hosting(format!("no answer within {REQUEST_TIMEOUT:?}")),
            };
            let now = Instant::now();
            let spent = now.duration_since(start);
            if spent >= self.timeout {
                return Err(waiting.into_error(control_plane, self.timeout));
            }
            if log_due(logged.as_ref(), &waiting, now) {
                tracing::info!(
                    space,
                    control_plane,
                    "waiting for {} (every {POLL:?}, up to {:?})",
                    waiting.describe(control_plane),
                    self.timeout
                );
                logged = Some((waiting, now));
            }
            tokio::time::sleep(POLL.min(self.timeout - spent)).await;
        }
    }

    async fn probe(&self, control_plane: &str) -> Result<Probe, KubeflexError> {
        let control_planes: Api<DynamicObject> =
            Api::all_with(self.hosting.clone(), &control_planes());
        let object = match control_planes.get_opt(control_plane).await {
            Ok(Some(object)) => object,
            Ok(None) => return Ok(Probe::Waiting(Waiting::ControlPlane)),
            Err(e) => return refusal(e, || format!("get ControlPlane {control_plane}")),
        };
        let bad_ref = |reason: String| KubeflexError::BadSecretRef {
            control_plane: control_plane.to_string(),
            reason,
        };
        let Some(secret_ref) = SecretRef::of(&object).map_err(bad_ref)? else {
            return Ok(Probe::Waiting(Waiting::SecretRef));
        };
        let (field, key) = secret_ref
            .key(self.in_pod)
            .ok_or_else(|| bad_ref("both key and inClusterKey are empty".into()))?;
        let SecretRef {
            namespace, name, ..
        } = &secret_ref;
        let id = format!("{namespace}/{name}");
        let secrets: Api<Secret> = Api::namespaced(self.hosting.clone(), namespace);
        let secret = match secrets.get_opt(name).await {
            Ok(Some(secret)) => secret,
            Ok(None) => return Ok(Probe::Waiting(Waiting::Secret(id))),
            Err(e) => return refusal(e, || format!("get Secret {id}")),
        };
        let data = secret.data.unwrap_or_default();
        let Some(bytes) = data.get(key) else {
            return Ok(Probe::Waiting(Waiting::Key {
                secret: id,
                key: key.to_string(),
                field,
                present: data.keys().cloned().collect(),
            }));
        };
        let bad_kubeconfig = |reason: String| KubeflexError::BadKubeconfig {
            control_plane: control_plane.to_string(),
            secret: id.clone(),
            key: key.to_string(),
            reason,
        };
        let text = std::str::from_utf8(&bytes.0).map_err(|e| bad_kubeconfig(e.to_string()))?;
        let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| bad_kubeconfig(e.to_string()))?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| bad_kubeconfig(format!("its current context: {e}")))?;
        Ok(Probe::Found(Box::new(config)))
    }
}

/// An error of the hosting cluster: a refusal that waiting cannot mend fails
/// the search; a server that is down, restarting or overloaded is waited for.
fn refusal(error: kube::Error, action: impl FnOnce() -> String) -> Result<Probe, KubeflexError> {
    match &error {
        kube::Error::Api(status) if matches!(status.code, 401 | 403) => {
            Err(KubeflexError::Forbidden {
                action: action(),
                code: status.code,
                message: status.message.clone(),
            })
        }
        kube::Error::Api(status) if status.code < 500 && !matches!(status.code, 408 | 429) => {
            Err(KubeflexError::Refused {
                action: action(),
                source: error,
            })
        }
        _ => Ok(Probe::Waiting(Waiting::Hosting(error.to_string()))),
    }
}

#[cfg(test)]
mod tests;
