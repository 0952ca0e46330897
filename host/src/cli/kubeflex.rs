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

/// Why a space's kubeconfig could not be found. Each message names what is
/// missing and the fix.
#[derive(Debug, thiserror::Error)]
pub enum KubeflexError {
    #[error(
        "ControlPlane {control_plane} ({PLURAL}.{GROUP}) not found in the hosting cluster after \
         {timeout:?}. To fix: check the name (--wds-name, --its-name) and the hosting cluster \
         (--kubeconfig, --hosting-context; `kubectl get controlplanes`), and that KubeFlex's \
         ControlPlane CRD is installed there"
    )]
    NoControlPlane {
        control_plane: String,
        timeout: Duration,
    },
    #[error(
        "ControlPlane {control_plane} has no status.secretRef after {timeout:?}; KubeFlex sets it \
         once the control plane is up. To fix: see `kubectl get controlplane {control_plane} -o \
         yaml` (its conditions) and the logs of KubeFlex's controller"
    )]
    NoSecretRef {
        control_plane: String,
        timeout: Duration,
    },
    #[error(
        "Secret {secret} (status.secretRef of ControlPlane {control_plane}) not found after \
         {timeout:?}. To fix: check that KubeFlex made it, and the ControlPlane's \
         status.secretRef"
    )]
    NoSecret {
        control_plane: String,
        /// `namespace/name`.
        secret: String,
        timeout: Duration,
    },
    #[error(
        "Secret {secret} has no key {key:?} (status.secretRef.{field} of ControlPlane \
         {control_plane}) after {timeout:?}; its keys are [{present}]. To fix: correct the \
         ControlPlane's status.secretRef.{field}, or put the kubeconfig under {key:?}"
    )]
    NoKey {
        control_plane: String,
        /// `namespace/name`.
        secret: String,
        key: String,
        field: KeyField,
        /// The keys it has, quoted, separated by `, `.
        present: String,
        timeout: Duration,
    },
    #[error(
        "the hosting cluster did not answer for {timeout:?} while looking for ControlPlane \
         {control_plane} (last: {last}). To fix: check --kubeconfig and --hosting-context, or the \
         pod's access to its API server"
    )]
    Unreachable {
        control_plane: String,
        last: String,
        timeout: Duration,
    },
    #[error(
        "status.secretRef of ControlPlane {control_plane} is unusable: {reason}. To fix: it needs \
         namespace, name, and key or inClusterKey, as KubeFlex writes them"
    )]
    BadSecretRef {
        control_plane: String,
        reason: String,
    },
    #[error(
        "the hosting cluster refused to {action} ({code}: {message}). To fix: grant it to the \
         identity status-router runs as ({RBAC_FILE} does for its ServiceAccount)"
    )]
    Forbidden {
        action: String,
        code: u16,
        message: String,
    },
    #[error("the hosting cluster refused to {action}: {source}")]
    Refused {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "the kubeconfig in key {key:?} of Secret {secret} (ControlPlane {control_plane}) is \
         unusable: {reason}. To fix: the key must hold a kubeconfig whose current context \
         reaches the space"
    )]
    BadKubeconfig {
        control_plane: String,
        /// `namespace/name`.
        secret: String,
        key: String,
        reason: String,
    },
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
mod tests {
    use super::*;
    use serde_json::json;

