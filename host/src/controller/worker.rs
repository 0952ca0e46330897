//! The workers, the only writers of workload objects: they run while this
//! replica leads (or always, without leader election), take one object at a
//! time from the queue, and reconcile its status and its CombinedStatuses
//! with a policy instance of their own.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use super::sync::{Outcome, SyncError, sync_workload_object};
use super::wds::WdsError;
use super::{Context, StartError, combined};
use crate::policy::PolicyInstance;
use crate::policy::active::ActiveModule;
use crate::runtime::metrics::PolicyCall;
use crate::runtime::reconcile::{ReconcileError, requeue};
use crate::runtime::role::Role;

impl ReconcileError for SyncError<WdsError> {
    /// The WDS down, slow or overloaded; a policy failure is not.
    fn is_transient(&self) -> bool {
        matches!(self, SyncError::Wds(w) if w.is_transient())
    }
}

/// Waits for the watches to sync and for leadership, then runs the workers
/// until shutdown (they finish what they hold) or the loss of leadership
/// (they are stopped at once).
pub(super) async fn serve(
    ctx: &Arc<Context>,
    leadership: Option<tokio::sync::watch::Receiver<Role>>,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<(), StartError> {
    // No reconcile before the index holds every Binding and WorkStatus.
    let mut synced = ctx.synced.subscribe();
    tokio::select! {
        () = &mut *shutdown => return Ok(()),
        result = synced.wait_for(|s| s.bindings && s.work_statuses) => {
            if result.is_err() {
                return Ok(());
            }
        }
    }
    ctx.health.set_synced(true, true);
    let lost = |role: Option<Role>| {
        StartError::Leadership(match role {
            Some(Role::Stopped(reason)) => reason,
            _ => "the lease task ended".into(),
        })
    };
    if let Some(mut role) = leadership.clone() {
        tracing::info!("watches synced; standing by until this replica leads");
        tokio::select! {
            () = &mut *shutdown => return Ok(()),
            result = role.wait_for(|r| *r != Role::Standby) => match result.map(|r| r.clone()) {
                Ok(Role::Leading) => {}
                other => return Err(lost(other.ok())),
            },
        }
    }
    let workers: Vec<_> = (0..ctx.config.workers.max(1))
        .map(|_| tokio::spawn(worker(ctx.clone())))
        .collect();
    ctx.writing.send_replace(true);
    tracing::info!(
        workers = workers.len(),
        wds = %ctx.config.wds_name,
        policy = %ctx.policy.current().policy.info().digest,
        "controller started"
    );
    let not_leading = async {
        match leadership {
            Some(mut role) => {
                let result = role.wait_for(|r| *r != Role::Leading).await;
                lost(result.ok().map(|r| r.clone()))
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = &mut *shutdown => {
            ctx.writing.send_replace(false);
            ctx.queue.shut_down();
            for worker in workers {
                let _ = worker.await;
            }
            Ok(())
        }
        e = not_leading => {
            // Fencing: no write of ours may follow the loss of the Lease.
            ctx.writing.send_replace(false);
            for worker in &workers {
                worker.abort();
            }
            ctx.queue.shut_down();
            Err(e)
        }
    }
}

/// Takes objects from the queue and reconciles them, one at a time, with a
/// policy instance of its own.
async fn worker(ctx: Arc<Context>) {
    let instance = |module: &ActiveModule| {
        let metrics = ctx.metrics.clone();
        PolicyInstance::new(module.policy.clone()).observed(Box::new(move |call, elapsed| {
            let call = match call {
                "aggregate" => PolicyCall::Aggregate,
                _ => PolicyCall::Decide,
            };
            metrics.observe_policy_call(call, elapsed);
        }))
    };
    let mut module = ctx.policy.current();
    let mut policy = instance(&module);
    while let Some(key) = ctx.queue.next().await {
        // A swapped-in module is picked up between reconciles, never during one.
        let current = ctx.policy.current();
        if !Arc::ptr_eq(&current, &module) {
            module = current;
            policy = instance(&module);
        }
        let facts = ctx.index().facts(&key);
        ctx.metrics.reconcile_started();
        let start = Instant::now();
        let synced = sync_workload_object(&ctx.wds, &facts, &mut policy, &key).await;
        // The CombinedStatuses of the object, whatever its own status did.
        let combined = combined::reconcile(&ctx, &key).await;
        let ok = synced.is_ok() && combined.is_ok();
        ctx.metrics.reconcile_finished(ok, start.elapsed());
        // One error policy (`requeue`): an API server that is down is retried
        // soon, not after a backoff that grew for as long as the outage lasted.
        match synced {
            Ok(outcome) => {
                if outcome == Outcome::AggregateRefused {
                    ctx.metrics.count_aggregate_refusal();
                }
                let retry_in = requeue(&ctx.queue, &key, &combined);
                match combined {
                    Ok(()) => tracing::debug!(object = %key, ?outcome, "reconciled"),
                    Err(e) => {
                        tracing::warn!(object = %key, error = %e, ?retry_in, "CombinedStatus reconcile failed")
                    }
                }
            }
            Err(e) => {
                if matches!(e, SyncError::Policy(_)) {
                    ctx.metrics.count_policy_error();
                }
                let failed = Err(e);
                let retry_in = requeue(&ctx.queue, &key, &failed);
                if let Err(e) = failed {
                    tracing::warn!(object = %key, error = %e, ?retry_in, "reconcile failed");
                }
            }
        }
    }
}

/// After each policy swap, every tracked object is reconciled under the new rules.
pub(super) async fn reconcile_all_on_swap(ctx: Arc<Context>) {
    let mut swaps = ctx.policy.subscribe();
    swaps.mark_unchanged();
    while swaps.changed().await.is_ok() {
        let objects = ctx.index().objects();
        tracing::info!(
            objects = objects.len(),
            "policy swapped: reconciling every tracked object"
        );
        ctx.enqueue(objects);
    }
}
