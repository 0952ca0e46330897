//! The index: what Bindings and WorkStatuses say about each workload object.
//!
//! Every change returns exactly the objects whose routing or reports it can
//! change, so that the controller re-queues those and no others. That includes
//! a Binding whose destinations change while its clauses stay the same, which
//! KubeStellar's own status controller misses.
//!
//! Pure data, no I/O: the watches feed it, the reconciler reads it.

mod collectors;
mod keys;
#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

pub use self::collectors::{CollectorClause, Returned};
use self::keys::Interner;
pub use self::keys::{ObjectId, ObjectKey, ReportId, ReportName};
use crate::kubestellar::{
    BindingSpec, DownsyncModulation, ObjectReference, ReportedJson, StatusText, WorkStatus,
};

/// The routing facts of one object: the OR-ed flags and, per flag, the union
/// of the destinations of the Bindings whose clause for the object sets it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routing {
    pub want_singleton: bool,
    pub want_multi_wec: bool,
    pub singleton_wecs: BTreeSet<String>,
    pub multi_wec_wecs: BTreeSet<String>,
    /// The API version to read and write the object with, when known.
    pub version: Option<String>,
}

/// Everything the index knows about one object, copied out so that a
/// reconcile holds no lock while it talks to the API server.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectFacts {
    pub routing: Routing,
    /// Every WorkStatus on the object, sorted by WEC and name.
    pub reports: Vec<Report>,
}

impl ObjectFacts {
    /// The reports from the given WECs.
    pub fn reports_from(&self, wecs: &[String]) -> Vec<Report> {
        self.reports
            .iter()
            .filter(|r| wecs.contains(&r.id.wec))
            .cloned()
            .collect()
    }
}