    fn control_plane(status: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "tenancy.kflex.kubestellar.org/v1alpha1",
            "kind": "ControlPlane",
            "metadata": {"name": "w1"},
            "spec": {"type": "k8s"},
            "status": status,
        }))
        .unwrap()
    }

    fn secret_ref(key: Option<&str>, in_cluster_key: Option<&str>) -> SecretRef {
        SecretRef {
            namespace: "w1-system".into(),
            name: "admin-kubeconfig".into(),
            key: key.map(String::from),
            in_cluster_key: in_cluster_key.map(String::from),
        }
    }

    #[test]
    fn a_secret_ref_is_read_from_the_status_and_absent_until_kubeflex_sets_it() {
        let cp = control_plane(json!({
            "conditions": [],
            "observedGeneration": 1,
            "secretRef": {
                "namespace": "w1-system",
                "name": "admin-kubeconfig",
                "key": "kubeconfig",
                "inClusterKey": "kubeconfig-incluster",
            },
        }));
        assert_eq!(
            SecretRef::of(&cp),
            Ok(Some(secret_ref(
                Some("kubeconfig"),
                Some("kubeconfig-incluster")
            )))
        );
        let without = control_plane(json!({"conditions": [], "observedGeneration": 0}));
        assert_eq!(SecretRef::of(&without), Ok(None));
        let null = control_plane(json!({"conditions": [], "secretRef": null}));
        assert_eq!(SecretRef::of(&null), Ok(None));
        let mut no_status = control_plane(json!(null));
        no_status.data.as_object_mut().unwrap().remove("status");
        assert_eq!(SecretRef::of(&no_status), Ok(None));
    }

    #[test]
    fn a_secret_ref_without_a_namespace_or_name_is_refused() {
        let cp =
            control_plane(json!({"secretRef": {"name": "admin-kubeconfig", "inClusterKey": "k"}}));
        assert!(SecretRef::of(&cp).unwrap_err().contains("namespace"));
        let cp = control_plane(json!({"secretRef": {"namespace": "", "name": "x", "key": "k"}}));
        assert!(
            SecretRef::of(&cp)
                .unwrap_err()
                .contains("must not be empty")
        );
    }

    #[test]
    fn a_pod_reads_the_in_cluster_key_and_a_process_outside_reads_key() {
        let both = secret_ref(Some("kubeconfig"), Some("kubeconfig-incluster"));
        assert_eq!(
            both.key(true),
            Some((KeyField::InClusterKey, "kubeconfig-incluster"))
        );
        assert_eq!(both.key(false), Some((KeyField::Key, "kubeconfig")));
    }

    #[test]
    fn an_empty_key_falls_back_to_the_other_one() {
        // An `external` ControlPlane has only inClusterKey, an `ocm` one only key.
        let external = secret_ref(None, Some("kubeconfig-incluster"));
        assert_eq!(
            external.key(false),
            Some((KeyField::InClusterKey, "kubeconfig-incluster"))
        );
        let ocm = secret_ref(Some("kubeconfig"), Some(""));
        assert_eq!(ocm.key(true), Some((KeyField::Key, "kubeconfig")));
        assert_eq!(secret_ref(Some(""), None).key(true), None);
    }

    #[test]
    fn the_hosting_cluster_is_the_pods_own_only_when_nothing_else_is_named() {
        assert_eq!(Hosting::choose(None, false, true), Hosting::InCluster);
        assert_eq!(
            Hosting::choose(None, true, true),
            Hosting::Kubeconfig(None),
            "a named kubeconfig wins"
        );
        assert_eq!(
            Hosting::choose(Some("kind-kubeflex".into()), false, true),
            Hosting::Kubeconfig(Some("kind-kubeflex".into()))
        );
        assert_eq!(
            Hosting::choose(None, false, false),
            Hosting::Kubeconfig(None),
            "outside a pod: the current context of ~/.kube/config"
        );
    }

    #[test]
    fn a_wait_is_logged_first_on_a_change_and_then_every_thirty_seconds() {
        let t0 = Instant::now();
        let waiting = Waiting::ControlPlane;
        assert!(log_due(None, &waiting, t0));
        let last = (waiting.clone(), t0);
        assert!(!log_due(Some(&last), &waiting, t0 + POLL));
        assert!(!log_due(Some(&last), &waiting, t0 + LOG_EVERY - POLL));
        assert!(log_due(Some(&last), &waiting, t0 + LOG_EVERY));
        assert!(log_due(Some(&last), &Waiting::SecretRef, t0 + POLL));
        let down = (Waiting::Hosting("connection refused".into()), t0);
        assert!(
            !log_due(Some(&down), &Waiting::Hosting("reset".into()), t0 + POLL),
            "another error of a server that is down is the same wait"
        );
    }

    #[test]
    fn a_missing_key_is_reported_with_its_secret_and_the_field_that_names_it() {
        let waiting = Waiting::Key {
            secret: "w1-system/w1-kubeconfig".into(),
            key: "wrong".into(),
            field: KeyField::Key,
            present: vec!["kubeconfig".into(), "kubeconfig-incluster".into()],
        };
        let text = waiting.into_error("w1", Duration::from_secs(3)).to_string();
        for part in [
            "Secret w1-system/w1-kubeconfig",
            "no key \"wrong\"",
            "status.secretRef.key of ControlPlane w1",
            "after 3s",
            "[\"kubeconfig\", \"kubeconfig-incluster\"]",
        ] {
            assert!(text.contains(part), "{part:?} not in: {text}");
        }
        let text = Waiting::ControlPlane
            .into_error("i1", Duration::from_secs(300))
            .to_string();
        assert!(
            text.contains(
                "ControlPlane i1 (controlplanes.tenancy.kflex.kubestellar.org) not found"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_refusal_fails_at_once_and_a_server_that_does_not_answer_is_waited_for() {
        let api = |code: u16| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                message: "no".into(),
                ..Default::default()
            }))
        };
        let action = || "get ControlPlane w1".to_string();
        match refusal(api(403), action) {
            Err(e @ KubeflexError::Forbidden { .. }) => {
                assert!(e.to_string().contains(RBAC_FILE), "{e}")
            }
            _ => panic!("403 is a refusal"),
        }
        assert!(matches!(
            refusal(api(400), action),
            Err(KubeflexError::Refused { .. })
        ));
        for code in [500, 503, 429, 408] {
            assert!(
                matches!(
                    refusal(api(code), action),
                    Ok(Probe::Waiting(Waiting::Hosting(_)))
                ),
                "{code} is waited for"
            );
        }
    }

    #[test]
    fn the_control_plane_resource_is_kubeflexs() {
        let resource = control_planes();
        assert_eq!(
            resource.api_version,
            "tenancy.kflex.kubestellar.org/v1alpha1"
        );
        assert_eq!(resource.plural, "controlplanes");
        assert_eq!(resource.kind, "ControlPlane");
    }
}
