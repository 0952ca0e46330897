//! The split of KubeStellar's `syncWorkloadObject`: the policy decides, then
//! `handle_singleton_state`, `handle_multi_wec_state` or the clear path for
//! `none` writes what KubeStellar would.
//!
//! A failed policy call is an error (retried with backoff), never a cleared
//! status: a bad policy must not change what users see. Every write also
//! carries the `kubestellar.io/executing-count` label (`executing_count`).

pub mod executing_count;
#[cfg(test)]
mod tests;
pub mod workload;

use std::collections::BTreeSet;

use serde_json::Value;

use self::executing_count::executing_count;
use self::workload::{Desired, StatusLabel, Workload, WorkloadObjects};
use super::index::{ObjectFacts, ObjectKey, Report};
use crate::kubestellar::{StatusText, carries_our_label};
use crate::policy::{Decision, PolicyError, PolicyInstance, ReportedStatus, Request, WorkloadRef};

/// What a reconcile did, for logs, metrics and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The object does not exist (or is never written): nothing to do.
    Skipped,
    /// The object already was as wanted.
    Unchanged,
    /// The status or labels were written.
    Written,
    /// The policy refused to aggregate; an Event says why.
    AggregateRefused,
    /// The one report to copy cannot be read (nested too deep); an Event
    /// says why, and the object's status is left as it is.
    ReportRefused,
}

/// Why a reconcile failed; it is retried.
#[derive(Debug, thiserror::Error)]
pub enum SyncError<E: std::error::Error + 'static> {
    #[error("policy failed: {0}")]
    Policy(#[from] PolicyError),
    #[error("WDS: {0}")]
    Wds(E),
}

/// Reconciles one workload object.
pub async fn sync_workload_object<W: WorkloadObjects>(
    wds: &W,
    facts: &ObjectFacts,
    policy: &mut PolicyInstance,
    key: &ObjectKey,
) -> Result<Outcome, SyncError<W::Error>> {
    if never_written(key) {
        return Ok(Outcome::Skipped);
    }
    let routing = &facts.routing;
    let version = match &routing.version {
        Some(version) => version.clone(),
        // Named by nothing any more (its last Binding and WorkStatus gone
        // before this reconcile ran): it may still carry our labels.
        None => match wds.known_version(&key.group, &key.resource).await {
            Some(version) => version,
            None => return Ok(Outcome::Skipped),
        },
    };
    let Some(object) = wds.get(key, &version).await.map_err(SyncError::Wds)? else {
        return Ok(Outcome::Skipped);
    };
    let request = Request {
        object: workload_ref(&object),
        want_singleton_reported_state: routing.want_singleton,
        want_multi_wec_reported_state: routing.want_multi_wec,
        singleton_wecs: routing.singleton_wecs.iter().cloned().collect(),
        multi_wec_wecs: routing.multi_wec_wecs.iter().cloned().collect(),
    };
    match policy.decide(&request)? {
        Decision::Singleton(wecs) => handle_singleton_state(wds, facts, &object, &wecs).await,
        Decision::MultiWec(wecs) => {
            handle_multi_wec_state(wds, facts, policy, &object, &request.object, &wecs).await
        }
        Decision::None => clear_if_ours(wds, facts, &object).await,
    }
}

/// Copies the status reported by the one WEC; clears unless there is exactly
/// one WEC with exactly one WorkStatus; changes nothing while that WorkStatus
/// has no status yet.
pub async fn handle_singleton_state<W: WorkloadObjects>(
    wds: &W,
    facts: &ObjectFacts,
    object: &Workload,
    wecs: &[String],
) -> Result<Outcome, SyncError<W::Error>> {
    let wecs = as_set(wecs);
    let reports = facts.reports_from(&wecs);
    match (wecs.len(), reports.as_slice()) {
        (1, [report]) => match &report.status {
            Some(status) => copy_singleton(wds, facts, object, &report.id.wec, status).await,
            None => Ok(Outcome::Unchanged),
        },
        _ => write_desired(wds, facts, object, Desired::cleared()).await,
    }
}

