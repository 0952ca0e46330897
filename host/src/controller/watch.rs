//! The watches that feed the index and the queue: Bindings in the WDS,
//! WorkStatuses in the ITS, and the workload objects of every resource that
//! some Binding references (started and stopped as Bindings come and go).
//!
//! A watch that restarts relists; whatever the relist no longer shows was
//! deleted while the watch was down, and is forgotten at `InitDone`.
//!
//! A failed watch retries after [`WatchBackoff`], not kube's default backoff:
//! that one grows to 30 s and only resets after two quiet minutes, so after a
//! few API server or etcd restarts in a row a watch came back up to 12 s
//! after its server did (measured in RELIABILITY.md). A handful of watches
//! retrying once a second against a server that is down costs it nothing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, Event};
use tokio::task::AbortHandle;

use super::Context;
use super::index::{ObjectKey, report_id};
use super::object_cache::WorkloadObject;
use crate::kubestellar::{Binding, ORIGIN_WDS_LABEL, RawWorkStatus, carries_our_label};

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

/// First retry delay of a failed watch.
pub const WATCH_BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest retry delay of a failed watch: what a watch may lag behind its
/// API server's return.
pub const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The retry delays of a failed watch: 50 ms doubling up to 1 s, reset by
/// the first event after a success. Not kube's `StreamBackoff`: that one
/// resets on every item that is not an error, and a watcher that relists
/// emits `Init` before each attempt, so a list that keeps failing (a server
/// that is down) would be retried every 50 ms.
#[derive(Clone, Debug)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self {
            next: WATCH_BACKOFF_MIN,
        }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (delay * 2).min(WATCH_BACKOFF_MAX);
        Some(delay)
    }
}

impl WatchBackoff {
    /// Paces a watch loop: waits the next delay after an error; an event
    /// other than the `Init` that starts each list attempt resets the delay.
    pub async fn pace<K>(&mut self, event: &Result<Event<K>, watcher::Error>) {
        match event {
            Err(_) => tokio::time::sleep(self.next().unwrap_or(WATCH_BACKOFF_MAX)).await,
            Ok(Event::Init) => {}
            Ok(_) => self.reset(),
        }
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = WATCH_BACKOFF_MIN;
    }
}

/// What a watch saw while it (re)listed: whatever the index or the cache
/// still knows that the list did not show was deleted while the watch was down.
pub(super) struct Relist<K> {
    seen: Option<HashSet<K>>,
}

impl<K> Default for Relist<K> {
    fn default() -> Self {
        Self { seen: None }
    }
}

impl<K: Clone + Eq + std::hash::Hash> Relist<K> {
    /// A list begins (`Init`).
    pub(super) fn start(&mut self) {
        self.seen = Some(HashSet::new());
    }

    /// An object arrived; counts only during a list.
    pub(super) fn saw(&mut self, key: &K) {
        if let Some(seen) = self.seen.as_mut() {
            seen.insert(key.clone());
        }
    }

    /// The list is done (`InitDone`): what it showed.
    pub(super) fn take_seen(&mut self) -> HashSet<K> {
        self.seen.take().unwrap_or_default()
    }

    /// The list is done (`InitDone`): those of `known` it did not show.
    pub(super) fn finish(&mut self, known: Vec<K>) -> Vec<K> {
        let seen = self.take_seen();
        known.into_iter().filter(|k| !seen.contains(k)).collect()
    }

    /// The list is done (`InitDone`): removes from `map` what it did not
    /// show, and returns those keys.
    pub(super) fn prune<V>(&mut self, map: &mut HashMap<K, V>) -> Vec<K> {
        let gone = self.finish(map.keys().cloned().collect());
        for key in &gone {
            map.remove(key);
        }
        gone
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

#[cfg(test)]
mod tests {
    use super::{Backoff, Relist, WATCH_BACKOFF_MAX, WATCH_BACKOFF_MIN, WatchBackoff};

    #[test]
    fn a_watch_retries_within_a_second_and_a_success_resets_its_backoff() {
        let mut backoff = WatchBackoff::default();
        let delays: Vec<_> = backoff.by_ref().take(8).collect();
        assert_eq!(delays[0], WATCH_BACKOFF_MIN);
        assert_eq!(delays[1], WATCH_BACKOFF_MIN * 2);
        assert_eq!(*delays.last().unwrap(), WATCH_BACKOFF_MAX);
        assert!(delays.iter().all(|d| *d <= WATCH_BACKOFF_MAX));
        backoff.reset();
        assert_eq!(backoff.next(), Some(WATCH_BACKOFF_MIN));
    }

    #[test]
    fn what_a_relist_did_not_show_is_gone_and_events_outside_a_list_do_not_count() {
        let mut relist = Relist::default();
        relist.saw(&"before");
        relist.start();
        relist.saw(&"a");
        relist.saw(&"b");
        assert_eq!(
            relist.finish(vec!["a", "b", "c", "before"]),
            ["c", "before"]
        );
        assert!(
            relist.take_seen().is_empty(),
            "a finished list forgets what it saw"
        );
    }

    #[test]
    fn a_relist_prunes_what_it_did_not_show_from_a_map() {
        let mut relist = Relist::default();
        let mut known: std::collections::HashMap<&str, u32> =
            [("a", 1), ("gone", 2)].into_iter().collect();
        relist.start();
        relist.saw(&"a");
        assert_eq!(relist.prune(&mut known), ["gone"]);
        assert_eq!(known.into_iter().collect::<Vec<_>>(), [("a", 1)]);
    }
}
