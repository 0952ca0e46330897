//! The checks `status-router run` makes before it starts: both API servers
//! answer, serve KubeStellar's CRDs, and let this controller's identities
//! watch what it must watch.
//!
//! Without the access check, a missing RBAC grant shows up only as a watch
//! that fails and retries for ever while the controller waits to sync, which
//! an operator reads as a hang. The check asks each API server
//! (SelfSubjectAccessReview, which any authenticated identity may create)
//! and fails with one line naming the permission and the manifest that
//! grants it.
//!
//! An API server that does not answer yet (connection refused or reset, a
//! 5xx) is waited for, up to [`REACH_TIMEOUT`]: a controller (re)started while
//! its API server restarts, as a pod is after a node or control-plane
//! outage, should wait for it rather than exit and count a crash.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use std::future::Future;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, PostParams};
use kube::core::GroupVersion;
use kube::discovery::oneshot;

use super::StartError;
use crate::kubestellar::GROUP;
use crate::runtime::api::{self, CallError, transient};
use crate::runtime::watch::WatchBackoff;

/// How long the start waits for an API server that does not answer.
pub const REACH_TIMEOUT: Duration = Duration::from_secs(60);

/// One API server the controller reads: the WDS or the ITS.
pub struct Space<'a> {
    /// `WDS` or `ITS`, for messages.
    pub name: &'static str,
    pub client: &'a Client,
    /// The KubeStellar resource it must watch cluster-wide.
    pub resource: &'static str,
    /// The manifest that grants what it needs.
    pub rbac: &'static str,
}

/// Runs every check on each space. The spaces are checked at once, and so
/// are the checks of a space once it answers: they are a controller's first
/// round trips, and in sequence they delayed its first status by a second on
/// a loaded machine. The error reported is the first in order (space, then
/// check), whatever finished first.
pub async fn check(spaces: &[Space<'_>]) -> Result<(), StartError> {
    let results = futures::future::join_all(spaces.iter().map(check_space)).await;
    results.into_iter().collect()
}

async fn check_space(space: &Space<'_>) -> Result<(), StartError> {
    reachable(space).await?;
    let (crd, list, watch) =
        futures::join!(serves_crd(space), may(space, "list"), may(space, "watch"));
    crd.and(list).and(watch)
}

async fn reachable(space: &Space<'_>) -> Result<(), StartError> {
    answer(space, "reach", || space.client.apiserver_version())
        .await
        .map(drop)
        .map_err(|source| StartError::Unreachable {
            space: space.name,
            source,
        })
}

async fn serves_crd(space: &Space<'_>) -> Result<(), StartError> {
    let gv = GroupVersion::gv(GROUP, "v1alpha1");
    // Only an answer counts: a discovery that failed because the server went
    // away again is retried, not taken for a missing CRD.
    let served = answer(space, "discover", || {
        oneshot::pinned_group(space.client, &gv)
    })
    .await
    .is_ok_and(|group| {
        group
            .versioned_resources("v1alpha1")
            .iter()
            .any(|(ar, _)| ar.plural == space.resource)
    });
    if served {
        Ok(())
    } else {
        Err(StartError::MissingCrd {
            space: space.name,
            group: GROUP,
            version: "v1alpha1",
            resource: space.resource,
        })
    }
}

/// Runs `call` until the API server answers it (success, or an error that
/// is not transient), retrying transient errors with the watches' backoff
/// (50 ms doubling to 1 s) for up to [`REACH_TIMEOUT`].
async fn answer<T, F: Future<Output = Result<T, kube::Error>>>(
    space: &Space<'_>,
    what: &'static str,
    call: impl Fn() -> F,
) -> Result<T, kube::Error> {
    let deadline = Instant::now() + REACH_TIMEOUT;
    let mut backoff = WatchBackoff::default();
    loop {
        match bounded(call()).await {
            Err(e) if transient(&e) && Instant::now() < deadline => {
                let delay = backoff.next().unwrap_or(Duration::from_secs(1));
                tracing::warn!(space = space.name, error = %e, retry_in = ?delay, "cannot {what} the API server yet; waiting for it (up to {REACH_TIMEOUT:?})");
                tokio::time::sleep(delay).await; // backoff
            }
            result => return result,
        }
    }
}

/// One call under [`api::REQUEST_TIMEOUT`]; no answer in time is a
/// transport error, so transient.
async fn bounded<T>(call: impl Future<Output = Result<T, kube::Error>>) -> Result<T, kube::Error> {
    match api::bounded(call).await {
        Ok(value) => Ok(value),
        Err(CallError::Api(e)) => Err(e),
        Err(CallError::Timeout) => Err(kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {:?}", api::REQUEST_TIMEOUT),
        )))),
    }
}

/// Fails when the API server says this identity may not `verb` the space's
/// resource cluster-wide. An API server that cannot answer the question
/// (an error, not a "no") does not stop the start: the watch will tell.
async fn may(space: &Space<'_>, verb: &'static str) -> Result<(), StartError> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(GROUP.into()),
                resource: Some(space.resource.into()),
                verb: Some(verb.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(space.client.clone());
    match bounded(api.create(&PostParams::default(), &review)).await {
        Ok(answer) if answer.status.as_ref().is_some_and(|s| !s.allowed) => {
            Err(StartError::Forbidden {
                space: space.name,
                verb,
                resource: space.resource,
                group: GROUP,
                rbac: space.rbac,
            })
        }
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(space = space.name, error = %e, "cannot check access (SelfSubjectAccessReview); starting anyway");
            Ok(())
        }
    }
}
