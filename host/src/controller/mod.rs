//! The controller: returns the status reported by WECs (WorkStatuses in the
//! ITS) onto workload objects in the WDS, as the policy decides.
//!
//! - [`watch`] feeds the [`index`] from Bindings and WorkStatuses and queues
//!   exactly the objects each change affects;
//! - `worker`s take each object from the [`WorkQueue`], one worker at a time
//!   per object, with backoff;
//! - [`sync`] is the split of KubeStellar's `syncWorkloadObject`;
//! - [`combined`] writes CombinedStatuses from StatusCollectors, for the same queued objects;
//! - [`wds`] does the Kubernetes reads and writes behind [`sync::workload`]'s interface.
//!
//! With leader election ([`Controller::with_leadership`]) the watches and the
//! index run on every replica, so that a standby that takes over needs no
//! relist, but the workers (the only writers) run only while it leads.

pub mod combined;
pub mod index;
pub mod preflight;
pub mod sync;
pub mod watch;
pub mod wds;
mod worker;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use kube::Client;

use self::index::{Index, ObjectKey};
use self::watch::WorkloadWatches;
use self::wds::Wds;
use crate::policy::Policy;
use crate::policy::active::{ActiveModule, ActivePolicy};
use crate::runtime::health::Health;
use crate::runtime::metrics::Metrics;
use crate::runtime::queue::WorkQueue;
use crate::runtime::role::Role;

/// Settings of a controller.
#[derive(Clone, Debug)]
pub struct Config {
    /// This WDS's name: WorkStatuses labelled with another are not ours.
    pub wds_name: String,
    /// Reconciles run at once.
    pub workers: usize,
}

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot reach the {space} API server: {source}")]
    Unreachable {
        space: &'static str,
        source: kube::Error,
    },
    #[error(
        "the {space} does not serve {resource}.{group}/{version}: install KubeStellar's CRDs (or `status-router crds | kubectl apply -f -`)"
    )]
    MissingCrd {
        space: &'static str,
        group: &'static str,
        version: &'static str,
        resource: &'static str,
    },
    #[error(
        "the {space} identity may not {verb} {resource}.{group} cluster-wide: grant it what {rbac} grants (bind that ClusterRole to the user of the {space} context)"
    )]
    Forbidden {
        space: &'static str,
        verb: &'static str,
        resource: &'static str,
        group: &'static str,
        rbac: &'static str,
    },
    /// Not a start failure: the controller stopped its workers because it
    /// no longer leads (the Lease was lost, its renew deadline passed, or
    /// the lease task ended).
    #[error("stopped writing: {0}")]
    Leadership(String),
}

/// What the watches, the workers and the I/O share.
pub struct Context {
    pub config: Config,
    pub wds: Wds,
    pub its: Client,
    pub queue: Arc<WorkQueue<ObjectKey>>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    index: RwLock<Index>,
    workload_watches: WorkloadWatches,
    policy: Arc<ActivePolicy>,
    /// StatusCollectors, BindingPolicy UIDs and CombinedStatuses.
    combined: combined::State,
    /// Whether the Binding and the WorkStatus watches have each finished
    /// their first list. Until both have, the index is partial: a reconcile
    /// could see a Binding without the WorkStatuses of its WECs and clear a
    /// status that is still reported (informer-based controllers avoid this
    /// by waiting for their caches to sync before starting workers).
    synced: tokio::sync::watch::Sender<Synced>,
    /// Whether this replica may write: true while its workers run, so only
    /// while it leads (or always, without leader election). The queue-fed
    /// writers of StatusCollector statuses and Binding conditions wait for
    /// it too, so that a standby writes nothing.
    writing: tokio::sync::watch::Sender<bool>,
}

/// Which of the watches that feed the index have finished their first list.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Synced {
    pub(crate) bindings: bool,
    pub(crate) work_statuses: bool,
}

impl Context {
    fn index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().expect("index lock")
    }

    fn index_mut(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().expect("index lock")
    }

    /// Follows whether this replica may write (see [`Context::writing`]).
    fn write_gate(&self) -> tokio::sync::watch::Receiver<bool> {
        self.writing.subscribe()
    }

    fn enqueue(&self, keys: BTreeSet<ObjectKey>) {
        for key in keys {
            self.queue.add(key);
        }
    }
}

