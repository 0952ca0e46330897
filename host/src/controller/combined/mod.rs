//! CombinedStatus from StatusCollectors: the other half of KubeStellar's
//! status controller, beside [`super::sync`] (which writes the object's own
//! status) and reached from the same index and queue.
//!
//! For a workload object and each Binding (so BindingPolicy) whose clause
//! for it names collectors, every valid collector is evaluated over one row
//! per destination WEC that returned a status, and the results are written to
//! the CombinedStatus `<object UID>.<BindingPolicy UID>`. Expressions are
//! compiled once per collector generation and evaluated by the pure
//! [`crate::collector`]. [`write`](mod@write) does the CombinedStatus I/O and [`watch`]
//! feeds collectors, BindingPolicy UIDs and existing CombinedStatuses, and
//! keeps the `StatusCollectorsAvailable` condition of Bindings.
//!
//! The feature is on when the WDS serves StatusCollectors, CombinedStatuses
//! and BindingPolicies; until their first lists are in, nothing is written
//! (a partial view could delete a CombinedStatus that is still wanted).

mod collector_status;
pub mod condition;
pub mod watch;
pub mod write;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use serde_json::Value as Json;

use self::write::{CombinedStatuses, WriteError};
use super::Context;
use super::index::{CollectorClause, ObjectKey};
use crate::collector::engine::{CelEngine, CelProgram, Engine, Returned};
use crate::collector::{Collector, compute};
use crate::kubestellar::{Binding, NamedStatusCombination};
use crate::runtime::metrics::Metrics;
use crate::runtime::reconcile::{ReconcileError, Reconciler};

/// A StatusCollector as last seen: compiled, or why it is invalid.
pub struct Known {
    pub generation: i64,
    pub compiled: Result<Collector<CelProgram>, Vec<String>>,
}

/// Which of the inputs of CombinedStatuses have finished their first list.
#[derive(Clone, Copy, Debug, Default)]
pub struct Synced {
    pub collectors: bool,
    pub policies: bool,
    pub combined_statuses: bool,
}

impl Synced {
    fn all(&self) -> bool {
        self.collectors && self.policies && self.combined_statuses
    }
}

/// What CombinedStatus reconciles share.
pub struct State {
    pub engine: CelEngine,
    collectors: RwLock<HashMap<String, Arc<Known>>>,
    /// BindingPolicy name to UID.
    policies: RwLock<HashMap<String, String>>,
    pub(crate) existing: CombinedStatuses,
    pub(crate) synced: tokio::sync::watch::Sender<Synced>,
    /// Bumped whenever the set of valid collectors changes (for Binding conditions).
    pub(crate) collectors_changed: tokio::sync::watch::Sender<u64>,
    /// The names of the collectors whose `status` may need a write.
    collector_statuses: Reconciler<String>,
    /// Every Binding, whole, for its condition (the index keeps only what
    /// reconciles need).
    bindings: RwLock<HashMap<String, Binding>>,
    /// The names of the Bindings whose condition may need a write.
    binding_conditions: Reconciler<String>,
}

/// The `controller` label of the StatusCollector status writer's metrics.
pub const COLLECTOR_STATUS_CONTROLLER: &str = "statuscollector-status";
/// The `controller` label of the Binding condition writer's metrics.
pub const BINDING_CONDITION_CONTROLLER: &str = "binding-condition";

