//! The watches that feed the index and the queue: Bindings in the WDS,
//! WorkStatuses in the ITS, and the workload objects of every resource that
//! some Binding references (started and stopped as Bindings come and go).
//!
//! A watch that restarts relists; whatever the relist no longer shows was
//! deleted while the watch was down, and is forgotten at `InitDone`.
//!
//! Each watch retries after [`WatchBackoff`] and prunes what its relist no
//! longer shows with [`Relist`] (see [`crate::runtime::watch`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use tokio::task::AbortHandle;

use super::Context;
use super::index::{ObjectKey, report_id};
use super::wds::object_cache::WorkloadObject;
use crate::kubestellar::{Binding, ORIGIN_WDS_LABEL, RawWorkStatus, carries_our_label};
use crate::runtime::watch::{Relist, WATCH_BACKOFF_MAX, WatchBackoff};

/// Watches Bindings for ever.
pub async fn bindings(ctx: Arc<Context>) {
    let api: Api<Binding> = Api::all(ctx.wds.client().clone());
    let mut relist = Relist::default();
    let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
    let mut backoff = WatchBackoff::default();
    while let Some(event) = events.next().await {
        backoff.pace(&event).await;
        let affected = match event {
            Ok(Event::Init) => {
                relist.start();
                BTreeSet::new()
            }
            Ok(Event::InitApply(b) | Event::Apply(b)) => {
                let name = b.metadata.name.clone().unwrap_or_default();
                relist.saw(&name);
                ctx.index_mut().apply_binding(&name, &b.spec)
            }
            Ok(Event::Delete(b)) => ctx
                .index_mut()
                .delete_binding(b.metadata.name.as_deref().unwrap_or_default()),
            Ok(Event::InitDone) => {
                let mut index = ctx.index_mut();
                let gone = relist.finish(index.binding_names());
                let affected = gone.iter().flat_map(|n| index.delete_binding(n)).collect();
                drop(index);
                ctx.synced.send_modify(|s| s.bindings = true);
                affected
            }
            Err(e) => {
                tracing::warn!(error = %e, "Binding watch failed; retrying");
                continue;
            }
        };
        ctx.enqueue(affected);
        ctx.workload_watches.sync(&ctx);
    }
}

/// Watches the WorkStatuses of this WDS for ever. Their statuses are read as
/// raw text ([`RawWorkStatus`]), so one nested deeper than serde_json's
/// recursion limit cannot fail the whole list.
pub async fn work_statuses(ctx: Arc<Context>) {
    let api: Api<RawWorkStatus> = Api::all(ctx.its.clone());
    let mut relist = Relist::default();
    let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
    let mut backoff = WatchBackoff::default();
    while let Some(event) = events.next().await {
        backoff.pace(&event).await;
        let affected = match event {
            Ok(Event::Init) => {
                relist.start();
                BTreeSet::new()
            }
            Ok(Event::InitApply(ws) | Event::Apply(ws)) => {
                let Some(id) = report_id(&ws) else { continue };
                if ctx.is_ours(&ws) {
                    relist.saw(&id);
                    ctx.index_mut().apply_report(&ws)
                } else {
                    // Not ours, or no longer: relabelled to another WDS.
                    ctx.index_mut().delete_report(&id)
                }
            }
            Ok(Event::Delete(ws)) => match report_id(&ws) {
                Some(id) => ctx.index_mut().delete_report(&id),
                None => continue,
            },
            Ok(Event::InitDone) => {
                let mut index = ctx.index_mut();
                let gone = relist.finish(index.report_ids());
                let affected = gone.iter().flat_map(|id| index.delete_report(id)).collect();
                drop(index);
                ctx.synced.send_modify(|s| s.work_statuses = true);
                affected
            }
            Err(e) => {
                tracing::warn!(error = %e, "WorkStatus watch failed; retrying");
                continue;
            }
        };
        ctx.enqueue(affected);
    }
}

/// The running watches of workload resources, by (group, version, resource).
#[derive(Default)]
pub struct WorkloadWatches {
    running: std::sync::Mutex<HashMap<(String, String, String), AbortHandle>>,
}

