//! The `StatusCollectorsAvailable` condition of Bindings, word for word as
//! KubeStellar's status controller sets it, so that tools written for it read
//! ours: on every Binding, False (reason `ReconcileError`, message
//! `Missing StatusCollector(s) [a b]`) naming the collectors the Binding names
//! that are missing or invalid, else True (`ReconcileSuccess`, `All
//! StatusCollector(s) are available`), also when it names none. It has a
//! Binding watch of its own, so that it keeps each Binding's status (the index
//! keeps only what reconciles need), and a queue of Binding names that one
//! worker writes from, with the error policy of [`crate::runtime::reconcile`].

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use serde_json::json;

use crate::controller::Context;
use crate::kubestellar::{Binding, BindingCondition};
use crate::runtime::api::{self, CallError, FIELD_MANAGER};
use crate::runtime::watch::{Relist, WatchBackoff};

/// The condition on Bindings that says whether their collectors exist.
pub const CONDITION: &str = "StatusCollectorsAvailable";

/// Keeps every Binding, whole, for its condition, and queues the Bindings
/// whose condition may need a write: each one at its events, and all of them
/// when the set of valid collectors changes.
pub(super) async fn bindings(ctx: Arc<Context>) {
    let api: Api<Binding> = Api::all(ctx.wds.client().clone());
    let queue = &ctx.combined.binding_conditions.queue;
    let mut changes = ctx.combined.collectors_changed.subscribe();
    let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
    let mut backoff = WatchBackoff::default();
    // Bindings deleted while the watch was down are dropped after the relist.
    let mut relist = Relist::default();
    loop {
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { return };
                backoff.pace(&event).await;
                match event {
                    Ok(Event::InitApply(b) | Event::Apply(b)) => {
                        let name = b.metadata.name.clone().unwrap_or_default();
                        relist.saw(&name);
                        ctx.combined.bindings.write().expect("lock").insert(name.clone(), b);
                        queue.add(name);
                    }
                    Ok(Event::Delete(b)) => {
                        let name = b.metadata.name.clone().unwrap_or_default();
                        ctx.combined.bindings.write().expect("lock").remove(&name);
                    }
                    Ok(Event::Init) => relist.start(),
                    Ok(Event::InitDone) => {
                        relist.prune(&mut ctx.combined.bindings.write().expect("lock"));
                    }
                    Err(e) => tracing::warn!(error = %e, "Binding watch (conditions) failed; retrying"),
                }
            }
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                let names: Vec<String> =
                    ctx.combined.bindings.read().expect("lock").keys().cloned().collect();
                for name in names {
                    queue.add(name);
                }
            }
        }
    }
}

/// Writes Binding conditions from the queue, once the collectors are listed
/// (before that every named collector would look missing) and from when this
/// replica may write until the controller stops. A standby keeps its queue,
/// de-duplicated, and works it off once it leads.
pub(super) async fn write(ctx: Arc<Context>) {
    let api: Api<Binding> = Api::all(ctx.wds.client().clone());
    let conditions = &ctx.combined.binding_conditions;
    let mut synced = ctx.combined.synced.subscribe();
    if synced.wait_for(|s| s.collectors).await.is_err()
        || ctx.write_gate().wait_for(|w| *w).await.is_err()
    {
        return;
    }
    while let Some(name) = conditions.queue.next().await {
        let binding = ctx
            .combined
            .bindings
            .read()
            .expect("lock")
            .get(&name)
            .cloned();
        let reconcile = async {
            match binding {
                Some(binding) => write_condition(&api, &ctx, &binding).await,
                None => Ok(()),
            }
        };
        let (result, retry_in) = conditions.reconcile(&name, reconcile).await;
        if let Err(e) = result {
            tracing::warn!(binding = %name, error = %e, ?retry_in, "cannot write the StatusCollectorsAvailable condition");
        }
    }
}

/// The condition a Binding should carry: (status, reason, message).
pub fn wanted_condition(
    binding: &Binding,
    available: impl Fn(&str) -> bool,
) -> (&'static str, &'static str, String) {
    let w = &binding.spec.workload;
    let named: BTreeSet<&String> = w
        .cluster_scope
        .iter()
        .map(|c| &c.modulation)
        .chain(w.namespace_scope.iter().map(|c| &c.modulation))
        .flat_map(|m| &m.status_collectors)
        .collect();
    // Sorted, as KubeStellar lists them (Go's `%s` of a string slice).
    let missing: Vec<&str> = named
        .into_iter()
        .map(String::as_str)
        .filter(|n| !available(n))
        .collect();
    if missing.is_empty() {
        (
            "True",
            "ReconcileSuccess",
            "All StatusCollector(s) are available".into(),
        )
    } else {
        (
            "False",
            "ReconcileError",
            format!("Missing StatusCollector(s) [{}]", missing.join(" ")),
        )
    }
}

async fn write_condition(
    api: &Api<Binding>,
    ctx: &Context,
    binding: &Binding,
) -> Result<(), CallError> {
    let (status, reason, message) = wanted_condition(binding, |n| ctx.combined.is_available(n));
    let current = binding.status.clone().unwrap_or_default();
    let old = current.conditions.iter().find(|c| c.type_ == CONDITION);
    if old.is_some_and(|c| c.status == status && c.reason == reason && c.message == message) {
        return Ok(());
    }
    let last_transition_time = match old {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => k8s_openapi::jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
    };
    let mut conditions: Vec<BindingCondition> = current
        .conditions
        .iter()
        .filter(|c| c.type_ != CONDITION)
        .cloned()
        .collect();
    conditions.push(BindingCondition {
        type_: CONDITION.into(),
        status: status.into(),
        last_transition_time,
        reason: reason.into(),
        message,
    });
    let patch = json!({"status": {
        "observedGeneration": current.observed_generation,
        "conditions": conditions,
    }});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let name = binding.metadata.name.clone().unwrap_or_default();
    match api::bounded(api.patch_status(&name, &params, &Patch::Merge(patch))).await {
        Ok(_) => Ok(()),
        // Deleted since it was seen: its Delete event follows.
        Err(CallError::Api(kube::Error::Api(e))) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubestellar::BindingSpec;

    fn binding(collectors: &[&str]) -> Binding {
        let spec: BindingSpec = serde_json::from_value(json!({
            "destinations": [{"clusterId": "c1"}],
            "workload": {"namespaceScope": [{
                "group": "apps", "version": "v1", "resource": "deployments",
                "namespace": "ns", "name": "web", "resourceVersion": "1",
                "statusCollectors": collectors}]}
        }))
        .unwrap();
        Binding::new("b", spec)
    }

    #[test]
    fn names_the_missing_collectors_or_says_all_are_there_as_kubestellar_does() {
        let available = |n: &str| n == "sum";
        let all_there = (
            "True",
            "ReconcileSuccess",
            "All StatusCollector(s) are available".to_string(),
        );
        assert_eq!(wanted_condition(&binding(&[]), available), all_there);
        assert_eq!(wanted_condition(&binding(&["sum"]), available), all_there);
        assert_eq!(
            wanted_condition(&binding(&["sum", "ghost", "broken"]), available),
            (
                "False",
                "ReconcileError",
                "Missing StatusCollector(s) [broken ghost]".to_string()
            )
        );
    }
}
