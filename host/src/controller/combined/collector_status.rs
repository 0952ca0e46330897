//! The `status` of StatusCollectors: their errors, for their generation, as
//! KubeStellar's status controller writes it. The collector watch queues a
//! collector's name at each event; one worker takes the names off the queue
//! while this replica may write, and the queue's error policy
//! ([`crate::runtime::reconcile`]) brings back a name whose write failed.
//! Its metrics carry `controller="statuscollector-status"`.
//! When the replica starts to write it queues every collector it knows,
//! since as a standby it wrote none.

use std::sync::Arc;

use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::controller::Context;
use crate::kubestellar::{StatusCollector, StatusCollectorStatus};
use crate::runtime::api::{self, CallError, FIELD_MANAGER};

/// Writes collector statuses from the queue, from when this replica may
/// write until the controller stops (a controller writes at most once in
/// its life: from when it leads until it stops).
pub(super) async fn write(ctx: Arc<Context>) {
    let api: Api<StatusCollector> = Api::all(ctx.wds.client().clone());
    let statuses = &ctx.combined.collector_statuses;
    if ctx.write_gate().wait_for(|w| *w).await.is_err() {
        return;
    }
    for name in ctx.combined.collector_names() {
        statuses.queue.add(name);
    }
    while let Some(name) = statuses.queue.next().await {
        let (result, retry_in) = statuses
            .reconcile(&name, reconcile(&api, &ctx, &name))
            .await;
        if let Err(e) = result {
            tracing::warn!(collector = %name, error = %e, ?retry_in, "cannot write a StatusCollector's status");
        }
    }
}

/// Writes one collector's `status` when it differs from what its current
/// generation wants; nothing for a collector that is gone or has moved on
/// to a generation this replica has not compiled yet (its event follows).
async fn reconcile(api: &Api<StatusCollector>, ctx: &Context, name: &str) -> Result<(), CallError> {
    let Some(known) = ctx.combined.collector(name) else {
        return Ok(());
    };
    let wanted = StatusCollectorStatus {
        observed_generation: known.generation,
        errors: known.compiled.as_ref().err().cloned().unwrap_or_default(),
    };
    let current = match api::bounded(api.get_status(name)).await {
        Ok(sc) => sc,
        Err(CallError::Api(kube::Error::Api(e))) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    };
    if current.metadata.generation.unwrap_or_default() != known.generation
        || current.status.as_ref() == Some(&wanted)
    {
        return Ok(());
    }
    let errors = if wanted.errors.is_empty() {
        json!(null)
    } else {
        json!(wanted.errors)
    };
    let patch =
        json!({"status": {"observedGeneration": wanted.observed_generation, "errors": errors}});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match api::bounded(api.patch_status(name, &params, &Patch::Merge(patch))).await {
        Ok(_) => Ok(()),
        // Deleted since it was read.
        Err(CallError::Api(kube::Error::Api(e))) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