impl WorkloadWatches {
    /// Starts a watch for each resource some Binding references, and stops
    /// those no Binding references any more.
    pub fn sync(&self, ctx: &Arc<Context>) {
        let wanted = ctx.index().resources();
        let mut running = self.running.lock().expect("watch lock");
        running.retain(|gvr, task| {
            let keep = wanted.contains(gvr);
            if !keep {
                tracing::info!(group = %gvr.0, version = %gvr.1, resource = %gvr.2, "stopping workload watch");
                task.abort();
                ctx.wds.forget_resource(&gvr.0, &gvr.2);
            }
            keep
        });
        for gvr in wanted {
            if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(gvr) {
                let gvr = slot.key().clone();
                tracing::info!(group = %gvr.0, version = %gvr.1, resource = %gvr.2, "starting workload watch");
                slot.insert(tokio::spawn(workloads(ctx.clone(), gvr)).abort_handle());
            }
        }
    }

    /// Stops every workload watch.
    pub fn stop_all(&self) {
        for (_, task) in self.running.lock().expect("watch lock").drain() {
            task.abort();
        }
    }
}

/// Watches the objects of one resource until aborted.
async fn workloads(ctx: Arc<Context>, (group, version, resource): (String, String, String)) {
    let mut backoff = WatchBackoff::default();
    let info = loop {
        match ctx.wds.resource(&group, &version, &resource).await {
            Ok(info) => break info,
            Err(e) => {
                let delay = backoff.next().unwrap_or(WATCH_BACKOFF_MAX);
                tracing::warn!(error = %e, retry_in = ?delay, "cannot watch a resource some Binding references; retrying");
                // Backoff: the WDS may be down, or the resource not served yet.
                tokio::time::sleep(delay).await;
            }
        }
    };
    let api: Api<WorkloadObject> = Api::all_with(ctx.wds.client().clone(), &info.api);
    let key_of = |o: &WorkloadObject| {
        ObjectKey::new(
            group.clone(),
            resource.clone(),
            o.metadata.namespace.clone().unwrap_or_default(),
            o.metadata.name.clone().unwrap_or_default(),
        )
    };
    let mut relist = Relist::default();
    let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
    let mut backoff = WatchBackoff::default();
    while let Some(event) = events.next().await {
        backoff.pace(&event).await;
        match event {
            Ok(Event::Init) => relist.start(),
            Ok(Event::InitApply(o) | Event::Apply(o)) => {
                let key = key_of(&o);
                let labels = o.metadata.labels.as_ref();
                let labelled = labels.is_some_and(carries_our_label);
                // The index's own key when it tracks the object: one key,
                // shared by the index, the queue and the cache.
                let tracked = ctx.index().tracked(&key);
                let key = tracked.clone().unwrap_or(key);
                relist.saw(&key);
                // Only objects that are ours or that some Binding or WorkStatus
                // names are kept: the watch sees every object of the resource.
                if labelled || tracked.is_some() {
                    // The echo of our own write: the cache holds this very
                    // version already (from the patch response), so the
                    // reconcile that wrote it has seen it.
                    let echo = ctx.wds.cached_resource_version(&key) == o.metadata.resource_version;
                    ctx.wds.cache_object(key.clone(), o);
                    if !echo {
                        ctx.queue.add(key);
                    }
                } else {
                    ctx.wds.forget_object(&key);
                }
            }
            Ok(Event::Delete(o)) => ctx.wds.forget_object(&key_of(&o)),
            Ok(Event::InitDone) => {
                let seen = relist.take_seen();
                ctx.wds
                    .retain_resource(&group, &resource, |k| seen.contains(k));
            }
            Err(e) => tracing::warn!(%resource, error = %e, "workload watch failed; retrying"),
        }
    }
}

impl Context {
    fn is_ours(&self, ws: &RawWorkStatus) -> bool {
        let labels = ws.metadata.labels.as_ref();
        labels
            .and_then(|l| l.get(ORIGIN_WDS_LABEL))
            .is_none_or(|origin| *origin == self.config.wds_name)
    }
}
