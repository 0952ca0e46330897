//! The watches behind CombinedStatuses: StatusCollectors (compiled once per
//! generation, their `status` queued for [`super::collector_status`], the
//! objects naming them re-queued),
//! BindingPolicies (their UIDs name CombinedStatuses), the CombinedStatuses
//! themselves (what exists; one changed or deleted by someone else is
//! re-queued), and (in [`super::condition`]) the `StatusCollectorsAvailable`
//! condition of Bindings.
//!
//! They and the two queue-fed writers run as one future in one task, so that
//! stopping the controller stops them together.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::watcher::{self, Event};

use super::Known;
use crate::collector;
use crate::controller::Context;
use crate::kubestellar::{BindingPolicy, CombinedStatus, GROUP, StatusCollector};
use crate::runtime::watch::{Relist, WatchBackoff};

/// Runs every watch of the feature, once the WDS serves its resources.
pub async fn run(ctx: Arc<Context>) {
    let mut logged = false;
    loop {
        let mut missing = Vec::new();
        for resource in ["statuscollectors", "combinedstatuses", "bindingpolicies"] {
            if ctx.wds.resource(GROUP, "v1alpha1", resource).await.is_err() {
                missing.push(resource);
            }
        }
        if missing.is_empty() {
            break;
        }
        if !logged {
            tracing::info!(
                ?missing,
                "the WDS does not serve these KubeStellar resources: CombinedStatuses are off until it does"
            );
            logged = true;
        }
        // Poll: a CRD installed later turns the feature on.
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    futures::join!(
        status_collectors(ctx.clone()),
        binding_policies(ctx.clone()),
        combined_statuses(ctx.clone()),
        super::condition::bindings(ctx.clone()),
        super::collector_status::write(ctx.clone()),
        super::condition::write(ctx.clone()),
    );
}

fn mark(ctx: &Context, set: impl FnOnce(&mut super::Synced)) {
    let was = ctx.combined.ready();
    ctx.combined.synced.send_modify(set);
    if !was && ctx.combined.ready() {
        let objects = ctx.index().objects_naming(None);
        tracing::info!(objects = objects.len(), "CombinedStatuses: inputs listed");
        ctx.enqueue(objects);
    }
}

async fn status_collectors(ctx: Arc<Context>) {
    let api: Api<StatusCollector> = Api::all(ctx.wds.client().clone());
    let mut relist = Relist::default();
    let mut events = watcher::watcher(api.clone(), watcher::Config::default()).boxed();
    let mut backoff = WatchBackoff::default();
    while let Some(event) = events.next().await {
        backoff.pace(&event).await;
        let changed: Vec<String> = match event {
            Ok(Event::Init) => {
                relist.start();
                continue;
            }
            Ok(Event::InitApply(sc) | Event::Apply(sc)) => {
                let name = sc.metadata.name.clone().unwrap_or_default();
                relist.saw(&name);
                let changed = learn(&ctx, &sc);
                ctx.combined.collector_statuses.queue.add(name.clone());
                if changed { vec![name] } else { vec![] }
            }
            Ok(Event::Delete(sc)) => {
                let name = sc.metadata.name.clone().unwrap_or_default();
                ctx.combined.collectors.write().expect("lock").remove(&name);
                vec![name]
            }
            Ok(Event::InitDone) => {
                let gone = relist.prune(&mut ctx.combined.collectors.write().expect("lock"));
                mark(&ctx, |s| s.collectors = true);
                gone
            }
            Err(e) => {
                tracing::warn!(error = %e, "StatusCollector watch failed; retrying");
                continue;
            }
        };
        if !changed.is_empty() {
            ctx.combined.collectors_changed.send_modify(|n| *n += 1);
            let index = ctx.index();
            let objects: BTreeSet<_> = changed
                .iter()
                .flat_map(|name| index.objects_naming(Some(name)))
                .collect();
            drop(index);
            ctx.enqueue(objects);
        }
    }
}

/// Compiles a collector unless this generation is compiled already; returns
/// whether anything changed.
fn learn(ctx: &Context, sc: &StatusCollector) -> bool {
    let name = sc.metadata.name.clone().unwrap_or_default();
    let generation = sc.metadata.generation.unwrap_or_default();
    if ctx
        .combined
        .collector(&name)
        .is_some_and(|k| k.generation == generation)
    {
        return false;
    }
    let compiled = collector::compile(&ctx.combined.engine, &name, generation, &sc.spec);
    if let Err(errors) = &compiled {
        tracing::warn!(collector = %name, ?errors, "invalid StatusCollector");
    }
    let known = Arc::new(Known {
        generation,
        compiled,
    });
    ctx.combined
        .collectors
        .write()
        .expect("lock")
        .insert(name, known);
    true
}

async fn binding_policies(ctx: Arc<Context>) {
    // Metadata only: the UID is all that is read.
    let api: Api<PartialObjectMeta<BindingPolicy>> = Api::all(ctx.wds.client().clone());
    let mut relist = Relist::default();
    let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
    let mut backoff = WatchBackoff::default();
    while let Some(event) = events.next().await {
        backoff.pace(&event).await;
        let changed: Vec<String> = match event {
            Ok(Event::Init) => {
                relist.start();
                continue;
            }
            Ok(Event::InitApply(bp) | Event::Apply(bp)) => {
                let name = bp.metadata.name.clone().unwrap_or_default();
                let uid = bp.metadata.uid.clone().unwrap_or_default();
                relist.saw(&name);
                let old = ctx
                    .combined
                    .policies
                    .write()
                    .expect("lock")
                    .insert(name.clone(), uid.clone());
                if old.as_ref() == Some(&uid) {
                    vec![]
                } else {
                    vec![name]
                }
            }
            Ok(Event::Delete(bp)) => {
                let name = bp.metadata.name.clone().unwrap_or_default();
                ctx.combined.policies.write().expect("lock").remove(&name);
                vec![name]
            }
            Ok(Event::InitDone) => {
                let gone = relist.prune(&mut ctx.combined.policies.write().expect("lock"));
                mark(&ctx, |s| s.policies = true);
                gone
            }
            Err(e) => {
                tracing::warn!(error = %e, "BindingPolicy watch failed; retrying");
                continue;
            }
        };
        let index = ctx.index();
        let objects: BTreeSet<_> = changed
            .iter()
            .flat_map(|name| index.collecting_objects_of(name))
            .collect();
        drop(index);
        ctx.enqueue(objects);
    }
}

async fn combined_statuses(ctx: Arc<Context>) {
    let api: Api<CombinedStatus> = Api::all(ctx.wds.client().clone());
    let mut relist = Relist::default();
    let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
    let mut backoff = WatchBackoff::default();
    let existing = &ctx.combined.existing;
    while let Some(event) = events.next().await {
        backoff.pace(&event).await;
        let subject = match event {
            Ok(Event::Init) => {
                relist.start();
                None
            }
            Ok(Event::InitApply(cs) | Event::Apply(cs)) => {
                relist.saw(&(
                    cs.metadata.namespace.clone().unwrap_or_default(),
                    cs.metadata.name.clone().unwrap_or_default(),
                ));
                let subject = super::write::subject_of(&cs);
                // Our own write's echo is known already; anything else is
                // checked against what the collectors give.
                existing.saw(cs).then_some(subject).flatten()
            }
            Ok(Event::Delete(cs)) => {
                existing.forget(&cs);
                super::write::subject_of(&cs)
            }
            Ok(Event::InitDone) => {
                let seen = relist.take_seen();
                existing.retain(|id| seen.contains(id));
                mark(&ctx, |s| s.combined_statuses = true);
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "CombinedStatus watch failed; retrying");
                None
            }
        };
        if let Some(key) = subject
            && ctx.combined.ready()
        {
            ctx.queue.add(key);
        }
    }
}