/// Gathers the statuses reported by the WECs: none clears, one is written as
/// a singleton, two or more are aggregated by the policy.
pub async fn handle_multi_wec_state<W: WorkloadObjects>(
    wds: &W,
    facts: &ObjectFacts,
    policy: &mut PolicyInstance,
    object: &Workload,
    object_ref: &WorkloadRef,
    wecs: &[String],
) -> Result<Outcome, SyncError<W::Error>> {
    let reported: Vec<(String, StatusText)> = facts
        .reports_from(wecs)
        .into_iter()
        .filter_map(|Report { id, status }| status.map(|s| (id.wec.clone(), s)))
        .collect();
    match reported.as_slice() {
        [] => write_desired(wds, facts, object, Desired::cleared()).await,
        [(wec, status)] => copy_singleton(wds, facts, object, wec, status).await,
        _ => {
            let statuses: Vec<ReportedStatus> = reported
                .iter()
                .map(|(wec, status)| ReportedStatus {
                    wec: wec.clone(),
                    status: status.to_string(),
                })
                .collect();
            match policy.aggregate(object_ref, &statuses)? {
                Ok(status) => write(wds, facts, object, status, StatusLabel::MultiWec).await,
                Err(refusal) => {
                    let wecs: Vec<&str> = reported.iter().map(|(wec, _)| wec.as_str()).collect();
                    let note =
                        format!("the policy cannot aggregate the statuses of {wecs:?}: {refusal}");
                    wds.warn(object, "AggregateFailed", note).await;
                    Ok(Outcome::AggregateRefused)
                }
            }
        }
    }
}

/// Writes one WEC's reported status as the object's, unless the host cannot
/// read it: then nothing changes on the object but a warning Event, and a
/// new report re-queues it.
async fn copy_singleton<W: WorkloadObjects>(
    wds: &W,
    facts: &ObjectFacts,
    object: &Workload,
    wec: &str,
    status: &StatusText,
) -> Result<Outcome, SyncError<W::Error>> {
    match status.parse() {
        Ok(status) => write(wds, facts, object, status, StatusLabel::Singleton).await,
        Err(refusal) => {
            let note = format!("the status reported by WEC {wec} was not copied: {refusal}");
            tracing::warn!(object = %object.key, %wec, error = %refusal, "refusing a reported status");
            wds.warn(object, "ReportUnreadable", note).await;
            Ok(Outcome::ReportRefused)
        }
    }
}

/// The `none` decision: clears, but only an object that carries our labels.
async fn clear_if_ours<W: WorkloadObjects>(
    wds: &W,
    facts: &ObjectFacts,
    object: &Workload,
) -> Result<Outcome, SyncError<W::Error>> {
    if !carries_our_label(&object.labels) {
        return Ok(Outcome::Unchanged);
    }
    write_desired(wds, facts, object, Desired::cleared()).await
}

async fn write<W: WorkloadObjects>(
    wds: &W,
    facts: &ObjectFacts,
    object: &Workload,
    status: Value,
    label: StatusLabel,
) -> Result<Outcome, SyncError<W::Error>> {
    let desired = Desired {
        status,
        label: Some(label),
        executing_count: None,
    };
    write_desired(wds, facts, object, desired).await
}

/// Writes `desired`, with the executing-count the routing facts give.
async fn write_desired<W: WorkloadObjects>(
    wds: &W,
    facts: &ObjectFacts,
    object: &Workload,
    mut desired: Desired,
) -> Result<Outcome, SyncError<W::Error>> {
    desired.executing_count = executing_count(&facts.routing);
    match wds.write(object, &desired).await {
        Ok(true) => Ok(Outcome::Written),
        Ok(false) => Ok(Outcome::Unchanged),
        Err(e) => Err(SyncError::Wds(e)),
    }
}

/// Core Namespaces and CRDs are never written, whatever a Binding asks.
pub fn never_written(key: &ObjectKey) -> bool {
    matches!(
        (key.group.as_str(), key.resource.as_str()),
        ("", "namespaces") | ("apiextensions.k8s.io", "customresourcedefinitions")
    )
}

fn workload_ref(object: &Workload) -> WorkloadRef {
    WorkloadRef {
        group: object.key.group.clone(),
        version: object.version.clone(),
        resource: object.key.resource.clone(),
        kind: object.kind.clone(),
        namespace: (!object.key.namespace.is_empty()).then(|| object.key.namespace.clone()),
        name: object.key.name.clone(),
        labels: object.labels.clone().into_iter().collect(),
        annotations: object.annotations.clone().into_iter().collect(),
    }
}

fn as_set(wecs: &[String]) -> Vec<String> {
    wecs.iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}