/// One WorkStatus's report on an object.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub id: ReportId,
    /// The object's status in the WEC, as the JSON text the ITS sent; `None`
    /// until the agent has copied it.
    pub status: Option<StatusText>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Clause {
    version: Arc<str>,
    singleton: bool,
    multi_wec: bool,
    /// The StatusCollectors this clause names, as written.
    collectors: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct BindingFacts {
    destinations: BTreeSet<String>,
    clauses: HashMap<ObjectKey, Clause>,
}

impl BindingFacts {
    fn from_spec(spec: &BindingSpec, index: &mut Index) -> Self {
        let mut clauses = HashMap::new();
        // Several entries of one Binding for one object (a duplicate) OR
        // their flags, as entries of several Bindings do; the first names
        // the version.
        let mut add = |object: &ObjectReference, namespace: &str, m: &DownsyncModulation| {
            let key = index.canonical(ObjectKey::new(
                object.group.clone(),
                object.resource.clone(),
                namespace.to_string(),
                object.name.clone(),
            ));
            let clause = clauses.entry(key).or_insert_with(|| Clause {
                version: index.strings.intern(&object.version),
                singleton: false,
                multi_wec: false,
                collectors: Vec::new(),
            });
            clause.singleton |= m.want_singleton_reported_state;
            clause.multi_wec |= m.want_multi_wec_reported_state;
            for name in &m.status_collectors {
                if !clause.collectors.contains(name) {
                    clause.collectors.push(name.clone());
                }
            }
        };
        for c in &spec.workload.cluster_scope {
            add(&c.object, "", &c.modulation);
        }
        for c in &spec.workload.namespace_scope {
            add(&c.object, &c.namespace, &c.modulation);
        }
        Self {
            destinations: spec
                .destinations
                .iter()
                .map(|d| d.cluster_id.clone())
                .collect(),
            clauses,
        }
    }

    /// What this Binding contributes to an object's routing: nothing at all
    /// unless its clause for the object sets a flag.
    fn contribution(&self, key: &ObjectKey) -> Option<(bool, bool, &BTreeSet<String>)> {
        self.clauses
            .get(key)
            .filter(|c| c.singleton || c.multi_wec)
            .map(|c| (c.singleton, c.multi_wec, &self.destinations))
    }
}

#[derive(Clone, Debug, PartialEq)]
struct ReportFacts {
    object: ObjectKey,
    version: Arc<str>,
    status: Option<StatusText>,
    /// `statusDetails.lastCurrencyUpdateTime`, for StatusCollectors.
    updated: Option<Box<str>>,
}

/// The index of Bindings and WorkStatuses, by workload object.
///
/// Sized for 100,000 objects: every key is a shared handle and the index
/// gives out the one it holds ([`Index::canonical`]), the per-object lists
/// of Bindings and reports are small sorted vectors (one or two entries, where
/// a `BTreeSet` would allocate a node of eleven), WEC names and versions are
/// held once, and statuses stay text.
#[derive(Debug, Default)]
pub struct Index {
    bindings: HashMap<Arc<str>, BindingFacts>,
    /// The names of the Bindings with a clause for each object, sorted.
    bindings_by_object: HashMap<ObjectKey, Vec<Arc<str>>>,
    reports: HashMap<ReportId, ReportFacts>,
    /// The reports on each object, sorted.
    reports_by_object: HashMap<ObjectKey, Vec<ReportId>>,
    strings: Interner,
}

/// Inserts into a sorted vector, keeping it sorted and without duplicates.
fn insert_sorted<T: Ord>(list: &mut Vec<T>, item: T) {
    if let Err(at) = list.binary_search(&item) {
        list.insert(at, item);
    }
}

/// Removes from a sorted vector; whether it is empty after.
fn remove_sorted<T: Ord + ?Sized, U: Ord + std::borrow::Borrow<T>>(
    list: &mut Vec<U>,
    item: &T,
) -> bool {
    if let Ok(at) = list.binary_search_by(|x| x.borrow().cmp(item)) {
        list.remove(at);
    }
    list.is_empty()
}

impl Index {
    /// Records a Binding (new or changed); returns the objects to re-queue.
    pub fn apply_binding(&mut self, name: &str, spec: &BindingSpec) -> BTreeSet<ObjectKey> {
        let facts = BindingFacts::from_spec(spec, self);
        self.replace_binding(name, Some(facts))
    }

    /// Forgets a Binding; returns the objects to re-queue.
    pub fn delete_binding(&mut self, name: &str) -> BTreeSet<ObjectKey> {
        self.replace_binding(name, None)
    }

    fn replace_binding(&mut self, name: &str, new: Option<BindingFacts>) -> BTreeSet<ObjectKey> {
        let shared: Arc<str> = match self.bindings.get_key_value(name) {
            Some((known, _)) => known.clone(),
            None => name.into(),
        };
        let old = match &new {
            Some(facts) => self.bindings.insert(shared.clone(), facts.clone()),
            None => self.bindings.remove(name),
        };
        let old = old.unwrap_or_default();
        let new = new.unwrap_or_default();
        let mut affected = BTreeSet::new();
        for key in old.clauses.keys().chain(new.clauses.keys()) {
            if old.contribution(key) != new.contribution(key)
                || old.collector_contribution(key) != new.collector_contribution(key)
            {
                affected.insert(key.clone());
            }
            if !new.clauses.contains_key(key)
                && let Some(names) = self.bindings_by_object.get_mut(key)
                && remove_sorted(names, name)
            {
                self.bindings_by_object.remove(key);
            }
        }
        for key in new.clauses.keys() {
            let names = self
                .bindings_by_object
                .entry(key.clone())
                .or_insert_with(|| Vec::with_capacity(1));
            insert_sorted(names, shared.clone());
        }
        affected
    }

    /// Records a WorkStatus (new or changed); returns the objects to re-queue.
    pub fn apply_report<S: ReportedJson>(&mut self, ws: &WorkStatus<S>) -> BTreeSet<ObjectKey> {
        let Some(id) = report_id(ws) else {
            return BTreeSet::new();
        };
        // The id this index holds already, if any: one allocation per report.
        let id = match self.reports.get_key_value(&id) {
            Some((known, _)) => known.clone(),
            None => id,
        };
        let source = &ws.spec.source_ref;
        let facts = ReportFacts {
            object: self.canonical(ObjectKey::new(
                source.group.clone(),
                source.resource.clone(),
                source.namespace.clone(),
                source.name.clone(),
            )),
            version: self.strings.intern(&source.version),
            status: ws.status.as_ref().map(ReportedJson::status_text),
            updated: ws
                .status_details
                .as_ref()
                .map(|d| d.last_currency_update_time.as_str())
                .filter(|t| !t.is_empty())
                .map(Box::from),
        };
        self.replace_report(id, Some(facts))
    }

    /// Forgets a WorkStatus; returns the objects to re-queue.
    pub fn delete_report(&mut self, id: &ReportId) -> BTreeSet<ObjectKey> {
        self.replace_report(id.clone(), None)
    }

    fn replace_report(&mut self, id: ReportId, new: Option<ReportFacts>) -> BTreeSet<ObjectKey> {
        let old = match &new {
            Some(facts) => self.reports.insert(id.clone(), facts.clone()),
            None => self.reports.remove(&id),
        };
        if old == new {
            return BTreeSet::new();
        }
        let mut affected = BTreeSet::new();
        if let Some(old) = old {
            if let Some(ids) = self.reports_by_object.get_mut(&old.object)
                && remove_sorted(ids, &id)
            {
                self.reports_by_object.remove(&old.object);
            }
            affected.insert(old.object);
        }
        if let Some(new) = new {
            let ids = self
                .reports_by_object
                .entry(new.object.clone())
                .or_insert_with(|| Vec::with_capacity(1));
            insert_sorted(ids, id);
            affected.insert(new.object);
        }
        affected
    }

    /// The key this index holds for the object, if it tracks it, else `key`
    /// itself: so that the index, the queue and the object cache share one.
    pub fn canonical(&self, key: ObjectKey) -> ObjectKey {
        self.tracked(&key).unwrap_or(key)
    }

    /// The key this index holds for the object, if some Binding or
    /// WorkStatus names it.
    pub fn tracked(&self, key: &ObjectKey) -> Option<ObjectKey> {
        self.bindings_by_object
            .get_key_value(key)
            .map(|(k, _)| k)
            .or_else(|| self.reports_by_object.get_key_value(key).map(|(k, _)| k))
            .cloned()
    }

    /// The names of every Binding in the index.
    pub fn binding_names(&self) -> Vec<String> {
        self.bindings.keys().map(|n| n.to_string()).collect()
    }

    /// The ids of every WorkStatus in the index.
    pub fn report_ids(&self) -> Vec<ReportId> {
        self.reports.keys().cloned().collect()
    }

    /// The routing facts of one object.
    pub fn routing(&self, key: &ObjectKey) -> Routing {
        let mut routing = Routing::default();
        for name in self.bindings_by_object.get(key).into_iter().flatten() {
            let binding = &self.bindings[name];
            let clause = &binding.clauses[key];
            routing
                .version
                .get_or_insert_with(|| clause.version.to_string());
            if clause.singleton {
                routing.want_singleton = true;
                routing
                    .singleton_wecs
                    .extend(binding.destinations.iter().cloned());
            }
            if clause.multi_wec {
                routing.want_multi_wec = true;
                routing
                    .multi_wec_wecs
                    .extend(binding.destinations.iter().cloned());
            }
        }
        if routing.version.is_none() {
            routing.version = self
                .reports_by_object
                .get(key)
                .and_then(|ids| ids.first())
                .map(|id| self.reports[id].version.to_string());
        }
        routing
    }

    /// The routing and reports of one object.
    pub fn facts(&self, key: &ObjectKey) -> ObjectFacts {
        ObjectFacts {
            routing: self.routing(key),
            reports: self.reports(key, None),
        }
    }

    /// The WorkStatuses on an object (from the given WECs, or all), sorted by WEC and name.
    pub fn reports(&self, key: &ObjectKey, wecs: Option<&[String]>) -> Vec<Report> {
        self.reports_by_object
            .get(key)
            .into_iter()
            .flatten()
            .filter(|id| wecs.is_none_or(|wecs| wecs.contains(&id.wec)))
            .map(|id| Report {
                id: id.clone(),
                status: self.reports[id].status.clone(),
            })
            .collect()
    }

    /// Whether some Binding or WorkStatus names the object.
    pub fn tracks(&self, key: &ObjectKey) -> bool {
        self.bindings_by_object.contains_key(key) || self.reports_by_object.contains_key(key)
    }

    /// Every object some Binding or WorkStatus names.
    pub fn objects(&self) -> BTreeSet<ObjectKey> {
        self.bindings_by_object
            .keys()
            .chain(self.reports_by_object.keys())
            .cloned()
            .collect()
    }

    /// The (group, version, resource) of every object some Binding names.
    pub fn resources(&self) -> BTreeSet<(String, String, String)> {
        self.bindings
            .values()
            .flat_map(|b| b.clauses.iter())
            .map(|(key, c)| {
                (
                    key.group.clone(),
                    c.version.to_string(),
                    key.resource.clone(),
                )
            })
            .collect()
    }
}

/// The id of a WorkStatus, if it has a namespace (its WEC) and a name.
pub fn report_id<S>(ws: &WorkStatus<S>) -> Option<ReportId> {
    Some(ReportId::new(
        ws.metadata.namespace.clone()?,
        ws.metadata.name.clone()?,
    ))
}