impl State {
    /// The state of a controller whose metrics are `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        Self {
            engine: CelEngine::default(),
            collectors: Default::default(),
            policies: Default::default(),
            existing: Default::default(),
            synced: tokio::sync::watch::Sender::new(Synced::default()),
            collectors_changed: tokio::sync::watch::Sender::new(0),
            collector_statuses: Reconciler::new(metrics.reconciler(COLLECTOR_STATUS_CONTROLLER, 1)),
            bindings: Default::default(),
            binding_conditions: Reconciler::new(
                metrics.reconciler(BINDING_CONDITION_CONTROLLER, 1),
            ),
        }
    }

    /// Whether every input has been listed once.
    pub fn ready(&self) -> bool {
        self.synced.borrow().all()
    }

    fn collector(&self, name: &str) -> Option<Arc<Known>> {
        self.collectors.read().expect("lock").get(name).cloned()
    }

    fn collector_names(&self) -> Vec<String> {
        self.collectors
            .read()
            .expect("lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Whether a collector exists and is valid.
    pub fn is_available(&self, name: &str) -> bool {
        self.collector(name).is_some_and(|k| k.compiled.is_ok())
    }

    fn policy_uid(&self, name: &str) -> Option<String> {
        self.policies.read().expect("lock").get(name).cloned()
    }
}

/// Why a CombinedStatus reconcile failed; it is retried.
#[derive(Debug, thiserror::Error)]
pub enum CombinedError {
    #[error("read the object: {0}")]
    Read(#[from] super::wds::WdsError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl ReconcileError for CombinedError {
    /// Whether the WDS was down, slow or overloaded: retried soon.
    fn is_transient(&self) -> bool {
        match self {
            CombinedError::Read(e) => e.is_transient(),
            CombinedError::Write(e) => e.is_transient(),
        }
    }
}

/// Brings the CombinedStatuses of one object up to date: creates or updates
/// those some BindingPolicy wants, deletes the others.
pub async fn reconcile(ctx: &Context, key: &ObjectKey) -> Result<(), CombinedError> {
    let state = &ctx.combined;
    if !state.ready() {
        return Ok(());
    }
    let (clauses, returned, version) = {
        let index = ctx.index();
        (
            index.collector_clauses(key),
            index.returned(key),
            index.routing(key).version,
        )
    };
    let mut wanted = BTreeMap::new();
    if let (false, Some(version)) = (clauses.is_empty(), version)
        && let Some(object) = write::read_object(&ctx.wds, key, &version).await?
    {
        for clause in &clauses {
            // A Binding whose BindingPolicy is not (yet) known has no UID to name it by.
            let Some(policy_uid) = state.policy_uid(&clause.binding) else {
                continue;
            };
            let results = results_for(state, &object.json, clause, &returned);
            if !results.is_empty() {
                let cs = write::desired(key, &object, &clause.binding, &policy_uid, results);
                wanted.insert(cs.metadata.name.clone().unwrap_or_default(), cs);
            }
        }
    }
    state
        .existing
        .converge(ctx.wds.client(), key, wanted)
        .await?;
    Ok(())
}

/// The results of a clause's valid collectors over its destinations, sorted
/// by collector name.
fn results_for(
    state: &State,
    obj: &Json,
    clause: &CollectorClause,
    returned: &[super::index::Returned],
) -> Vec<NamedStatusCombination> {
    let mut names: Vec<&String> = clause.collectors.iter().collect();
    names.sort();
    names.dedup();
    let collectors: Vec<Arc<Known>> = names.iter().filter_map(|n| state.collector(n)).collect();
    let valid: Vec<&Collector<CelProgram>> = collectors
        .iter()
        .filter_map(|k| k.compiled.as_ref().ok())
        .collect();
    if valid.is_empty() {
        return Vec::new();
    }
    let engine = &state.engine;
    let object = engine.object(obj);
    let rows = rows(engine, &object, clause, returned);
    valid
        .into_iter()
        .map(|c| compute::evaluate(engine, c, &rows))
        .collect()
}

/// One row per destination WEC that returned a status (the first WorkStatus
/// by name when two Bindings send the object to one WEC), in WEC order.
pub fn rows<E: Engine>(
    engine: &E,
    object: &E::Object,
    clause: &CollectorClause,
    returned: &[super::index::Returned],
) -> Vec<(String, E::Row)> {
    clause
        .destinations
        .iter()
        .filter_map(|wec| {
            let report = returned
                .iter()
                .find(|r| &r.id.wec == wec && r.status.is_some())?;
            let status = report.status.as_deref()?;
            let row = engine.row(
                object,
                &Returned {
                    wec,
                    status,
                    updated: report.updated.as_deref(),
                },
            );
            Some((wec.clone(), row))
        })
        .collect()
}