/// A controller, ready to run.
pub struct Controller {
    ctx: Arc<Context>,
    leadership: Option<tokio::sync::watch::Receiver<Role>>,
    /// Whether [`Controller::preflight`] passed already (`run` then skips it).
    checked: std::sync::atomic::AtomicBool,
}

impl Controller {
    /// A controller that runs `policy` (not swappable from outside).
    pub fn new(wds: Client, its: Client, policy: Policy, config: Config) -> Self {
        let module = ActiveModule {
            policy,
            source: "given".into(),
            loaded_at: std::time::SystemTime::now(),
            from_cache: false,
        };
        Self::with_active_policy(wds, its, ActivePolicy::new(module), config)
    }

    /// A controller that runs whatever module `policy` holds at each reconcile;
    /// after each swap it reconciles every object it tracks.
    pub fn with_active_policy(
        wds: Client,
        its: Client,
        policy: Arc<ActivePolicy>,
        config: Config,
    ) -> Self {
        let metrics = Arc::new(Metrics::default());
        metrics.set_max_concurrent_reconciles(config.workers.max(1));
        let combined = combined::State::new(&metrics);
        Self {
            leadership: None,
            ctx: Arc::new(Context {
                wds: Wds::new(wds, metrics.clone()),
                its,
                queue: WorkQueue::with_metrics(metrics.status.queue.clone()),
                metrics,
                health: Health::new(),
                index: RwLock::new(Index::default()),
                workload_watches: WorkloadWatches::default(),
                policy,
                combined,
                config,
                synced: tokio::sync::watch::Sender::new(Synced::default()),
                writing: tokio::sync::watch::Sender::new(false),
            }),
            checked: Default::default(),
        }
    }

    /// Runs the workers only while `role` is [`Role::Leading`] (see
    /// `ops::leader`); without this the controller always writes.
    pub fn with_leadership(mut self, role: tokio::sync::watch::Receiver<Role>) -> Self {
        self.leadership = Some(role);
        self
    }

    /// The controller's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.ctx.metrics.clone()
    }

    /// What the probes read.
    pub fn health(&self) -> Arc<Health> {
        self.ctx.health.clone()
    }

    /// The policy the controller runs.
    pub fn active_policy(&self) -> Arc<ActivePolicy> {
        self.ctx.policy.clone()
    }

    /// Checks that both API servers answer, serve KubeStellar's CRDs, and
    /// let this controller watch Bindings (WDS) and WorkStatuses (ITS).
    pub async fn preflight(&self) -> Result<(), StartError> {
        if self.checked.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        preflight::check(&[
            preflight::Space {
                name: "WDS",
                client: self.ctx.wds.client(),
                resource: "bindings",
                rbac: "config/rbac/wds.yaml",
            },
            preflight::Space {
                name: "ITS",
                client: &self.ctx.its,
                resource: "workstatuses",
                rbac: "config/rbac/its.yaml",
            },
        ])
        .await?;
        self.checked
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Runs until `shutdown` completes; in-flight reconciles finish first.
    /// With leadership, returns [`StartError::Leadership`] as soon as this
    /// replica stops leading, its workers stopped mid-reconcile.
    /// Runs [`Controller::preflight`] first unless it passed already.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
        self.preflight().await?;
        let Self {
            ctx, leadership, ..
        } = self;
        ctx.health.set_connected();
        let watches = [
            tokio::spawn(watch::bindings(ctx.clone())),
            tokio::spawn(watch::work_statuses(ctx.clone())),
            tokio::spawn(worker::reconcile_all_on_swap(ctx.clone())),
            tokio::spawn(combined::watch::run(ctx.clone())),
        ];
        let mut shutdown = std::pin::pin!(shutdown);
        let result = worker::serve(&ctx, leadership, &mut shutdown).await;
        tracing::info!("controller stopping");
        for watch in &watches {
            watch.abort();
        }
        ctx.workload_watches.stop_all();
        result
    }
}
