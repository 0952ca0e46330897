//! The controller: returns the status reported by WECs (WorkStatuses in the
//! ITS) onto workload objects in the WDS, as the policy decides.
//!
//! - [`watch`] feeds the [`index`] from Bindings and WorkStatuses and queues
//!   exactly the objects each change affects;
//! - [`queue`] hands each object to one worker at a time, with backoff;
//! - [`sync`] is the split of KubeStellar's `syncWorkloadObject`;
//! - [`wds`] does the Kubernetes reads and writes behind [`workload`]'s interface.

pub mod index;
pub mod metrics;
pub mod queue;
pub mod sync;
pub mod watch;
pub mod wds;
pub mod workload;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use kube::Client;
use kube::core::GroupVersion;
use kube::discovery::oneshot;

use self::index::{Index, ObjectKey};
use self::metrics::Metrics;
use self::queue::WorkQueue;
use self::sync::{Outcome, SyncError, sync_workload_object};
use self::watch::WorkloadWatches;
use self::wds::Wds;
use crate::policy::{Policy, PolicyInstance};

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
}

/// What the watches, the workers and the I/O share.
pub struct Context {
    pub config: Config,
    pub wds: Wds,
    pub its: Client,
    pub queue: Arc<WorkQueue<ObjectKey>>,
    pub metrics: Arc<Metrics>,
    index: RwLock<Index>,
    workload_watches: WorkloadWatches,
    policy: Policy,
}

impl Context {
    fn index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().expect("index lock")
    }

    fn index_mut(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().expect("index lock")
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
}

impl Controller {
    pub fn new(wds: Client, its: Client, policy: Policy, config: Config) -> Self {
        let metrics = Arc::new(Metrics::default());
        Self {
            ctx: Arc::new(Context {
                wds: Wds::new(wds, metrics.clone()),
                its,
                queue: WorkQueue::new(),
                metrics,
                index: RwLock::new(Index::default()),
                workload_watches: WorkloadWatches::default(),
                policy,
                config,
            }),
        }
    }

    /// The controller's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.ctx.metrics.clone()
    }

    /// Checks that both API servers answer and serve KubeStellar's CRDs.
    pub async fn preflight(&self) -> Result<(), StartError> {
        let checks = [
            ("WDS", self.ctx.wds.client(), "bindings"),
            ("ITS", &self.ctx.its, "workstatuses"),
        ];
        for (space, client, resource) in checks {
            client
                .apiserver_version()
                .await
                .map_err(|source| StartError::Unreachable { space, source })?;
            let gv = GroupVersion::gv(crate::kubestellar::GROUP, "v1alpha1");
            let served = oneshot::pinned_group(client, &gv).await.is_ok_and(|group| {
                group
                    .versioned_resources("v1alpha1")
                    .iter()
                    .any(|(ar, _)| ar.plural == resource)
            });
            if !served {
                return Err(StartError::MissingCrd {
                    space,
                    group: crate::kubestellar::GROUP,
                    version: "v1alpha1",
                    resource,
                });
            }
        }
        Ok(())
    }

    /// Runs until `shutdown` completes; in-flight reconciles finish first.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
        self.preflight().await?;
        let ctx = self.ctx;
        let watches = [
            tokio::spawn(watch::bindings(ctx.clone())),
            tokio::spawn(watch::work_statuses(ctx.clone())),
        ];
        let workers: Vec<_> = (0..ctx.config.workers.max(1))
            .map(|_| tokio::spawn(worker(ctx.clone())))
            .collect();
        tracing::info!(workers = workers.len(), wds = %ctx.config.wds_name, policy = %ctx.policy.info().digest, "controller started");
        shutdown.await;
        tracing::info!("controller stopping");
        for watch in &watches {
            watch.abort();
        }
        ctx.workload_watches.stop_all();
        ctx.queue.shut_down();
        for worker in workers {
            let _ = worker.await;
        }
        Ok(())
    }
}

/// Takes objects from the queue and reconciles them, one at a time, with a
/// policy instance of its own.
async fn worker(ctx: Arc<Context>) {
    let mut policy = PolicyInstance::new(ctx.policy.clone());
    while let Some(key) = ctx.queue.next().await {
        let facts = ctx.index().facts(&key);
        ctx.metrics.reconciles.fetch_add(1, Relaxed);
        match sync_workload_object(&ctx.wds, &facts, &mut policy, &key).await {
            Ok(outcome) => {
                if outcome == Outcome::AggregateRefused {
                    ctx.metrics.aggregate_refusals.fetch_add(1, Relaxed);
                }
                tracing::debug!(object = %key, ?outcome, "reconciled");
                ctx.queue.done(&key);
            }
            Err(e) => {
                ctx.metrics.reconcile_errors.fetch_add(1, Relaxed);
                if matches!(e, SyncError::Policy(_)) {
                    ctx.metrics.policy_errors.fetch_add(1, Relaxed);
                }
                let delay = ctx.queue.retry(&key);
                tracing::warn!(object = %key, error = %e, retry_in = ?delay, "reconcile failed");
            }
        }
    }
}
