//! The `StatusCollectorsAvailable` condition of Bindings, word for word as
//! KubeStellar's status controller sets it, so that tools written for it read
//! ours: on every Binding, False (reason `ReconcileError`, message
//! `Missing StatusCollector(s) [a b]`) naming the collectors the Binding names
//! that are missing or invalid, else True (`ReconcileSuccess`, `All
//! StatusCollector(s) are available`), also when it names none. It has a
//! Binding watch of its own, so that it keeps each Binding's status (the index
//! keeps only what reconciles need).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use serde_json::json;

use crate::controller::Context;
use crate::kubestellar::{Binding, BindingCondition};
use crate::runtime::api::FIELD_MANAGER;
use crate::runtime::watch::{Relist, WatchBackoff};

/// The condition on Bindings that says whether their collectors exist.
pub const CONDITION: &str = "StatusCollectorsAvailable";

/// Keeps `StatusCollectorsAvailable` on every Binding: False (reason
/// `ReconcileError`) naming the missing or invalid collectors, True when all
/// are there. Rechecked on every Binding event and collector change;
/// a failed write is retried on the next tick of a backoff timer.
pub(super) async fn binding_conditions(ctx: Arc<Context>) {
    let api: Api<Binding> = Api::all(ctx.wds.client().clone());
    let mut bindings: HashMap<String, Binding> = HashMap::new();
    let mut pending: BTreeSet<String> = BTreeSet::new();
    let mut changes = ctx.combined.collectors_changed.subscribe();
    // A standby keeps the Bindings and what is pending, and writes once it
    // leads.
    let mut gate = ctx.write_gate();
    let mut events = watcher::watcher(api.clone(), watcher::Config::default()).boxed();
    let mut backoff = WatchBackoff::default();
    // Bindings deleted while the watch was down are dropped after the relist,
    // so that no write to a gone Binding is retried forever.
    let mut relist = Relist::default();
    let mut delay = Duration::from_millis(200);
    loop {
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { return };
                backoff.pace(&event).await;
                match event {
                    Ok(Event::InitApply(b) | Event::Apply(b)) => {
                        let name = b.metadata.name.clone().unwrap_or_default();
                        relist.saw(&name);
                        bindings.insert(name.clone(), b);
                        pending.insert(name);
                    }
                    Ok(Event::Delete(b)) => {
                        let name = b.metadata.name.clone().unwrap_or_default();
                        bindings.remove(&name);
                        pending.remove(&name);
                    }
                    Ok(Event::Init) => relist.start(),
                    Ok(Event::InitDone) => {
                        for name in relist.prune(&mut bindings) {
                            pending.remove(&name);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "Binding watch (conditions) failed; retrying"),
                }
            }
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                pending.extend(bindings.keys().cloned());
            }
            changed = gate.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            // Backoff before retrying writes that failed.
            () = tokio::time::sleep(delay), if !pending.is_empty() && ctx.may_write() => {}
        }
        if !ctx.combined.synced.borrow().collectors || !ctx.may_write() {
            continue;
        }
        let mut failed = BTreeSet::new();
        for name in std::mem::take(&mut pending) {
            let Some(binding) = bindings.get(&name) else {
                continue;
            };
            if let Err(e) = write_condition(&api, &ctx, binding).await {
                tracing::warn!(binding = %name, error = %e, "cannot write the StatusCollectorsAvailable condition");
                failed.insert(name);
            }
        }
        delay = if failed.is_empty() {
            Duration::from_millis(200)
        } else {
            (delay * 2).min(Duration::from_secs(30))
        };
        pending = failed;
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
) -> Result<(), kube::Error> {
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
    api.patch_status(&name, &params, &Patch::Merge(patch))
        .await?;
    Ok(())
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
