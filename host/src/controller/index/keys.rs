//! The keys of the index, [`ObjectKey`] and [`ReportId`]: shared handles,
//! because at 100,000 objects each key is held in half a dozen places.

use std::collections::HashSet;
use std::sync::Arc;

/// Identifies a workload object in the WDS. The API version is not part of
/// the identity: a Binding and a WorkStatus may name different versions of
/// the same object.
///
/// A key is a shared handle: the index, the queue, the object cache and the
/// record of our writes each hold one per object (the queue up to three
/// while the object waits), so a clone costs a reference count, not four
/// strings (about 220 bytes each; see the memory breakdown in BENCHMARKS.md).
/// The index hands out the one it holds ([`Index::canonical`](super::Index::canonical)).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(Arc<ObjectId>);

/// What an [`ObjectKey`] names.
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    pub group: String,
    pub resource: String,
    /// Empty for a cluster-scoped object.
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(group: String, resource: String, namespace: String, name: String) -> Self {
        Self(Arc::new(ObjectId {
            group,
            resource,
            namespace,
            name,
        }))
    }
}

impl std::ops::Deref for ObjectKey {
    type Target = ObjectId;

    fn deref(&self) -> &ObjectId {
        &self.0
    }
}

impl std::fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        match self.namespace.as_str() {
            "" => write!(f, "{}.{group} {}", self.resource, self.name),
            ns => write!(f, "{}.{group} {ns}/{}", self.resource, self.name),
        }
    }
}

/// Identifies a WorkStatus: its WEC (namespace in the ITS) and name. A
/// shared handle, as [`ObjectKey`] is.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportId(Arc<ReportName>);

/// What a [`ReportId`] names.
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportName {
    pub wec: String,
    pub name: String,
}

impl ReportId {
    pub fn new(wec: String, name: String) -> Self {
        Self(Arc::new(ReportName { wec, name }))
    }
}

impl std::ops::Deref for ReportId {
    type Target = ReportName;

    fn deref(&self) -> &ReportName {
        &self.0
    }
}

impl std::fmt::Debug for ReportId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Few distinct strings (WEC names, API versions), each held once however
/// many reports and clauses name it. It only grows, by the distinct values
/// ever seen: a handful per fleet.
#[derive(Debug, Default)]
pub(super) struct Interner(HashSet<Arc<str>>);

impl Interner {
    pub(super) fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(known) = self.0.get(text) {
            return known.clone();
        }
        let new: Arc<str> = text.into();
        self.0.insert(new.clone());
        new
    }
}
