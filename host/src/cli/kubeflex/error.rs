//! Why a space's kubeconfig could not be found, each message naming what is
//! missing and the fix.

use std::time::Duration;

use super::{GROUP, KeyField, PLURAL, RBAC_FILE};

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
