//! What the reconciler needs from the WDS, as a small interface: read a
//! workload object, write its status and our labels, and warn on it. The
//! Kubernetes implementation is in `wds`; tests of the decision logic use an
//! in-memory one.

use std::collections::BTreeMap;
use std::future::Future;

use serde_json::Value;

use crate::controller::index::ObjectKey;

/// A workload object as the reconciler sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub key: ObjectKey,
    pub version: String,
    pub kind: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `.status`, absent or null read as `{}`.
    pub status: Value,
}

/// Which of our labels an object should carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusLabel {
    /// `managed-by.kubestellar.io/singletonstatus`: a singleton status is held.
    Singleton,
    /// `managed-by.kubestellar.io/multiwecstatus`: an aggregate is held.
    MultiWec,
}

/// The state a reconcile wants on an object.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// The whole new `.status`.
    pub status: Value,
    /// Our label to hold; `None` removes both.
    pub label: Option<StatusLabel>,
    /// The value of `kubestellar.io/executing-count`; `None` removes it.
    pub executing_count: Option<usize>,
}

impl Desired {
    /// Status `{}`, neither status label, and no executing-count.
    pub fn cleared() -> Self {
        Self {
            status: Value::Object(Default::default()),
            label: None,
            executing_count: None,
        }
    }
}

/// Reads and writes workload objects in the WDS.
pub trait WorkloadObjects: Send + Sync {
    /// The error of this implementation.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The object, or `None` when it does not exist.
    fn get(
        &self,
        key: &ObjectKey,
        version: &str,
    ) -> impl Future<Output = Result<Option<Workload>, Self::Error>> + Send;

    /// Makes the object's status and labels `desired`, writing nothing where
    /// they already are (compared semantically). Returns whether it wrote.
    fn write(
        &self,
        object: &Workload,
        desired: &Desired,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// A version the WDS served the object's resource with before: for an
    /// object no Binding or WorkStatus names any more, which may still carry
    /// our labels. `None` when none is known.
    fn known_version(
        &self,
        group: &str,
        resource: &str,
    ) -> impl Future<Output = Option<String>> + Send;

    /// Records a warning Event on the object.
    fn warn(
        &self,
        object: &Workload,
        reason: &str,
        note: String,
    ) -> impl Future<Output = ()> + Send;
}
